# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""The HTTP half of ``scripts/e2e_label.sh``: real requests to a running MONAI Label server with the X-CTRSNet
app, and checks of what comes back. Prints one line per request with its duration; exits non-zero at the first
failed check.

    python scripts/e2e_label_check.py --url http://127.0.0.1:PORT --inputs runs/e2e_apps/inputs --img_size 32 --spacing 5

The datastore the server was started on must hold ``case0_ap``/``case0_la`` (DICOM DX), ``lonely_ap`` (an AP
without its lateral), ``volume3d_ap`` (a 3D NIfTI volume) and ``ctslice_ap`` (a CT-modality DICOM slice);
``case1_ap``/``case1_la`` are uploaded here through the datastore API.
"""

from __future__ import annotations

import gzip
import json
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import requests

from xctrs_monai.constants import HU_WINDOW, LABEL_COLOURS, NUM_SEG_CLASSES, VERTEBRAE, grid_affine

MODEL = "xctrs"


def check(condition: bool, message: str) -> None:
    if not condition:
        print(f"e2e_label: FAILED: {message}", file=sys.stderr)
        raise SystemExit(1)


def _alive(pid: int | None) -> bool:
    if pid is None:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def wait_for_server(url: str, timeout: float, pid: int | None = None) -> dict:
    """``GET /info/`` once the server answers (it loads MONAI Label and the app first); fails if it exits."""
    deadline = time.monotonic() + timeout
    while True:
        check(_alive(pid), f"the server (process {pid}) exited before answering")
        try:
            reply = requests.get(f"{url}/info/", timeout=10)
            if reply.status_code == 200:
                return reply.json()
        except requests.ConnectionError:
            pass
        check(time.monotonic() < deadline, f"the server at {url} did not answer /info/ within {timeout:.0f} s")
        time.sleep(1.0)


def infer(url: str, image: str, params: dict | None = None, output: str = "image") -> tuple[requests.Response, float]:
    start = time.monotonic()
    reply = requests.post(
        f"{url}/infer/{MODEL}",
        params={"image": image, "output": output},
        data={"params": json.dumps(params or {})},
        timeout=600,
    )
    seconds = time.monotonic() - start
    print(f"  POST /infer/{MODEL}?image={image} params={params or {}} output={output}: "
          f"HTTP {reply.status_code} in {seconds:.2f} s")  # fmt: skip
    return reply, seconds


def load_nifti(reply: requests.Response, what: str) -> nib.Nifti1Image:
    check(reply.status_code == 200, f"{what}: HTTP {reply.status_code}: {reply.text[:500]}")
    try:
        return nib.Nifti1Image.from_bytes(_gunzip(reply.content))
    except Exception as e:  # noqa: BLE001 - any failure to parse is the finding
        raise SystemExit(f"e2e_label: FAILED: {what}: the result is not a readable NIfTI file: {e}") from None


def _gunzip(data: bytes) -> bytes:
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def check_geometry(img: nib.Nifti1Image, img_size: int, spacing: float, what: str) -> None:
    """The reconstruction grid: ``img_size``^3, RAS affine in mm centred on the origin (constants.grid_affine)."""
    check(img.shape == (img_size,) * 3, f"{what}: shape {img.shape}, expected {(img_size,) * 3}")
    expected = grid_affine(img_size, spacing)
    # 1e-4 mm: the affine is written as float32 in the NIfTI header (spacing 5, origin -77.5 are exact there)
    check(np.allclose(img.affine, expected, atol=1e-4), f"{what}: affine\n{img.affine}\nexpected (RAS, mm)\n{expected}")
    check(nib.aff2axcodes(img.affine) == ("R", "A", "S"), f"{what}: axes {nib.aff2axcodes(img.affine)}, expected RAS")
    check(img.header.get_xyzt_units()[0] == "mm", f"{what}: spatial unit {img.header.get_xyzt_units()[0]}, expected mm")


def check_labels(img: nib.Nifti1Image, img_size: int, spacing: float, what: str) -> np.ndarray:
    check_geometry(img, img_size, spacing, what)
    labels = np.asanyarray(img.dataobj)
    check(np.issubdtype(labels.dtype, np.integer), f"{what}: label dtype {labels.dtype}, expected integers")
    check(labels.min() >= 0 and labels.max() < NUM_SEG_CLASSES, f"{what}: labels span {labels.min()}..{labels.max()}")
    return labels


def check_refused(url: str, image: str, params: dict, must_name: str, must_say: str) -> None:
    """A bad request: HTTP 4xx whose message names the file, and the server still answers afterwards."""
    reply, _ = infer(url, image, params)
    detail = reply.text
    check(
        400 <= reply.status_code < 500,
        f"bad request '{image}' {params}: HTTP {reply.status_code}, expected 4xx: {detail[:300]}",
    )
    check(must_name in detail, f"bad request '{image}': the message does not name '{must_name}': {detail[:500]}")
    check(
        must_say.lower() in detail.lower(),
        f"bad request '{image}': the message does not say '{must_say}': {detail[:500]}",
    )
    print(f"    refused as expected: {json.loads(detail).get('detail', detail)[:300]}")
    check(requests.get(f"{url}/info/", timeout=10).status_code == 200, f"the server stopped answering after '{image}'")


def main(
    url: str, inputs: str, img_size: int, spacing: float, timeout: float = 300.0, server_pid: int | None = None
) -> None:
    start = time.monotonic()
    info = wait_for_server(url, timeout, server_pid)
    print(f"  server up after {time.monotonic() - start:.1f} s: {info['name']} {info['version']}")
    check(
        MODEL in info["models"], f"/info/ lists no model '{MODEL}' (is the checkpoint there?): {list(info['models'])}"
    )
    names = {name: i for i, name in enumerate(VERTEBRAE, start=1)}
    check(info["models"][MODEL]["labels"] == names, f"label names {info['models'][MODEL]['labels']}, expected {names}")
    colours = info["models"][MODEL]["label_colors"]
    check(all(colours[n] == list(LABEL_COLOURS[i]) for n, i in names.items()), f"label colours {colours}")

    # 1. the datastore rule: case0_ap finds case0_la
    reply, first = infer(url, "case0_ap")
    labels = check_labels(load_nifti(reply, "case0 labels"), img_size, spacing, "case0 labels")
    print(
        f"    case0 label map {labels.shape}, voxels per label {np.bincount(labels.ravel(), minlength=NUM_SEG_CLASSES).tolist()}"
    )
    reply, _ = infer(url, "case0_ap", output="json")
    check(reply.status_code == 200, f"case0 json: HTTP {reply.status_code}: {reply.text[:300]}")
    params = reply.json()
    for key in ("label_names", "label_colors", "reliable", "qc_reasons", "report", "la_image"):
        check(key in params, f"the result parameters have no '{key}': {sorted(params)}")
    check(Path(params["la_image"]).name == "case0_la.dcm", f"case0_ap was paired with {params['la_image']}")
    print(f"    QC verdict: reliable={params['reliable']} {params['qc_reasons']}")
    # 2. the CT of the same pair (the last case is kept: no second run of the network)
    reply, ct_seconds = infer(url, "case0_ap", {"return_ct": True})
    ct_img = load_nifti(reply, "case0 CT")
    check_geometry(ct_img, img_size, spacing, "case0 CT")
    ct = np.asanyarray(ct_img.dataobj).astype(np.float64)
    lo, hi = HU_WINDOW
    check(
        lo - 1e-3 <= ct.min() and ct.max() <= hi + 1e-3,
        f"CT values {ct.min():.1f}..{ct.max():.1f} HU outside {HU_WINDOW}",
    )
    check(ct.max() - ct.min() > 100, f"CT is flat: {ct.min():.1f}..{ct.max():.1f} HU")
    print(f"    case0 CT {ct.shape} in {ct.min():.0f}..{ct.max():.0f} HU")
    # 3. a pair uploaded through the datastore API, then inferred by the naming rule
    root = Path(inputs)
    for view in ("ap", "la"):
        with open(root / f"case1_{view}.dcm", "rb") as f:
            reply = requests.put(
                f"{url}/datastore/",
                params={"image": f"case1_{view}"},
                files={"file": (f"case1_{view}.dcm", f)},
                timeout=60,
            )
        check(
            reply.status_code == 200,
            f"PUT /datastore/?image=case1_{view}: HTTP {reply.status_code}: {reply.text[:300]}",
        )
    reply, second = infer(url, "case1_ap")
    check_labels(load_nifti(reply, "case1 labels"), img_size, spacing, "case1 labels")
    # 4. the lateral given as the la_image parameter
    reply, _ = infer(url, "lonely_ap", {"la_image": "case0_la"})
    check_labels(load_nifti(reply, "lonely_ap + la_image labels"), img_size, spacing, "lonely_ap + la_image labels")
    # 5. bad requests: clear 4xx messages naming the file, and the server keeps serving
    check_refused(url, "lonely_ap", {}, "lonely_ap", "No lateral radiograph")
    check_refused(url, "case0_la", {}, "case0_la", "lateral view")
    check_refused(url, "volume3d_ap", {"la_image": "case0_la"}, "volume3d_ap.nii.gz", "shape")
    check_refused(url, "ctslice_ap", {"la_image": "case0_la"}, "ctslice_ap.dcm", "CT")
    check_refused(url, "case1_ap", {"la_image": "no_such_image"}, "no_such_image", "neither")
    reply, _ = infer(url, "case1_ap", {"la_image": "case1_la"})
    check_labels(load_nifti(reply, "case1 after the bad requests"), img_size, spacing, "case1 after the bad requests")
    print(f"  all checks passed: first inference {first:.2f} s (model load included), cached CT {ct_seconds:.2f} s, "
          f"second case {second:.2f} s")  # fmt: skip


if __name__ == "__main__":
    import fire

    fire.Fire(main)

# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Calibrate the quality-control thresholds of ``xctrs-infer`` on phantom pairs, and measure how well they work.

One command::

    python scripts/calibrate_qc.py --checkpoint bundle/models/model.pt [--config_file ...] [--n 64]

For ``n`` phantoms never seen in training (seeds of their own stream), the DRRs of each phantom on the
model's grid are written as DICOM radiographs without view tags (so that the header checks, which would
catch a swap, stay out of the way: the post-run verdict is what is measured) and seven kinds of pairs go
through ``xctrs-infer``'s own path: ``good`` (AP, LA of one phantom), ``swapped`` (LA given as AP and AP as
LA), ``flipped`` (the AP upside down), ``mismatched`` (the LA of another phantom), ``noise`` (uniform noise
in both views), ``inverted`` (both intensity-inverted) and ``wrong_spacing`` (both pixel spacings 1.5x too
large, inside the range the pre-run check lets through).

The phantoms are split in two halves. The thresholds are set on the good pairs of the first half (a normal
tail at ``target_fpr``, never above the worst of them: see ``_thresholds``), and every rate is measured on the
second half, so the table does not flatter the thresholds it measures. Output: a Markdown table and a JSON
file (pair type -> fraction flagged, true- and false-positive rates, the thresholds to put in
``inference.json``'s ``qc_thresholds``, and the same table for the old rule, per-view NCC >= 0.8).
"""

from __future__ import annotations

import json
import math
import statistics
import tempfile
from pathlib import Path

import fire
import numpy as np
import torch
from monai.data import MetaTensor

from xctrs_monai.apps.qc import qc_verdict, vertebra_plausibility
from xctrs_monai.apps.workflow import XCTRSInference
from xctrs_monai.data import make_phantom, phantom_case_seed
from xctrs_monai.data.io import save_json
from xctrs_monai.transforms.drr import BiplanarDRR
from xctrs_monai.transforms.xray import canonical_to_display

__all__ = ["PAIR_TYPES", "calibrate", "main"]

PAIR_TYPES = ("good", "swapped", "flipped", "mismatched", "noise", "inverted", "wrong_spacing")
_CONTINUOUS = ("ncc", "gradient_correlation", "cross_view", "component_fraction")  # checks of the form value >= t


def _write_dicom(path: Path, display: np.ndarray, pixel_spacing: float) -> str:
    """A display-layout image as a 16-bit DX DICOM without view tags (MONOCHROME2)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    q = np.round((display - display.min()) / max(float(np.ptp(display)), 1e-12) * 65535).astype(np.uint16)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.SamplesPerPixel, ds.PhotometricInterpretation = "DX", 1, "MONOCHROME2"
    ds.Rows, ds.Columns = q.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.ImagerPixelSpacing = [f"{pixel_spacing:.10g}"] * 2
    ds.PixelData = q.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return str(path)


def _pairs(folder: Path, img_size: int, spacing: float, n: int, seed: int) -> tuple[list[dict], list[dict]]:
    """Every pair of every type (``{"type", "phantom", "xray_ap", "xray_la"}``), and the anatomy checks of each
    phantom's own label map (what a perfect reconstruction would score)."""
    views, truth, pixel = [], [], 0.0
    for i in range(n):
        ct, labels, affine = make_phantom(phantom_case_seed(seed, i), size=img_size, spacing=spacing)
        truth.append(vertebra_plausibility(labels, affine))
        drrs = BiplanarDRR()(MetaTensor(torch.as_tensor(ct)[None], affine=torch.as_tensor(affine)))
        pixel = float(drrs[0].meta["pixel_spacing"][0])
        views.append(
            {
                v: canonical_to_display(d.as_tensor(), v)[0].numpy().astype(np.float64)
                for v, d in zip(("ap", "la"), drrs)
            }
        )
    rng = np.random.default_rng(seed)
    pairs = []
    for i, v in enumerate(views):
        f = {
            name: folder / f"{i:03d}_{name}.dcm"
            for name in ("ap", "la", "ap_ud", "ap_inv", "la_inv", "ap_big", "la_big", "n1", "n2")
        }
        ap, la = _write_dicom(f["ap"], v["ap"], pixel), _write_dicom(f["la"], v["la"], pixel)
        other = _write_dicom(folder / f"{(i + 1) % n:03d}_la_other.dcm", views[(i + 1) % n]["la"], pixel)
        made = {
            "good": (ap, la),
            "swapped": (la, ap),
            "flipped": (_write_dicom(f["ap_ud"], v["ap"][::-1], pixel), la),
            "mismatched": (ap, other),
            "noise": (
                _write_dicom(f["n1"], rng.random(v["ap"].shape), pixel),
                _write_dicom(f["n2"], rng.random(v["la"].shape), pixel),
            ),
            "inverted": (_write_dicom(f["ap_inv"], -v["ap"], pixel), _write_dicom(f["la_inv"], -v["la"], pixel)),
            "wrong_spacing": (
                _write_dicom(f["ap_big"], v["ap"], 1.5 * pixel),
                _write_dicom(f["la_big"], v["la"], 1.5 * pixel),
            ),
        }
        pairs += [{"type": t, "phantom": i, "xray_ap": a, "xray_la": b} for t, (a, b) in made.items()]
    return pairs, truth


def _signals(report: dict) -> dict:
    return {
        "views": report["reprojection_consistency"],
        "cross_view": report["cross_view_consistency"],
        "anatomy": report["anatomy"],
    }


def _values(case: dict, name: str) -> float:
    if name in ("ncc", "gradient_correlation"):
        return min(case["views"][v][name] for v in case["views"])  # the worse view decides
    return case["cross_view"] if name == "cross_view" else case["anatomy"][name]


def _thresholds(good: list[dict], target_fpr: float, truth: list[dict]) -> dict:
    """Thresholds from the calibration good pairs.

    A continuous check gets ``mean - z * std`` of the good pairs' values, with ``z`` the normal quantile of
    ``1 - target_fpr / (number of continuous checks)`` (a normal tail, split evenly between the checks), and
    never above their minimum (every calibration good pair passes); the counts get the worst good value.
    The lowest-of-n rule alone would flag about 1 good pair in n + 1 per check. The anatomy checks are also
    loosened to what the phantoms' own label maps (``truth``) score: a perfect reconstruction must pass.
    """
    z = statistics.NormalDist().inv_cdf(1.0 - float(target_fpr) / len(_CONTINUOUS))
    out = {}
    for name in _CONTINUOUS:
        values = [_values(c, name) for c in good]
        limit = min(min(values), statistics.fmean(values) - z * statistics.pstdev(values))
        out[name] = math.floor(limit * 1000) / 1000  # 3 decimals, rounded down: the calibration cases still pass
    out["component_fraction"] = min(out["component_fraction"], min(t["component_fraction"] for t in truth))
    out["vertebrae_present"] = min(
        min(_values(c, "vertebrae_present") for c in good), *(t["vertebrae_present"] for t in truth)
    )
    out["order_inversions"] = max(
        max(_values(c, "order_inversions") for c in good), *(t["order_inversions"] for t in truth)
    )
    return out


def _rates(results: list[dict], flagged) -> dict:
    table = {}
    for t in PAIR_TYPES:
        rows = [r for r in results if r["type"] == t]
        table[t] = sum(bool(flagged(r)) for r in rows) / len(rows) if rows else float("nan")
    bad = [r for r in results if r["type"] != "good"]
    return {
        "flagged": table,
        "true_positive_rate": sum(bool(flagged(r)) for r in bad) / len(bad),
        "false_positive_rate": table["good"],
    }


def calibrate(
    checkpoint: str,
    config_file: str | list | None = None,
    n: int = 64,
    seed: int = 20240,
    out_dir: str = "bundle/eval/qc_calibration",
    device: str = "cpu",
    precision: str = "auto",
    target_fpr: float = 0.05,
) -> dict:
    """Run the calibration (see the module docstring) and write ``qc_calibration.md`` / ``.json`` in ``out_dir``.

    Args:
        checkpoint: the model to calibrate for.
        config_file: inference config(s); defaults to ``bundle/configs/inference.json``.
        n: phantoms (half for the thresholds, half for the rates). Defaults to 64.
        seed: seed of the phantom stream (training uses seed 0's stream). Defaults to 20240.
        out_dir: where the table goes. Defaults to ``bundle/eval/qc_calibration``.
        device: ``"cpu"`` or ``"cuda"``. Defaults to ``"cpu"``.
        precision: as ``xctrs-infer --precision``. Defaults to ``"auto"``.
        target_fpr: the share of good pairs the thresholds are meant to flag (see ``_thresholds``). Defaults to 0.05.

    Returns:
        the JSON content.
    """
    if int(n) < 2:
        raise SystemExit("calibrate_qc: --n must be at least 2 (a calibration half and a test half).")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        app = XCTRSInference(config_file, checkpoint, root / "out", device, precision=precision)
        spacing = float(app.parser.get_parsed_content("spacing"))
        (root / "in").mkdir()
        pairs, truth = _pairs(root / "in", app.img_size, spacing, int(n), int(seed))
        for k, pair in enumerate(pairs):
            report = app.run_case({**pair, "case_id": f"{k:04d}"})
            results.append({"type": pair["type"], "phantom": pair["phantom"], **_signals(report)})
    half = int(n) // 2
    calibration = [r for r in results if r["phantom"] < half]
    test = [r for r in results if r["phantom"] >= half]
    thresholds = _thresholds([r for r in calibration if r["type"] == "good"], target_fpr, truth[:half])
    verdict = lambda r: not qc_verdict(r["views"], r["anatomy"], thresholds, r["cross_view"])["reliable"]  # noqa: E731
    old_rule = lambda r: any(v["ncc"] < 0.8 for v in r["views"].values())  # noqa: E731
    out = {
        "checkpoint": checkpoint,
        "img_size": app.img_size,
        "spacing_mm": spacing,
        "phantoms": int(n),
        "seed": int(seed),
        "target_fpr": float(target_fpr),
        "thresholds": thresholds,
        "truth_anatomy": truth,
        "test": _rates(test, verdict),
        "calibration": _rates(calibration, verdict),
        "old_rule_ncc_0.8_test": _rates(test, old_rule),
        "cases": results,
    }
    folder = Path(out_dir)
    save_json(out, folder / "qc_calibration.json")
    (folder / "qc_calibration.md").write_text(_markdown(out))
    return out


def _markdown(out: dict) -> str:
    n, half = out["phantoms"], out["phantoms"] // 2
    lines = [
        f"QC calibration: `{out['checkpoint']}` ({out['img_size']}^3 at {out['spacing_mm']:g} mm), {n} unseen "
        f"phantoms; thresholds from the good pairs of the first {half}, rates on the other {n - half}.",
        "",
        "| pair type | flagged (verdict) | flagged (old rule: per-view NCC >= 0.8) |",
        "|---|---:|---:|",
    ]
    test, old = out["test"], out["old_rule_ncc_0.8_test"]
    for t in PAIR_TYPES:
        lines.append(f"| {t} | {100 * test['flagged'][t]:.0f} % | {100 * old['flagged'][t]:.0f} % |")
    for name, key in (
        ("true-positive rate** (bad pairs flagged)", "true_positive_rate"),
        ("false-positive rate** (good pairs flagged)", "false_positive_rate"),
    ):
        lines.append(f"| **{name} | **{100 * test[key]:.0f} %** | {100 * old[key]:.0f} % |")
    lines += [
        "",
        f"Thresholds (`qc_thresholds` in inference.json): `{json.dumps(out['thresholds'])}`",
        "",
    ]
    return "\n".join(lines)


def main(
    checkpoint: str,
    config_file: str | list | None = None,
    n: int = 64,
    seed: int = 20240,
    out_dir: str = "bundle/eval/qc_calibration",
    device: str = "cpu",
    precision: str = "auto",
    target_fpr: float = 0.05,
) -> None:
    """Print the calibration table and write it to ``out_dir`` (arguments: see :func:`calibrate`)."""
    out = calibrate(checkpoint, config_file, n, seed, out_dir, device, precision, target_fpr)
    print(_markdown(out))
    print(f"written: {Path(out_dir) / 'qc_calibration.md'} and .json")


if __name__ == "__main__":
    fire.Fire(main)

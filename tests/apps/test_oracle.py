# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""An oracle end to end: a stand-in network that returns a known phantom, run through the real command line on
the phantom's DRRs written as DICOM (MONOCHROME1 for the lateral view).

With the right answer fixed, everything around the network is checked against an independent truth: the CT and
labels land at the phantom's world coordinates, and the report's re-projection consistency is high for the right
pair and clearly lower for the swapped one (a report that compared each input with the other view's DRR, or a
loader that crossed the views, would not show this).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from xctrs_monai.apps.infer import main
from xctrs_monai.constants import HU_WINDOW, VERTEBRAE, grid_affine
from xctrs_monai.data import make_phantom
from xctrs_monai.transforms.drr import BiplanarDRR
from xctrs_monai.transforms.xray import canonical_to_display

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "transforms"))
from xray_files import write_dicom, write_png  # noqa: E402

INFERENCE = str(Path(__file__).resolve().parents[2] / "bundle" / "configs" / "inference.json")
SIZE, SPACING = 32, 5.0


class Oracle(torch.nn.Module):
    """Returns the same ``[B, 9, N, N, N]`` prediction whatever the radiographs."""

    def __init__(self, pred: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("pred", pred)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.pred.expand(image.shape[0], -1, -1, -1, -1)


@pytest.fixture(scope="module")
def oracle_case(tmp_path_factory):
    root = tmp_path_factory.mktemp("oracle")
    ct, labels, affine = make_phantom(11, size=SIZE, spacing=SPACING)
    np.testing.assert_allclose(affine, grid_affine(SIZE, SPACING))  # the phantom sits on the contract's grid
    lo, hi = HU_WINDOW
    unit = np.clip((ct - lo) / (hi - lo), 0.0, 1.0)
    logits = 10.0 * (labels[None] == np.arange(len(VERTEBRAE) + 1)[:, None, None, None])
    pred = torch.as_tensor(np.concatenate([unit[None], logits])[None], dtype=torch.float32)
    torch.jit.save(torch.jit.script(Oracle(pred)), str(root / "oracle.ts"))
    # the radiographs: DRRs of exactly the CT the oracle returns (its HU after the window)
    ct_hu = torch.as_tensor(unit * (hi - lo) + lo, dtype=torch.float32)[None]
    ap, la = BiplanarDRR()(MetaTensor(ct_hu, affine=torch.as_tensor(affine)))
    files = {"root": root, "labels": labels, "affine": affine, "pixel": float(ap.meta["pixel_spacing"][0])}
    for view, drr, photometric, position in (("ap", ap, "MONOCHROME2", "AP"), ("la", la, "MONOCHROME1", "LL")):
        display = canonical_to_display(drr.as_tensor(), view)[0].numpy()
        files[view] = write_dicom(
            root / f"{view}.dcm", display, float(drr.meta["pixel_spacing"][0]), photometric, view_position=position
        )
        files[f"{view}_png"] = write_png(root / f"{view}.png", display, 16)
    (root / "grid.json").write_text(json.dumps({"img_size": SIZE, "spacing": SPACING}))
    files["config"] = json.dumps([INFERENCE, str(root / "grid.json")])
    return files


def _infer(oracle_case, out_dir, ap, la, *extra) -> dict:
    argv = [
        "--ap",
        ap,
        "--la",
        la,
        "--out_dir",
        out_dir,
        "--checkpoint",
        oracle_case["root"] / "oracle.ts",
        "--torchscript",
    ]
    argv += ["--config_file", oracle_case["config"], "--case_id", "c", "--allow_unreliable", "--device", "cpu", *extra]
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in argv])
    assert exit_info.value.code == 0
    return json.loads((Path(out_dir) / "c" / "report.json").read_text())


def test_outputs_land_at_the_phantom_world_coordinates(oracle_case, tmp_path):
    report = _infer(oracle_case, tmp_path, oracle_case["ap"], oracle_case["la"])
    labels = nib.load(str(tmp_path / "c" / "vertebrae.nii.gz"))
    np.testing.assert_allclose(labels.affine, oracle_case["affine"], atol=1e-5)  # float32 NIfTI header
    truth = oracle_case["labels"]
    for i, name in enumerate(VERTEBRAE, start=1):
        voxels = np.argwhere(truth == i).mean(0)
        centroid = oracle_case["affine"][:3, :3] @ voxels + oracle_case["affine"][:3, 3]
        # within a voxel (5 mm); identical in fact, as the oracle returns the phantom's own labels
        np.testing.assert_allclose(report["vertebrae"][name]["centroid_mm"], centroid, atol=SPACING)
        np.testing.assert_allclose(report["vertebrae"][name]["centroid_mm"], centroid, atol=1e-2)
    from xctrs_monai.apps.qc import vertebra_plausibility

    assert report["anatomy"] == vertebra_plausibility(truth, oracle_case["affine"])  # the phantom's own anatomy
    assert report["anatomy"]["vertebrae_present"] == 7 and report["anatomy"]["order_inversions"] == 0


def test_reprojection_separates_the_right_pair_from_the_swapped_one(oracle_case, tmp_path):
    right = _infer(oracle_case, tmp_path / "right", oracle_case["ap"], oracle_case["la"])
    pixel = str(oracle_case["pixel"])
    swapped = _infer(
        oracle_case,
        tmp_path / "swapped",
        oracle_case["la_png"],
        oracle_case["ap_png"],
        "--ap_pixel_spacing",
        pixel,
        "--la_pixel_spacing",
        pixel,
    )  # PNGs: no header to reveal the swap
    for view in ("ap", "la"):
        good, bad = right["reprojection_consistency"][view], swapped["reprojection_consistency"][view]
        # the right pair is its own DRR up to 16-bit quantisation and MONOCHROME1: NCC ~1
        assert good["ncc"] > 0.99 and good["gradient_correlation"] > 0.95, good
        # swapped: NCC 0.73, gradient correlation about 0.5 here (the neck silhouettes of the two views still overlap)
        assert bad["ncc"] < good["ncc"] - 0.05 and bad["gradient_correlation"] < good["gradient_correlation"] - 0.3, bad
    assert not [r for r in right["qc_reasons"] if r.startswith(("ap_", "la_"))], right["qc_reasons"]

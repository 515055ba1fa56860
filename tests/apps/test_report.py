# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Report and quality-control signals against hand-computed values."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from xctrs_monai.apps.outputs import split_prediction
from xctrs_monai.apps.qc import (
    cross_view_consistency,
    gradient_correlation,
    normalized_cross_correlation,
    psnr,
    qc_verdict,
    vertebra_plausibility,
)
from xctrs_monai.apps.report import WriteReportd, vertebra_statistics
from xctrs_monai.apps.writers import staging_dir
from xctrs_monai.constants import grid_affine


def test_vertebra_statistics_boxes():
    labels = np.zeros((8, 8, 8), dtype=np.uint8)
    labels[0:2, 0:2, 0:2] = 1  # 8 voxels, centre index (0.5, 0.5, 0.5)
    labels[4:8, 2:5, 6:7] = 3  # 12 voxels, centre (5.5, 3, 6)
    affine = grid_affine(8, 2.0)
    stats = vertebra_statistics(torch.as_tensor(labels)[None], affine)
    assert list(stats) == [f"C{i}" for i in range(1, 8)]
    assert stats["C1"]["voxels"] == 8 and stats["C1"]["volume_mm3"] == pytest.approx(8 * 8.0)
    assert stats["C3"]["volume_mm3"] == pytest.approx(12 * 8.0)
    np.testing.assert_allclose(stats["C1"]["centroid_mm"], (np.array([0.5] * 3) - 3.5) * 2.0)
    np.testing.assert_allclose(stats["C3"]["centroid_mm"], (np.array([5.5, 3.0, 6.0]) - 3.5) * 2.0)
    assert stats["C2"] == {"label": 2, "voxels": 0, "volume_mm3": 0.0, "centroid_mm": None}
    with pytest.raises(ValueError, match="3D label map"):
        vertebra_statistics(np.zeros((4, 4)), np.eye(4))


def test_similarity_measures():
    rng = np.random.default_rng(0)
    a = rng.random((16, 16))
    assert normalized_cross_correlation(a, a) == pytest.approx(1.0)
    assert normalized_cross_correlation(a, 1 - a) == pytest.approx(-1.0)
    assert normalized_cross_correlation(a, np.zeros_like(a)) == 0.0
    assert psnr(a, a) == float("inf")
    assert psnr(np.zeros(4), np.full(4, 0.1)) == pytest.approx(20.0)  # 10 log10(1 / 0.01)


def _sobel(x: np.ndarray, axis: int) -> np.ndarray:
    """Sobel derivative along ``axis`` with mirrored edges, written out: [1, 2, 1] across, [-1, 0, 1] along."""
    p = np.pad(x, 1, mode="symmetric")
    if axis == 1:
        return _sobel(x.T, 0).T
    d = p[2:, :] - p[:-2, :]
    return d[:, :-2] + 2 * d[:, 1:-1] + d[:, 2:]


def test_gradient_correlation_against_a_written_out_reference():
    rng = np.random.default_rng(1)
    a, b = rng.random((12, 10)), rng.random((12, 10))
    b = 0.5 * a + b  # partly correlated
    expected = np.mean([np.corrcoef(_sobel(a, i).ravel(), _sobel(b, i).ravel())[0, 1] for i in (0, 1)])
    assert gradient_correlation(a, b) == pytest.approx(expected, abs=1e-12)  # float64 both ways
    assert gradient_correlation(a, 3 * a + 7) == pytest.approx(1.0)  # gain and offset do not matter
    assert gradient_correlation(a, -a) == pytest.approx(-1.0)
    assert gradient_correlation(a[None], a[::-1][None]) < 0.5  # an upside-down copy does not correlate
    with pytest.raises(ValueError, match="two 2D images"):
        gradient_correlation(a, a[:5])


def test_cross_view_consistency():
    """AP [X, Z] and LA [Y, Z] share Z: the same superior-inferior profile (any gain and offset) gives 1."""
    z = np.linspace(0.0, 1.0, 20)
    profile = np.sin(6 * z) + z
    ap = np.outer(np.linspace(1.0, 2.0, 12), profile)  # mean over X: 1.5 * profile
    la = np.outer(np.ones(9), 2.0 * profile + 1.0)
    assert cross_view_consistency(ap[None], la[None]) == pytest.approx(1.0)
    upside_down = la[:, ::-1]
    expected = np.corrcoef(profile, profile[::-1])[0, 1]
    assert cross_view_consistency(ap, upside_down) == pytest.approx(expected, abs=1e-12)
    with pytest.raises(ValueError, match="the same Z"):
        cross_view_consistency(ap, la[:, :10])


def _column(size: int = 24) -> np.ndarray:
    """Seven 2-voxel-thick slabs, C1 at the top (largest Z = superior in RAS), a voxel of gap between them."""
    labels = np.zeros((size, size, size), dtype=np.uint8)
    for i in range(7):
        top = size - 2 - 3 * i
        labels[8:16, 8:16, top - 1 : top + 1] = i + 1
    return labels


def test_vertebra_plausibility():
    affine = grid_affine(24, 2.0)
    good = vertebra_plausibility(_column(), affine)
    assert good == {"vertebrae_present": 7, "order_inversions": 0, "component_fraction": 1.0}
    upside_down = vertebra_plausibility(_column()[:, :, ::-1], affine)
    assert upside_down["order_inversions"] == 6  # every adjacent pair is inverted
    swapped = _column()
    c3, c4 = swapped == 3, swapped == 4
    swapped[c3], swapped[c4] = 4, 3
    # by label: C2 above "C3" (now at C4's place), "C3" below "C4" (at C3's place), "C4" above C5: one pair out of order
    assert vertebra_plausibility(swapped, affine)["order_inversions"] == 1
    broken = _column()
    broken[0:2, 0:2, 0:1] = 5  # 4 voxels of C5 far away: 128 of 132 C5 voxels are in its largest piece
    assert vertebra_plausibility(broken, affine)["component_fraction"] == pytest.approx(round(128 / 132, 4))
    missing = _column()
    missing[missing == 7] = 0
    assert vertebra_plausibility(missing, affine)["vertebrae_present"] == 6
    assert vertebra_plausibility(np.zeros((4, 4, 4)), np.eye(4))["component_fraction"] == 0.0


def test_qc_verdict():
    views = {"ap": {"ncc": 0.95, "gradient_correlation": 0.6}, "la": {"ncc": 0.9, "gradient_correlation": 0.1}}
    anatomy = {"vertebrae_present": 7, "order_inversions": 0, "component_fraction": 0.95}
    limits = {
        "ncc": 0.8,
        "gradient_correlation": 0.3,
        "vertebrae_present": 7,
        "order_inversions": 0,
        "component_fraction": 0.8,
    }
    verdict = qc_verdict(views, anatomy, limits)
    assert not verdict["reliable"] and verdict["reasons"] == ["la_gradient_correlation 0.1 (needs >= 0.3)"]
    assert len(verdict["checks"]) == 7  # 2 per view + 3 anatomy; cross_view skipped without a value or a limit
    verdict = qc_verdict(views, anatomy, {**limits, "cross_view": 0.6}, cross_view=0.2)
    assert verdict["reasons"][-1] == "cross_view 0.2 (needs >= 0.6)" and len(verdict["checks"]) == 8
    assert qc_verdict(views, anatomy, {**limits, "gradient_correlation": None})["reliable"]
    verdict = qc_verdict(views, {**anatomy, "order_inversions": 2}, {**limits, "gradient_correlation": 0.05})
    assert verdict["reasons"] == ["order_inversions 2 (needs <= 0)"]


def test_report_compares_each_input_with_its_own_view(tmp_path):
    """AP input = AP re-projection exactly, LA input unrelated to the LA re-projection: a report that crossed
    the views would see no perfect match, or one on the wrong view."""
    rng = np.random.default_rng(2)
    drr_ap, drr_la, other = (torch.as_tensor(rng.random((1, 16, 16)), dtype=torch.float32) for _ in range(3))
    labels = MetaTensor(torch.as_tensor(_column(16)[None]), affine=torch.as_tensor(grid_affine(16, 2.0)))
    data = {"xray_ap": drr_ap.clone(), "xray_la": other, "pred_drr_ap": drr_ap, "pred_drr_la": drr_la}
    data |= {"pred_label": labels, "pred_ct_hu": labels.float(), "case_id": "r"}
    staging_dir(tmp_path, "r").mkdir()
    out = WriteReportd(keys=("pred_label", "pred_ct_hu"), output_dir=tmp_path)(data)
    scores = out["report"]["reprojection_consistency"]
    assert scores["ap"]["ncc"] == 1.0 and scores["ap"]["gradient_correlation"] == 1.0
    assert scores["la"]["ncc"] < 0.5
    saved = json.loads((staging_dir(tmp_path, "r") / "report.json").read_text())
    assert saved["reprojection_consistency"] == scores and saved["reliable"] is False
    assert any(r.startswith("la_ncc") for r in saved["qc_reasons"]) and not any(
        r.startswith("ap_") for r in saved["qc_reasons"]
    )


def test_split_prediction_geometry():
    pred = torch.zeros(9, 4, 4, 4)
    pred[0] = 0.5
    pred[3, 1, 2, 3] = 5.0  # label 2 at one voxel
    ct, labels = split_prediction(pred, spacing=3.0, case_id="c1")
    assert ct.shape == (1, 4, 4, 4) and ct.dtype == torch.float32
    assert torch.allclose(ct, torch.full_like(ct, 500.0))  # 0.5 * 3000 - 1000
    assert labels.dtype == torch.uint8 and int(labels.sum()) == 2 and int(labels[0, 1, 2, 3]) == 2
    np.testing.assert_allclose(ct.affine.numpy(), grid_affine(4, 3.0))
    assert ct.meta["filename_or_obj"] == "c1"
    with pytest.raises(ValueError, match="pred must be"):
        split_prediction(torch.zeros(9, 4, 4), spacing=1.0)

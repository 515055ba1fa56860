# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
from __future__ import annotations

import numpy as np
import pytest
import torch

from xctrs_monai.apps.outputs import split_prediction
from xctrs_monai.apps.report import normalized_cross_correlation, psnr, reprojection_consistency, vertebra_statistics
from xctrs_monai.data.phantom import phantom_affine


def test_vertebra_statistics_boxes():
    labels = np.zeros((8, 8, 8), dtype=np.uint8)
    labels[0:2, 0:2, 0:2] = 1  # 8 voxels, centre index (0.5, 0.5, 0.5)
    labels[4:8, 2:5, 6:7] = 3  # 12 voxels, centre (5.5, 3, 6)
    affine = phantom_affine(8, 2.0)
    stats = vertebra_statistics(torch.as_tensor(labels)[None], affine)
    assert list(stats) == [f"C{i}" for i in range(1, 8)]
    assert stats["C1"]["voxels"] == 8 and stats["C1"]["volume_mm3"] == pytest.approx(8 * 8.0)
    assert stats["C3"]["volume_mm3"] == pytest.approx(12 * 8.0)
    np.testing.assert_allclose(stats["C1"]["centroid_mm"], (np.array([0.5] * 3) - 3.5) * 2.0)
    np.testing.assert_allclose(stats["C3"]["centroid_mm"], (np.array([5.5, 3.0, 6.0]) - 3.5) * 2.0)
    assert stats["C2"] == {"label": 2, "voxels": 0, "volume_mm3": 0.0, "centroid_mm": None}


def test_vertebra_statistics_bad_shape():
    with pytest.raises(ValueError, match="3D label map"):
        vertebra_statistics(np.zeros((4, 4)), np.eye(4))


def test_consistency_metrics():
    rng = np.random.default_rng(0)
    a = rng.random((16, 16))
    assert normalized_cross_correlation(a, a) == pytest.approx(1.0)
    assert normalized_cross_correlation(a, 1 - a) == pytest.approx(-1.0)
    assert normalized_cross_correlation(a, np.zeros_like(a)) == 0.0
    assert psnr(a, a) == float("inf")
    assert psnr(np.zeros(4), np.full(4, 0.1)) == pytest.approx(20.0)
    result = reprojection_consistency(a, a + 0.01 * rng.random((16, 16)), ncc_threshold=0.9)
    assert result["reliable"] and result["ncc"] > 0.99 and result["psnr_db"] > 40


def test_split_prediction_geometry():
    pred = torch.zeros(9, 4, 4, 4)
    pred[0] = 0.5
    pred[3, 1, 2, 3] = 5.0  # label 2 at one voxel
    ct, labels = split_prediction(pred, spacing=3.0, case_id="c1")
    assert ct.shape == (1, 4, 4, 4) and ct.dtype == torch.float32
    assert torch.allclose(ct, torch.full_like(ct, 500.0))  # 0.5 * 3000 - 1000
    assert labels.dtype == torch.uint8 and int(labels.sum()) == 2 and int(labels[0, 1, 2, 3]) == 2
    np.testing.assert_allclose(ct.affine.numpy(), phantom_affine(4, 3.0))
    assert ct.meta["filename_or_obj"] == "c1"
    with pytest.raises(ValueError, match="pred must be"):
        split_prediction(torch.zeros(9, 4, 4), spacing=1.0)

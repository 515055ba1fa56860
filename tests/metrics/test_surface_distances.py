# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""HD95 and ASSD in mm on cubes whose surface distances are counted by hand; the missing-class rule."""

from __future__ import annotations

import contextlib
import math
import warnings

import pytest
import torch

from monai.handlers import IgniteMetricHandler
from xctrs_monai.metrics import PhysicalHausdorffDistanceMetric, PhysicalSurfaceDistanceMetric

N = 8


def _one_hot(label: torch.Tensor, classes: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(label.long(), classes).movedim(-1, 0)[None].float()  # 1CXYZ


def _offset_cubes() -> tuple[torch.Tensor, torch.Tensor]:
    """Class 1: a 3^3 cube (x 1..3) in the ground truth, the same cube moved by +1 voxel along x in the prediction."""
    gt, pred = torch.zeros(N, N, N), torch.zeros(N, N, N)
    gt[1:4, 1:4, 1:4] = 1
    pred[2:5, 1:4, 1:4] = 1
    return _one_hot(pred, 2), _one_hot(gt, 2)


# Surface voxels of a 3^3 cube: all but its centre (26). With spacing (2, 1, 0.5) mm, from each of the ground
# truth's 26 surface voxels to the nearest surface voxel of the prediction:
#   - its x = 1 face (9 voxels): the prediction has nothing at x = 1; the prediction's x = 2 face: 2.0 mm;
#   - its x = 2 ring (8 voxels) and x = 3 ring (8 voxels) lie on the prediction's surface: 0 mm;
#   - its x = 3 face centre (3, 2, 2) is the prediction's interior centre; nearest surface voxel one step
#     along z: 0.5 mm.
# So 9 x 2.0 + 1 x 0.5 + 16 x 0 one way, the same the other way by symmetry.
ASSD_HAND = 2 * (9 * 2.0 + 0.5) / 52  # 0.7115 mm: the mean of all 52 distances
HD95_HAND = 2.0  # 95th percentile of [16 x 0, 0.5, 9 x 2.0] (rank 23.75 of 0..25) is 2.0, each way
# In voxel units (spacing 1) the face centre is 1 voxel away along any axis: 10 x 1 + 16 x 0 each way.
ASSD_VOXELS_HAND = 2 * 10 / 52


def test_offset_cubes_in_mm():
    pred, gt = _offset_cubes()
    hd = PhysicalHausdorffDistanceMetric(spacing=(2.0, 1.0, 0.5))
    assd = PhysicalSurfaceDistanceMetric(spacing=(2.0, 1.0, 0.5))
    # float32 distances of a KD-tree query: 1e-6 relative is float32 rounding
    assert hd(pred, gt).item() == pytest.approx(HD95_HAND, rel=1e-6)
    assert assd(pred, gt).item() == pytest.approx(ASSD_HAND, rel=1e-6)
    assert PhysicalSurfaceDistanceMetric()(pred, gt).item() == pytest.approx(ASSD_VOXELS_HAND, rel=1e-6)
    # a spacing given to the call wins over the fixed one (MONAI's own keyword)
    assert assd(pred, gt, spacing=1.0).item() == pytest.approx(ASSD_VOXELS_HAND, rel=1e-6)


def test_stray_voxel_separates_hd95_from_hd_and_assd():
    gt, pred = torch.zeros(N, N, N), torch.zeros(N, N, N)
    gt[0:3, 0:3, 0:3] = 1
    pred[0:3, 0:3, 0:3] = 1
    pred[6, 1, 1] = 1  # 4 voxels (6 mm at 1.5 mm) beyond the cube's face voxel (2, 1, 1)
    p, g = _one_hot(pred, 2), _one_hot(gt, 2)
    # prediction -> truth: 26 zeros and 6 mm; truth -> prediction: 26 zeros. The 95th percentile of the
    # 27 values (rank 24.7 of 0..26) is 0, the maximum 6 mm, the mean of all 53 values 6 / 53 mm.
    assert PhysicalHausdorffDistanceMetric(spacing=1.5)(p, g).item() == 0.0
    assert PhysicalHausdorffDistanceMetric(spacing=1.5, percentile=None)(p, g).item() == pytest.approx(6.0, rel=1e-6)
    assert PhysicalSurfaceDistanceMetric(spacing=1.5)(p, g).item() == pytest.approx(6.0 / 53, rel=1e-6)


@contextlib.contextmanager
def _no_warning():
    """MONAI's "class ... is all 0" warnings are handled by the missing-class rule and must not leak."""
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        yield
    assert not [r for r in records if "is all 0" in str(r.message)]


def test_missing_classes():
    gt, pred = torch.zeros(N, N, N), torch.zeros(N, N, N)
    gt[1:4, 1:4, 1:4] = 1
    pred[1:4, 1:4, 1:4] = 1
    gt[5:7, 5:7, 5:7] = 2  # class 2 in the ground truth only: missed
    pred[0, 7, 7] = 3  # class 3 in the prediction only: absent from the ground truth
    p, g = _one_hot(pred, 5), _one_hot(gt, 5)  # class 4 in neither
    diagonal = math.sqrt((N * 2.0) ** 2 + (N * 1.0) ** 2 + (N * 0.5) ** 2)  # 18.33 mm, the field of view's
    spacing = (2.0, 1.0, 0.5)
    for metric in (PhysicalHausdorffDistanceMetric(spacing=spacing), PhysicalSurfaceDistanceMetric(spacing=spacing)):
        with _no_warning():
            values = metric(p, g)[0]
        assert values[0].item() == 0.0
        assert values[1].item() == pytest.approx(diagonal, rel=1e-6)
        assert math.isnan(values[2].item()) and math.isnan(values[3].item())
        # the mean over classes and cases leaves the NaN out and counts the missed class at its diagonal
        assert metric.aggregate().item() == pytest.approx(diagonal / 2, rel=1e-6)


def test_with_ignite_handler_and_ill_arguments():
    handler = IgniteMetricHandler(metric_fn=PhysicalSurfaceDistanceMetric(spacing=2.0))
    pred, gt = _offset_cubes()
    handler.update((list(pred), list(gt)))  # lists of CXYZ, as from_engine gives
    assert handler.metric_fn.aggregate().item() == pytest.approx(2 * ASSD_VOXELS_HAND, rel=1e-6)
    with pytest.raises(ValueError, match="percentile"):
        PhysicalHausdorffDistanceMetric(percentile=150)
    with pytest.raises(ValueError, match="spacing"):
        PhysicalSurfaceDistanceMetric(spacing=(1.0, -1.0, 1.0))
    with pytest.raises(ValueError, match="spacing"):  # 2 values for a 3D volume
        PhysicalSurfaceDistanceMetric(spacing=(1.0, 1.0))(pred, gt)

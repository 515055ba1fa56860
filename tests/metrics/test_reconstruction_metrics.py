# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""PSNR (Eq. 18), global SSIM (Eq. 17) and MAE in HU against arithmetic done by hand on four voxels."""

from __future__ import annotations

import math

import pytest
import torch

from monai.handlers import IgniteMetricHandler
from xctrs_monai.metrics import (
    GlobalSSIMMetric,
    MAEHUMetric,
    PaperPSNRMetric,
    compute_global_ssim,
    compute_mae_hu,
    compute_paper_psnr,
)

# ground truth y and prediction p of one case (4 voxels); p leaves [0, 1] on both sides
Y = [0.0, 0.2, 0.4, 0.4]
P = [-0.1, 0.2, 0.5, 1.3]  # clipped: [0.0, 0.2, 0.5, 1.0]; errors [0, 0, 0.1, 0.6]


def _case(values: list[float]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64).reshape(1, 1, 4, 1, 1)  # B1XYZ


# Eq. 18 by hand: MSE = (0.1^2 + 0.6^2) / 4 = 0.37 / 4 = 0.0925; MAX_y = 0.4 (not 1)
PSNR_HAND = 10 * math.log10(0.4**2 / 0.0925)  # 2.3798 dB
# Eq. 17 by hand, x = clipped p, y; unbiased (N - 1 = 3) moments:
#   mu_x = 1.7 / 4 = 0.425, mu_y = 1.0 / 4 = 0.25
#   dx = [-0.425, -0.225, 0.075, 0.575], dy = [-0.25, -0.05, 0.15, 0.15]
#   sum dx^2 = 0.5675, sum dy^2 = 0.11, sum dx dy = 0.215
C1, C2 = 0.01**2, 0.03**2
SSIM_HAND = ((2 * 0.425 * 0.25 + C1) * (2 * 0.215 / 3 + C2)) / (
    (0.425**2 + 0.25**2 + C1) * (0.5675 / 3 + 0.11 / 3 + C2)
)  # 0.5560
MAE_HU_HAND = (0.1 + 0.6) / 4 * 3000.0  # 525 HU: 1.0 on [0, 1] is the 3000 HU of the window


def test_hand_values():
    # float64 inputs, float32 results: 1e-6 relative is float32 rounding
    assert compute_paper_psnr(_case(P), _case(Y)).item() == pytest.approx(PSNR_HAND, rel=1e-6)
    assert compute_global_ssim(_case(P), _case(Y)).item() == pytest.approx(SSIM_HAND, rel=1e-6)
    assert compute_mae_hu(_case(P), _case(Y)).item() == pytest.approx(MAE_HU_HAND, rel=1e-6)


def test_clip_is_applied_first():
    # the hand values above hold only with p clipped; unclipped errors are [0.1, 0, 0.1, 0.9]
    mse_unclipped = (0.1**2 + 0.1**2 + 0.9**2) / 4
    assert compute_paper_psnr(_case(P), _case(Y), clip=False).item() == pytest.approx(
        10 * math.log10(0.4**2 / mse_unclipped), rel=1e-6
    )
    # wrong readings give other numbers: MAX = 1 (MONAI's max_val) is 8.0 dB above PSNR_HAND, 1 / N moments
    # give SSIM 0.5565 instead of 0.5560 (far beyond the 1e-6 relative tolerance of test_hand_values)


def test_per_case_and_perfect_case():
    pred = torch.cat([_case(P), _case(Y)])
    gt = torch.cat([_case(Y), _case(Y)])
    psnr, ssim, mae = compute_paper_psnr(pred, gt), compute_global_ssim(pred, gt), compute_mae_hu(pred, gt)
    assert psnr.shape == ssim.shape == mae.shape == (2, 1)
    assert psnr[1].item() == math.inf and ssim[1].item() == pytest.approx(1.0) and mae[1].item() == 0.0
    assert psnr[0].item() == pytest.approx(PSNR_HAND, rel=1e-6)


def test_cumulative_metrics_like_monai():
    metric = PaperPSNRMetric()
    metric([_case(P)[0]], [_case(Y)[0]])  # a list of channel-first tensors, as from_engine gives
    metric(_case(P), _case(Y))
    assert metric.get_buffer().shape == (2, 1)
    assert metric.aggregate().item() == pytest.approx(PSNR_HAND, rel=1e-6)
    ssim, mae = GlobalSSIMMetric(), MAEHUMetric(hu_window=(0.0, 100.0))
    ssim(_case(P), _case(Y))
    mae(_case(P), _case(Y))
    assert ssim.aggregate().item() == pytest.approx(SSIM_HAND, rel=1e-6)
    assert mae.aggregate().item() == pytest.approx(0.175 * 100.0, rel=1e-6)  # window width 100 HU
    handler = IgniteMetricHandler(metric_fn=GlobalSSIMMetric())  # usable as a MONAI metric handler
    assert handler.metric_fn.data_range == 1.0


@pytest.mark.parametrize(
    "factory,match",
    [
        (lambda: GlobalSSIMMetric(data_range=0), "data_range"),
        (lambda: GlobalSSIMMetric(k2=-1), "k2"),
        (lambda: MAEHUMetric(hu_window=(100.0, 100.0)), "hu_window"),
        (lambda: compute_paper_psnr(torch.zeros(1, 1, 4), torch.zeros(1, 1, 5)), "same shape"),
        (lambda: compute_global_ssim(torch.zeros(1, 1), torch.zeros(1, 1)), "at least 2 voxels"),
    ],
)
def test_ill_arguments(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()

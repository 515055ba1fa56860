# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0

from __future__ import annotations

import numpy as np
import pytest
import torch

from monai.data import DataLoader
from monai.handlers import IgniteMetricHandler, MeanDice, PeakSignalToNoiseRatio, from_engine
from monai.metrics import SSIMMetric
from monai.transforms import AsDiscreted
from xctrs_monai.engines import XCTRSEvaluator, XCTRSKeys
from xctrs_monai.metrics import (
    GlobalSSIMMetric,
    MAEHUMetric,
    PaperPSNRMetric,
    PhysicalHausdorffDistanceMetric,
    PhysicalSurfaceDistanceMetric,
)


N = 16
VAL_DICE = [f"val_dice_C{i}" for i in range(1, 8)]


def test_metrics_wiring(net, fake_items):
    loader = DataLoader(fake_items(2), batch_size=1)
    ct_pair = from_engine([XCTRSKeys.PRED_CT, XCTRSKeys.CT])
    seg_pair = from_engine([XCTRSKeys.PRED_SEG, XCTRSKeys.LABEL])
    evaluator = XCTRSEvaluator(
        device="cpu",
        val_data_loader=loader,
        network=net,
        postprocessing=AsDiscreted(keys=["pred_seg", "label"], argmax=[True, False], to_onehot=8),
        key_val_metric={"val_mean_dice": MeanDice(include_background=False, output_transform=seg_pair)},
        additional_metrics={
            "val_psnr": PeakSignalToNoiseRatio(max_val=1.0, output_transform=ct_pair),
            "val_ssim": IgniteMetricHandler(
                metric_fn=SSIMMetric(spatial_dims=3, data_range=1.0), output_transform=ct_pair
            ),
            "val_dice": MeanDice(include_background=False, reduction="mean_batch", return_with_label=VAL_DICE,
                                 output_transform=seg_pair),
        },
    )
    evaluator.run()
    metrics = evaluator.state.metrics
    for key in ("val_mean_dice", "val_psnr", "val_ssim", *VAL_DICE):
        assert isinstance(metrics[key], float), key
    assert 0.0 <= metrics["val_mean_dice"] <= 1.0 and -1.0 <= metrics["val_ssim"] <= 1.0
    assert metrics["val_mean_dice"] == pytest.approx(sum(metrics[k] for k in VAL_DICE) / 7, abs=1e-3)
    details = evaluator.state.metric_details
    assert details["val_dice"].shape == (2, 7) and details["val_psnr"].shape == (2, 1)
    item = evaluator.state.output[0]
    assert item[XCTRSKeys.PRED_CT].shape == (1, N, N, N)
    assert item[XCTRSKeys.PRED_SEG].shape == (8, N, N, N)  # one-hot after postprocessing
    assert torch.equal(item[XCTRSKeys.PRED][0:1], item[XCTRSKeys.PRED_CT])


def test_without_targets(net, fake_items):
    items = [{k: v for k, v in it.items() if k.startswith("xray")} for it in fake_items(1)]
    evaluator = XCTRSEvaluator(device="cpu", val_data_loader=DataLoader(items, batch_size=1), network=net)
    evaluator.run()
    item = evaluator.state.output[0]
    assert XCTRSKeys.CT not in item and XCTRSKeys.LABEL not in item
    assert item[XCTRSKeys.PRED].shape == (9, N, N, N)


# --- metrics against independently computed values on a known case (issue 11, item 3) ---

SPACING = (2.0, 1.0, 0.5)


def _known_labels() -> torch.Tensor:
    """Ground truth C1, C2, C3 as 3^3 cubes; nothing of C4..C7."""
    lab = torch.zeros(N, N, N)
    lab[2:5, 2:5, 2:5] = 1
    lab[8:11, 2:5, 2:5] = 2
    lab[12:15, 10:13, 10:13] = 3
    return lab


def _known_prediction_labels() -> torch.Tensor:
    """C1 moved by +1 voxel along x, C2 exact, C3 missed, C4 predicted where the truth has none."""
    lab = torch.zeros(N, N, N)
    lab[3:6, 2:5, 2:5] = 1
    lab[8:11, 2:5, 2:5] = 2
    lab[2:4, 12:14, 12:14] = 4
    return lab


class _KnownNetwork(torch.nn.Module):
    """Stand-in for XCTRSNet: returns a fixed reconstruction and segmentation per case (the case index is the AP
    radiograph's value), B2NN -> B9NNN."""

    def __init__(self, cts: list[torch.Tensor]) -> None:
        super().__init__()
        self.cts = cts
        self.seg = torch.nn.functional.one_hot(_known_prediction_labels().long(), 8).movedim(-1, 0).float() * 5.0

    def forward(self, xray: torch.Tensor) -> torch.Tensor:
        cases = [int(round(v)) for v in xray[:, 0, 0, 0].tolist()]
        return torch.stack([torch.cat([self.cts[i][None], self.seg]) for i in cases])


def _psnr_eq18(pred: np.ndarray, gt: np.ndarray) -> float:
    mse = np.mean((np.clip(pred, 0, 1) - gt) ** 2)
    return 10 * np.log10(gt.max() ** 2 / mse)


def _ssim_eq17(pred: np.ndarray, gt: np.ndarray) -> float:
    x, y = np.clip(pred, 0, 1).ravel(), gt.ravel()
    cov = np.cov(x, y)  # unbiased (N - 1), as Wang et al. (2004)
    c1, c2 = 0.01**2, 0.03**2
    return ((2 * x.mean() * y.mean() + c1) * (2 * cov[0, 1] + c2)) / (
        (x.mean() ** 2 + y.mean() ** 2 + c1) * (cov[0, 0] + cov[1, 1] + c2)
    )


def test_metrics_against_independent_values():
    gen = torch.Generator().manual_seed(3)
    gts = [torch.rand(N, N, N, generator=gen) * 0.8 for _ in range(2)]  # maxima below 1: Eq. 18 != MONAI PSNR
    preds = [gt + 0.3 * torch.randn(N, N, N, generator=gen) for gt in gts]  # leaves [0, 1]: clipping matters
    items = [
        {"xray_ap": torch.full((1, N, N), float(i)), "xray_la": torch.zeros(1, N, N), "image": gts[i][None],
         "label": _known_labels()[None], "case_id": f"case_{i}"}
        for i in range(2)
    ]
    ct_pair = from_engine([XCTRSKeys.PRED_CT, XCTRSKeys.CT])
    seg_pair = from_engine([XCTRSKeys.PRED_SEG, XCTRSKeys.LABEL])

    def on_ct(metric):
        return IgniteMetricHandler(metric_fn=metric, output_transform=ct_pair)

    def on_seg(metric):
        return IgniteMetricHandler(metric_fn=metric, output_transform=seg_pair)

    evaluator = XCTRSEvaluator(
        device="cpu",
        val_data_loader=DataLoader(items, batch_size=1),
        network=_KnownNetwork(preds),
        postprocessing=AsDiscreted(keys=["pred_seg", "label"], argmax=[True, False], to_onehot=8),
        key_val_metric={"val_mean_dice": MeanDice(include_background=False, output_transform=seg_pair)},
        additional_metrics={
            "val_psnr_eq18": on_ct(PaperPSNRMetric()),
            "val_psnr": PeakSignalToNoiseRatio(max_val=1.0, output_transform=ct_pair),
            "val_ssim_eq17": on_ct(GlobalSSIMMetric()),
            "val_ssim": on_ct(SSIMMetric(spatial_dims=3, data_range=1.0)),
            "val_mae_hu": on_ct(MAEHUMetric()),
            "val_dice": MeanDice(include_background=False, reduction="mean_batch", output_transform=seg_pair),
            "val_hd95": on_seg(PhysicalHausdorffDistanceMetric(spacing=SPACING)),
            "val_assd": on_seg(PhysicalSurfaceDistanceMetric(spacing=SPACING)),
        },
    )
    evaluator.run()
    details = evaluator.state.metric_details
    p_np, g_np = [p.numpy().astype(np.float64) for p in preds], [g.numpy().astype(np.float64) for g in gts]
    # float32 network output and metric results against float64 numpy: 1e-5 relative
    psnr = [_psnr_eq18(p, g) for p, g in zip(p_np, g_np)]
    assert details["val_psnr_eq18"].flatten().tolist() == pytest.approx(psnr, rel=1e-5)
    monai_psnr = [10 * np.log10(1.0 / np.mean((np.clip(p, 0, 1) - g) ** 2)) for p, g in zip(p_np, g_np)]
    assert details["val_psnr"].flatten().tolist() == pytest.approx(monai_psnr, rel=1e-5)
    ssim = [_ssim_eq17(p, g) for p, g in zip(p_np, g_np)]
    assert details["val_ssim_eq17"].flatten().tolist() == pytest.approx(ssim, rel=1e-5)
    mae = [np.mean(np.abs(np.clip(p, 0, 1) - g)) * 3000.0 for p, g in zip(p_np, g_np)]
    assert details["val_mae_hu"].flatten().tolist() == pytest.approx(mae, rel=1e-5)
    # the windowed SSIM sees the clipped prediction too
    clipped = torch.stack([p.clamp(0, 1)[None] for p in preds])
    windowed = SSIMMetric(spatial_dims=3, data_range=1.0)(clipped, torch.stack([g[None] for g in gts]))
    assert details["val_ssim"].flatten().tolist() == pytest.approx(windowed.flatten().tolist(), rel=1e-5)
    assert evaluator.state.output[0][XCTRSKeys.PRED_CT].max() <= 1.0 < evaluator.state.output[0][XCTRSKeys.PRED].max()

    # segmentation, per vertebra C1..C7, identical for both cases (hand values; see tests/metrics)
    nan = float("nan")
    dice_hand = [2 * 18 / 54, 1.0, 0.0, nan, nan, nan, nan]  # C1: 18 of 27 voxels overlap after the shift
    diagonal = float(np.sqrt((N * 2.0) ** 2 + (N * 1.0) ** 2 + (N * 0.5) ** 2))  # C3 missed: the worst case
    hd95_hand = [2.0, 0.0, diagonal, nan, nan, nan, nan]
    assd_hand = [2 * (9 * 2.0 + 0.5) / 52, 0.0, diagonal, nan, nan, nan, nan]
    for name, hand in (("val_dice", dice_hand), ("val_hd95", hd95_hand), ("val_assd", assd_hand)):
        for case in details[name].tolist():
            assert case == pytest.approx(hand, rel=1e-5, nan_ok=True), name  # float32 rounding
    assert evaluator.state.metrics["val_mean_dice"] == pytest.approx((2 / 3 + 1.0 + 0.0) / 3, rel=1e-5)


def test_ct_range():
    with pytest.raises(ValueError, match="ct_range"):
        XCTRSEvaluator(device="cpu", val_data_loader=[], network=torch.nn.Identity(), ct_range=(1.0, 0.0))

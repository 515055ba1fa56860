# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0

from __future__ import annotations

import pytest
import torch

from monai.data import DataLoader
from monai.handlers import IgniteMetricHandler, MeanDice, PeakSignalToNoiseRatio, from_engine
from monai.metrics import SSIMMetric
from monai.transforms import AsDiscreted
from xctrs_monai.engines import XCTRSEvaluator, XCTRSKeys


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

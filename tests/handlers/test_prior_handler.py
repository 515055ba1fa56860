# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""The prior's evaluator runs once, beside the model's, with the same metrics on the same cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ignite.engine import Events

from monai.data import DataLoader
from monai.handlers import IgniteMetricHandler, MeanDice, from_engine
from monai.transforms import AsDiscreted
from xctrs_monai.engines import XCTRSEvaluator, XCTRSKeys
from xctrs_monai.handlers import MetricsTableHandler, XrayBlindPriorHandler
from xctrs_monai.metrics import PaperPSNRMetric, XrayBlindPrior

N = 8


def _items(n: int, seed: int) -> list[dict]:
    gen = torch.Generator().manual_seed(seed)
    items = []
    for i in range(n):
        label = torch.zeros(1, N, N, N)
        label[0, 1 + i : 4 + i, 2:5, 2:5] = 1  # C1 moves along x from case to case
        items.append(
            {
                "xray_ap": torch.rand(1, N, N, generator=gen),
                "xray_la": torch.rand(1, N, N, generator=gen),
                "image": torch.rand(1, N, N, N, generator=gen) * 0.9,
                "label": label,
                "case_id": f"case_{i}",
            }
        )
    return items


def _evaluator(loader, network) -> XCTRSEvaluator:
    ct_pair = from_engine([XCTRSKeys.PRED_CT, XCTRSKeys.CT])
    seg_pair = from_engine([XCTRSKeys.PRED_SEG, XCTRSKeys.LABEL])
    return XCTRSEvaluator(
        device="cpu",
        val_data_loader=loader,
        network=network,
        postprocessing=AsDiscreted(keys=["pred_seg", "label"], argmax=[True, False], to_onehot=8),
        key_val_metric={"val_psnr_eq18": IgniteMetricHandler(metric_fn=PaperPSNRMetric(), output_transform=ct_pair)},
        additional_metrics={
            "val_dice": MeanDice(include_background=False, reduction="mean_batch", output_transform=seg_pair)
        },
    )


class _Zero(torch.nn.Module):
    def forward(self, xray):
        return torch.zeros(xray.shape[0], 9, N, N, N)


def test_prior_beside_model(tmp_path):
    train, held_out = _items(3, seed=0), _items(2, seed=1)
    prior = XrayBlindPrior.fit([(it["image"], it["label"]) for it in train])
    loader = DataLoader(held_out, batch_size=1)
    model_eval, prior_eval = _evaluator(loader, _Zero()), _evaluator(loader, prior)
    runs = []
    prior_eval.add_event_handler(Events.STARTED, lambda e: runs.append(1))
    XrayBlindPriorHandler(prior_eval).attach(model_eval)
    table = MetricsTableHandler(output_dir=str(tmp_path))
    table.attach(model_eval)
    model_eval.run()
    model_eval.run()  # a second validation epoch reuses the prior's figures
    assert len(runs) == 1

    # independent: the mean of the 3 training CTs, scored with Eq. 18 against each held-out case
    mean_ct = np.mean([it["image"].numpy() for it in train], axis=0).astype(np.float64)
    psnr = [
        10 * np.log10(it["image"].numpy().max() ** 2 / np.mean((mean_ct - it["image"].numpy()) ** 2)) for it in held_out
    ]
    # float32 inputs and results: 1e-5 relative
    assert model_eval.state.metrics["prior_val_psnr_eq18"] == pytest.approx(np.mean(psnr), rel=1e-5)
    assert model_eval.state.metric_details["prior_val_psnr_eq18"].flatten().tolist() == pytest.approx(psnr, rel=1e-5)
    # C1 of the training cases starts at x = 1, 2, 3 (3 voxels each): votes 1,2,3,2,1 along x 1..5 -> the
    # volume vote (3 columns, the mean C1 size) is x 2..4, as the majority (>= 2 of 3) would be; held-out
    # cases at x 1..3 and 2..4: Dice 2*18/54 and 1
    dice = model_eval.state.metric_details["prior_val_dice"][:, 0].tolist()
    assert dice == pytest.approx([2 * 18 / 54, 1.0], rel=1e-5)
    assert "prior_val_psnr_eq18" in model_eval.state.metrics and "val_psnr_eq18" in model_eval.state.metrics
    assert table.table["rows"] == ["prior", "model", "gain"]
    assert [c["prior"]["PSNR (Eq. 18, dB)"] for c in table.table["cases"]] == pytest.approx(psnr, rel=1e-5)


def test_prior_needs_the_same_loader():
    items = _items(1, seed=0)
    model_eval = _evaluator(DataLoader(items, batch_size=1), _Zero())
    prior = XrayBlindPrior.fit([(it["image"], it["label"]) for it in items])
    XrayBlindPriorHandler(_evaluator(DataLoader(items, batch_size=1), prior)).attach(model_eval)
    with pytest.raises(ValueError, match="same cases in the same order"):
        model_eval.run()
    with pytest.raises(ValueError, match="prefix"):
        XrayBlindPriorHandler(model_eval, prefix="")

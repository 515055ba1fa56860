# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""End-to-end bundle runs on 16^3 phantoms: training with checkpoints, then the evaluation table."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.filterwarnings("ignore")

CONFIGS = Path(__file__).resolve().parents[2] / "bundle" / "configs"
TRAIN = str(CONFIGS / "train.json")
EVALUATE = str(CONFIGS / "evaluate.json")


def test_train_then_evaluate(tmp_path, tiny_config, run_workflow):
    override = tiny_config()
    train = run_workflow([TRAIN, override], run_id="training")
    trainer = train.parser.get_parsed_content("train#trainer")
    assert trainer.state.epoch == 1 and trainer.state.iteration == 2
    ckpt_dir = tmp_path / "bundle" / "models"
    assert sorted(os.listdir(ckpt_dir)) == ["checkpoint_epoch=1.pt", "model.pt"]

    # model.pt is the plain XCTRSNet state dict the inference config loads
    net = train.parser.get_parsed_content("network_def", instantiate=True)
    net.load_state_dict(torch.load(ckpt_dir / "model.pt", weights_only=True))
    resumable = torch.load(ckpt_dir / "checkpoint_epoch=1.pt", weights_only=True)
    assert set(resumable) == {"network", "optimizer", "trainer", "scaler", "model_saver", "checkpointer"}
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(tmp_path / "bundle" / "runs"))
    metrics = train.parser.get_parsed_content("validate#evaluator").state.metrics
    for key in ("val_psnr", "val_ssim", "val_mean_dice", *[f"val_dice_C{i}" for i in range(1, 8)]):
        assert key in metrics, key
    assert "train_epoch_loss_rsc_div" in trainer.state.metrics

    run_workflow([TRAIN, EVALUATE, override])
    out_dir = tmp_path / "bundle" / "eval"
    with open(out_dir / "metrics.csv") as f:
        rows = list(csv.reader(f))
    columns = ["SSIM", "PSNR", "C1", "C2", "C3", "C4", "C5", "C6", "C7", "Mean Dice"]
    assert rows[0] == ["case", *columns]
    assert [r[0] for r in rows[-2:]] == ["mean", "std"] and len(rows) == 1 + 2 + 2  # 2 validation cases
    table = json.loads((out_dir / "metrics.json").read_text())
    assert table["columns"] == columns
    assert table["summary"]["PSNR"]["mean"] == pytest.approx(metrics["val_psnr"], rel=1e-4)

# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""End-to-end bundle runs on 16^3 phantoms: training with checkpoints, evaluation table, resume."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
import torch

from monai.bundle import ConfigWorkflow

pytestmark = pytest.mark.filterwarnings("ignore")

CONFIGS = Path(__file__).resolve().parents[2] / "bundle" / "configs"
TRAIN = str(CONFIGS / "train.json")
EVALUATE = str(CONFIGS / "evaluate.json")
META = str(CONFIGS / "metadata.json")


def _run(config_files: list[str], run_id: str = "run") -> ConfigWorkflow:
    workflow = ConfigWorkflow(config_file=config_files, meta_file=META, logging_file=False, run_id=run_id,
                              workflow_type=None)
    workflow.initialize()
    workflow.run()
    workflow.finalize()
    return workflow


def test_train_then_evaluate(tmp_path, tiny_config):
    override = tiny_config()
    train = _run([TRAIN, override], run_id="training")
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

    _run([TRAIN, EVALUATE, override])
    out_dir = tmp_path / "bundle" / "eval"
    with open(out_dir / "metrics.csv") as f:
        rows = list(csv.reader(f))
    columns = ["SSIM", "PSNR", "C1", "C2", "C3", "C4", "C5", "C6", "C7", "Mean Dice"]
    assert rows[0] == ["case", *columns]
    assert [r[0] for r in rows[-2:]] == ["mean", "std"] and len(rows) == 1 + 2 + 2  # 2 validation cases
    table = json.loads((out_dir / "metrics.json").read_text())
    assert table["columns"] == columns
    assert table["summary"]["PSNR"]["mean"] == pytest.approx(metrics["val_psnr"], rel=1e-4)


def test_resume_continues_epoch_and_optimizer(tmp_path, tiny_config):
    first = _run([TRAIN, tiny_config(epochs=1)], run_id="training")
    opt_state = first.parser.get_parsed_content("optimizer").state_dict()["state"]
    assert {int(s["step"]) for s in opt_state.values()} == {2}

    second = _run([TRAIN, tiny_config(epochs=2)], run_id="training")
    trainer = second.parser.get_parsed_content("train#trainer")
    assert trainer.state.epoch == 2 and trainer.state.iteration == 4  # continued, not restarted
    opt_state = second.parser.get_parsed_content("optimizer").state_dict()["state"]
    assert {int(s["step"]) for s in opt_state.values()} == {4}  # Adam moments carried over
    assert sorted(os.listdir(tmp_path / "bundle" / "models")) == ["checkpoint_epoch=2.pt", "model.pt"]

    fresh = _run([TRAIN, tiny_config(epochs=1, resume=False, bundle_root=str(tmp_path / "fresh"))], run_id="training")
    assert fresh.parser.get_parsed_content("train#trainer").state.iteration == 2

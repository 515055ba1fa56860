# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""multi_gpu_train.json on CPU: two processes with torchrun (gloo backend), DDP, DistributedSampler."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

CONFIGS = Path(__file__).resolve().parents[2] / "bundle" / "configs"


@pytest.mark.slow
def test_two_process_ddp_training(tmp_path, tiny_config):
    override = tiny_config(epochs=2)
    configs = [str(CONFIGS / "train.json"), str(CONFIGS / "multi_gpu_train.json"), override]
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "monai.bundle", "run", "training", "--config_file", str(configs),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    ckpt_dir = tmp_path / "bundle" / "models"
    assert sorted(os.listdir(ckpt_dir)) == ["checkpoint_epoch=2.pt", "model.pt"]  # saved once, by rank 0
    ckpt = torch.load(ckpt_dir / "checkpoint_epoch=2.pt", weights_only=True)
    # 2 training cases split over 2 ranks: 1 iteration per epoch on each rank
    assert ckpt["trainer"]["epoch_length"] == 1 and ckpt["trainer"]["iteration"] == 2
    assert not any(k.startswith("module.") for k in ckpt["network"])  # DDP wrapper not in the weights
    model = torch.load(ckpt_dir / "model.pt", weights_only=True)
    assert set(model) == set(ckpt["network"])
    log = proc.stdout + proc.stderr
    assert log.count("Epoch[2] Metrics -- prior_val_dice_C1") == 1  # only rank 0 logs (the prior sorts first)

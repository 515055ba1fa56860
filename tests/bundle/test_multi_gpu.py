# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""multi_gpu_train.json on CPU: two processes with torchrun (gloo backend), DDP, DistributedSampler.

Written to pass on a loaded machine: the rendezvous store binds a port the OS picks at run time (torchrun's
``--standalone``: ``localhost:0``), its timeouts are minutes instead of torchrun's 60 s store reads and 15 s
of missed heartbeats, and a launch that fails in the rendezvous itself (before any worker trained) is retried;
a failure of the training is never retried.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

CONFIGS = Path(__file__).resolve().parents[2] / "bundle" / "configs"
# generous, for a machine whose cores are shared with other jobs
RDZV_CONF = "read_timeout=600,join_timeout=1200,close_timeout=600,heartbeat_timeout=600," \
            "keep_alive_interval=30,keep_alive_max_attempt=20"
RENDEZVOUS_FAILURE = re.compile(
    r"Rendezvous\w*Error|DistStoreError|DistNetworkError|EADDRINUSE|Address already in use"
)


def _torchrun(override: str, cwd: Path) -> subprocess.CompletedProcess:
    configs = [str(CONFIGS / "train.json"), str(CONFIGS / "multi_gpu_train.json"), override]
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "--max-restarts=0",
        f"--rdzv-conf={RDZV_CONF}", "-m", "monai.bundle", "run", "training", "--config_file", str(configs),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)


@pytest.mark.slow
def test_two_process_ddp_training(tmp_path, tiny_config):
    for attempt in range(3):
        bundle_root = tmp_path / f"attempt{attempt}"
        proc = _torchrun(tiny_config(epochs=2, bundle_root=str(bundle_root)), tmp_path)
        log = proc.stdout + proc.stderr
        started = (bundle_root / "models").exists()
        if proc.returncode == 0 or started or not RENDEZVOUS_FAILURE.search(log):
            break
    assert proc.returncode == 0, log[-6000:]

    ckpt_dir = bundle_root / "models"
    # saved once, by rank 0; the two newest interval checkpoints are kept
    assert sorted(os.listdir(ckpt_dir)) == ["checkpoint_epoch=1.pt", "checkpoint_epoch=2.pt", "model.pt"]
    ckpt = torch.load(ckpt_dir / "checkpoint_epoch=2.pt", weights_only=True)
    # 2 training cases split over 2 ranks: 1 iteration per epoch on each rank
    assert ckpt["trainer"]["epoch_length"] == 1 and ckpt["trainer"]["iteration"] == 2
    assert not any(k.startswith("module.") for k in ckpt["network"])  # DDP wrapper not in the weights
    model = torch.load(ckpt_dir / "model.pt", weights_only=True)
    assert set(model) == set(ckpt["network"])
    assert log.count("Epoch[2] Metrics -- prior_val_dice_C1") == 1  # only rank 0 logs (the prior sorts first)

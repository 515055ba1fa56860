# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Training that survives a kill: resume restores everything, and a killed run ends where an uninterrupted one does.

Both comparisons are exact (``torch.equal``), not within a tolerance: the runs execute the same CPU kernels
on the same data, and ``EpochSeedHandler`` makes the random draws of an epoch (shuffling, 3D augmentation,
radiograph appearance) a function of the seed and the epoch only, so the epochs a resumed run replays are
the very epochs the uninterrupted run computed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.filterwarnings("ignore")

REPO = Path(__file__).resolve().parents[2]
TRAIN = str(REPO / "bundle" / "configs" / "train.json")
# amp in float16: a GradScaler with a state to restore, also on CPU (bf16 needs none); warm-up over 2 epochs:
# epoch 2 has other loss weights
RESUME_CASE = {"amp": True, "amp_dtype": "$torch.float16", "warmup_epochs": 2}


def _tensors_equal(a, b) -> bool:
    """Exact equality of two nested structures of tensors, numbers and strings."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_tensors_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_tensors_equal(x, y) for x, y in zip(a, b))
    return a == b


def test_resume_restores_network_optimizer_scaler_and_schedule(tmp_path, tiny_config, run_workflow):
    full = run_workflow([TRAIN, tiny_config(epochs=2, bundle_root=str(tmp_path / "full"), **RESUME_CASE)], "training")
    run_workflow([TRAIN, tiny_config(epochs=1, bundle_root=str(tmp_path / "resumed"), **RESUME_CASE)], "training")
    resumed = run_workflow([TRAIN, tiny_config(epochs=2, bundle_root=str(tmp_path / "resumed"), **RESUME_CASE)],
                           "training")
    parts = {}
    for name, workflow in (("full", full), ("resumed", resumed)):
        trainer = workflow.parser.get_parsed_content("train#trainer")
        parts[name] = {
            "counters": (trainer.state.epoch, trainer.state.iteration),
            "network": workflow.parser.get_parsed_content("network").state_dict(),
            "optimizer": workflow.parser.get_parsed_content("optimizer").state_dict(),
            "scaler": trainer.scaler.state_dict(),
            "loss_weights": trainer.state.loss_weights,  # the schedule's values in the last epoch
            "metrics": workflow.parser.get_parsed_content("validate#evaluator").state.metrics,
        }
    full_parts, resumed_parts = parts["full"], parts["resumed"]
    assert resumed_parts["counters"] == full_parts["counters"] == (2, 4)  # continued, not restarted
    for key in ("network", "optimizer", "scaler", "loss_weights", "metrics"):
        assert _tensors_equal(resumed_parts[key], full_parts[key]), key
    # the compared states are not trivial: the first float16 step overflowed at the initial scale 2^16 and
    # was skipped (scale halved), the 3 others ran; Adam moments after 3 steps; the schedule half-way
    assert resumed_parts["scaler"]["scale"] == 2.0**15 and resumed_parts["scaler"]["_growth_tracker"] == 3
    assert {int(s["step"]) for s in resumed_parts["optimizer"]["state"].values()} == {3}
    assert resumed_parts["loss_weights"] == {"seg": 0.5, "rsc_div": 0.5}
    ckpt_dir = tmp_path / "resumed" / "models"
    assert sorted(os.listdir(ckpt_dir)) == ["checkpoint_epoch=1.pt", "checkpoint_epoch=2.pt", "model.pt"]
    best = torch.load(ckpt_dir / "checkpoint_epoch=2.pt", weights_only=True)["model_saver"]["_saved"]
    assert [name for _, name in best] == ["model.pt"]  # the best-model record travels with the checkpoint

    # --resume false ignores the checkpoints there
    again = run_workflow([TRAIN, tiny_config(epochs=1, bundle_root=str(tmp_path / "full"), resume=False)], "training")
    trainer = again.parser.get_parsed_content("train#trainer")
    assert (trainer.state.epoch, trainer.state.iteration) == (1, 2)


def _command(override: str) -> list[str]:
    configs = [TRAIN, override]
    return [sys.executable, "-m", "monai.bundle", "run", "training", "--config_file", str(configs)]


def _env() -> dict:
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": path,
            "PYTHONUNBUFFERED": "1"}


def _epoch_metrics(log: str, epoch: int) -> str:
    lines = [m for m in re.findall(rf"Epoch\[{epoch}\] Metrics -- (.*)", log) if "val_mean_dice" in m]
    assert lines, log[-3000:]
    return lines[-1]


@pytest.mark.slow
def test_kill_mid_epoch_then_resume_equals_uninterrupted(tmp_path, tiny_config):
    """``kill -9`` during epoch 2, the same command again: it ends with the uninterrupted run's weights and metrics."""
    uninterrupted = tiny_config(epochs=2, bundle_root=str(tmp_path / "uninterrupted"))
    proc = subprocess.run(_command(uninterrupted), cwd=tmp_path, env=_env(), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    reference_log = proc.stdout + proc.stderr

    killed = tiny_config(epochs=2, bundle_root=str(tmp_path / "killed"))
    # the test's only addition: after iteration 3 (epoch 2 of 2 iterations each) the run signals and blocks,
    # so the kill lands mid-epoch whatever the machine's load
    marker = tmp_path / "mid_epoch_2"
    hang = (f"$@train#trainer.add_event_handler(ignite.engine.Events.ITERATION_COMPLETED(once=3), "
            f"lambda e: open('{marker}', 'w').close() or time.sleep(600))")
    train = json.loads(Path(TRAIN).read_text())
    hanging = tmp_path / "hang.json"
    hanging.write_text(json.dumps({"imports": [*train["imports"], "$import time"], "run": [hang, *train["run"]]}))
    victim = subprocess.Popen(_command(killed)[:-1] + [str([TRAIN, killed, str(hanging)])], cwd=tmp_path,
                              env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600  # generous: start-up alone can take a minute on a loaded machine
    while not marker.exists():
        assert victim.poll() is None, "the run ended before epoch 2"
        assert time.monotonic() < deadline, "the run did not reach epoch 2"
        time.sleep(0.2)
    ckpt_dir = tmp_path / "killed" / "models"
    assert sorted(os.listdir(ckpt_dir)) == ["checkpoint_epoch=1.pt", "model.pt"]
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=60)

    proc = subprocess.run(_command(killed), cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    assert f"Restored all variables from {ckpt_dir / 'checkpoint_epoch=1.pt'}" in log  # one epoch lost, no more
    assert _epoch_metrics(log, 2) == _epoch_metrics(reference_log, 2)
    reference_dir = tmp_path / "uninterrupted" / "models"
    for name in ("checkpoint_epoch=2.pt", "model.pt"):
        got = torch.load(ckpt_dir / name, weights_only=True)
        expected = torch.load(reference_dir / name, weights_only=True)
        assert _tensors_equal(got, expected), name

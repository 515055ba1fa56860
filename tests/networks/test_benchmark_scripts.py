# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""The compute benchmarks' argument handling and scripts/gpu_check.sh's logic that runs without a GPU."""

from __future__ import annotations

import re
import runpy
import subprocess
from pathlib import Path

import pytest
import torch

from xctrs_monai.networks import SpaDRNet

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


@pytest.fixture(scope="module")
def networks_script():
    return runpy.run_path(str(SCRIPTS / "benchmark_networks.py"))


@pytest.fixture(scope="module")
def training_script():
    return runpy.run_path(str(SCRIPTS / "benchmark_training.py"))


def test_count_matches_the_network(networks_script):
    counted = networks_script["count"]("SpaDRNet", 16)
    assert counted["params"] == sum(p.numel() for p in SpaDRNet(img_size=16).parameters())
    assert counted["flops"] > 0


def test_latency_cases_and_errors(networks_script):
    latency = networks_script["latency"]
    result = latency("MulSISNet", 16, precision="bf16", channels_last=True, runs=1, warmup=0)
    assert result["latency_s"] > 0 and result["cuda_max_allocated_mib"] is None
    with pytest.raises(ValueError, match="fp64"):
        latency("MulSISNet", 16, precision="fp64")
    with pytest.raises(ValueError, match="runs=0"):
        latency("MulSISNet", 16, runs=0)
    with pytest.raises(ValueError, match="UNet"):
        networks_script["main"](img_size=16, networks="UNet", timed=False)


def test_training_switches(training_script):
    switches = training_script["_switches"]
    assert switches("on,off") == [True, False] and switches(None) == [None] and switches(False) == [False]
    with pytest.raises(ValueError, match="maybe"):
        switches("on,maybe")
    with pytest.raises(ValueError, match="fp64"):
        training_script["measure"]("quick", precision="fp64")


def test_gpu_check_dry_run_fits_the_time_budget():
    proc = subprocess.run(["bash", str(SCRIPTS / "gpu_check.sh"), "--dry-run"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    steps = re.findall(r"^  (\S+)\s+<=\s+(\d+)s\s+(.*)$", proc.stdout, flags=re.M)
    assert [s[0] for s in steps] == [
        "networks",
        "training",
        "training_channels_last",
        "inference",
        "inference_channels_last",
    ]
    assert all("--device cuda" in cmd for _, _, cmd in steps)
    assert sum(int(limit) for _, limit, _ in steps) <= 470  # 8 minutes minus the checks around the steps


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour without a GPU")
def test_gpu_check_fails_fast_without_gpu(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(
        ["bash", str(SCRIPTS / "gpu_check.sh"), str(out)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert "no CUDA GPU" in proc.stderr and "nothing was measured" in proc.stderr
    assert not out.exists()  # nothing was started


def test_gpu_check_rejects_unknown_options():
    proc = subprocess.run(["bash", str(SCRIPTS / "gpu_check.sh"), "--fast"], capture_output=True, text=True)
    assert proc.returncode == 64 and "--fast" in proc.stderr

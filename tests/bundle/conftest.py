# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monai.bundle import ConfigWorkflow

CONFIGS = Path(__file__).resolve().parents[2] / "bundle" / "configs"

TINY = {
    "img_size": 16,
    "spacing": 8.0,
    "recon_channels": [4, 4, 4, 4],
    "seg_channels": [8, 8, 8, 8],
    "network_def#recon_volume_channels": [2, 2, 2, 2],
    "network_def#seg_num_layers": 4,
    "num_phantoms": 4,
    "num_folds": 2,
    "epochs": 1,
    "num_workers": 0,
    "mv_num_slices": 2,
    "pretrained_vgg": False,
    "warmup_epochs": 1,
}
"""Override for a seconds-long CPU run: 4 phantoms of 16^3 in 2 folds (2 training iterations per epoch)."""


@pytest.fixture(scope="session")
def phantom_dir(tmp_path_factory) -> str:
    """One tiny phantom dataset for the whole session (written on first use by the config itself)."""
    return str(tmp_path_factory.mktemp("phantoms"))


@pytest.fixture
def tiny_config(tmp_path, phantom_dir):
    """Write the tiny override into ``tmp_path`` with all outputs under ``tmp_path/bundle``; returns a factory."""

    def _write(**extra) -> str:
        override = {**TINY, "bundle_root": str(tmp_path / "bundle"), "dataset_dir": phantom_dir, **extra}
        path = tmp_path / f"tiny_{len(list(tmp_path.glob('tiny_*.json')))}.json"
        path.write_text(json.dumps(override))
        return str(path)

    return _write


@pytest.fixture
def run_workflow():
    """Run a bundle workflow in this process (initialize, run, finalize); returns the ``ConfigWorkflow``."""

    def _run(config_files: list[str], run_id: str = "run") -> ConfigWorkflow:
        workflow = ConfigWorkflow(config_file=config_files, meta_file=str(CONFIGS / "metadata.json"),
                                  logging_file=False, run_id=run_id, workflow_type=None)
        workflow.initialize()
        workflow.run()
        workflow.finalize()
        return workflow

    return _run

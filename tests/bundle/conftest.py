# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0

from __future__ import annotations

import json

import pytest

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

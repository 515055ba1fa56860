# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Handlers for X-CTRSNet training (Ge et al., 2021): loss terms, weight schedules, images, evaluation table."""

from __future__ import annotations

from .checkpoint import AtomicDiskSaver, latest_checkpoint
from .epoch_seed import EpochSeedHandler, epoch_seed
from .image_summary import LABEL_COLOURS, ReconstructionImageHandler, colour_labels, volume_planes
from .loss_terms import LOSS_PREFIX, LossTermsHandler, from_loss_terms
from .metrics_table import (
    VERTEBRAE,
    MetricsTableHandler,
    build_metrics_table,
    format_metrics_table,
    write_metrics_table,
)
from .weight_schedule import LossWeightScheduler, linear_warmup

__all__ = [
    "AtomicDiskSaver",
    "EpochSeedHandler",
    "LABEL_COLOURS",
    "LOSS_PREFIX",
    "VERTEBRAE",
    "LossTermsHandler",
    "LossWeightScheduler",
    "MetricsTableHandler",
    "ReconstructionImageHandler",
    "build_metrics_table",
    "colour_labels",
    "epoch_seed",
    "format_metrics_table",
    "from_loss_terms",
    "latest_checkpoint",
    "linear_warmup",
    "volume_planes",
    "write_metrics_table",
]

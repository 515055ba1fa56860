# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Handlers for X-CTRSNet (Ge et al., 2021): loss terms, weight schedules, images, X-ray-blind prior, metrics table."""

from __future__ import annotations

from .checkpoint import AtomicDiskSaver, latest_checkpoint
from .epoch_seed import EpochSeedHandler, epoch_seed
from .image_summary import LABEL_COLOURS, ReconstructionImageHandler, colour_labels, volume_planes
from .loss_terms import LOSS_PREFIX, LossTermsHandler, from_loss_terms
from .metrics_table import (
    DEFAULT_COLUMNS,
    MetricsTableHandler,
    TableColumn,
    build_metrics_table,
    format_markdown,
    format_metrics_table,
    write_metrics_table,
)
from .prior import PRIOR_PREFIX, XrayBlindPriorHandler
from .weight_schedule import LossWeightScheduler, linear_warmup

__all__ = [
    "AtomicDiskSaver",
    "DEFAULT_COLUMNS",
    "EpochSeedHandler",
    "LABEL_COLOURS",
    "LOSS_PREFIX",
    "PRIOR_PREFIX",
    "LossTermsHandler",
    "LossWeightScheduler",
    "MetricsTableHandler",
    "ReconstructionImageHandler",
    "TableColumn",
    "XrayBlindPriorHandler",
    "build_metrics_table",
    "colour_labels",
    "epoch_seed",
    "format_markdown",
    "format_metrics_table",
    "from_loss_terms",
    "latest_checkpoint",
    "linear_warmup",
    "volume_planes",
    "write_metrics_table",
]

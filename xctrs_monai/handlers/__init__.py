# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Handlers for X-CTRSNet training (Ge et al., 2021): loss terms, weight schedules, images, evaluation table."""

from __future__ import annotations

from .checkpoint import latest_checkpoint
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
    "LABEL_COLOURS",
    "LOSS_PREFIX",
    "VERTEBRAE",
    "LossTermsHandler",
    "LossWeightScheduler",
    "MetricsTableHandler",
    "ReconstructionImageHandler",
    "build_metrics_table",
    "colour_labels",
    "format_metrics_table",
    "from_loss_terms",
    "latest_checkpoint",
    "linear_warmup",
    "volume_planes",
    "write_metrics_table",
]

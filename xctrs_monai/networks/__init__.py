# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Networks of X-CTRSNet (Ge et al., KBS 2021): SpaDRNet, MulSISNet, their coupling and building blocks."""

from __future__ import annotations

from xctrs_monai.networks.blocks import DConv, Down, MultiPathStep, MultiScaleExchange, SeqConv, UConv, Up
from xctrs_monai.networks.memory import checkpoint_call, instance_norm_channels_last_backward_ok, to_channels_last
from xctrs_monai.networks.mulsisnet import MulSISNet
from xctrs_monai.networks.spadrnet import SpaDRNet
from xctrs_monai.networks.view_alignment import align_views
from xctrs_monai.networks.xctrsnet import XCTRSNet

__all__ = [
    "DConv",
    "Down",
    "MulSISNet",
    "MultiPathStep",
    "MultiScaleExchange",
    "SeqConv",
    "SpaDRNet",
    "UConv",
    "Up",
    "XCTRSNet",
    "align_views",
    "checkpoint_call",
    "instance_norm_channels_last_backward_ok",
    "to_channels_last",
]

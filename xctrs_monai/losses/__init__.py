# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Losses of X-CTRSNet (Ge et al., 2021).

Multi-view VGG (Eq. 10), L_R (Eq. 11), L_S (Eq. 15), L_RSC (Eq. 16), the total (Eq. 1) and an optional
projection-consistency term.
"""

from __future__ import annotations

from .multiview_perceptual import PLANES, MultiViewPerceptualLoss, ReconstructionLoss
from .projection import ProjectionConsistencyLoss, unit_to_hu
from .rsc import DIVERGENCE_TARGETS, RSCLoss, segmentation_dice_loss
from .vgg16 import VGG16_LAYERS, VGG16Features
from .xctrs import WEIGHT_KEYS, XCTRSLoss

__all__ = [
    "DIVERGENCE_TARGETS",
    "PLANES",
    "VGG16_LAYERS",
    "WEIGHT_KEYS",
    "MultiViewPerceptualLoss",
    "ProjectionConsistencyLoss",
    "RSCLoss",
    "ReconstructionLoss",
    "VGG16Features",
    "XCTRSLoss",
    "segmentation_dice_loss",
    "unit_to_hu",
]

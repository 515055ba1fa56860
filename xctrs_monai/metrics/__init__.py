# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Evaluation metrics of X-CTRSNet (Ge et al., 2021, Sect. 3.1) and the X-ray-blind prior every table compares with.

PSNR (Eq. 18) and global SSIM (Eq. 17) as the paper defines them, MAE in HU, HD95 and ASSD in mm on MONAI's
surface-distance metrics, and the prior (mean CT and voted labels of the training split).
"""

from __future__ import annotations

from .prior import XrayBlindPrior
from .prior_cache import describe_transform, load_prior_arrays, prior_cache_key, save_prior_arrays
from .reconstruction import (
    GlobalSSIMMetric,
    MAEHUMetric,
    PaperPSNRMetric,
    compute_global_ssim,
    compute_mae_hu,
    compute_paper_psnr,
)
from .segmentation import PhysicalHausdorffDistanceMetric, PhysicalSurfaceDistanceMetric, resolve_missing_classes

__all__ = [
    "GlobalSSIMMetric",
    "MAEHUMetric",
    "PaperPSNRMetric",
    "PhysicalHausdorffDistanceMetric",
    "PhysicalSurfaceDistanceMetric",
    "XrayBlindPrior",
    "compute_global_ssim",
    "compute_mae_hu",
    "compute_paper_psnr",
    "describe_transform",
    "load_prior_arrays",
    "prior_cache_key",
    "resolve_missing_classes",
    "save_prior_arrays",
]

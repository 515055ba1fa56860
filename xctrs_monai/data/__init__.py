# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Data: synthetic cervical-spine phantoms, datalists with folds, preparation of real CT datasets."""

from __future__ import annotations

from .datalist import assign_folds, load_datalist_items, split_by_fold
from .io import save_json, save_nifti, save_png
from .phantom import PHANTOM_VERSION, make_phantom, phantom_affine
from .phantom_dataset import LABEL_NAMES, phantom_case_seed, write_phantom_dataset
from .preview import spine_montage, spread_montage
from .xray_reader import XrayImage, XrayReader
from .prepare import (
    LABEL_PRESETS,
    CaseSkipped,
    SourceCase,
    find_cases,
    load_volume,
    prepare_case,
    prepare_dataset,
    resolve_label_mapping,
)

__all__ = [
    "CaseSkipped",
    "LABEL_NAMES",
    "LABEL_PRESETS",
    "PHANTOM_VERSION",
    "SourceCase",
    "assign_folds",
    "find_cases",
    "load_volume",
    "load_datalist_items",
    "make_phantom",
    "phantom_affine",
    "phantom_case_seed",
    "prepare_case",
    "prepare_dataset",
    "resolve_label_mapping",
    "save_json",
    "save_nifti",
    "save_png",
    "spine_montage",
    "spread_montage",
    "split_by_fold",
    "write_phantom_dataset",
    "XrayImage",
    "XrayReader",
]

# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Atomic file writing for datasets: write to a temporary file in the target folder, then rename.

A reader (or a second run after an interruption) therefore sees either no file or a complete one.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["save_nifti", "save_json", "save_png"]


def _temp_path(path: Path) -> Path:
    """A hidden sibling of ``path`` that keeps its suffixes (nibabel and PIL infer the format from them)."""
    suffixes = "".join(path.suffixes)
    stem = path.name[: len(path.name) - len(suffixes)] if suffixes else path.name
    return path.with_name(f".{stem}.{uuid.uuid4().hex[:8]}.tmp{suffixes}")


def _replace(tmp: Path, path: Path) -> Path:
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def save_nifti(array: np.ndarray, affine: np.ndarray, path: str | os.PathLike) -> Path:
    """Write a NIfTI-1 file atomically with ``affine`` as both qform and sform (code 1, mm).

    Args:
        array: the ``XYZ`` voxel array; its dtype is kept.
        affine: ``4x4`` voxel-to-world (RAS, mm) matrix.
        path: target file, ``.nii`` or ``.nii.gz``.

    Returns:
        the written path.
    """
    import nibabel as nib

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = nib.Nifti1Image(np.asarray(array), np.asarray(affine, dtype=np.float64))
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    img.header.set_xyzt_units("mm")
    tmp = _temp_path(path)
    try:
        nib.save(img, str(tmp))
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return _replace(tmp, path)


def save_json(obj: Any, path: str | os.PathLike) -> Path:
    """Write ``obj`` as indented JSON atomically and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_path(path)
    try:
        tmp.write_text(json.dumps(obj, indent=2) + "\n")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return _replace(tmp, path)


def save_png(rgb: np.ndarray, path: str | os.PathLike) -> Path:
    """Write an ``HW3`` uint8 image as PNG atomically and return the path."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_path(path)
    try:
        Image.fromarray(np.ascontiguousarray(rgb)).save(tmp, optimize=True)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return _replace(tmp, path)

# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Plugging the project's atomic NIfTI writing into MONAI's ``SaveImage``/``SaveImaged``.

Every product of inference goes through :mod:`xctrs_monai.data.io` (temporary file in the target
folder, then rename), so an interrupted run leaves no truncated file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from monai.config import PathLike
from monai.data import FolderLayoutBase, NibabelWriter
from monai.data.utils import to_affine_nd
from monai.utils import convert_data_type, get_equivalent_dtype

from xctrs_monai.data.io import save_nifti

__all__ = ["AtomicNibabelWriter", "CaseFolderLayout"]


class AtomicNibabelWriter(NibabelWriter):
    """:class:`monai.data.NibabelWriter` that saves with the atomic :func:`xctrs_monai.data.io.save_nifti`.

    Use it as ``SaveImage(writer=AtomicNibabelWriter)``, in a config
    ``"writer": "xctrs_monai.apps.writers.AtomicNibabelWriter"``.
    """

    def write(self, filename: PathLike, verbose: bool = False, **kwargs) -> None:
        data = np.asarray(self.data_obj)
        if self.output_dtype is not None:
            data = data.astype(get_equivalent_dtype(self.output_dtype, np.ndarray), copy=False)
        affine = np.eye(4) if self.affine is None else convert_data_type(self.affine, np.ndarray)[0]
        save_nifti(data, to_affine_nd(r=3, affine=affine), filename)


class CaseFolderLayout(FolderLayoutBase):
    """File naming ``output_dir/<case_id>/<name>`` for ``SaveImage(folder_layout=...)``.

    The case id is the ``subject`` that MONAI's default name formatter takes from the image's
    ``filename_or_obj`` metadata (set to the case id by :class:`~xctrs_monai.apps.outputs.SplitPredictiond`).

    Args:
        output_dir: the output root.
        name: the file name inside the case folder, e.g. ``"ct.nii.gz"``.

    Raises:
        ValueError: when ``name`` is not a plain file name.
    """

    def __init__(self, output_dir: PathLike, name: str) -> None:
        if not name or Path(name).name != name:
            raise ValueError(f"name must be a plain file name, got {name!r}.")
        self.output_dir = Path(output_dir)
        self.name = name

    def filename(self, subject: PathLike = "case", **kwargs) -> Path:
        return self.output_dir / Path(str(subject)).name / self.name

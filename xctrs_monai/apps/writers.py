# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Writing each inference case as one unit: a staging folder renamed into place when complete.

Every product of a case (``SaveImaged`` through :class:`CaseFolderLayout`, the preview, the report) is
written into ``<output_dir>/.<case_id>.partial-<pid>/``; :class:`CommitCased`, the last postprocessing
step, renames it to ``<output_dir>/<case_id>/`` (the previous folder of that case is moved aside first and
deleted after). A reader therefore sees a complete case or the previous complete case, never a mix; a
failing rerun leaves the previous case as it was; :func:`clean_stale_cases` removes what a killed run left
(and puts back a previous case moved aside just before the kill). Single files are also written atomically
(:mod:`xctrs_monai.data.io`).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Hashable, Mapping
from pathlib import Path

import numpy as np
from monai.config import PathLike
from monai.data import FolderLayoutBase, NibabelWriter
from monai.data.utils import to_affine_nd
from monai.transforms import MapTransform
from monai.utils import convert_data_type, get_equivalent_dtype

from xctrs_monai.data.io import save_nifti

__all__ = [
    "AtomicNibabelWriter",
    "staging_dir",
    "commit_case",
    "discard_case",
    "clean_stale_cases",
    "CaseFolderLayout",
    "CommitCased",
]

_LEFTOVER = re.compile(r"^\.(?P<case>.+)\.(?P<kind>partial|old)-(?P<pid>\d+)$")


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


def staging_dir(output_dir: PathLike, case_id: str) -> Path:
    """The folder where this process writes case ``case_id`` before :func:`commit_case`."""
    return Path(output_dir) / f".{case_id}.partial-{os.getpid()}"


def commit_case(output_dir: PathLike, case_id: str) -> Path:
    """Rename the staging folder of a complete case to ``output_dir/<case_id>``, replacing the previous one.

    Raises:
        ValueError: when there is nothing staged for the case, or ``output_dir/<case_id>`` is a file.
    """
    staged, final = staging_dir(output_dir, case_id), Path(output_dir) / case_id
    if not staged.is_dir():
        raise ValueError(f"Case '{case_id}' has no staged outputs in '{output_dir}' to commit.")
    if final.exists() and not final.is_dir():
        raise ValueError(f"Cannot write case '{case_id}': '{final}' exists and is a file.")
    old = Path(output_dir) / f".{case_id}.old-{os.getpid()}"
    if final.exists():
        os.replace(final, old)
    os.replace(staged, final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def discard_case(output_dir: PathLike, case_id: str) -> None:
    """Delete the staging folder of a case that failed (the previous complete case stays)."""
    shutil.rmtree(staging_dir(output_dir, case_id), ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # a leftover of an earlier run in this process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_cases(output_dir: PathLike) -> list[str]:
    """Remove the staging folders of runs that no longer exist; restore a previous case moved aside by a
    run killed between the two renames of :func:`commit_case`.

    Returns:
        the names of the folders removed or restored.
    """
    folder = Path(output_dir)
    if not folder.is_dir():
        return []
    cleaned = []
    for entry in sorted(folder.iterdir()):
        match = _LEFTOVER.match(entry.name)
        if not match or not entry.is_dir() or _alive(int(match["pid"])):
            continue
        final = folder / match["case"]
        if match["kind"] == "old" and not final.exists():
            os.replace(entry, final)
        else:
            shutil.rmtree(entry, ignore_errors=True)
        cleaned.append(entry.name)
    return cleaned


class CaseFolderLayout(FolderLayoutBase):
    """File naming ``<staging folder of the case>/<name>`` for ``SaveImage(folder_layout=...)``.

    The case id is the ``subject`` that MONAI's default name formatter takes from the image's
    ``filename_or_obj`` metadata (set to the case id by :class:`~xctrs_monai.apps.outputs.SplitPredictiond`);
    the file lands in :func:`staging_dir` and reaches ``output_dir/<case_id>/<name>`` with :class:`CommitCased`.

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
        return staging_dir(self.output_dir, Path(str(subject)).name) / self.name


class CommitCased(MapTransform):
    """The last postprocessing step: :func:`commit_case` for the case id in ``d[key]``.

    Sets ``d["case_dir"]`` to the committed folder.

    Args:
        keys: the key of the case id. Defaults to ``"case_id"``.
        output_dir: the output root.
        allow_missing_keys: don't raise for a missing key. Defaults to ``False``.
    """

    def __init__(self, keys: str = "case_id", output_dir: PathLike = ".", allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.output_dir = Path(output_dir)

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:
        d = dict(data)
        for key in self.key_iterator(d):
            d["case_dir"] = str(commit_case(self.output_dir, str(d[key])))
        return d

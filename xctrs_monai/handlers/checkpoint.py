# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Checkpoints that survive a kill: writing them so that one always stays loadable, finding the newest one."""

from __future__ import annotations

import glob
import os
import re
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch

from monai.utils import IgniteInfo, min_version, optional_import

idist, _ = optional_import("ignite.distributed", IgniteInfo.OPT_IMPORT_VERSION, min_version)
if TYPE_CHECKING:
    from ignite.handlers import DiskSaver
else:
    DiskSaver, _ = optional_import("ignite.handlers", IgniteInfo.OPT_IMPORT_VERSION, min_version, "DiskSaver")

__all__ = ["AtomicDiskSaver", "latest_checkpoint"]

# the name ``tempfile.NamedTemporaryFile`` gives the file that ``DiskSaver(atomic=True)`` writes before renaming it
_ORPHAN_TEMP = re.compile(r"^tmp[a-z0-9_]{8}$")


class AtomicDiskSaver(DiskSaver):
    """
    ignite's ``DiskSaver`` that never leaves a folder without a loadable checkpoint, even after ``kill -9``.

    ``DiskSaver(atomic=True)`` already writes each file to a temporary file and renames it into place, so a
    file is either complete or absent. But ignite's ``Checkpoint`` deletes the file it replaces *before* it
    writes the new one: with ``n_saved=1``, or a fixed ``filename_pattern`` such as ``"model.pt"``, a kill
    during the write leaves no checkpoint at all. Here ``remove`` only marks the file; it is deleted once the
    next write has completed, and not at all when the new file has the same name (the rename replaced it).
    Temporary files left by a killed write (``tmpXXXXXXXX`` in ``dirname``) are removed when the saver is
    created, on the saving rank.

    Use it as the ``save_handler`` of ``ignite.handlers.Checkpoint``::

        Checkpoint(to_save, AtomicDiskSaver(ckpt_dir), filename_pattern="model.pt", score_function=...)

    Args:
        dirname: folder of the checkpoints.
        create_dir: create ``dirname`` when missing. Defaults to True.
        require_empty: refuse a ``dirname`` that already holds ``.pt`` files. Defaults to False (a resumed
            run writes next to its own checkpoints).
        save_on_rank: the rank that writes in a distributed run. Defaults to 0.
        kwargs: further arguments of ``torch.save``.
    """

    def __init__(
        self,
        dirname: str | os.PathLike,
        create_dir: bool = True,
        require_empty: bool = False,
        save_on_rank: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            dirname, atomic=True, create_dir=create_dir, require_empty=require_empty, save_on_rank=save_on_rank,
            **kwargs,
        )
        self._superseded: list[str] = []
        if idist.get_rank() == save_on_rank:
            for name in os.listdir(self.dirname):
                if _ORPHAN_TEMP.match(name) and os.path.isfile(self.dirname / name):
                    warnings.warn(f"removing '{self.dirname / name}', left by a checkpoint write that was killed.")
                    os.remove(self.dirname / name)

    def __call__(self, checkpoint: Mapping, filename: str, metadata: Mapping | None = None) -> None:
        """Write ``checkpoint`` to ``dirname/filename`` atomically, then delete the files it supersedes."""
        super().__call__(checkpoint, filename, metadata)
        superseded, self._superseded = self._superseded, []
        for name in superseded:
            if name != filename and (self.dirname / name).exists():
                super().remove(name)

    def remove(self, filename: str) -> None:
        """Mark ``filename`` for deletion after the next completed write."""
        self._superseded.append(filename)


def _load_error(path: str) -> str | None:
    """Why ``path`` cannot be loaded as a weights-only checkpoint, or None when it can."""
    try:
        torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated zip, a pickle error, an empty file: all mean "not usable"
        return f"{type(e).__name__}: {e}".splitlines()[0]
    return None


def latest_checkpoint(
    ckpt_dir: str, score_name: str = "epoch", prefix: str = "checkpoint", check: bool = True
) -> str | None:
    """
    The newest loadable checkpoint that an ignite ``Checkpoint`` (or MONAI's ``CheckpointSaver``) wrote in
    ``ckpt_dir``.

    Files are named ``<prefix>_<score_name>=<k>.pt`` (e.g. ``checkpoint_epoch=12.pt``); the one with the largest
    ``k`` that ``torch.load(..., weights_only=True)`` reads is returned. A newer file that cannot be read
    (truncated, corrupted) is skipped with a warning naming it, so training resumes from the previous one
    (keep ``n_saved >= 2``). A bundle config uses it to enable a ``CheckpointLoader`` only when there is
    something to resume from::

        "resume_ckpt": "$xctrs_monai.handlers.latest_checkpoint(@ckpt_dir)",
        {"_target_": "CheckpointLoader", "_disabled_": "$@resume_ckpt is None", "load_path": "@resume_ckpt", ...}

    Args:
        ckpt_dir: folder of the checkpoints; a missing folder means no checkpoint.
        score_name: ``"epoch"`` or ``"iteration"``. Defaults to ``"epoch"``.
        prefix: file prefix. Defaults to ``"checkpoint"``.
        check: load each candidate to check it, newest first. Defaults to True; ``False`` returns the newest
            name without reading it.

    Returns:
        the path of the newest loadable checkpoint, or ``None`` when there is none.

    Raises:
        ValueError: when checkpoints exist but none of them can be loaded (the message lists them and why).
    """
    pattern = re.compile(rf"^{re.escape(prefix)}_{re.escape(score_name)}=(\d+)\.pt$")
    found = []
    for path in glob.glob(os.path.join(glob.escape(ckpt_dir), f"{prefix}_{score_name}=*.pt")):
        match = pattern.match(os.path.basename(path))
        if match:
            found.append((int(match.group(1)), path))
    errors = []
    for _, path in sorted(found, reverse=True):
        error = _load_error(path) if check else None
        if error is None:
            return path
        warnings.warn(f"cannot resume from '{path}' ({error}); trying the previous checkpoint.")
        errors.append(f"'{path}': {error}")
    if errors:
        raise ValueError(
            f"no checkpoint in '{ckpt_dir}' can be loaded ({'; '.join(errors)}); "
            "remove them, or start again with `--resume false`."
        )
    return None

# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Finding the checkpoint to resume training from."""

from __future__ import annotations

import glob
import os
import re

__all__ = ["latest_checkpoint"]


def latest_checkpoint(ckpt_dir: str, score_name: str = "epoch", prefix: str = "checkpoint") -> str | None:
    """
    The newest interval checkpoint that MONAI's ``CheckpointSaver`` wrote in ``ckpt_dir``.

    ``CheckpointSaver(save_interval=N)`` names its files ``<prefix>_<score_name>=<k>.pt``
    (e.g. ``checkpoint_epoch=12.pt``); the one with the largest ``k`` is returned. A bundle config uses it to
    enable a ``CheckpointLoader`` only when there is something to resume from::

        "resume_ckpt": "$xctrs_monai.handlers.latest_checkpoint(@ckpt_dir)",
        {"_target_": "CheckpointLoader", "_disabled_": "$@resume_ckpt is None", "load_path": "@resume_ckpt", ...}

    Args:
        ckpt_dir: folder of the checkpoints; a missing folder means no checkpoint.
        score_name: ``"epoch"`` or ``"iteration"``. Defaults to ``"epoch"``.
        prefix: file prefix. Defaults to ``"checkpoint"``.

    Returns:
        the path of the newest checkpoint, or ``None``.
    """
    pattern = re.compile(rf"^{re.escape(prefix)}_{re.escape(score_name)}=(\d+)\.pt$")
    found = []
    for path in glob.glob(os.path.join(glob.escape(ckpt_dir), f"{prefix}_{score_name}=*.pt")):
        match = pattern.match(os.path.basename(path))
        if match:
            found.append((int(match.group(1)), path))
    return max(found)[1] if found else None

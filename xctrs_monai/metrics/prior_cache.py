# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Cache key and atomic storage of the X-ray-blind prior (``XrayBlindPrior.from_datalist``).

The key names what the prior was computed from: the training cases (ids, and the size and modification time
of their files, so that regenerated data invalidates it) and the parameters of the deterministic transforms
(read from the public attributes of each transform, e.g. ``Spacingd``'s ``pixdim``).
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from monai.transforms import Compose

__all__ = ["describe_transform", "prior_cache_key", "save_prior_arrays", "load_prior_arrays"]

_SIMPLE = (str, int, float, bool, type(None))


def describe_transform(obj: Any, depth: int = 4) -> Any:
    """
    A JSON-able description of a transform's parameters, for cache keys.

    ``Compose`` and sequences give lists; a transform gives its class name and its public attributes,
    followed ``depth`` levels into nested objects (``Spacingd.spacing_transform.pixdim``); arrays give their
    values; anything else its ``str`` (or type name).

    Args:
        obj: a transform, a ``Compose`` or a value.
        depth: levels of nested objects to follow. Defaults to 4.

    Returns:
        nested lists, dicts and scalars.
    """
    if isinstance(obj, _SIMPLE):
        return obj
    if isinstance(obj, Compose):
        return [describe_transform(t, depth) for t in obj.transforms]
    if isinstance(obj, (list, tuple)):
        return [describe_transform(v, depth) for v in obj]
    if isinstance(obj, (np.ndarray, torch.Tensor, np.generic)):
        return np.asarray(obj).tolist() if np.asarray(obj).size <= 64 else f"array{tuple(np.shape(obj))}"
    if isinstance(obj, type):
        return obj.__qualname__
    if isinstance(obj, Mapping):
        return {str(k): describe_transform(v, depth) for k, v in obj.items()}
    name = type(obj).__qualname__
    if not hasattr(obj, "__dict__"):
        text = str(obj)  # e.g. torch.float32; a default repr holds a memory address, which would change every run
        return name if " at 0x" in text else text
    if depth <= 0:
        return name
    public = {k: v for k, v in vars(obj).items() if not k.startswith("_")}
    return {"type": name, **{k: describe_transform(v, depth - 1) for k, v in sorted(public.items())}}


def _file_stamp(value: Any) -> Any:
    if isinstance(value, (str, os.PathLike)) and os.path.isfile(value):
        stat = os.stat(value)
        return [os.path.abspath(value), stat.st_size, stat.st_mtime_ns]
    return value if isinstance(value, _SIMPLE) else str(value)


def prior_cache_key(items: Sequence[Mapping], keys: Sequence[str], transform: Any, params: Mapping[str, Any]) -> str:
    """
    A 16-hex-digit key of a prior: the training items (``case_id`` and, for each of ``keys``, the file's
    absolute path, size and modification time), the transform description and further ``params``.

    Args:
        items: the training items (data dicts).
        keys: the keys of the files the prior reads (CT and labels).
        transform: the deterministic transform applied to each item.
        params: further parameters (HU window, number of classes).

    Returns:
        the key.
    """
    cases = [[str(item.get("case_id", "")), *[_file_stamp(item.get(k)) for k in keys]] for item in items]
    payload = {"cases": cases, "transform": describe_transform(transform), "params": dict(params)}
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def save_prior_arrays(path: str | os.PathLike, mean_ct: np.ndarray, labels: np.ndarray, meta: Mapping) -> Path:
    """
    Write the prior as ``.npz`` (``mean_ct`` float32, ``labels`` uint8, ``meta`` JSON) atomically: a temporary
    file in the same folder, then a rename.

    Args:
        path: target file, ending in ``.npz``.
        mean_ct: ``XYZ`` mean CT on [0, 1].
        labels: ``XYZ`` voted labels.
        meta: JSON-able description (case ids, parameters).

    Returns:
        the written path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.tmp.npz")
    try:
        np.savez(
            tmp,
            mean_ct=np.asarray(mean_ct, dtype=np.float32),
            labels=np.asarray(labels, dtype=np.uint8),
            meta=np.asarray(json.dumps(dict(meta), default=str)),
        )
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def load_prior_arrays(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, dict]:
    """
    Read a prior written by :func:`save_prior_arrays`.

    Args:
        path: the ``.npz`` file.

    Returns:
        ``(mean_ct, labels, meta)``.

    Raises:
        ValueError: when the file is not a prior file (the message names it).
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            return data["mean_ct"], data["labels"], json.loads(str(data["meta"]))
    except (KeyError, ValueError, OSError) as err:
        raise ValueError(f"{path} is not a readable X-ray-blind prior file: {err}") from err

# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""The configs of a cross-validation fold: the bundle's files, the overrides that choose the scored weights and
leave out the segmentation metrics of a run that does not train segmentation, the settings a fold's results
depend on, and the fold's status file (its completed steps)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from monai.bundle import ConfigParser

__all__ = [
    "CHECKPOINTS",
    "EVALUATE_CONFIG",
    "LOGGING_FILE",
    "META_FILE",
    "RECONSTRUCTION_KEY_METRICS",
    "TRAIN_CONFIG",
    "checkpoint_overrides",
    "merged_config",
    "parse_indices",
    "plain",
    "read_status",
    "reconstruction_only_overrides",
    "resolve_config_path",
    "settings_changes",
    "trains_segmenter",
]

_REPO_ROOT = Path(__file__).resolve().parents[2]
TRAIN_CONFIG, EVALUATE_CONFIG = "bundle/configs/train.json", "bundle/configs/evaluate.json"
META_FILE, LOGGING_FILE = "bundle/configs/metadata.json", "bundle/configs/logging.conf"
CHECKPOINTS = ("last", "best")
"""Which weights a fold's evaluation scores: those of the last epoch, or the bundle's ``model.pt``."""
RECONSTRUCTION_KEY_METRICS = ("val_psnr_eq18", "val_psnr", "val_ssim_eq17", "val_ssim")
"""Key-metric candidates (greater is better) of a run whose segmentation head is not trained."""


def parse_indices(values: int | str | Sequence[int | str] | None, name: str) -> list[int] | None:
    """``0``, ``"0,1"``, ``[0, 1]`` -> ``[0, 1]``; None stays None.

    Raises:
        ValueError: naming ``name`` for an empty list, a repeated value or one that is not an integer >= 0.
    """
    if values is None:
        return None
    items = values.split(",") if isinstance(values, str) else [values] if isinstance(values, int) else list(values)
    try:
        parsed = [int(str(v).strip()) for v in items if str(v).strip() != ""]
    except ValueError:
        raise ValueError(f"{name} must be integers >= 0 such as 0,1,2, got {values!r}.") from None
    if not parsed or min(parsed) < 0 or len(set(parsed)) != len(parsed):
        raise ValueError(f"{name} must be distinct integers >= 0 such as 0,1,2, got {values!r}.")
    return parsed


def resolve_config_path(path: str | os.PathLike, what: str = "config file") -> str:
    """The absolute path of an existing file: as given, else (a relative path) in this package's repository.

    Raises:
        ValueError: naming ``what`` and the path when the file does not exist.
    """
    p = Path(path)
    if not p.is_file() and not p.is_absolute() and (_REPO_ROOT / p).is_file():
        p = _REPO_ROOT / p
    if not p.is_file():
        raise ValueError(f"{what} '{path}' does not exist.")
    return str(p.resolve())


def merged_config(files: Sequence[str], overrides: Mapping[str, Any]) -> ConfigParser:
    """A ``ConfigParser`` of ``files`` (later ones override earlier ones) with ``overrides`` applied."""
    parser = ConfigParser()
    parser.read_config(list(files))
    parser.update(dict(overrides))
    return parser


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    items = obj.items() if isinstance(obj, Mapping) else enumerate(obj) if isinstance(obj, list) else None
    if not items:
        return {prefix: obj}
    flat: dict[str, Any] = {}
    for k, v in items:
        flat.update(_flatten(v, f"{prefix}#{k}" if prefix else str(k)))
    return flat


def settings_changes(old: Any, new: Any, most: int = 5) -> tuple[int, str]:
    """How many config ids differ between two settings (nested ids joined by ``#``) and the first ``most`` of them
    as ``"id: old -> new"`` (values shortened)."""
    a, b = _flatten(old), _flatten(new)
    keys = sorted(k for k in a.keys() | b.keys() if a.get(k, "<absent>") != b.get(k, "<absent>"))
    text = "; ".join(f"{k}: {a.get(k, '<absent>')!r:.60} -> {b.get(k, '<absent>')!r:.60}" for k in keys[:most])
    return len(keys), text


def plain(obj: Any) -> Any:
    """JSON round trip (tuples become lists), so that settings compare equal to the ones read back from a file."""
    return json.loads(json.dumps(obj, default=str))


def trains_segmenter(parser: ConfigParser) -> bool:
    """Whether the config's loss trains the segmentation head (``loss#use_segmentation`` or ``loss#use_rsc``; a
    loss without these switches is taken to train it)."""
    flags = []
    for key in ("loss#use_segmentation", "loss#use_rsc"):
        try:
            flags.append(bool(parser.get_parsed_content(key)))
        except KeyError:
            flags.append(True)
    return any(flags)


def read_status(path: str | Path) -> dict:
    """The status of a fold: ``{"completed": [step names], "seconds": {step: duration}}`` (empty when missing).

    Raises:
        ValueError: naming the file when it is not a JSON status.
    """
    path = Path(path)
    if not path.is_file():
        return {"completed": [], "seconds": {}}
    try:
        status = json.loads(path.read_text())
        return {"completed": list(status["completed"]), "seconds": dict(status.get("seconds", {}))}
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"fold status '{path}' is not a valid status file ({e}); delete it to rerun the fold.") from e


def reconstruction_only_overrides(*parsers: ConfigParser) -> dict[str, str]:
    """
    Overrides for a run whose segmentation head is not trained (Table 1, rows 1-2): the model's evaluator leaves out
    every metric that reads ``pred_seg`` (Dice, HD95, ASSD), so that no meaningless Dice is reported, and selects
    ``model.pt`` by a reconstruction metric (the first of :data:`RECONSTRUCTION_KEY_METRICS` that it has). The
    evaluator of the X-ray-blind prior keeps all its metrics.

    Args:
        parsers: the merged configs the overrides go into (training, evaluation); the metrics of all are read.

    Returns:
        ``{"validate#evaluator#key_val_metric": ..., "validate#evaluator#additional_metrics": ...}``.

    Raises:
        ValueError: when a config's ``validate#additional_metrics`` has none of :data:`RECONSTRUCTION_KEY_METRICS`.
    """
    seg: list[str] = []
    keys = list(RECONSTRUCTION_KEY_METRICS)
    for parser in parsers:
        metrics = dict(parser.get("validate#additional_metrics", {}) or {})
        candidates = {**(parser.get("validate#key_metric", {}) or {}), **metrics}
        seg += [name for name, value in candidates.items() if "pred_seg" in str(value) and name not in seg]
        keys = [k for k in keys if k in metrics and k not in seg]
        if not keys:
            raise ValueError(
                f"validate#additional_metrics {sorted(metrics)} has none of {RECONSTRUCTION_KEY_METRICS}, needed to"
                " select the model of a run without segmentation."
            )
    dropped = (*seg, keys[0])
    return {
        "validate#evaluator#key_val_metric": f"${{{keys[0]!r}: @validate#additional_metrics#{keys[0]}}}",
        "validate#evaluator#additional_metrics": (
            f"${{k: v for k, v in @validate#additional_metrics.items() if k not in {dropped!r}}}"
        ),
    }


def checkpoint_overrides(parser: ConfigParser, checkpoint: str) -> dict[str, Any]:
    """
    Evaluation overrides that score ``checkpoint``: ``"best"`` keeps ``evaluate.json`` (``model.pt``); ``"last"``
    points its ``CheckpointLoader`` at the newest ``checkpoint_epoch=N.pt`` and loads that file's ``network``.

    Args:
        parser: the merged evaluation config.
        checkpoint: one of :data:`CHECKPOINTS`.

    Raises:
        ValueError: for another ``checkpoint``, or when ``validate#handlers`` has not exactly one ``CheckpointLoader``.
    """
    if checkpoint not in CHECKPOINTS:
        raise ValueError(f"checkpoint must be one of {CHECKPOINTS}, got {checkpoint!r}.")
    if checkpoint == "best":
        return {}
    handlers = parser.get("validate#handlers", []) or []
    found = [
        i
        for i, h in enumerate(handlers)
        if isinstance(h, Mapping) and str(h.get("_target_", "")).endswith("CheckpointLoader")
    ]
    if len(found) != 1:
        raise ValueError(f"the evaluation config needs one CheckpointLoader in validate#handlers, found {len(found)}.")
    return {
        f"validate#handlers#{found[0]}#load_path": "$xctrs_monai.handlers.latest_checkpoint(@ckpt_dir)",
        f"validate#handlers#{found[0]}#load_dict": {"network": "@network"},
    }

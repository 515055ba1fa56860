# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""The evaluation table of X-CTRSNet (Ge et al., 2021, Table 1): SSIM, PSNR and Dice of C1..C7, as CSV and JSON."""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from monai.utils import IgniteInfo, min_version, optional_import

Events, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Events")
if TYPE_CHECKING:
    from ignite.engine import Engine
else:
    Engine, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Engine")

__all__ = ["VERTEBRAE", "build_metrics_table", "format_metrics_table", "write_metrics_table", "MetricsTableHandler"]

VERTEBRAE = ("C1", "C2", "C3", "C4", "C5", "C6", "C7")


def _as_2d(values: Any) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().float().numpy()
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 0:
        arr = arr.reshape(1, 1)
    elif arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    return arr.reshape(arr.shape[0], -1)


def _summary(column: np.ndarray) -> dict[str, float | int]:
    valid = column[np.isfinite(column)]
    n = int(valid.size)
    mean = float(valid.mean()) if n else math.nan
    std = float(valid.std(ddof=1)) if n > 1 else (0.0 if n == 1 else math.nan)
    return {"mean": mean, "std": std, "n": n}


def build_metrics_table(
    psnr: Any,
    ssim: Any,
    dice: Any,
    class_names: Sequence[str] = VERTEBRAE,
    case_ids: Sequence[str] | None = None,
    dice_percent: bool = True,
) -> dict[str, Any]:
    """
    Gather per-case metrics into the paper's evaluation table (Ge et al., 2021, Table 1).

    Args:
        psnr: per-case PSNR in dB, shape ``[N]`` or ``[N, 1]``.
        ssim: per-case SSIM, shape ``[N]`` or ``[N, 1]``.
        dice: per-case, per-class Dice on [0, 1], shape ``[N, len(class_names)]``; NaN marks a class that is
            absent from both the prediction and the ground truth and is left out of the statistics.
        class_names: column names of the Dice classes. Defaults to ``("C1", ..., "C7")``.
        case_ids: a name per case; defaults to ``None``: ``"0"``, ``"1"``, ...
        dice_percent: report Dice in percent as the paper does. Defaults to ``True``.

    Returns:
        ``{"columns": [...], "summary": {column: {"mean", "std", "n"}}, "cases": [{"case": id, column: value}]}``
        with columns ``SSIM``, ``PSNR``, one per class and ``Mean Dice`` (per-case mean over the classes).

    Raises:
        ValueError: when the number of cases or of Dice classes disagree.
    """
    psnr_a, ssim_a, dice_a = _as_2d(psnr)[:, 0], _as_2d(ssim)[:, 0], _as_2d(dice)
    n = dice_a.shape[0]
    if not (psnr_a.shape[0] == ssim_a.shape[0] == n):
        raise ValueError(f"case counts differ: psnr {psnr_a.shape[0]}, ssim {ssim_a.shape[0]}, dice {n}.")
    if dice_a.shape[1] != len(class_names):
        raise ValueError(f"dice has {dice_a.shape[1]} classes, class_names has {len(class_names)}.")
    if case_ids is None or len(case_ids) != n:
        case_ids = [str(i) for i in range(n)]
    scale = 100.0 if dice_percent else 1.0
    dice_a = dice_a * scale
    with warnings.catch_warnings():  # a case with no labelled class has a NaN mean
        warnings.simplefilter("ignore", category=RuntimeWarning)
        mean_dice = np.nanmean(dice_a, axis=1) if n else np.zeros(0)
    columns = ["SSIM", "PSNR", *class_names, "Mean Dice"]
    data = np.concatenate([ssim_a[:, None], psnr_a[:, None], dice_a, mean_dice[:, None]], axis=1)
    summary = {c: _summary(data[:, j]) for j, c in enumerate(columns)}
    cases = [
        {"case": str(cid), **{c: float(data[i, j]) for j, c in enumerate(columns)}} for i, cid in enumerate(case_ids)
    ]
    units = {"SSIM": "", "PSNR": "dB", **{c: "%" if dice_percent else "" for c in (*class_names, "Mean Dice")}}
    return {"columns": columns, "units": units, "summary": summary, "cases": cases}


def _fmt(value: float, column: str) -> str:
    if not math.isfinite(value):
        return "nan"
    return f"{value:.3f}" if column == "SSIM" else f"{value:.2f}"


def format_metrics_table(table: Mapping[str, Any], title: str = "X-CTRSNet") -> str:
    """
    Render the table in the paper's layout: one row, ``mean ± std`` per column.

    Args:
        table: the output of :func:`build_metrics_table`.
        title: row label. Defaults to ``"X-CTRSNet"``.

    Returns:
        a fixed-width text table.
    """
    columns = list(table["columns"])
    units = table.get("units", {})
    head = ["", *[f"{c} ({units[c]})" if units.get(c) else c for c in columns]]
    row = [title]
    for c in columns:
        s = table["summary"][c]
        row.append(f"{_fmt(s['mean'], c)} ± {_fmt(s['std'], c)}")
    n = max((table["summary"][c]["n"] for c in columns), default=0)
    widths = [max(len(a), len(b)) for a, b in zip(head, row)]
    lines = [
        "  ".join(h.ljust(w) for h, w in zip(head, widths)),
        "  ".join(r.ljust(w) for r, w in zip(row, widths)),
        f"(mean ± std over {n} case(s); Dice of a class is left out for a case where it is absent)",
    ]
    return "\n".join(lines)


def _atomic_write(path: str, text: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_metrics_table(table: Mapping[str, Any], output_dir: str, filename: str = "metrics") -> tuple[str, str]:
    """
    Write the table as ``<output_dir>/<filename>.csv`` and ``.json``, each atomically (temp file + rename).

    The CSV has one row per case followed by ``mean`` and ``std`` rows; the JSON holds the columns, units,
    summary statistics and per-case values.

    Args:
        table: the output of :func:`build_metrics_table`.
        output_dir: destination folder, created if missing.
        filename: base name without extension. Defaults to ``"metrics"``.

    Returns:
        the CSV and JSON paths.
    """
    columns = list(table["columns"])
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["case", *columns])
    for case in table["cases"]:
        writer.writerow([case["case"], *[f"{case[c]:.6g}" for c in columns]])
    for stat in ("mean", "std"):
        writer.writerow([stat, *[f"{table['summary'][c][stat]:.6g}" for c in columns]])
    csv_path = os.path.join(output_dir, f"{filename}.csv")
    json_path = os.path.join(output_dir, f"{filename}.json")
    _atomic_write(csv_path, buf.getvalue())
    _atomic_write(json_path, json.dumps(_json_safe(table), indent=2) + "\n")
    return csv_path, json_path


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def _case_id(item: Any) -> str | None:
    if not isinstance(item, Mapping):
        return None
    if isinstance(item.get("case_id"), str):
        return item["case_id"]
    for key in ("image", "label"):
        meta = getattr(item.get(key), "meta", None)
        if isinstance(meta, Mapping) and meta.get("filename_or_obj"):
            name = os.path.basename(str(meta["filename_or_obj"]))
            for ext in (".nii.gz", ".nii", ".nrrd", ".mha", ".npy"):
                if name.endswith(ext):
                    return name[: -len(ext)]
            return name
    return None


class MetricsTableHandler:
    """
    Print the evaluation table and write it as CSV and JSON when an evaluator finishes.

    It reads the per-case values that MONAI metric handlers keep in ``engine.state.metric_details`` (set
    ``save_details=True``, the default): PSNR and SSIM per case, Dice per case and vertebra (``MeanDice`` with
    ``reduction="mean_batch"``). Case names are the batch's ``case_id`` entries, else the file names of the
    ``filename_or_obj`` metadata.

    Args:
        output_dir: folder of the CSV/JSON files.
        filename: base name of the files. Defaults to ``"metrics"``.
        psnr_name: metric name of the PSNR handler. Defaults to ``"val_psnr"``.
        ssim_name: metric name of the SSIM handler. Defaults to ``"val_ssim"``.
        dice_name: metric name of the per-class Dice handler. Defaults to ``"val_dice"``.
        class_names: Dice columns. Defaults to ``("C1", ..., "C7")``.
        title: row label of the printed table. Defaults to ``"X-CTRSNet"``.
        name: identifier of the ``logging.Logger``; ``None`` uses ``engine.logger``. Defaults to ``None``.
    """

    def __init__(
        self,
        output_dir: str,
        filename: str = "metrics",
        psnr_name: str = "val_psnr",
        ssim_name: str = "val_ssim",
        dice_name: str = "val_dice",
        class_names: Sequence[str] = VERTEBRAE,
        title: str = "X-CTRSNet",
        name: str | None = None,
    ) -> None:
        self.output_dir = output_dir
        self.filename = filename
        self.psnr_name, self.ssim_name, self.dice_name = psnr_name, ssim_name, dice_name
        self.class_names = tuple(class_names)
        self.title = title
        self.logger = logging.getLogger(name)
        self._name = name
        self._case_ids: list[str] = []
        self.table: dict[str, Any] | None = None

    def attach(self, engine: Engine) -> None:
        """
        Args:
            engine: the evaluator with PSNR, SSIM and per-class Dice metric handlers attached.
        """
        if self._name is None:
            self.logger = engine.logger
        engine.add_event_handler(Events.EPOCH_STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect_ids)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def _reset(self, engine: Engine) -> None:
        self._case_ids = []

    def _collect_ids(self, engine: Engine) -> None:
        batch = engine.state.batch
        items = batch if isinstance(batch, list) else [batch]
        for item in items:
            cid = _case_id(item)
            self._case_ids.append(cid if cid is not None else str(len(self._case_ids)))

    def __call__(self, engine: Engine) -> None:
        """Build, print and write the table from ``engine.state.metric_details``."""
        details = getattr(engine.state, "metric_details", None) or {}
        missing = [k for k in (self.psnr_name, self.ssim_name, self.dice_name) if k not in details]
        if missing:
            raise KeyError(f"metric details {missing} not found; attach those metrics with save_details=True.")
        self.table = build_metrics_table(
            psnr=details[self.psnr_name],
            ssim=details[self.ssim_name],
            dice=details[self.dice_name],
            class_names=self.class_names,
            case_ids=self._case_ids,
        )
        text = format_metrics_table(self.table, title=self.title)
        csv_path, json_path = write_metrics_table(self.table, self.output_dir, self.filename)
        print(text, flush=True)
        self.logger.info(f"evaluation table written to {csv_path} and {json_path}")

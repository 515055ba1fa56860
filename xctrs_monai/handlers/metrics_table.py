# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""The evaluation table of X-CTRSNet (Ge et al., 2021, Table 1): the X-ray-blind prior, the model and its gain.

Rows: the prior (mean CT and voted labels of the training split), the model, and the model's gain over
the prior (difference of the means). Columns: every metric with the definition it uses (the paper's PSNR
and SSIM, Eq. 18 and 17, beside MONAI's; MAE in HU; Dice per vertebra and mean; HD95 and ASSD in mm),
mean +- std over the cases. Written as per-case CSV, summary CSV, JSON and Markdown.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from monai.utils import IgniteInfo, min_version, optional_import

from xctrs_monai.constants import VERTEBRAE
from xctrs_monai.handlers.prior import PRIOR_PREFIX
from xctrs_monai.handlers.table_format import format_markdown, format_metrics_table, write_metrics_table

Events, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Events")
if TYPE_CHECKING:
    from ignite.engine import Engine
else:
    Engine, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Engine")

__all__ = [
    "DEFAULT_COLUMNS",
    "TableColumn",
    "build_metrics_table",
    "format_markdown",
    "format_metrics_table",
    "write_metrics_table",
    "MetricsTableHandler",
]


@dataclass(frozen=True)
class TableColumn:
    """
    One metric of the evaluation table.

    Args:
        metric: its name in ``engine.state.metric_details`` (the metric handler's name).
        name: column name; for a per-class metric (one value per vertebra) a template with ``{}`` for the
            class name, e.g. ``"Dice {} (%)"``.
        mean_name: per-class metrics: the column of the per-case mean over the classes (NaN left out).
            Defaults to None (no mean column).
        scale: factor applied to the values (100 for percent). Defaults to 1.0.
        digits: decimals in the printed table. Defaults to 2.
        lower_is_better: whether a smaller value is better (errors, distances). Defaults to False.
        show_classes: print the per-class columns in the summary (they are always in the per-case files).
            Defaults to True.
        definition: what the column measures, written into the JSON and Markdown. Defaults to "".
    """

    metric: str
    name: str
    mean_name: str | None = None
    scale: float = 1.0
    digits: int = 2
    lower_is_better: bool = False
    show_classes: bool = True
    definition: str = ""

    @property
    def per_class(self) -> bool:
        return "{}" in self.name


DEFAULT_COLUMNS: tuple[TableColumn, ...] = (
    TableColumn(
        "val_psnr_eq18",
        "PSNR (Eq. 18, dB)",
        definition="10 log10(MAX^2 / MSE), MAX the case's ground-truth maximum, MSE over all voxels"
        " (Ge et al., Eq. 18)",
    ),
    TableColumn("val_psnr", "PSNR (MONAI, range 1, dB)", definition="monai PSNRMetric, max_val 1"),
    TableColumn(
        "val_ssim_eq17",
        "SSIM (Eq. 17, global)",
        digits=3,
        definition="one SSIM over the whole volume (Ge et al., Eq. 17), c1 = (0.01 L)^2, c2 = (0.03 L)^2, L = 1",
    ),
    TableColumn(
        "val_ssim", "SSIM (3D windowed, MONAI)", digits=3, definition="monai SSIMMetric, 3D Gaussian window, range 1"
    ),
    TableColumn(
        "val_mae_hu",
        "MAE (HU)",
        digits=1,
        lower_is_better=True,
        definition="mean absolute error over all voxels, in HU within the window",
    ),
    TableColumn(
        "val_dice",
        "Dice {} (%)",
        mean_name="Mean Dice (%)",
        scale=100.0,
        definition="monai DiceMetric per vertebra; a vertebra absent from the ground truth is left out",
    ),
    TableColumn(
        "val_hd95",
        "HD95 {} (mm)",
        mean_name="HD95 (mm)",
        lower_is_better=True,
        show_classes=False,
        definition="95th-percentile symmetric Hausdorff distance per vertebra, mean over vertebrae"
        " (a vertebra missing from the prediction counts as the field-of-view diagonal)",
    ),
    TableColumn(
        "val_assd",
        "ASSD {} (mm)",
        mean_name="ASSD (mm)",
        lower_is_better=True,
        show_classes=False,
        definition="average symmetric surface distance per vertebra, mean over vertebrae (same rule for a"
        " missing vertebra)",
    ),
)
"""The columns of the evaluation table, in order; metrics that are not attached are left out."""

PRIOR, MODEL, GAIN = "prior", "model", "gain"


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


def _case_matrix(
    details: Mapping[str, Any], columns: Sequence[TableColumn], class_names: Sequence[str], what: str
) -> tuple[list[str], np.ndarray]:
    """Column names and the ``[cases, columns]`` values of the metrics in ``columns`` (all must be in ``details``)."""
    names: list[str] = []
    blocks: list[np.ndarray] = []
    for col in columns:
        arr = _as_2d(details[col.metric]) * col.scale
        if col.per_class:
            if arr.shape[1] != len(class_names):
                raise ValueError(f"{what} {col.metric} has {arr.shape[1]} classes, class_names has {len(class_names)}.")
            names += [col.name.format(c) for c in class_names]
            blocks.append(arr)
            if col.mean_name:
                with warnings.catch_warnings():  # a case without any labelled class has a NaN mean
                    warnings.simplefilter("ignore", category=RuntimeWarning)
                    mean = np.nanmean(arr, axis=1) if arr.shape[0] else np.zeros(0)
                names.append(col.mean_name)
                blocks.append(mean[:, None])
        else:
            if arr.shape[1] != 1:
                raise ValueError(f"{what} {col.metric} must have one value per case, got {arr.shape[1]}.")
            names.append(col.name)
            blocks.append(arr)
    counts = {b.shape[0] for b in blocks}
    if len(counts) > 1:
        raise ValueError(f"{what} metrics have different case counts {sorted(counts)}.")
    return names, np.concatenate(blocks, axis=1)


def build_metrics_table(
    details: Mapping[str, Any],
    prior_details: Mapping[str, Any] | None = None,
    columns: Sequence[TableColumn] = DEFAULT_COLUMNS,
    class_names: Sequence[str] = VERTEBRAE,
    case_ids: Sequence[str] | None = None,
    folds: Sequence[int | None] | None = None,
    title: str = "X-CTRSNet",
    prior_title: str = "X-ray-blind prior",
) -> dict[str, Any]:
    """
    Gather per-case metrics of the model (and the prior) into the evaluation table.

    Args:
        details: per-case values of the model by metric name (``engine.state.metric_details``): ``[N]`` or
            ``[N, 1]`` for a scalar metric, ``[N, len(class_names)]`` for a per-class one (NaN marks a class
            absent from the case's ground truth and is left out of the statistics).
        prior_details: the same for the X-ray-blind prior on the same cases in the same order; None gives a
            table with the model only. Defaults to None.
        columns: the table's columns; those whose metric is not in ``details`` are left out. Defaults to
            :data:`DEFAULT_COLUMNS`.
        class_names: names of the classes of per-class metrics. Defaults to ``constants.VERTEBRAE``.
        case_ids: a name per case. Defaults to None: ``"0"``, ``"1"``, ...
        folds: the cross-validation fold of each case (None when unknown). Defaults to None.
        title: name of the model row. Defaults to ``"X-CTRSNet"``.
        prior_title: name of the prior row. Defaults to ``"X-ray-blind prior"``.

    Returns:
        ``{"rows", "titles", "columns", "display_columns", "definitions", "lower_is_better", "digits",
        "summary": {row: {column: {"mean", "std", "n"}}}, "gain": {column: model mean - prior mean},
        "cases": [{"case", "fold", "prior": {column: value}, "model": {...}}]}``; rows are ``"prior"``,
        ``"model"``, ``"gain"`` (or ``"model"`` alone).

    Raises:
        ValueError: when no column's metric is in ``details``, the prior lacks one of them, or case or class
            counts disagree.
    """
    used = [c for c in columns if c.metric in details]
    if not used:
        raise ValueError(f"none of the table's metrics {[c.metric for c in columns]} is in {sorted(details)}.")
    names, model = _case_matrix(details, used, class_names, "model")
    n = model.shape[0]
    values = {MODEL: model}
    if prior_details is not None:
        missing = [c.metric for c in used if c.metric not in prior_details]
        if missing:
            raise ValueError(f"the prior has no {missing}; score it with the model's metrics.")
        values[PRIOR] = _case_matrix(prior_details, used, class_names, "prior")[1]
        if values[PRIOR].shape[0] != n:
            raise ValueError(f"the prior has {values[PRIOR].shape[0]} cases, the model {n}: they must share the cases.")
    case_ids = [str(i) for i in range(n)] if case_ids is None or len(case_ids) != n else [str(c) for c in case_ids]
    folds = [None] * n if folds is None or len(folds) != n else list(folds)
    rows = [r for r in (PRIOR, MODEL) if r in values]
    summary = {r: {c: _summary(values[r][:, j]) for j, c in enumerate(names)} for r in rows}
    table: dict[str, Any] = {
        "rows": rows + ([GAIN] if PRIOR in values else []),
        "titles": {MODEL: title, PRIOR: prior_title, GAIN: f"gain ({title} - prior)"},
        "columns": names,
        "display_columns": [],
        "definitions": {},
        "lower_is_better": [],
        "digits": {},
        "summary": summary,
        "cases": [
            {
                "case": cid,
                "fold": folds[i],
                **{r: {c: float(values[r][i, j]) for j, c in enumerate(names)} for r in rows},
            }
            for i, cid in enumerate(case_ids)
        ],
    }
    for col in used:
        own = [col.name.format(c) for c in class_names] if col.per_class else [col.name]
        mean = [col.mean_name] if col.per_class and col.mean_name else []
        table["display_columns"] += (own if col.show_classes or not col.per_class else []) + mean
        for name in own + mean:
            table["definitions"][name] = col.definition
            table["digits"][name] = col.digits
            if col.lower_is_better:
                table["lower_is_better"].append(name)
    if PRIOR in values:
        table["gain"] = {c: summary[MODEL][c]["mean"] - summary[PRIOR][c]["mean"] for c in names}
    return table


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


def _case_fold(item: Any) -> int | None:
    value = item.get("fold") if isinstance(item, Mapping) else None
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return int(value.item())
    return int(value) if isinstance(value, (int, np.integer)) else None


class MetricsTableHandler:
    """
    Print the evaluation table and write it as per-case CSV, summary CSV, JSON and Markdown when an evaluator
    finishes.

    It reads the per-case values that MONAI metric handlers keep in ``engine.state.metric_details`` (set
    ``save_details=True``, the default) for the metrics named by ``columns``, and those of the X-ray-blind
    prior that :class:`~xctrs_monai.handlers.XrayBlindPriorHandler` adds under ``prior_prefix``; with them the
    first row is the prior and the last the model's gain over it. Case names are the batch's ``case_id``
    entries, else the file names of the ``filename_or_obj`` metadata; folds the batch's ``fold`` entries.

    Args:
        output_dir: folder of the files.
        filename: base name of the files. Defaults to ``"metrics"``.
        columns: the table's columns (``TableColumn`` or dicts of its fields). Defaults to
            :data:`DEFAULT_COLUMNS`.
        class_names: names of the classes of per-class metrics. Defaults to ``constants.VERTEBRAE``.
        title: name of the model row. Defaults to ``"X-CTRSNet"``.
        prior_title: name of the prior row. Defaults to ``"X-ray-blind prior"``.
        prior_prefix: prefix of the prior's metric names. Defaults to ``"prior_"``.
        name: identifier of the ``logging.Logger``; None uses ``engine.logger``. Defaults to None.
    """

    def __init__(
        self,
        output_dir: str,
        filename: str = "metrics",
        columns: Sequence[TableColumn | Mapping[str, Any]] | None = None,
        class_names: Sequence[str] = VERTEBRAE,
        title: str = "X-CTRSNet",
        prior_title: str = "X-ray-blind prior",
        prior_prefix: str = PRIOR_PREFIX,
        name: str | None = None,
    ) -> None:
        self.output_dir = output_dir
        self.filename = filename
        cols = DEFAULT_COLUMNS if columns is None else columns
        self.columns = tuple(c if isinstance(c, TableColumn) else TableColumn(**c) for c in cols)
        self.class_names = tuple(class_names)
        self.title, self.prior_title, self.prior_prefix = title, prior_title, prior_prefix
        self.logger = logging.getLogger(name)
        self._name = name
        self._case_ids: list[str] = []
        self._folds: list[int | None] = []
        self.table: dict[str, Any] | None = None
        self.paths: dict[str, str] = {}

    def attach(self, engine: Engine) -> None:
        """
        Args:
            engine: the evaluator with the metric handlers of ``columns`` attached.
        """
        if self._name is None:
            self.logger = engine.logger
        engine.add_event_handler(Events.EPOCH_STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect_ids)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def _reset(self, engine: Engine) -> None:
        self._case_ids, self._folds = [], []

    def _collect_ids(self, engine: Engine) -> None:
        batch = engine.state.batch
        for item in batch if isinstance(batch, list) else [batch]:
            cid = _case_id(item)
            self._case_ids.append(cid if cid is not None else str(len(self._case_ids)))
            self._folds.append(_case_fold(item))

    def __call__(self, engine: Engine) -> None:
        """Build, print and write the table from ``engine.state.metric_details``.

        Raises:
            KeyError: when none of the table's metrics left its per-case values.
        """
        details = getattr(engine.state, "metric_details", None) or {}
        if not any(c.metric in details for c in self.columns):
            raise KeyError(
                f"metric details {[c.metric for c in self.columns]} not found; attach those metrics with"
                " save_details=True."
            )
        p = self.prior_prefix
        prior = {k[len(p) :]: v for k, v in details.items() if k.startswith(p)}
        self.table = build_metrics_table(
            details={k: v for k, v in details.items() if not k.startswith(p)},
            prior_details=prior or None,
            columns=self.columns,
            class_names=self.class_names,
            case_ids=self._case_ids,
            folds=self._folds,
            title=self.title,
            prior_title=self.prior_title,
        )
        self.paths = write_metrics_table(self.table, self.output_dir, self.filename)
        print(format_metrics_table(self.table), flush=True)
        self.logger.info("evaluation table written to " + ", ".join(self.paths.values()))

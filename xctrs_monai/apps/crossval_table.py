# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""The cross-validation table: the held-out cases of every fold pooled, in the column order of Table 1.

Ge et al. (2021, Sect. 3.1) train on nine groups and test on the tenth, ten times, and report mean +- std over
all their patients; this module does the same with the per-case files that each fold's evaluation wrote
(``metrics.json`` of ``MetricsTableHandler``): one row per held-out case, the X-ray-blind prior first, the model
and its gain, mean +- std over the pooled cases (not the mean of the fold means), and the per-fold means beside.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xctrs_monai.constants import VERTEBRAE
from xctrs_monai.handlers.metrics_table import DEFAULT_COLUMNS, TableColumn, build_metrics_table
from xctrs_monai.handlers.table_format import format_csv, format_markdown, write_metrics_table, write_text_atomic

__all__ = [
    "describe",
    "format_cell",
    "format_fold_means",
    "load_fold_table",
    "pool_fold_tables",
    "table1_columns",
    "write_crossval_table",
]

_METHODS = ("prior", "model")


def table1_columns() -> list[str]:
    """Our names of the columns of the paper's Table 1, in its order: SSIM (Eq. 17), PSNR (Eq. 18), Dice C1..C7,
    mean Dice."""
    by_metric = {c.metric: c for c in DEFAULT_COLUMNS}
    ssim, psnr, dice = by_metric["val_ssim_eq17"], by_metric["val_psnr_eq18"], by_metric["val_dice"]
    return [ssim.name, psnr.name, *[dice.name.format(v) for v in VERTEBRAE], str(dice.mean_name)]


def describe(values: Sequence[float | None]) -> dict[str, float | int]:
    """``{"mean", "std", "n"}`` of the finite values (None and NaN left out); std with ddof=1, NaN below 2 values."""
    arr = np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)
    valid = arr[np.isfinite(arr)]
    n = int(valid.size)
    return {
        "mean": float(valid.mean()) if n else math.nan,
        "std": float(valid.std(ddof=1)) if n > 1 else math.nan,
        "n": n,
    }


def format_cell(mean: float | None, std: float | None = None, digits: int = 2, signed: bool = False) -> str:
    """``"mean ± std"`` with ``digits`` decimals; ``"–"`` for a missing mean, ``"mean ± –"`` for a missing std."""
    if mean is None or not math.isfinite(mean):
        return "–"
    text = f"{mean:+.{digits}f}" if signed else f"{mean:.{digits}f}"
    if std is None:
        return text
    return f"{text} ± {std:.{digits}f}" if math.isfinite(std) else f"{text} ± –"


def load_fold_table(path: str | os.PathLike) -> dict[str, Any]:
    """Read one fold's evaluation table (``metrics.json`` written by ``MetricsTableHandler``).

    Raises:
        ValueError: naming the file when it is missing, not JSON, or lacks ``columns``/``cases``/``summary``.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"evaluation table '{path}' does not exist; evaluate the fold first.")
    try:
        table = json.loads(path.read_text())
    except ValueError as e:
        raise ValueError(f"evaluation table '{path}' is not valid JSON: {e}.") from e
    missing = [k for k in ("columns", "cases", "summary", "rows", "titles") if k not in table]
    if missing:
        raise ValueError(f"evaluation table '{path}' lacks {missing}; was it written by MetricsTableHandler?")
    return table


def _case_values(cases: Sequence[Mapping], method: str, columns: Sequence[str]) -> np.ndarray:
    return np.asarray(
        [[np.nan if case[method].get(c) is None else case[method][c] for c in columns] for case in cases],
        dtype=np.float64,
    ).reshape(len(cases), len(columns))


def pool_fold_tables(fold_tables: Mapping[int, Mapping[str, Any]]) -> dict[str, Any]:
    """
    Pool the held-out cases of all folds into one evaluation table (the layout of ``build_metrics_table``).

    Args:
        fold_tables: ``{fold: table}`` as read by :func:`load_fold_table`; every fold with the same columns.

    Returns:
        the table of ``build_metrics_table`` over all cases (``summary``: mean +- std over the pooled cases,
        ``gain``, ``cases`` with their fold), its ``display_columns`` in Table 1's order (SSIM, PSNR, Dice
        C1..C7, mean) followed by the other columns, plus ``per_fold``: ``{fold: {"n", "prior", "model"}}``
        with each fold's means (from its own summary), and ``folds``.

    Raises:
        ValueError: when there is no fold, folds have different columns or methods, or a case appears twice.
    """
    if not fold_tables:
        raise ValueError("no fold to pool.")
    folds = sorted(fold_tables)
    first = fold_tables[folds[0]]
    columns = list(first["columns"])
    methods = [m for m in _METHODS if m in first["rows"]]
    for k in folds[1:]:
        t = fold_tables[k]
        if list(t["columns"]) != columns or [m for m in _METHODS if m in t["rows"]] != methods:
            raise ValueError(
                f"fold {k} has columns {t['columns']} and rows {t['rows']}, fold {folds[0]} {columns} and"
                f" {first['rows']}: evaluate every fold with the same metrics."
            )
    cases = [case for k in folds for case in fold_tables[k]["cases"]]
    ids = [str(case["case"]) for case in cases]
    repeated = sorted({c for c in ids if ids.count(c) > 1})
    if repeated:
        raise ValueError(f"cases {repeated[:5]} are held out in more than one fold; the folds must not overlap.")
    table_columns = [
        TableColumn(
            metric=c,
            name=c,
            digits=int(first["digits"].get(c, 2)),
            lower_is_better=c in first["lower_is_better"],
            definition=first["definitions"].get(c, ""),
        )
        for c in columns
    ]
    values = {m: _case_values(cases, m, columns) for m in methods}
    details = {m: {c: values[m][:, j] for j, c in enumerate(columns)} for m in methods}
    with warnings.catch_warnings():  # a column without any finite value (a class absent everywhere)
        warnings.simplefilter("ignore", category=RuntimeWarning)
        table = build_metrics_table(
            details["model"],
            prior_details=details.get("prior"),
            columns=table_columns,
            case_ids=ids,
            folds=[case.get("fold") for case in cases],
            title=first["titles"]["model"],
            prior_title=first["titles"].get("prior", "X-ray-blind prior"),
        )
    paper = [c for c in table1_columns() if c in columns]
    table["display_columns"] = paper + [c for c in first["display_columns"] if c not in paper]
    table["folds"] = folds
    table["per_fold"] = {
        str(k): {
            "n": len(fold_tables[k]["cases"]),
            **{m: {c: fold_tables[k]["summary"][m][c]["mean"] for c in columns} for m in methods},
        }
        for k in folds
    }
    return table


def _fold_mean_rows(table: Mapping[str, Any]) -> list[list[Any]]:
    methods = [m for m in _METHODS if m in table["rows"]]
    rows = []
    for k, fold in table["per_fold"].items():
        rows += [[k, fold["n"], m, *[fold[m][c] for c in table["columns"]]] for m in methods]
    return rows


def format_fold_means(table: Mapping[str, Any]) -> str:
    """Markdown of the per-fold means of ``table`` (from :func:`pool_fold_tables`) and the mean +- std of them."""
    columns = list(table["display_columns"])
    titles, digits = table["titles"], table["digits"]
    lines = ["| fold | cases | | " + " | ".join(columns) + " |", "|---|---|---|" + "---|" * len(columns)]
    for k, n, method, *values in _fold_mean_rows(table):
        by_column = dict(zip(table["columns"], values))
        cells = [format_cell(by_column[c], digits=digits.get(c, 2)) for c in columns]
        lines.append(f"| {k} | {n} | {titles[method]} | " + " | ".join(cells) + " |")
    for method in (m for m in _METHODS if m in table["rows"]):
        stats = {c: describe([f[method][c] for f in table["per_fold"].values()]) for c in columns}
        cells = [format_cell(stats[c]["mean"], stats[c]["std"], digits.get(c, 2)) for c in columns]
        lines.append(f"| mean ± std of the fold means | | {titles[method]} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_crossval_table(
    table: Mapping[str, Any], output_dir: str | os.PathLike, filename: str = "crossval"
) -> dict[str, str]:
    """
    Write the pooled table into ``output_dir``, each file atomically: ``<filename>.csv`` (one row per held-out
    case and method, with its fold), ``<filename>_summary.csv`` (mean, std, n over the pooled cases; the gain),
    ``<filename>_folds.csv`` (the per-fold means), ``<filename>.json`` (everything) and ``<filename>.md``.

    Args:
        table: the output of :func:`pool_fold_tables`.
        output_dir: destination folder, created if missing.
        filename: base name of the files. Defaults to ``"crossval"``.

    Returns:
        ``{"csv", "summary_csv", "folds_csv", "json", "markdown"}`` paths.
    """
    paths = write_metrics_table(table, str(output_dir), filename)
    paths["folds_csv"] = os.path.join(str(output_dir), f"{filename}_folds.csv")
    header = ["fold", "cases", "method", *table["columns"]]
    write_text_atomic(paths["folds_csv"], format_csv([header, *_fold_mean_rows(table)]))
    n = len(table["cases"])
    markdown = (
        f"# Cross-validation: {len(table['folds'])} fold(s), {n} held-out case(s)\n\n"
        f"Mean ± std over all {n} held-out cases pooled over the folds {table['folds']} (as Ge et al., 2021,"
        " Sect. 3.1, report Table 1), not the mean of the fold means; columns in Table 1's order, then ours.\n\n"
        + format_markdown(table)
        + "\n## Per fold (mean over each fold's held-out cases)\n\n"
        + format_fold_means(table)
    )
    write_text_atomic(paths["markdown"], markdown)  # the summary that write_metrics_table wrote, plus the folds
    return paths

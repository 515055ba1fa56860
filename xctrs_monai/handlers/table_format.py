# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Text, Markdown, CSV and JSON renderings of the evaluation table built by ``build_metrics_table``."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Mapping
from typing import Any

__all__ = [
    "format_csv",
    "format_metrics_table",
    "format_markdown",
    "json_safe",
    "write_metrics_table",
    "write_text_atomic",
]

_GAIN = "gain"


def _fmt(value: float, digits: int, signed: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "nan" if value is None or math.isnan(value) else str(value)
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _cell(table: Mapping[str, Any], row: str, column: str) -> str:
    digits = table["digits"].get(column, 2)
    if row == _GAIN:
        return _fmt(table["gain"][column], digits, signed=True)
    s = table["summary"][row][column]
    return f"{_fmt(s['mean'], digits)} ± {_fmt(s['std'], digits)}"


def _footnote(table: Mapping[str, Any]) -> str:
    n = max((s["n"] for row in table["summary"].values() for s in row.values()), default=0)
    text = f"mean ± std over {n} case(s); a class absent from a case's ground truth is left out"
    if _GAIN in table["rows"]:
        lower = ", ".join(c for c in table["display_columns"] if c in table["lower_is_better"])
        text += f"; gain = difference of the means (lower is better for {lower or 'none'}, higher for the rest)"
    return text


def format_metrics_table(table: Mapping[str, Any], max_width: int = 120) -> str:
    """
    Render the summary as fixed-width text: one line per row (prior, model, gain), ``mean ± std`` per column,
    in blocks of columns that fit ``max_width`` characters.

    Args:
        table: the output of ``build_metrics_table``.
        max_width: widest line. Defaults to 120.

    Returns:
        the text table.
    """
    rows = list(table["rows"])
    labels = [table["titles"][r] for r in rows]
    label_width = max(len(s) for s in labels)
    blocks: list[list[str]] = [[]]
    width = label_width
    for column in table["display_columns"]:
        cell = max(len(column), *(len(_cell(table, r, column)) for r in rows))
        if blocks[-1] and width + 2 + cell > max_width:
            blocks.append([])
            width = label_width
        blocks[-1].append(column)
        width += 2 + cell
    lines: list[str] = []
    for block in blocks:
        cells = [[c, *[_cell(table, r, c) for r in rows]] for c in block]
        widths = [max(len(v) for v in col) for col in cells]
        lines.append("  ".join(["".ljust(label_width)] + [col[0].ljust(w) for col, w in zip(cells, widths)]).rstrip())
        for i, label in enumerate(labels, start=1):
            lines.append("  ".join([label.ljust(label_width)] + [col[i].ljust(w) for col, w in zip(cells, widths)]))
        lines.append("")
    lines.append(f"({_footnote(table)})")
    return "\n".join(lines)


def format_markdown(table: Mapping[str, Any]) -> str:
    """
    Render the summary as a Markdown table (rows prior, model, gain) followed by the column definitions.

    Args:
        table: the output of ``build_metrics_table``.

    Returns:
        Markdown text.
    """
    columns = list(table["display_columns"])
    lines = ["| | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for row in table["rows"]:
        title = table["titles"][row]
        lines.append(f"| {title} | " + " | ".join(_cell(table, row, c) for c in columns) + " |")
    lines += ["", _footnote(table) + ".", ""]
    groups: dict[str, list[str]] = {}  # columns of one metric share its definition: list it once
    for c in columns:
        if table["definitions"].get(c):
            groups.setdefault(table["definitions"][c], []).append(c)
    lines += [f"- **{', '.join(cs)}**: {text}" for text, cs in groups.items()]
    return "\n".join(lines) + "\n"


def write_text_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename (no half-written file)."""
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


def json_safe(obj: Any) -> Any:
    """``obj`` with non-finite floats replaced by None (strict JSON), through mappings, lists and tuples."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def format_csv(rows: list[list[Any]]) -> str:
    """CSV text of ``rows``: floats with 6 significant digits, None as an empty cell."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    for row in rows:
        writer.writerow([f"{v:.6g}" if isinstance(v, float) else ("" if v is None else v) for v in row])
    return buf.getvalue()


def write_metrics_table(table: Mapping[str, Any], output_dir: str, filename: str = "metrics") -> dict[str, str]:
    """
    Write the table into ``output_dir``, each file atomically (temp file + rename):

    - ``<filename>.csv``: one row per case and method: ``case, fold, method, <every column>`` (``method`` is
      ``prior`` or ``model``; per-vertebra HD95/ASSD included);
    - ``<filename>_summary.csv``: ``row, statistic, <every column>`` with ``mean``, ``std``, ``n`` of the prior
      and the model and the ``mean`` of the gain;
    - ``<filename>.json``: the whole table (NaN and inf written as null);
    - ``<filename>.md``: the Markdown summary.

    Args:
        table: the output of ``build_metrics_table``.
        output_dir: destination folder, created if missing.
        filename: base name without extension. Defaults to ``"metrics"``.

    Returns:
        ``{"csv", "summary_csv", "json", "markdown"}`` paths.
    """
    columns = list(table["columns"])
    methods = [r for r in table["rows"] if r != _GAIN]
    cases = [["case", "fold", "method", *columns]]
    for case in table["cases"]:
        cases += [[case["case"], case["fold"], m, *[case[m][c] for c in columns]] for m in methods]
    summary = [["row", "statistic", *columns]]
    for m in methods:
        summary += [[m, stat, *[table["summary"][m][c][stat] for c in columns]] for stat in ("mean", "std", "n")]
    if _GAIN in table["rows"]:
        summary.append([_GAIN, "mean", *[table["gain"][c] for c in columns]])
    paths = {
        "csv": os.path.join(output_dir, f"{filename}.csv"),
        "summary_csv": os.path.join(output_dir, f"{filename}_summary.csv"),
        "json": os.path.join(output_dir, f"{filename}.json"),
        "markdown": os.path.join(output_dir, f"{filename}.md"),
    }
    write_text_atomic(paths["csv"], format_csv(cases))
    write_text_atomic(paths["summary_csv"], format_csv(summary))
    write_text_atomic(paths["json"], json.dumps(json_safe(table), indent=2) + "\n")
    write_text_atomic(paths["markdown"], format_markdown(table))
    return paths

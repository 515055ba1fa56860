# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Markdown, CSV and JSON of the Table 1 ablation (the result of ``xctrs_monai.apps.ablation.summarize_ablation``)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any

from xctrs_monai.apps.crossval_table import format_cell
from xctrs_monai.handlers.table_format import format_csv, json_safe, write_text_atomic

__all__ = ["format_ablation_markdown", "write_ablation"]

_SWITCHES = ("MAE", "MV-VGG", "MulSISNet", "RSC")


def _paper_cell(figure: Mapping[str, Any] | None, digits: int) -> str:
    if figure is None:
        return "–"
    if figure["source"] == "none":
        return "/"
    mean = "?" if figure["mean"] is None else f"{figure['mean']:.{digits}f}" + "*" * (figure["source"] == "derived")
    return f"{mean} ± " + ("?" if figure["std"] is None else f"{figure['std']:.{digits}f}")


def _ours_cell(stats: Mapping[str, Mapping[str, float]], column: str, digits: int) -> str:
    if column not in stats:
        return "/"
    return format_cell(stats[column]["mean"], stats[column]["std"], digits)


def _table(result: Mapping[str, Any], statistic: str, with_paper: bool) -> list[str]:
    columns, digits = result["columns"], result["digits"]
    switches = "| " * len(_SWITCHES) if with_paper else ""
    head = "| | " + (" | ".join(_SWITCHES) + " | " if with_paper else "") + " | ".join(columns) + " |"
    lines = [head, "|---|" + "---|" * (len(columns) + (len(_SWITCHES) if with_paper else 0))]
    prior = result["prior"]
    if prior["cases"]:
        cells = [_ours_cell(prior["cases"], c, digits[c]) for c in columns]
        lines.append(f"| {prior['title']} (± over cases) | {switches}" + " | ".join(cells) + " |")
    for row in result["rows"]:
        marks = "".join(f"{'✓' if row['switches'][s] else ''} | " for s in _SWITCHES) if with_paper else ""
        cells = [_ours_cell(row[statistic], c, digits[c]) for c in columns]
        lines.append(f"| {row['title']} | {marks}" + " | ".join(cells) + " |")
        if with_paper:
            paper = [_paper_cell(row["paper"].get(c), digits[c]) for c in columns]
            lines.append(f"| paper, row {row['row']} | {switches}" + " | ".join(paper) + " |")
    return lines


def _clear_of_noise(mean: float, std: float, n: int) -> str:
    """Whether a mean change over ``n`` seeds is more than twice its standard error (``std / sqrt(n)``)."""
    if n < 2 or not math.isfinite(std):
        return "–"
    return "yes" if abs(mean) > 2 * std / math.sqrt(n) else "no"


def _steps(result: Mapping[str, Any]) -> list[str]:
    lines = [
        "| step | column | ours: mean ± std over seeds | seeds | \\|change\\| > 2 SE | paper | same direction |",
        "|---|---|---|---|---|---|---|",
    ]
    for step in result["steps"]:
        for column, change in step["changes"].items():
            ours, paper, digits = change["ours"], change["paper"], result["digits"][column]
            paper_text, same = "?", "–"
            if paper is not None:
                paper_text = f"{paper:+.{digits}f}" + (" (derived)" if change["paper_source"] == "derived" else "")
                if math.isfinite(ours["mean"]) and paper != 0:
                    same = "yes" if (ours["mean"] > 0) == (paper > 0) else "NO"
            cells = [
                f"({step['from']}) → ({step['to']})",
                column,
                format_cell(ours["mean"], ours["std"], digits, signed=True),
                str(ours["n"]),
                _clear_of_noise(ours["mean"], ours["std"], ours["n"]),
                paper_text,
                same,
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def format_ablation_markdown(result: Mapping[str, Any]) -> str:
    """
    Render the ablation as Markdown: ours (mean ± std over seeds of the runs' means) with the paper's row under
    each of ours; ours over all held-out cases of all seeds; the change from the row above paired by seed beside
    the paper's; notes and the paper's derived values.

    Args:
        result: the output of ``summarize_ablation``.

    Returns:
        Markdown text.
    """
    n_seeds, n_cases = len(result["seeds"]), result["cases_per_run"]
    derived = {
        f"{f['mean']}: {f['note']}" for row in result["rows"] for f in row["paper"].values() if f["source"] == "derived"
    }
    lower = [c for c in result["columns"] if c in result["lower_is_better"]]
    lines = [
        "# Table 1 ablation (Ge et al., 2021): ours beside the paper",
        "",
        f"Ours: mean ± std over {n_seeds} seed(s) of each run's mean over its {n_cases} held-out cases (all folds"
        " pooled). Paper: mean ± std over its 69 patients (ten-fold cross-validation). Rows in the paper's order,"
        " whatever the numbers; none is left out.",
        "",
        *_table(result, "seeds", with_paper=True),
        "",
        f"## Ours over all held-out cases of all seeds ({n_seeds} x {n_cases} cases; mean ± std over cases, the"
        " spread the paper's ± describes)",
        "",
        *_table(result, "cases", with_paper=False),
        "",
        "## Change from the row above, paired by seed",
        "",
        'SE: standard error of the mean change over the seeds (std / sqrt(seeds)); "yes" when the change is more'
        " than twice it, i.e. told apart from the seed-to-seed noise.",
        "",
        *_steps(result),
        "",
        "## Notes",
        "",
        *[f"- {note}" for note in result["notes"]],
        "- /: no segmentation in the row (the segmentation head is not trained; no Dice, HD95 or ASSD is computed),"
        ' as "/" in the paper. –: not in the paper\'s Table 1. ?: not legible in our text copy of the paper.',
        *[f"- * derived from the paper's text: {text}." for text in sorted(derived)],
        f"- Lower is better for {', '.join(lower) or 'none'}; higher for the rest.",
    ]
    return "\n".join(lines) + "\n"


def _csv_rows(result: Mapping[str, Any]) -> list[list[Any]]:
    columns = result["columns"]
    rows: list[list[Any]] = [["row", "title", "source", "statistic", *columns]]
    prior = result["prior"]
    for stat in ("mean", "std", "n") if prior["cases"] else ():
        rows.append(["prior", prior["title"], "ours_cases", stat, *[prior["cases"][c][stat] for c in columns]])
    for row in result["rows"]:
        for source in ("seeds", "cases"):
            for stat in ("mean", "std", "n"):
                values = [row[source][c][stat] if c in row[source] else None for c in columns]
                rows.append([row["row"], row["title"], f"ours_{source}", stat, *values])
        for stat in ("mean", "std", "source"):
            values = [row["paper"][c][stat] if c in row["paper"] else None for c in columns]
            rows.append([row["row"], row["title"], "paper", stat, *values])
    return rows


def write_ablation(
    result: Mapping[str, Any], output_dir: str | os.PathLike, filename: str = "ablation"
) -> dict[str, str]:
    """
    Write ``<filename>.md`` (:func:`format_ablation_markdown`), ``<filename>.csv`` (per row: ours over seeds and
    over cases, the paper's mean, std and source), ``<filename>_runs.csv`` (each run's means) and
    ``<filename>.json`` (the whole result; NaN as null) into ``output_dir``, each atomically.

    Returns:
        ``{"markdown", "csv", "runs_csv", "json"}`` paths.
    """
    out = str(output_dir)
    paths = {
        "markdown": os.path.join(out, f"{filename}.md"),
        "csv": os.path.join(out, f"{filename}.csv"),
        "runs_csv": os.path.join(out, f"{filename}_runs.csv"),
        "json": os.path.join(out, f"{filename}.json"),
    }
    columns = result["columns"]
    runs = [["row", "seed", "cases", *columns]]
    for row in result["rows"]:
        for seed, run in row["runs"].items():
            runs.append([row["row"], seed, run["n"], *[run["means"].get(c) for c in columns]])
    write_text_atomic(paths["markdown"], format_ablation_markdown(result))
    write_text_atomic(paths["csv"], format_csv(_csv_rows(result)))
    write_text_atomic(paths["runs_csv"], format_csv(runs))
    write_text_atomic(paths["json"], json.dumps(json_safe(result), indent=2) + "\n")
    return paths

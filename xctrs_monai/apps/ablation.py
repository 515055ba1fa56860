# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""The ablation of Table 1 of Ge et al. (2021, Sect. 3.2.2) as one command, beside the paper's figures.

Rows (switches of ``XCTRSLoss``): (1) SpaDRNet with the MAE loss only; (2) + the multi-view VGG loss; (3) +
MulSISNet trained jointly, without RSC learning; (4) the full X-CTRSNet with RSC learning. Every row is a
cross-validation (:class:`~xctrs_monai.apps.crossval.CrossValidation`) on the same folds, once per seed (the seed
changes the network initialisation and the data order, not the phantoms or the folds), each in
``out_dir/row<n>_<name>/seed_<s>/`` and resumable fold by fold. Rows 1-2 do not train the segmentation head:
they are scored on the reconstruction only, and their Dice is "/" as in the paper.

The result (:mod:`xctrs_monai.apps.ablation_table` writes it) gives per row the mean +- std over the seeds of each
run's mean over its pooled held-out cases, the mean +- std over all cases of all seeds, the paper's figures
(:data:`PAPER_TABLE1`), and the change from the row above paired by seed. Rows keep the paper's order whatever
the numbers say.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xctrs_monai.apps.ablation_table import format_ablation_markdown, write_ablation
from xctrs_monai.apps.crossval import CrossValidation
from xctrs_monai.apps.crossval_config import parse_indices
from xctrs_monai.apps.crossval_table import describe, table1_columns
from xctrs_monai.constants import VERTEBRAE

__all__ = ["ABLATION_ROWS", "PAPER_TABLE1", "Ablation", "AblationRow", "PaperFigure", "summarize_ablation"]


@dataclass(frozen=True)
class AblationRow:
    """One row of Table 1: its number, name (folder ``row<number>_<name>``), title and loss switches."""

    number: int
    name: str
    title: str
    mv_perceptual: bool
    segmentation: bool
    rsc: bool

    @property
    def overrides(self) -> dict[str, bool]:
        """The ``XCTRSLoss`` switches of the row as config overrides."""
        return {
            "loss#use_mv_perceptual": self.mv_perceptual,
            "loss#use_segmentation": self.segmentation,
            "loss#use_rsc": self.rsc,
        }


ABLATION_ROWS: tuple[AblationRow, ...] = (
    AblationRow(1, "spadrnet", "(1) SpaDRNet, MAE only", False, False, False),
    AblationRow(2, "mv_vgg", "(2) + multi-view VGG loss", True, False, False),
    AblationRow(3, "mulsisnet", "(3) + MulSISNet, joint, no RSC", True, True, False),
    AblationRow(4, "rsc", "(4) + RSC learning (X-CTRSNet)", True, True, True),
)
"""The four rows of Table 1 in the paper's order."""


@dataclass(frozen=True)
class PaperFigure:
    """A figure of the paper's Table 1: ``source`` is ``"reported"``, ``"derived"`` (``note`` says how), ``"not
    legible"`` (in our text copy of the paper) or ``"none"`` (no segmentation: "/" in the paper)."""

    mean: float | None
    std: float | None = None
    source: str = "reported"
    note: str = ""


_NO_SEGMENTATION = {c: PaperFigure(None, source="none") for c in (*VERTEBRAE, "Mean")}


def _dice(means: Sequence[float], stds: Sequence[float]) -> dict[str, PaperFigure]:
    return {c: PaperFigure(m, s) for c, m, s in zip((*VERTEBRAE, "Mean"), means, stds)}


PAPER_TABLE1: dict[int, dict[str, PaperFigure]] = {
    1: {
        "SSIM": PaperFigure(0.712),
        "PSNR": PaperFigure(
            23.54, 1.90, "derived", "row 2's 23.85 dB minus the 0.31 dB that Sect. 3.2.2 credits to the MV-VGG loss"
        ),
        **_NO_SEGMENTATION,
    },
    2: {
        "SSIM": PaperFigure(
            0.727,
            None,
            "derived",
            "row 1's 0.712 x 1.0211: Sect. 3.2.2 credits the MV-VGG loss with +2.11 % SSIM, taken as relative like the"
            " paper's other SSIM gains (Sect. 3.2.3: 0.749 / 0.631 = +18.7 % over SIT, +13.78 % over the mean of"
            " Table 2's three methods)",
        ),
        "PSNR": PaperFigure(23.85, 1.88),
        **_NO_SEGMENTATION,
    },
    3: {
        "SSIM": PaperFigure(0.736, 0.045),
        "PSNR": PaperFigure(None, 1.63, "not legible"),
        **_dice(
            (72.41, 81.81, 80.72, 79.78, 77.77, 80.71, 83.22, 79.49), (10.59, 9.13, 6.64, 8.79, 10.43, 6.55, 4.22, 8.05)
        ),
    },
    4: {
        "SSIM": PaperFigure(0.749, 0.043),
        "PSNR": PaperFigure(24.58, 1.56),
        **_dice(
            (74.71, 83.25, 81.89, 80.15, 78.37, 80.91, 83.80, 80.44), (8.39, 7.21, 5.83, 8.42, 9.75, 6.45, 4.88, 7.27)
        ),
    },
}
"""Table 1 of Ge et al. (2021) by row number and column (``SSIM``, ``PSNR``, ``C1``..``C7``, ``Mean``), mean +- std
over their 69 patients (ten-fold cross-validation). Row 1's SSIM std and row 2's are not legible in our copy."""


def _paper_columns() -> dict[str, str]:
    """Our column name -> the key of :data:`PAPER_TABLE1`."""
    return dict(zip(table1_columns(), ("SSIM", "PSNR", *VERTEBRAE, "Mean")))


def _step(tables: Mapping[int, Mapping[str, Any]], before: Mapping[int, Mapping], column: str) -> dict[str, Any]:
    """The change of ``column`` from ``before`` to ``tables`` paired by seed: ``{mean, std, n}``."""
    diffs = [
        tables[s]["summary"]["model"][column]["mean"] - before[s]["summary"]["model"][column]["mean"]
        for s in tables
        if s in before
    ]
    return describe(diffs)


def summarize_ablation(
    rows: Sequence[AblationRow], tables: Mapping[tuple[int, int], Mapping[str, Any]], notes: Sequence[str] = ()
) -> dict[str, Any]:
    """
    Gather the pooled cross-validation tables of every (row, seed) run into the ablation result.

    Args:
        rows: the rows that were run, in the paper's order.
        tables: ``{(row number, seed): table}`` from ``CrossValidation.run``; every row with the same seeds.
        notes: notes printed under the table. Defaults to ().

    Returns:
        ``{"columns", "digits", "lower_is_better", "seeds", "cases_per_run", "prior": {"title", "cases"},
        "rows": [{"row", "title", "switches", "runs": {seed: {"n", "means"}}, "seeds": {column: {mean, std,
        n}}, "cases": {...}, "paper": {column: PaperFigure fields}}], "steps": [...], "notes"}``; ``seeds``
        statistics are over the runs' means, ``cases`` over all held-out cases of all seeds.

    Raises:
        ValueError: when a row misses a seed that another has.
    """
    seeds = sorted({s for _, s in tables})
    for row in rows:
        missing = [s for s in seeds if (row.number, s) not in tables]
        if missing:
            raise ValueError(f"row {row.number} has no run for seeds {missing}.")
    reference = max(tables.values(), key=lambda t: len(t["columns"]))  # a row with segmentation, when there is one
    columns = list(reference["display_columns"])
    paper_columns = _paper_columns()
    result: dict[str, Any] = {
        "columns": columns,
        "digits": {c: reference["digits"].get(c, 2) for c in columns},
        "lower_is_better": [c for c in columns if c in reference["lower_is_better"]],
        "seeds": seeds,
        "cases_per_run": len(reference["cases"]),
        "prior": {
            "title": reference["titles"].get("prior", "X-ray-blind prior"),
            "cases": {c: reference["summary"]["prior"][c] for c in columns} if "prior" in reference["rows"] else {},
        },
        "rows": [],
        "steps": [],
        "notes": list(notes),
    }
    prior = result["prior"]["cases"]
    moved = [  # the prior depends on the training split only: every run must score the same one
        f"row {n}, seed {s}"
        for (n, s), t in tables.items()
        if "prior" in t["rows"]
        and any(
            abs(t["summary"]["prior"][c]["mean"] - prior[c]["mean"]) > 1e-6 * max(1.0, abs(prior[c]["mean"]))
            for c in t["columns"]
            if c in prior and math.isfinite(prior[c]["mean"])
        )
    ]
    if moved:
        result["notes"].append(f"The X-ray-blind prior differs in {moved}: the data changed between runs.")
    by_row = {row.number: {s: tables[(row.number, s)] for s in seeds} for row in rows}
    for row in rows:
        runs = by_row[row.number]
        present = [c for c in columns if c in runs[seeds[0]]["columns"]]
        pooled = {c: [case["model"][c] for t in runs.values() for case in t["cases"]] for c in present}
        result["rows"].append(
            {
                "row": row.number,
                "title": row.title,
                "switches": {"MAE": True, "MV-VGG": row.mv_perceptual, "MulSISNet": row.segmentation, "RSC": row.rsc},
                "runs": {
                    str(s): {"n": len(t["cases"]), "means": {c: t["summary"]["model"][c]["mean"] for c in present}}
                    for s, t in runs.items()
                },
                "seeds": {c: describe([t["summary"]["model"][c]["mean"] for t in runs.values()]) for c in present},
                "cases": {c: describe(v) for c, v in pooled.items()},
                "paper": {c: vars(PAPER_TABLE1[row.number][key]) for c, key in paper_columns.items()},
            }
        )
    for before, after in zip(rows[:-1], rows[1:]):
        changes = {}
        for c, key in paper_columns.items():
            if key not in ("SSIM", "PSNR", "Mean") or c not in by_row[after.number][seeds[0]]["columns"]:
                continue
            if c not in by_row[before.number][seeds[0]]["columns"]:
                continue
            a, b = PAPER_TABLE1[before.number][key], PAPER_TABLE1[after.number][key]
            known = a.mean is not None and b.mean is not None
            changes[c] = {
                "ours": _step(by_row[after.number], by_row[before.number], c),
                "paper": float(np.round(b.mean - a.mean, 4)) if known else None,
                "paper_source": ("reported" if a.source == b.source == "reported" else "derived") if known else None,
            }
        result["steps"].append({"from": before.number, "to": after.number, "changes": changes})
    return result


class Ablation:
    """
    Run Table 1's rows as cross-validations with several seeds and write the ablation table beside the paper's.

    Example::

        ablation = Ablation("runs/ablation", config_file="bundle/configs/quick.json", seeds=[0, 1, 2])
        result = ablation.run()  # runs/ablation/ablation.md, .csv, .json; one folder per row and seed

    Args:
        out_dir: folder of the runs (``row<n>_<name>/seed_<s>/fold_<k>/``) and the ablation table.
        seeds: the seeds of every row; at least 3 to tell a difference from noise. Defaults to ``(0, 1, 2)``.
        rows: the rows to run, numbers of :data:`ABLATION_ROWS`; they are reported in the paper's order.
            Defaults to None: all four.
        config_file: config file(s) layered after the bundle's, as in ``CrossValidation``. Defaults to None.
        folds: the folds of every run. Defaults to None: every fold of the datalist.
        datalist: a datalist with folds instead of the bundle's phantoms. Defaults to None.
        checkpoint: ``"last"`` or ``"best"``, as in ``CrossValidation``. Defaults to ``"last"``.
        vgg_weights: VGG-16 weights of the multi-view loss (e.g. ImageNet-pretrained, as in the paper). Defaults to
            None: the config's (random initialisation in the bundle).
        overrides: further config overrides for every run. Defaults to None.
        meta_file: the bundle's metadata. Defaults to ``bundle/configs/metadata.json``.
        logging_file: the logging config of the subprocesses. Defaults to ``bundle/configs/logging.conf``.

    Raises:
        ValueError: for an unknown row, bad seeds, a missing ``vgg_weights`` file, an override of a loss switch,
            or anything ``CrossValidation`` refuses.
    """

    def __init__(
        self,
        out_dir: str | os.PathLike,
        seeds: int | str | Sequence[int] = (0, 1, 2),
        rows: int | str | Sequence[int] | None = None,
        config_file: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
        folds: int | str | Sequence[int] | None = None,
        datalist: str | os.PathLike | None = None,
        checkpoint: str = "last",
        vgg_weights: str | os.PathLike | None = None,
        overrides: Mapping[str, Any] | None = None,
        meta_file: str | os.PathLike | None = None,
        logging_file: str | os.PathLike | None = None,
    ) -> None:
        self.seeds = parse_indices(seeds, "seeds") or []
        numbers = parse_indices(rows, "rows") or [r.number for r in ABLATION_ROWS]
        unknown = sorted(set(numbers) - {r.number for r in ABLATION_ROWS})
        if unknown:
            raise ValueError(f"rows must be among {[r.number for r in ABLATION_ROWS]} (Table 1), got {unknown}.")
        self.rows = [r for r in ABLATION_ROWS if r.number in numbers]
        overrides = dict(overrides or {})
        switches = sorted(set(overrides) & set(ABLATION_ROWS[0].overrides))
        if switches:
            raise ValueError(f"{switches} are set per row by the ablation; choose rows with rows= instead.")
        if vgg_weights is not None:
            if not Path(vgg_weights).is_file():
                raise ValueError(f"vgg_weights '{vgg_weights}' does not exist.")
            overrides["vgg_weights"] = str(Path(vgg_weights).absolute())
        self.out_dir = Path(out_dir).absolute()
        self.runs = {
            (row.number, seed): CrossValidation(
                self.out_dir / f"row{row.number}_{row.name}" / f"seed_{seed}",
                config_file=config_file,
                folds=folds,
                datalist=datalist,
                seed=seed,
                checkpoint=checkpoint,
                overrides={**overrides, **row.overrides},
                meta_file=meta_file,
                logging_file=logging_file,
            )
            for seed in self.seeds
            for row in self.rows
        }
        first = next(iter(self.runs.values()))
        for (number, seed), cv in self.runs.items():
            if cv.folds != first.folds or any(
                cv.settings(k)["test_cases"] != first.settings(k)["test_cases"] for k in cv.folds
            ):
                raise ValueError(
                    f"row {number}, seed {seed} has other folds than the first run; rows must share folds."
                )
        self.folds, self.checkpoint, self.datalist = first.folds, checkpoint, first.datalist
        training = first.configs["training"]
        weights = training.get("vgg_weights")
        if isinstance(weights, str) and weights.startswith("$"):  # the bundle's default: its large file, if asked for
            weights = "the bundle's models/vgg16-397923af.pth (large_files.yml)" if training.get("pretrained_vgg") else None
        self.vgg_weights = weights
        self.paths: dict[str, str] = {}

    def notes(self) -> list[str]:
        """The notes printed under the table: the VGG weights, the scored checkpoint, the number of seeds."""
        notes = [
            f"Folds {self.folds} of the datalist {self.datalist}; seeds {self.seeds}; the same folds in every run.",
            "VGG-16 of the multi-view loss: "
            + (
                f"weights from {self.vgg_weights}."
                if self.vgg_weights
                else "random initialisation (the paper's is ImageNet-pretrained; pass --vgg_weights to use such"
                " weights)."
            ),
            "Scored weights: "
            + (
                "the last epoch of each fold (nothing selected on the held-out fold)."
                if self.checkpoint == "last"
                else "model.pt, the epoch with the best validation metric on the held-out fold itself (optimistic)."
            ),
        ]
        if len(self.seeds) < 3:
            notes.append(f"Only {len(self.seeds)} seed(s): the spread over seeds is not estimated well; use >= 3.")
        return notes

    def run(self, keep_going: bool = True) -> dict[str, Any]:
        """Run every (row, seed) cross-validation that is not finished, seed by seed, then write the table.

        Args:
            keep_going: run the other folds and runs after one fails (the error comes at the end). Defaults to True.

        Returns:
            the result of :func:`summarize_ablation`.

        Raises:
            ValueError: before anything runs, when a fold's folder was made with other settings.
            RuntimeError: when a run failed, naming the failed folds' logs; no ablation table is written.
        """
        for cv in self.runs.values():
            for fold in cv.folds:
                cv.state(fold)
        tables, failures = {}, []
        for (number, seed), cv in self.runs.items():
            print(f"=== row {number} ({ABLATION_ROWS[number - 1].title}), seed {seed}: {cv.out_dir}", flush=True)
            try:
                tables[(number, seed)] = cv.run(keep_going=keep_going, quiet=True)
            except RuntimeError as e:
                failures.append(f"row {number}, seed {seed}: {e}")
                if not keep_going:
                    break
        if failures:
            raise RuntimeError(
                "no ablation table written; failed runs:\n" + "\n".join(failures) + "\nFix the cause and run the same"
                " command again: finished folds are skipped."
            )
        result = summarize_ablation(self.rows, tables, self.notes())
        self.paths = write_ablation(result, self.out_dir)
        print(format_ablation_markdown(result), flush=True)
        print(f"ablation table: {self.paths['markdown']}", flush=True)
        return result

# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Cross-validation of the bundle as one command: each fold trained and evaluated, resumable, the cases pooled.

Ge et al. (2021, Sect. 3.1) evaluate by ten-fold cross-validation. :class:`CrossValidation` trains and evaluates
the bundle (``train.json``, then ``train.json`` + ``evaluate.json``, each with the user's config files and
overrides) on every fold of the datalist, then pools the held-out cases of all folds into one table
(:mod:`xctrs_monai.apps.crossval_table`).

Each fold runs in its own subprocess, ``python -m xctrs_monai.apps.bundle_steps <fold>/plan.json``, which calls
MONAI's ``monai.bundle.run`` for the training and then for the evaluation (the same call as ``python -m
monai.bundle run``; ``<fold>/commands.sh`` lists the two equivalent commands). A subprocess rather than a
``ConfigWorkflow`` in this process: everything a fold holds (cached datasets, networks, a CUDA context) goes back
to the system when it ends, a crash (an exception, a kill for memory) ends that fold only and leaves its
traceback in the fold's log, and the other folds still run.

Layout of ``out_dir/fold_<k>/``: ``overrides.json`` (fold, seed, output folders, the user's overrides),
``evaluate_overrides.json`` (which checkpoint is scored), ``settings.json`` (the merged configs and the case
lists the fold runs with), ``status.json`` (completed steps and their durations), ``fold.log`` (the
subprocess's output, appended at each attempt), ``commands.sh``, ``models/``, ``runs/`` (TensorBoard) and
``eval/metrics.{json,csv,md}``. The pooled table is ``out_dir/crossval.{md,json,csv}``, ``crossval_summary.csv``
and ``crossval_folds.csv``.

Resuming: a fold whose evaluation completed and whose ``settings.json`` matches is skipped; a fold whose
training completed is only evaluated; an interrupted fold is started again and the bundle's own resume
(``resume_ckpt``) continues from its latest checkpoint. A fold folder made with other settings is an error
(nothing is overwritten).

Which weights are scored: ``checkpoint="last"`` (default) scores the weights of the last epoch, so that nothing
is chosen on the held-out fold, which is the test set of the fold; ``"best"`` scores the bundle's ``model.pt``,
the epoch with the best validation metric on that same held-out fold (optimistic).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from monai.bundle import ConfigParser

from xctrs_monai.apps.crossval_config import (
    CHECKPOINTS,
    EVALUATE_CONFIG,
    LOGGING_FILE,
    META_FILE,
    TRAIN_CONFIG,
    checkpoint_overrides,
    merged_config,
    parse_indices,
    plain,
    read_status,
    reconstruction_only_overrides,
    resolve_config_path,
    settings_changes,
    trains_segmenter,
)
from xctrs_monai.apps.crossval_table import load_fold_table, pool_fold_tables, write_crossval_table
from xctrs_monai.data.datalist import load_datalist_items, split_by_fold
from xctrs_monai.data.io import save_json
from xctrs_monai.handlers.table_format import format_metrics_table, write_text_atomic

__all__ = ["CrossValidation", "FoldError"]

_PER_FOLD_KEYS = ("fold", "ckpt_dir", "log_dir", "output_dir")
_STEPS = ("training", "evaluation")


class FoldError(RuntimeError):
    """A fold's subprocess failed; ``fold``, ``log`` (its log file) and ``returncode`` say which and where."""

    def __init__(self, fold: int, log: Path, returncode: int, tail: str = "") -> None:
        self.fold, self.log, self.returncode = fold, log, returncode
        super().__init__(f"fold {fold} failed (exit code {returncode}); see {log}" + (f":\n{tail}" if tail else "."))


def _tail(path: Path, lines: int = 20) -> str:
    text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


class CrossValidation:
    """
    Train and evaluate the bundle on every fold of a datalist, each fold in its own subprocess, and pool the
    held-out cases of all folds into one table (Ge et al., 2021, Sect. 3.1). See the module docstring for the
    folder layout, resuming, and which weights are scored.

    Example::

        cv = CrossValidation("runs/cv", config_file="bundle/configs/quick.json", folds=[0, 1])
        table = cv.run()  # writes runs/cv/fold_0/..., runs/cv/fold_1/..., runs/cv/crossval.md

    A run whose loss does not train the segmentation head (``loss#use_segmentation`` and ``loss#use_rsc`` both
    false) is scored on the reconstruction only (:func:`reconstruction_only_overrides`).

    Args:
        out_dir: folder of the folds and the pooled table.
        config_file: config file(s) layered after the bundle's ``train.json`` (training) and ``train.json`` +
            ``evaluate.json`` (evaluation), e.g. ``bundle/configs/quick.json``. Defaults to None.
        folds: the folds to hold out, e.g. ``[0, 1]`` or ``"0,1"``. Defaults to None: every fold of the datalist.
        datalist: a decathlon datalist with a ``fold`` per item (``scripts/prepare_dataset.py`` writes one) to use
            instead of the config's (the bundle's phantoms); sets ``datalist`` and ``dataset_dir``. Defaults to None.
        seed: the config's ``seed`` (network initialisation and data order; the phantoms and the folds do not
            depend on it). Defaults to None: the config's.
        checkpoint: ``"last"`` or ``"best"``, see the module docstring. Defaults to ``"last"``.
        overrides: further config overrides ``{id: value}``, e.g. ``{"epochs": 40}``. Defaults to None.
        meta_file: the bundle's metadata. Defaults to ``bundle/configs/metadata.json``.
        logging_file: the logging config of the subprocesses. Defaults to ``bundle/configs/logging.conf``.

    Raises:
        ValueError: for a missing config, datalist or meta file, a datalist without folds, a fold that is not in
            it, a bad ``seed`` or ``checkpoint``, or an override of a key the runner sets per fold.
    """

    def __init__(
        self,
        out_dir: str | os.PathLike,
        config_file: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
        folds: int | str | Sequence[int] | None = None,
        datalist: str | os.PathLike | None = None,
        seed: int | None = None,
        checkpoint: str = "last",
        overrides: Mapping[str, Any] | None = None,
        meta_file: str | os.PathLike | None = None,
        logging_file: str | os.PathLike | None = None,
    ) -> None:
        if checkpoint not in CHECKPOINTS:
            raise ValueError(f"checkpoint must be one of {CHECKPOINTS}, got {checkpoint!r}.")
        reserved = sorted(set(overrides or {}) & {*_PER_FOLD_KEYS, "seed"})
        if reserved:
            raise ValueError(f"{reserved} are set per fold by the cross-validation; use folds=, seed= and out_dir.")
        self.out_dir = Path(out_dir).absolute()
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise ValueError(f"out_dir '{out_dir}' exists and is not a folder.")
        if isinstance(config_file, (str, os.PathLike)):
            config_file = [config_file]
        user_files = [resolve_config_path(f, "config file") for f in config_file or []]
        self.train_files = [resolve_config_path(TRAIN_CONFIG, "bundle config"), *user_files]
        self.eval_files = [self.train_files[0], resolve_config_path(EVALUATE_CONFIG, "bundle config"), *user_files]
        self.meta_file = resolve_config_path(meta_file or META_FILE, "meta file")
        self.logging_file = resolve_config_path(logging_file or LOGGING_FILE, "logging file")
        self.checkpoint = checkpoint

        common: dict[str, Any] = {}
        if seed is not None:
            if isinstance(seed, bool) or int(seed) != seed or seed < 0:
                raise ValueError(f"seed must be an integer >= 0, got {seed!r}.")
            common["seed"] = int(seed)
        if datalist is not None:
            path = Path(datalist).absolute()
            if not path.is_file():
                raise ValueError(f"datalist '{datalist}' does not exist.")
            common.update(datalist=str(path), dataset_dir=str(path.parent))
        common.update(overrides or {})
        train, evaluate = merged_config(self.train_files, common), merged_config(self.eval_files, common)
        self.segmentation = trains_segmenter(train)
        if not self.segmentation:
            common.update(reconstruction_only_overrides(train, evaluate))
            train, evaluate = merged_config(self.train_files, common), merged_config(self.eval_files, common)
        self.evaluate_overrides = checkpoint_overrides(evaluate, checkpoint)
        evaluate.update(self.evaluate_overrides)
        self.overrides = common
        self.configs = plain({"training": train.get(), "evaluation": evaluate.get()})

        self.datalist, self.items = self._read_datalist(train)
        present = sorted({int(item["fold"]) for item in self.items})
        if len(present) < 2:
            raise ValueError(f"datalist {self.datalist} has folds {present}; cross-validation needs at least 2.")
        chosen = parse_indices(folds, "folds")
        absent = sorted(set(chosen or []) - set(present))
        if absent:
            raise ValueError(f"folds {absent} are not in the datalist {self.datalist}, which has folds {present}.")
        self.folds: list[int] = chosen or present
        self.paths: dict[str, str] = {}

    @staticmethod
    def _read_datalist(parser: ConfigParser) -> tuple[str, list[dict]]:
        value = parser.get_parsed_content("datalist")  # the bundle's phantoms are written here on first use
        where = f"'{value}'" if isinstance(value, (str, os.PathLike)) else "of the config"
        try:
            items = load_datalist_items(value)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ValueError(f"datalist {where} cannot be read: {e}") from e
        missing = [i for i, item in enumerate(items) if "fold" not in item]
        if not items or missing:
            raise ValueError(
                f"datalist {where} needs a 'fold' on every item (items {missing[:5]} have none, {len(items)} items);"
                " write it with scripts/prepare_dataset.py."
            )
        return where, items

    def fold_dir(self, fold: int) -> Path:
        """The folder of ``fold``: ``out_dir/fold_<fold>``."""
        return self.out_dir / f"fold_{fold}"

    def settings(self, fold: int) -> dict[str, Any]:
        """What a fold's results depend on: the merged training and evaluation configs (without the per-fold
        folders), the fold, and its training and held-out cases."""
        train, test = split_by_fold(self.items, fold)
        names = [[str(item.get("case_id") or item.get("image")) for item in part] for part in (train, test)]
        return plain({"fold": fold, "train_cases": names[0], "test_cases": names[1], **self.configs})

    def state(self, fold: int) -> str:
        """``"done"`` (evaluated with these settings), ``"trained"`` (to be evaluated) or ``"new"`` (to be trained,
        resuming from a checkpoint in the fold's ``models/`` when there is one).

        Raises:
            ValueError: when the fold's folder was made with other settings.
        """
        folder = self.fold_dir(fold)
        path = folder / "settings.json"
        if not path.is_file():
            return "new"
        try:
            stored = json.loads(path.read_text())
        except ValueError as e:
            raise ValueError(f"'{path}' is not valid JSON ({e}); delete '{folder}' to run the fold again.") from e
        settings = self.settings(fold)
        if stored != settings:
            count, changes = settings_changes(stored, settings)
            raise ValueError(
                f"fold {fold} in '{folder}' was run with other settings ({count} differ: {changes}); use another"
                f" out_dir, or delete '{folder}' to run the fold again."
            )
        status = read_status(folder / "status.json")
        if "evaluation" in status["completed"] and (folder / "eval" / "metrics.json").is_file():
            return "done"
        return "trained" if "training" in status["completed"] else "new"

    def _step_args(self, folder: Path) -> dict[str, dict[str, Any]]:
        common = {"meta_file": self.meta_file, "logging_file": self.logging_file}
        overrides, evaluate = str(folder / "overrides.json"), str(folder / "evaluate_overrides.json")
        return {
            "training": {"config_file": [*self.train_files, overrides], **common},
            "evaluation": {"config_file": [*self.eval_files, overrides, evaluate], **common},
        }

    def _write_fold_files(self, fold: int, steps: Sequence[str]) -> Path:
        folder = self.fold_dir(fold)
        places = {"ckpt_dir": "models", "log_dir": "runs", "output_dir": "eval"}
        overrides = {**self.overrides, "fold": fold, **{k: str(folder / v) for k, v in places.items()}}
        save_json(overrides, folder / "overrides.json")
        save_json(self.evaluate_overrides, folder / "evaluate_overrides.json")
        save_json(self.settings(fold), folder / "settings.json")
        args = self._step_args(folder)
        lines = [
            f"# fold {fold}: the MONAI bundle commands its subprocess runs (python -m xctrs_monai.apps.bundle_steps"
            " plan.json), to rerun a step by hand",
            f"cd {shlex.quote(os.getcwd())}",
        ]
        for step in _STEPS:
            options = [
                f"--{k} {shlex.quote(v if isinstance(v, str) else json.dumps(v))}" for k, v in args[step].items()
            ]
            lines.append(f"{shlex.quote(sys.executable)} -m monai.bundle run " + " ".join(options))
        write_text_atomic(str(folder / "commands.sh"), "\n".join(lines) + "\n")
        plan = {"status_file": str(folder / "status.json"), "steps": [{"name": s, "args": args[s]} for s in steps]}
        save_json(plan, folder / "plan.json")
        return folder / "plan.json"

    def run_fold(self, fold: int) -> str:
        """Train and/or evaluate ``fold`` as its :meth:`state` requires, in a subprocess.

        Returns:
            ``"skipped"`` (already done) or ``"ran"``.

        Raises:
            FoldError: when the subprocess fails or writes no ``eval/metrics.json``.
        """
        folder = self.fold_dir(fold)
        metrics = folder / "eval" / "metrics.json"
        state = self.state(fold)
        if state == "done":
            print(f"fold {fold}: finished, skipped ({metrics})", flush=True)
            return "skipped"
        steps = list(_STEPS) if state == "new" else ["evaluation"]
        folder.mkdir(parents=True, exist_ok=True)
        if state == "new":
            (folder / "status.json").unlink(missing_ok=True)
        plan = self._write_fold_files(fold, steps)
        log = folder / "fold.log"
        print(f"fold {fold}: {' + '.join(steps)}; log: {log}", flush=True)
        command = [sys.executable, "-m", "xctrs_monai.apps.bundle_steps", str(plan)]
        with open(log, "a", encoding="utf-8") as f:
            f.write(f"\n##### attempt: {shlex.join(command)}\n")
            f.flush()
            returncode = subprocess.run(command, stdout=f, stderr=subprocess.STDOUT, check=False).returncode
        if returncode != 0:
            raise FoldError(fold, log, returncode, _tail(log))
        if not metrics.is_file():
            raise FoldError(fold, log, returncode, f"no {metrics}: the evaluation config needs a MetricsTableHandler.")
        seconds = read_status(folder / "status.json")["seconds"]
        print(f"fold {fold}: done (" + ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items()) + ")", flush=True)
        return "ran"

    def run(self, keep_going: bool = True, quiet: bool = False) -> dict[str, Any]:
        """Run every fold (see :meth:`run_fold`), then :meth:`aggregate`.

        Args:
            keep_going: run the other folds after one fails (the error comes at the end). Defaults to True.
            quiet: do not print the pooled table. Defaults to False.

        Returns:
            the pooled table.

        Raises:
            ValueError: before anything runs, when a fold's folder was made with other settings.
            RuntimeError: when a fold failed, naming each failed fold's log; no pooled table is written.
        """
        for fold in self.folds:
            self.state(fold)
        failures: list[FoldError] = []
        for fold in self.folds:
            try:
                self.run_fold(fold)
            except FoldError as e:
                print(str(e), file=sys.stderr, flush=True)
                failures.append(e)
                if not keep_going:
                    break
        if failures:
            raise RuntimeError(
                f"{len(failures)} fold(s) failed, no pooled table written: "
                + "; ".join(f"fold {e.fold} (exit code {e.returncode}), log {e.log}" for e in failures)
                + ". Fix the cause and run the same command again: finished folds are skipped."
            )
        return self.aggregate(quiet=quiet)

    def aggregate(self, quiet: bool = False) -> dict[str, Any]:
        """Pool the evaluated folds into ``out_dir/crossval.*`` (see ``crossval_table.pool_fold_tables``).

        Returns:
            the pooled table, with ``seconds`` (each fold's step durations) and ``settings``.

        Raises:
            ValueError: when a fold has not been evaluated.
        """
        table = pool_fold_tables({k: load_fold_table(self.fold_dir(k) / "eval" / "metrics.json") for k in self.folds})
        table["seconds"] = {str(k): read_status(self.fold_dir(k) / "status.json")["seconds"] for k in self.folds}
        table["settings"] = plain(
            {
                "config_files": self.train_files[1:],
                "overrides": self.overrides,
                "checkpoint": self.checkpoint,
                "datalist": self.datalist,
                "segmentation": self.segmentation,
            }
        )
        self.paths = write_crossval_table(table, self.out_dir)
        if not quiet:
            print(format_metrics_table(table), flush=True)
            print(f"cross-validation table: {self.paths['markdown']}", flush=True)
        return table

# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Cross-validation of the bundle as one command (Ge et al., 2021, Sect. 3.1): each fold trained and evaluated in its
own subprocess, resumable fold by fold, the held-out cases of all folds pooled into a table in Table 1's layout.

Examples::

    # every fold of the bundle's phantoms, with the demo configuration
    python scripts/cross_validate.py --out_dir runs/cv --config_file bundle/configs/quick.json
    # folds 0 and 1 of a dataset made by scripts/prepare_dataset.py, 40 epochs
    python scripts/cross_validate.py --out_dir runs/cv_verse --datalist data/verse/datalist.json --folds 0,1 --epochs 40

Any other ``--id value`` is a config override (``--epochs 40``, ``--loss#use_rsc False``). Run the same command
again to resume: finished folds are skipped, an interrupted one continues from its last checkpoint. Output:
``<out_dir>/crossval.md`` (and ``.json``, ``.csv``, ``_summary.csv``, ``_folds.csv``), one ``fold_<k>/`` per fold.
See :mod:`xctrs_monai.apps.crossval`.
"""

from __future__ import annotations

import sys

import fire

from xctrs_monai.apps.crossval import CrossValidation

__all__ = ["main"]


def main(
    out_dir: str,
    config_file: str | list[str] | None = None,
    folds: int | str | list[int] | None = None,
    datalist: str | None = None,
    seed: int | None = None,
    checkpoint: str = "last",
    keep_going: bool = True,
    **overrides,
) -> None:
    """Cross-validate and print the pooled table; exit code 1 with the reason (and failed folds' logs) on failure.

    Args:
        out_dir: folder of the folds and the table.
        config_file: config file(s) layered after the bundle's train.json (and evaluate.json), e.g. quick.json.
        folds: folds to hold out, e.g. 0,1. Defaults to every fold of the datalist.
        datalist: a datalist with folds (scripts/prepare_dataset.py) instead of the bundle's phantoms.
        seed: the config's seed (network initialisation, data order). Defaults to the config's.
        checkpoint: "last" (the last epoch's weights, default) or "best" (model.pt, chosen on the held-out fold).
        keep_going: run the other folds after one fails. Defaults to True.
        overrides: config overrides, e.g. --epochs 40.
    """
    try:
        CrossValidation(out_dir, config_file, folds, datalist, seed, checkpoint, overrides).run(keep_going=keep_going)
    except (ValueError, RuntimeError) as e:
        print(f"cross_validate: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    fire.Fire(main)

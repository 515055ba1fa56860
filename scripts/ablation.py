# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""The Table 1 ablation of Ge et al. (2021) as one command: the X-ray-blind prior, then (1) SpaDRNet with MAE only,
(2) + multi-view VGG loss, (3) + MulSISNet trained jointly without RSC, (4) full X-CTRSNet with RSC; each a
cross-validation on the same folds, repeated per seed, beside the paper's figures.

Examples::

    python scripts/ablation.py --out_dir runs/ablation --config_file bundle/configs/quick.json --seeds 0,1,2
    python scripts/ablation.py --out_dir runs/ablation --config_file bundle/configs/quick.json --folds 0,1 \\
        --vgg_weights weights/vgg16_imagenet.pth

Any other ``--id value`` is a config override for every run. Run the same command again to resume run by run
(fold by fold). Output: ``<out_dir>/ablation.md`` (and ``.json``, ``.csv``, ``_runs.csv``), one
``row<n>_<name>/seed_<s>/`` cross-validation per row and seed. See :mod:`xctrs_monai.apps.ablation`.
"""

from __future__ import annotations

import sys

import fire

from xctrs_monai.apps.ablation import Ablation

__all__ = ["main"]


def main(
    out_dir: str,
    seeds: int | str | list[int] = (0, 1, 2),
    rows: int | str | list[int] | None = None,
    config_file: str | list[str] | None = None,
    folds: int | str | list[int] | None = None,
    datalist: str | None = None,
    checkpoint: str = "last",
    vgg_weights: str | None = None,
    keep_going: bool = True,
    **overrides,
) -> None:
    """Run the ablation and print its table; exit code 1 with the reason (and failed folds' logs) on failure.

    Args:
        out_dir: folder of the runs and the table.
        seeds: seeds of every row (>= 3 to tell a difference from noise). Defaults to 0,1,2.
        rows: rows of Table 1 to run, e.g. 1,4. Defaults to all four.
        config_file: config file(s) layered after the bundle's train.json (and evaluate.json), e.g. quick.json.
        folds: folds of every run, e.g. 0,1. Defaults to every fold of the datalist.
        datalist: a datalist with folds (scripts/prepare_dataset.py) instead of the bundle's phantoms.
        checkpoint: "last" (the last epoch's weights, default) or "best" (model.pt, chosen on the held-out fold).
        vgg_weights: VGG-16 weights of the multi-view loss (the paper's is ImageNet-pretrained). Defaults to random.
        keep_going: run the other runs after one fails. Defaults to True.
        overrides: config overrides for every run, e.g. --epochs 40.
    """
    try:
        ablation = Ablation(out_dir, seeds, rows, config_file, folds, datalist, checkpoint, vgg_weights, overrides)
        ablation.run(keep_going=keep_going)
    except (ValueError, RuntimeError) as e:
        print(f"ablation: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    fire.Fire(main)

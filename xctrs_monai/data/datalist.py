# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Decathlon-style datalists with cross-validation folds (10 folds in Ge et al., 2021, Sec. 3.1)."""

from __future__ import annotations

import os
from collections.abc import Hashable, Sequence
from pathlib import Path
import numpy as np

__all__ = ["assign_folds", "split_by_fold", "load_datalist_items"]


def assign_folds(groups: Sequence[Hashable], n_folds: int = 10, seed: int = 0) -> list[int]:
    """Assign a fold to each case so that all cases of a group share a fold and folds are balanced.

    Groups are placed largest first, each into the fold that holds the fewest cases so far (ties
    broken in a seeded random order), so fold sizes differ by at most the largest group size and
    by at most one case when every group has one case.

    Args:
        groups: one group id per case (e.g. a patient id; use the case id for independent cases).
        n_folds: number of folds. Defaults to 10.
        seed: seed of the tie-breaking order. Defaults to 0.

    Returns:
        one fold index in ``0..n_folds-1`` per case, in the order of ``groups``.

    Raises:
        ValueError: when ``n_folds < 1``.
    """
    if int(n_folds) != n_folds or n_folds < 1:
        raise ValueError(f"n_folds must be a positive integer, got {n_folds}.")
    rng = np.random.default_rng(seed)
    members: dict[Hashable, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    order = list(members)
    shuffled = [order[k] for k in rng.permutation(len(order))]
    shuffled.sort(key=lambda g: -len(members[g]))  # stable: random order within equal sizes
    counts = np.zeros(int(n_folds), dtype=int)
    fold_order = rng.permutation(int(n_folds))
    folds = [0] * len(groups)
    for g in shuffled:
        k = int(fold_order[np.argmin(counts[fold_order])])
        counts[k] += len(members[g])
        for i in members[g]:
            folds[i] = k
    return folds


def load_datalist_items(datalist: str | os.PathLike | Sequence[dict], data_list_key: str = "training") -> list[dict]:
    """Items of a datalist given as a list of dicts or a decathlon JSON file (paths made absolute).

    Args:
        datalist: a list of item dicts, or the path of a decathlon-style ``datalist.json``.
        data_list_key: the list to read from a JSON file. Defaults to ``"training"``.

    Returns:
        the list of item dicts.
    """
    if isinstance(datalist, (str, os.PathLike)):
        from monai.data import load_decathlon_datalist

        return load_decathlon_datalist(Path(datalist), data_list_key=data_list_key, base_dir=Path(datalist).parent)
    return [dict(item) for item in datalist]


def split_by_fold(
    datalist: str | os.PathLike | Sequence[dict], fold: int, data_list_key: str = "training"
) -> tuple[list[dict], list[dict]]:
    """Split datalist items into training (other folds) and validation (``fold``) lists.

    Usable from a bundle config, e.g.
    ``"$xctrs_monai.data.split_by_fold(@dataset_dir + '/datalist.json', @fold)[0]"``.

    Args:
        datalist: a list of item dicts with a ``"fold"`` key, or a decathlon ``datalist.json`` path.
        fold: the validation fold.
        data_list_key: the list to read from a JSON file. Defaults to ``"training"``.

    Returns:
        ``(train_items, val_items)``.

    Raises:
        ValueError: when an item has no ``"fold"`` key or ``fold`` holds no item.
    """
    items = load_datalist_items(datalist, data_list_key)
    missing = [i for i, item in enumerate(items) if "fold" not in item]
    if missing:
        raise ValueError(f"every datalist item needs a 'fold' key, items {missing[:5]} have none.")
    present = sorted({int(item["fold"]) for item in items})
    if int(fold) not in present:
        raise ValueError(f"fold must be one of the folds in the datalist {present}, got {fold}.")
    train = [item for item in items if int(item["fold"]) != int(fold)]
    val = [item for item in items if int(item["fold"]) == int(fold)]
    return train, val


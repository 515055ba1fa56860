# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
from __future__ import annotations

from collections import Counter

import pytest

from xctrs_monai.data import assign_folds, split_by_fold


@pytest.mark.parametrize("n,n_folds", [(69, 10), (20, 10), (7, 10), (5, 1)])
def test_folds_balanced(n, n_folds):
    folds = assign_folds(list(range(n)), n_folds=n_folds)
    counts = Counter(folds)
    assert set(folds) <= set(range(n_folds))
    assert max(counts.values()) - min(counts.values()) <= 1
    assert folds == assign_folds(list(range(n)), n_folds=n_folds)  # deterministic


def test_folds_grouped_by_patient():
    groups = ["p0"] * 3 + ["p1"] * 2 + [f"q{i}" for i in range(15)]
    folds = assign_folds(groups, n_folds=5, seed=1)
    for g in set(groups):
        assert len({f for f, h in zip(folds, groups) if h == g}) == 1
    counts = Counter(folds)
    assert max(counts.values()) - min(counts.values()) <= 1


def test_split_by_fold_list():
    items = [{"image": f"i{k}", "fold": k % 3} for k in range(9)]
    train, val = split_by_fold(items, 0)
    assert [i["image"] for i in val] == ["i0", "i3", "i6"] and len(train) == 6
    with pytest.raises(ValueError, match="fold"):
        split_by_fold([{"image": "x"}], 0)


def test_ill_n_folds():
    with pytest.raises(ValueError, match="n_folds"):
        assign_folds([1, 2], n_folds=0)

# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from monai.data import load_decathlon_datalist
from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged, Orientationd

from xctrs_monai.data import (
    PHANTOM_VERSION,
    make_phantom,
    phantom_affine,
    phantom_case_seed,
    split_by_fold,
    write_phantom_dataset,
)

SIZE, SPACING = 32, 5.0  # the demo grid


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("phantoms")
    return write_phantom_dataset(out, n=10, seed=3, size=SIZE, spacing=SPACING, n_folds=5)


def test_layout_and_datalist(dataset):
    out = dataset.parent
    assert dataset.name == "datalist.json"
    items = load_decathlon_datalist(dataset, data_list_key="training", base_dir=out)
    assert len(items) == 10
    for item in items:
        assert Path(item["image"]).parent == out / "images" and Path(item["image"]).is_file()
        assert Path(item["label"]).parent == out / "labels" and Path(item["label"]).is_file()
    assert sorted(Counter(i["fold"] for i in items).values()) == [2] * 5
    assert not list(out.rglob(".*.tmp*")), "temporary files left behind"


def test_monai_loading_keeps_array_and_affine(dataset):
    items = load_decathlon_datalist(dataset, data_list_key="training")
    keys = ["image", "label"]
    load = Compose([LoadImaged(keys=keys), EnsureChannelFirstd(keys=keys), Orientationd(keys=keys, axcodes="RAS")])
    data = load(items[1])
    ct, labels, affine = make_phantom(phantom_case_seed(3, 1), SIZE, SPACING)
    np.testing.assert_array_equal(data["image"][0].numpy(), np.rint(ct))
    np.testing.assert_array_equal(data["label"][0].numpy(), labels)
    for key in ("image", "label"):
        np.testing.assert_allclose(data[key].affine.numpy(), affine, atol=1e-5)
    np.testing.assert_allclose(affine, phantom_affine(SIZE, SPACING))


def test_rerun_skips_existing(tmp_path):
    datalist = write_phantom_dataset(tmp_path, n=3, seed=4, size=SIZE, spacing=SPACING)
    files = sorted((tmp_path / "images").glob("*.nii.gz")) + sorted((tmp_path / "labels").glob("*.nii.gz"))
    mtimes = [f.stat().st_mtime_ns for f in files]
    write_phantom_dataset(tmp_path, n=4, seed=4, size=SIZE, spacing=SPACING)
    assert [f.stat().st_mtime_ns for f in files] == mtimes
    assert len(list((tmp_path / "images").glob("*.nii.gz"))) == 4
    assert len(json.loads(datalist.read_text())["training"]) == 4
    with pytest.raises(ValueError, match="size"):
        write_phantom_dataset(tmp_path, n=4, seed=4, size=48, spacing=SPACING)
    recorded = json.loads(datalist.read_text())["phantom"]
    assert recorded == {"seed": 4, "size": SIZE, "spacing": SPACING, "version": PHANTOM_VERSION}


def test_refuses_old_or_foreign_datalists(tmp_path):
    """A folder of phantoms from before the version was recorded (0.7-scale anatomy) is not reused."""
    old = tmp_path / "old"
    old.mkdir()
    unversioned = {"phantom": {"seed": 0, "size": SIZE, "spacing": SPACING}, "training": []}
    (old / "datalist.json").write_text(json.dumps(unversioned))
    with pytest.raises(ValueError, match="version=1"):
        write_phantom_dataset(old, n=1, seed=0, size=SIZE, spacing=SPACING)
    real = tmp_path / "real"
    real.mkdir()
    (real / "datalist.json").write_text(json.dumps({"training": [{"image": "a.nii.gz", "label": "b.nii.gz"}]}))
    with pytest.raises(ValueError, match="not a phantom datalist"):
        write_phantom_dataset(real, n=1, seed=0, size=SIZE, spacing=SPACING)
    assert not (real / "images").exists(), "nothing may be written next to a foreign datalist"


def test_split_by_fold(dataset):
    train, val = split_by_fold(dataset, 2)
    assert len(train) + len(val) == 10 and len(val) == 2
    assert {i["fold"] for i in val} == {2} and 2 not in {i["fold"] for i in train}
    assert nib.load(val[0]["image"]).shape == (SIZE,) * 3
    with pytest.raises(ValueError, match="fold"):
        split_by_fold(dataset, 7)


@pytest.mark.parametrize("kwargs", [{"n": 0}, {"n_folds": 0}, {"seed": -2}, {"size": 4}, {"spacing": -1.0}])
def test_ill_arguments(tmp_path, kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        write_phantom_dataset(tmp_path, **kwargs)

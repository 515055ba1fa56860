# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""The X-ray-blind prior: mean and majority vote by hand, training split only, cache, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged, RandFlipd, ScaleIntensityRanged
from xctrs_monai.data import save_nifti, split_by_fold
from xctrs_monai.metrics import XrayBlindPrior

# three training cases of 5 voxels (shape 5 x 1 x 1), CT on [0, 1] and labels
CTS = [[0.0, 0.3, 0.6, 0.9, 0.0], [0.3, 0.3, 0.0, 0.9, 0.3], [0.6, 0.0, 0.3, 0.0, 0.6]]
LABELS = [[0, 1, 2, 3, 5], [0, 2, 2, 3, 4], [1, 1, 3, 4, 7]]
MEAN_HAND = [0.3, 0.2, 0.3, 0.6, 0.3]  # column means
# votes per voxel: (0,0,1) -> 0; (1,2,1) -> 1; (2,2,3) -> 2; (3,3,4) -> 3; (5,4,7) a three-way tie -> lowest, 4
VOTE_HAND = [0, 1, 2, 3, 4]


def _vol(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32).reshape(5, 1, 1)


def test_mean_and_majority_vote_by_hand():
    prior = XrayBlindPrior.fit([(_vol(c), _vol(lab)) for c, lab in zip(CTS, LABELS)], vote="majority")
    assert prior.mean_ct.shape == (1, 5, 1, 1)
    assert prior.mean_ct.flatten().tolist() == pytest.approx(MEAN_HAND, abs=1e-6)  # float32 rounding
    assert prior.labels.flatten().tolist() == VOTE_HAND
    out = prior(torch.zeros(2, 2, 5, 5))  # B2NN in, only B used
    assert out.shape == (2, 9, 5, 1, 1)
    assert torch.equal(out[0], out[1]) and torch.equal(out[:, 0:1], prior.mean_ct.expand(2, 1, 5, 1, 1))
    assert out[0, 1:].argmax(0).flatten().tolist() == VOTE_HAND  # one-hot of the vote in channels 1..8
    assert torch.equal(out[0, 1:].sum(0), torch.ones(5, 1, 1))


def test_volume_vote_keeps_the_mean_spine_volume_by_hand():
    # a one-voxel "spine" that moves by one voxel per case: no voxel is inside it in most cases
    labels = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 2, 0]]
    cases = [(torch.zeros(4, 1, 1), torch.tensor(lab, dtype=torch.float32).reshape(4, 1, 1)) for lab in labels]
    majority = XrayBlindPrior.fit(cases, vote="majority")
    assert majority.labels.flatten().tolist() == [0, 0, 0, 0]  # background wins everywhere
    # mean spine volume = 1 voxel; voxels 0..2 are each inside once, the stable sort keeps the first, label 1
    volume = XrayBlindPrior.fit(cases)
    assert volume.labels.flatten().tolist() == [1, 0, 0, 0]
    # with the hand example above, both votes agree: 13/3 -> 4 voxels, the four inside in 3 of 3 cases
    both = XrayBlindPrior.fit([(_vol(c), _vol(lab)) for c, lab in zip(CTS, LABELS)])
    assert both.labels.flatten().tolist() == VOTE_HAND
    with pytest.raises(ValueError, match="vote must be one of"):
        XrayBlindPrior.fit(cases, vote="mean")


def _write_cases(root, n: int = 4) -> list[dict]:
    """``n`` cases of 4^3 voxels in HU; case i has CT value (i + 1) * 300 - 1000 HU and label i % 3 + 1."""
    items = []
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    for i in range(n):
        ct = np.full((4, 4, 4), (i + 1) * 300 - 1000, dtype=np.int16)
        lab = np.zeros((4, 4, 4), dtype=np.uint8)
        lab[1:3, 1:3, 1:3] = i % 3 + 1
        save_nifti(ct, affine, root / f"img_{i}.nii.gz")
        save_nifti(lab, affine, root / f"lab_{i}.nii.gz")
        items.append(
            {
                "image": str(root / f"img_{i}.nii.gz"),
                "label": str(root / f"lab_{i}.nii.gz"),
                "fold": int(i == 3),
                "case_id": f"c{i}",
            }
        )
    return items


TRANSFORM = Compose(
    [LoadImaged(keys=["image", "label"], image_only=True), EnsureChannelFirstd(keys=["image", "label"])]
)


def test_from_datalist_uses_only_the_given_training_items(tmp_path):
    items = _write_cases(tmp_path)
    train, held_out = split_by_fold(items, fold=1)
    assert [it["case_id"] for it in held_out] == ["c3"]
    prior = XrayBlindPrior.from_datalist(train, TRANSFORM)
    # cases 0..2: HU -700, -400, -100 -> (HU + 1000) / 3000 = 0.1, 0.2, 0.3 -> mean 0.2; the held-out
    # case (200 HU -> 0.4) would move the mean to 0.25
    assert prior.mean_ct.unique().tolist() == pytest.approx([0.2], abs=1e-6)  # float32 rounding
    # the cube holds labels 1, 2, 3 (one vote each: tie -> 1); background elsewhere
    assert prior.labels[1:3, 1:3, 1:3].unique().tolist() == [1] and int(prior.labels.sum()) == 8
    assert prior.case_ids == ("c0", "c1", "c2")

    ct = np.full((4, 4, 4), 2000, dtype=np.int16)  # the held-out case changes completely
    save_nifti(ct, np.diag([2.0, 2.0, 2.0, 1.0]), held_out[0]["image"])
    again = XrayBlindPrior.from_datalist(split_by_fold(items, fold=1)[0], TRANSFORM)
    assert torch.equal(again.mean_ct, prior.mean_ct) and torch.equal(again.labels, prior.labels)


def test_cache_is_read_and_invalidated(tmp_path):
    items = _write_cases(tmp_path / "data")[:3]
    cache = tmp_path / "data"
    first = XrayBlindPrior.from_datalist(items, TRANSFORM, cache_dir=cache)
    files = sorted(cache.glob("xray_blind_prior_*.npz"))
    assert len(files) == 1 and not list(cache.glob(".*tmp*"))  # written atomically, temp file renamed
    # overwrite the cache with other (valid) content: a second call must read it, not recompute
    np.savez(
        files[0],
        mean_ct=np.full((4, 4, 4), 0.5, np.float32),
        labels=np.zeros((4, 4, 4), np.uint8),
        meta=np.asarray('{"case_ids": ["x"]}'),
    )
    cached = XrayBlindPrior.from_datalist(items, TRANSFORM, cache_dir=cache)
    assert float(cached.mean_ct.mean()) == 0.5 and cached.case_ids == ("x",)
    # a changed training file (new size / modification time) gives another key and a recomputed prior
    save_nifti(np.full((4, 4, 4), 1400, np.int16), np.diag([2.0, 2.0, 2.0, 1.0]), items[0]["image"])
    recomputed = XrayBlindPrior.from_datalist(items, TRANSFORM, cache_dir=cache)
    assert len(list(cache.glob("xray_blind_prior_*.npz"))) == 2
    assert float(recomputed.mean_ct.mean()) == pytest.approx((0.8 + 0.2 + 0.3) / 3, abs=1e-6)  # float32
    assert float(first.mean_ct.mean()) == pytest.approx(0.2, abs=1e-6)
    # another transform parameter (here the channel dim strategy) gives another key as well
    other = Compose(
        [
            LoadImaged(keys=["image", "label"], image_only=True),
            EnsureChannelFirstd(keys=["image", "label"], channel_dim="no_channel"),
        ]
    )
    XrayBlindPrior.from_datalist(items, other, cache_dir=cache)
    assert len(list(cache.glob("xray_blind_prior_*.npz"))) == 3


def test_unwritable_cache_warns(tmp_path):
    items = _write_cases(tmp_path)[:2]
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where the cache folder would be")
    with pytest.warns(UserWarning, match="could not cache"):
        prior = XrayBlindPrior.from_datalist(items, TRANSFORM, cache_dir=blocker / "sub")
    assert prior.mean_ct.shape == (1, 4, 4, 4)


def test_ill_inputs(tmp_path):
    items = _write_cases(tmp_path)[:2]
    with pytest.raises(ValueError, match="empty"):
        XrayBlindPrior.from_datalist([], TRANSFORM)
    with pytest.raises(ValueError, match="RandFlipd"):
        XrayBlindPrior.from_datalist(items, Compose([TRANSFORM, RandFlipd(keys="image")]))
    scaled = Compose([TRANSFORM, ScaleIntensityRanged("image", a_min=-1000, a_max=2000, b_min=0, b_max=1, clip=True)])
    with pytest.raises(ValueError, match="c0: the CT after the transform lies in"):  # would be scaled twice
        XrayBlindPrior.from_datalist(items, scaled)
    assert torch.equal(
        XrayBlindPrior.from_datalist(items, scaled, hu_window=None).mean_ct,
        XrayBlindPrior.from_datalist(items, TRANSFORM).mean_ct,
    )
    save_nifti(np.zeros((4, 4, 5), np.int16) - 1000, np.eye(4), items[1]["image"])
    save_nifti(np.zeros((4, 4, 5), np.uint8), np.eye(4), items[1]["label"])
    with pytest.raises(ValueError, match="c1: shape"):
        XrayBlindPrior.from_datalist(items, TRANSFORM)
    with pytest.raises(ValueError, match="labels must lie in 0..7"):
        XrayBlindPrior.fit([(torch.zeros(2, 2, 2), torch.full((2, 2, 2), 8))])
    with pytest.raises(ValueError, match="at least one"):
        XrayBlindPrior.fit([])

# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from xctrs_monai.data import make_phantom, phantom_affine

TEST_CASES = [(0, 64, 2.0), (7, 64, 2.0), (3, 32, 4.0)]
ILL_CASES = [
    ({"seed": -1}, "seed"),
    ({"seed": 0, "size": 8}, "size"),
    ({"seed": 0, "size": 64.5}, "size"),
    ({"seed": 0, "spacing": 0.0}, "spacing"),
]


@pytest.fixture(scope="module")
def phantoms():
    return {case: make_phantom(*case) for case in TEST_CASES}


@pytest.mark.parametrize("case", TEST_CASES)
def test_shapes_dtypes_affine(phantoms, case):
    seed, size, spacing = case
    ct, labels, affine = phantoms[case]
    assert ct.shape == labels.shape == (size, size, size)
    assert ct.dtype == np.float32 and labels.dtype == np.uint8
    assert affine.shape == (4, 4)
    np.testing.assert_allclose(np.diag(affine)[:3], spacing)
    # the grid is centred on the world origin
    centre = affine @ np.array([(size - 1) / 2] * 3 + [1.0])
    np.testing.assert_allclose(centre[:3], 0.0, atol=1e-9)
    np.testing.assert_array_equal(affine, phantom_affine(size, spacing))
    assert ct.min() >= -1024 and ct.max() <= 3071


@pytest.mark.parametrize("case", TEST_CASES)
def test_labels_and_order(phantoms, case):
    ct, labels, affine = phantoms[case]
    assert set(np.unique(labels).tolist()) == set(range(8))
    z = [np.argwhere(labels == k)[:, 2].mean() for k in range(1, 8)]
    assert all(a > b for a, b in zip(z, z[1:])), f"C1..C7 centroids must descend along +Z, got {z}"
    # the column fits the grid with a margin
    zz = np.argwhere(labels > 0)[:, 2]
    assert zz.min() > 0 and zz.max() < labels.shape[2] - 1


@pytest.mark.parametrize("case", TEST_CASES[:2])
def test_intensities(phantoms, case):
    ct, labels, _ = phantoms[case]
    for k in range(1, 8):
        assert np.median(ct[labels == k]) > 150, f"C{k} is not bone-dense"
    dist = ndimage.distance_transform_edt(labels == 0)
    shell = (dist >= 3) & (dist <= 5)
    assert -30 < np.median(ct[shell]) < 110, "soft tissue expected around the spine"
    # the airway lies anterior (+Y) to C4
    c = np.argwhere(labels == 4).mean(0).round().astype(int)
    ray = ct[c[0], c[1] :, c[2]]
    air = np.flatnonzero(ray < -900)
    assert air.size > 0, "no airway anterior to the spine"
    assert (ray[air[0] :] > -200).any(), "the airway must lie inside the neck"
    assert ct[0, 0, 0] < -900  # outside air


def test_deterministic_and_seed_dependent():
    a = make_phantom(11, 48, 128 / 48)
    b = make_phantom(11, 48, 128 / 48)
    c = make_phantom(12, 48, 128 / 48)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])
    assert abs(int((a[1] > 0).sum()) - int((c[1] > 0).sum())) > 0


def test_same_anatomy_on_coarser_grid():
    """The field of view fixes the anatomy: 32^3 at 4 mm and 64^3 at 2 mm agree in mm."""
    _, fine, aff_f = make_phantom(5, 64, 2.0)
    _, coarse, aff_c = make_phantom(5, 32, 4.0)
    for k in (1, 4, 7):
        cf = (aff_f @ np.r_[np.argwhere(fine == k).mean(0), 1.0])[:3]
        cc = (aff_c @ np.r_[np.argwhere(coarse == k).mean(0), 1.0])[:3]
        np.testing.assert_allclose(cf, cc, atol=4.0)


@pytest.mark.parametrize("kwargs,name", ILL_CASES)
def test_ill_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        make_phantom(**kwargs)

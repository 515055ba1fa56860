# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from xctrs_monai.constants import DEFAULT_IMG_SIZE, DEFAULT_SPACING, grid_affine
from xctrs_monai.data import make_phantom, phantom_affine
from xctrs_monai.data.phantom import pose_column, sample_anatomy
from xctrs_monai.data.phantom.frames import Grid

TEST_CASES = [(0, 32, 5.0), (7, 32, 5.0), (3, 64, 2.5)]  # the 160 mm field of view of the defaults
ILL_CASES = [
    ({"seed": -1}, "seed"),
    ({"seed": 1.5}, "seed"),
    ({"seed": 0, "size": 8}, "size"),
    ({"seed": 0, "size": 64.5}, "size"),
    ({"seed": 0, "spacing": 0.0}, "spacing"),
]


@pytest.fixture(scope="module")
def phantoms():
    return {case: make_phantom(*case) for case in TEST_CASES}


def _centroid_mm(labels: np.ndarray, affine: np.ndarray, k: int) -> np.ndarray:
    return (affine @ np.r_[np.argwhere(labels == k).mean(0), 1.0])[:3]


@pytest.mark.parametrize("case", TEST_CASES)
def test_shapes_dtypes_affine(phantoms, case):
    seed, size, spacing = case
    ct, labels, affine = phantoms[case]
    assert ct.shape == labels.shape == (size, size, size)
    assert ct.dtype == np.float32 and labels.dtype == np.uint8
    np.testing.assert_allclose(np.diag(affine)[:3], spacing)
    # the grid is centred on the world origin, as every grid of the contract
    centre = affine @ np.array([(size - 1) / 2] * 3 + [1.0])
    np.testing.assert_allclose(centre[:3], 0.0, atol=1e-9)
    np.testing.assert_array_equal(affine, phantom_affine(size, spacing))
    np.testing.assert_array_equal(affine, grid_affine(size, spacing))
    assert ct.min() >= -1024 and ct.max() <= 3071


def test_defaults_are_the_contract_grid():
    ct, labels, affine = make_phantom(2)
    assert ct.shape == labels.shape == (DEFAULT_IMG_SIZE,) * 3
    np.testing.assert_array_equal(affine, grid_affine(DEFAULT_IMG_SIZE, DEFAULT_SPACING))


@pytest.mark.parametrize("case", TEST_CASES)
def test_labels_and_order(phantoms, case):
    ct, labels, affine = phantoms[case]
    assert set(np.unique(labels).tolist()) == set(range(8))
    z = [_centroid_mm(labels, affine, k)[2] for k in range(1, 8)]
    assert all(a > b for a, b in zip(z, z[1:])), f"C1..C7 centroids must descend along +Z, got {z}"
    idx = np.argwhere(labels > 0)
    assert idx.min() > 0 and idx.max() < labels.shape[0] - 1, "the column must not touch the faces of the grid"


@pytest.mark.parametrize("case", TEST_CASES[:2])
def test_labels_are_exact(phantoms, case):
    """A voxel is Ck iff its centre lies in the bone of Ck: recompute the bone SDF of C4 at the voxel centres."""
    seed, size, spacing = case
    _, labels, _ = phantoms[case]
    anatomy = sample_anatomy(np.random.default_rng(seed))
    frame = pose_column(anatomy, size * spacing).frames[4]
    sl, loc = frame.local(Grid(size, spacing), *anatomy.vertebrae[3].box())
    inside = anatomy.vertebrae[3].sdf(*loc) <= 0.0
    np.testing.assert_array_equal(labels[sl] == 4, np.broadcast_to(inside, labels[sl].shape))
    assert (labels == 4).sum() == (labels[sl] == 4).sum(), "C4 voxels outside its box"


@pytest.mark.parametrize("case", TEST_CASES[:2])
def test_intensities(phantoms, case):
    ct, labels, _ = phantoms[case]
    for k in range(1, 8):
        assert np.median(ct[labels == k]) > 150, f"C{k} is not bone-dense"
    dist = ndimage.distance_transform_edt(labels == 0)
    shell = (dist >= 2) & (dist <= 3)  # 10-15 mm from bone on the 5 mm grid: neck soft tissue and airway
    assert -200 < np.median(ct[shell]) < 110, "soft tissue expected around the spine"
    # the airway lies anterior (+Y) to C4, inside the neck
    c = np.argwhere(labels == 4).mean(0).round().astype(int)
    ray = ct[c[0], c[1] :, c[2]]
    air = np.flatnonzero(ray < -900)
    assert air.size > 0, "no airway anterior to the spine"
    assert (ray[air[0] :] > -200).any(), "the airway must lie inside the neck"
    assert ct[0, 0, 0] < -900  # outside air


def test_deterministic_and_seed_dependent():
    a = make_phantom(11, 32, 5.0)
    b = make_phantom(11, 32, 5.0)
    c = make_phantom(12, 32, 5.0)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_same_anatomy_on_coarser_grid():
    """The field of view fixes the anatomy: 32^3 at 5 mm and 64^3 at 2.5 mm agree in mm."""
    _, fine, aff_f = make_phantom(5, 64, 2.5)
    _, coarse, aff_c = make_phantom(5, 32, 5.0)
    for k in range(1, 8):
        # a centroid on a 5 mm grid is off by at most about half a voxel on these small shapes
        np.testing.assert_allclose(_centroid_mm(fine, aff_f, k), _centroid_mm(coarse, aff_c, k), atol=2.5)
        # volumes: thin processes are sampled differently by 5 mm voxels, within about 20 %
        ratio = (fine == k).sum() * 2.5**3 / ((coarse == k).sum() * 5.0**3)
        assert 0.75 < ratio < 1.3, f"C{k} volume ratio fine/coarse {ratio:.2f}"


def test_true_scale_independent_of_fov():
    """The anatomy is in mm, not in fractions of the field of view: a larger field of view only moves
    the column (its room changes), the vectors between vertebrae stay."""
    _, small, aff_s = make_phantom(9, 32, 5.0)  # 160 mm
    _, large, aff_l = make_phantom(9, 40, 5.0)  # 200 mm
    cs = np.stack([_centroid_mm(small, aff_s, k) for k in range(1, 8)])
    cl = np.stack([_centroid_mm(large, aff_l, k) for k in range(1, 8)])
    # discretisation on a 5 mm grid: each centroid within about half a voxel, so differences within 2 x 2.5 mm
    np.testing.assert_allclose(cs - cs[3], cl - cl[3], atol=4.0)
    assert np.linalg.norm(cs[0] - cs[6]) > 70.0, "C1-C7 centroids of an adult lie 80-100 mm apart"


@pytest.mark.parametrize("kwargs,name", ILL_CASES)
def test_ill_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        make_phantom(**kwargs)

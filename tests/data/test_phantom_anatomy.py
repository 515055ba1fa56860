# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""The phantoms at true scale and varying like a population of adult necks (ranges: ``phantom/anatomy.py``)."""

from __future__ import annotations

import numpy as np
import pytest

from xctrs_monai.data import make_phantom
from xctrs_monai.data.phantom import FOV_MARGIN, NeckAnatomy, pose_column, sample_anatomy
from xctrs_monai.data.phantom.vertebrae import inside_points

SPREAD_SEEDS = range(20)


def _local_voxels(labels: np.ndarray, affine: np.ndarray, frame, k: int) -> np.ndarray:
    """Centres of the voxels labelled ``k``, in the local frame of the vertebra (mm)."""
    world = np.argwhere(labels == k) * affine[0, 0] + affine[:3, 3]
    return (world - frame.origin) @ frame.rot


def _centroid_mm(labels: np.ndarray, affine: np.ndarray, k: int) -> np.ndarray:
    return (affine @ np.r_[np.argwhere(labels == k).mean(0), 1.0])[:3]


def _sagittal_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle of the line a -> b from +Z in the YZ plane, positive toward anterior (+Y)."""
    d = b - a
    return float(np.degrees(np.arctan2(d[1], d[2])))


@pytest.fixture(scope="module")
def default_grid_cases():
    """Four phantoms on the default grid (1.25 mm) with their posed columns."""
    out = []
    for seed in range(4):
        _, labels, affine = make_phantom(seed)
        anatomy = sample_anatomy(np.random.default_rng(seed))
        out.append((labels, affine, anatomy, pose_column(anatomy, labels.shape[0] * affine[0, 0])))
    return out


@pytest.fixture(scope="module")
def spread_cases():
    """Labels of 20 phantoms on the demo grid (32^3 at 5 mm) and their anatomy."""
    return [(make_phantom(seed, 32, 5.0), sample_anatomy(np.random.default_rng(seed))) for seed in SPREAD_SEEDS]


def test_vertebral_bodies_at_adult_size(default_grid_cases):
    """C3..C7 bodies measured on the label maps, in each vertebra's frame, within the cited adult ranges:
    width 23.0-24.6 +- 2.4 mm (CT, women-men), depth about 15-18 mm, height 10-12.5 +- 1.4 mm (the
    phantoms before true scale had bodies 0.7 times as large)."""
    widths, depths, heights = [], [], []
    for labels, affine, anatomy, column in default_grid_cases:
        voxel = affine[0, 0]
        for k in range(3, 8):
            p = _local_voxels(labels, affine, column.frames[k], k)
            mid = p[np.abs(p[:, 2]) < 2.0]  # a 4 mm slab through the middle of the body
            widths.append(np.ptp(mid[mid[:, 1] > 2.5, 0]) + voxel)  # anterior of the transverse processes
            canal_centre = -anatomy.vertebrae[k - 1].by - anatomy.vertebrae[k - 1].cd
            sag = p[(np.abs(p[:, 0]) < 2.0) & (np.abs(p[:, 2]) < 2.0) & (p[:, 1] > canal_centre)]
            depths.append(np.ptp(sag[:, 1]) + voxel)
            core = p[(np.abs(p[:, 0]) < 3.0) & (np.abs(p[:, 1]) < 3.0)]
            heights.append(np.ptp(core[:, 2]) + voxel)
    # mean over 20 bodies: the cited means +- about one between-person SD (sample of 4 people)
    assert 20.5 < np.mean(widths) < 26.0, np.round(widths, 1)
    assert 14.5 < np.mean(depths) < 18.0, np.round(depths, 1)
    assert 10.0 < np.mean(heights) < 13.5, np.round(heights, 1)
    # every body within about 3 SD of the adult means: no child or giant vertebra
    assert 16.0 < min(widths) and max(widths) < 31.0
    assert 11.5 < min(depths) and max(depths) < 21.0
    assert 8.0 < min(heights) and max(heights) < 16.0


def test_column_height_adult(default_grid_cases):
    """Dens tip to the inferior endplate of C7, measured on the labels: 110-140 mm in adults (C2 38 mm,
    five bodies of 11-12 mm and five discs of 4-6 mm); each phantom within 95-150 mm."""
    lengths = []
    for labels, affine, _, column in default_grid_cases:
        c2 = _local_voxels(labels, affine, column.frames[2], 2)
        tip = column.frames[2].to_world(c2[np.argmax(c2[:, 2])])
        c7 = _local_voxels(labels, affine, column.frames[7], 7)
        body = c7[(np.abs(c7[:, 0]) < 3.0) & (np.abs(c7[:, 1]) < 3.0)]
        lengths.append(np.linalg.norm(tip - column.frames[7].to_world((0.0, 0.0, body[:, 2].min()))))
    assert all(95.0 < v < 150.0 for v in lengths), np.round(lengths, 1)
    assert 108.0 < np.mean(lengths) < 135.0, np.round(lengths, 1)


def test_spread_of_position_and_curvature(spread_cases):
    """Over 20 seeds the column moves in the field of view and its curvature follows the sampled lordosis.

    Thresholds: C1 centroid SD > 3.5 / 6 / 4 mm along X / Y / Z (the phantoms before true scale had
    1.6 / 4.5 / 0.7 mm over 12 seeds) and a C2-C7 curvature SD > 7 deg (sampled SD 12 deg).
    """
    c1, curvature, lordosis = [], [], []
    for (_, labels, affine), anatomy in spread_cases:
        c = {k: _centroid_mm(labels, affine, k) for k in range(1, 8)}
        c1.append(c[1])
        # centroid method: angle between the C6->C7 and C2->C3 lines in the sagittal plane
        curvature.append(_sagittal_deg(c[7], c[6]) - _sagittal_deg(c[3], c[2]))
        lordosis.append(anatomy.lordosis)
    sd = np.std(c1, axis=0)
    assert sd[0] > 3.5 and sd[1] > 6.0 and sd[2] > 4.0, f"C1 centroid SD {np.round(sd, 1)} mm"
    assert np.std(curvature) > 7.0, f"curvature SD {np.std(curvature):.1f} deg"
    # the labels follow the sampled lordosis (a wrong sign or a dropped angle breaks this)
    assert np.corrcoef(curvature, lordosis)[0, 1] > 0.7


def test_column_inside_field_of_view_every_seed():
    """For 40 seeds on the demo grid all of C1..C7 is labelled and no label touches a face of the grid."""
    for seed in range(100, 140):
        _, labels, _ = make_phantom(seed, 32, 5.0)
        assert set(np.unique(labels).tolist()) == set(range(8)), f"seed {seed}: a vertebra is missing"
        idx = np.argwhere(labels > 0)
        assert idx.min() >= 1 and idx.max() <= 30, f"seed {seed}: the column touches the faces of the grid"


def test_pose_puts_bone_inside_margin():
    """The posed C1..C7 bone (sampled on a 1 mm lattice) stays ``FOV_MARGIN`` inside the 160 mm cube,
    give or take the 2 mm lattice of the placement points."""
    for seed in range(5):
        anatomy = sample_anatomy(np.random.default_rng(seed))
        column = pose_column(anatomy, 160.0)
        pts = [column.frames[k].to_world(inside_points(anatomy.vertebrae[k - 1], 1.0)) for k in range(1, 8)]
        pts = np.concatenate(pts)
        assert np.abs(pts).max() < 80.0 - FOV_MARGIN + 2.0, f"seed {seed}: bone at {np.abs(pts).max():.1f} mm"


def test_pose_cobb_angle_is_the_lordosis():
    """The sagittal angle between the axes of C2 and C7 (Cobb, C2-C7) is the sampled lordosis, up to the
    small lateral and axial rotations (1-1.5 deg SD)."""
    for seed in range(10):
        anatomy = sample_anatomy(np.random.default_rng(seed))
        column = pose_column(anatomy, 160.0)
        a2, a7 = column.frames[2].rot[:, 2], column.frames[7].rot[:, 2]
        cobb = _sagittal_deg(np.zeros(3), a7) - _sagittal_deg(np.zeros(3), a2)
        assert abs(cobb - anatomy.lordosis) < 3.0, (seed, cobb, anatomy.lordosis)


def test_sampled_population():
    """500 draws: lordosis mean 12.7 deg and SD about 12 (Guo 2018, Tang 2021), both sexes, neck
    circumference 29-46 cm with men's necks larger."""
    draws = [sample_anatomy(np.random.default_rng(seed)) for seed in range(500)]
    lordosis = np.array([a.lordosis for a in draws])
    # standard error of the mean of 500 draws with SD 12 is 0.54 deg; clipping at -15 / 40 moves the mean by < 0.5
    assert abs(lordosis.mean() - 12.7) < 2.0 and 10.0 < lordosis.std() < 13.0
    assert (lordosis < 0).mean() > 0.08, "straight and kyphotic necks must occur"
    male = np.array([a.male for a in draws])
    assert 0.4 < male.mean() < 0.6
    neck = np.array([a.neck_circumference for a in draws])
    assert neck.min() >= 290.0 and neck.max() <= 460.0
    assert neck[male].mean() > neck[~male].mean() + 30.0
    ax, ay = draws[0].neck_semi_axes
    # Ramanujan's perimeter of the ellipse gives the circumference back (his formula: error < 1e-5 here)
    h = ((ax - ay) / (ax + ay)) ** 2
    perimeter = np.pi * (ax + ay) * (1 + 3 * h / (10 + np.sqrt(4 - 3 * h)))
    assert perimeter == pytest.approx(draws[0].neck_circumference, rel=1e-9)


def test_vertebra_boxes_hold_the_bone():
    """Each part of each shape has a box (where its SDF is evaluated) that holds it: no inside point of
    a 1 mm lattice on the box grown by 15 mm lies outside the box."""
    anatomy: NeckAnatomy = sample_anatomy(np.random.default_rng(0))
    for level, shape in enumerate(anatomy.vertebrae, start=1):
        for n, (fn, (lo, hi)) in enumerate(shape.parts()):
            lo, hi = np.asarray(lo), np.asarray(hi)

            class Grown:
                @staticmethod
                def parts():
                    return [(fn, (tuple(lo - 15.0), tuple(hi + 15.0)))]

            p = inside_points(Grown, step=1.0)
            assert len(p) and np.all(p >= lo) and np.all(p <= hi), f"level {level} part {n}: bone outside its box"

# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""``make_phantom``: one synthetic neck CT with exact C1..C7 labels, assembled from the named parts."""

from __future__ import annotations

import numpy as np

from xctrs_monai.constants import DEFAULT_IMG_SIZE, DEFAULT_SPACING, HU_AIR, grid_affine
from xctrs_monai.data.phantom.anatomy import sample_anatomy
from xctrs_monai.data.phantom.bones import BoneAccumulator, add_bones, compose_bone
from xctrs_monai.data.phantom.column import pose_column
from xctrs_monai.data.phantom.frames import Grid
from xctrs_monai.data.phantom.soft_tissue import paint_soft_tissues
from xctrs_monai.data.phantom.tissues import sample_tissues

__all__ = ["PHANTOM_VERSION", "check_phantom_args", "make_phantom", "phantom_affine"]

PHANTOM_VERSION = 2
"""Version of ``make_phantom``'s output for a seed (2: true scale, population spread); datasets record it."""


def phantom_affine(size: int, spacing: float) -> np.ndarray:
    """The RAS affine of a phantom grid: ``constants.grid_affine`` (``diag(spacing)``, centred on the origin).

    Args:
        size: number of voxels along each axis.
        spacing: voxel size in mm.

    Returns:
        a float64 ``4x4`` voxel-to-world (RAS, mm) matrix.
    """
    return grid_affine(size, spacing)


def check_phantom_args(seed, size, spacing) -> tuple[int, int, float]:
    """Check the arguments of ``make_phantom`` and return them as ``(int, int, float)``.

    Raises:
        ValueError: when ``seed`` is not a non-negative integer, ``size`` not an integer >= 16 or ``spacing <= 0``.
    """
    if int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}.")
    if int(size) != size or size < 16:
        raise ValueError(f"size must be an integer >= 16, got {size}.")
    if not spacing > 0:
        raise ValueError(f"spacing must be > 0, got {spacing}.")
    return int(seed), int(size), float(spacing)


def make_phantom(
    seed: int, size: int = DEFAULT_IMG_SIZE, spacing: float = DEFAULT_SPACING
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Make a synthetic adult neck CT with a labelled cervical spine, at true scale.

    The column C1..C7 (atlas ring with lateral masses and arches, axis with the dens rising through
    the ring, C3..C7 with bodies, pedicles, pillars, laminae, spinous and transverse processes with
    foramina transversaria) and T1-T2 sit in a neck with muscle, subcutaneous fat and an airway, with
    the skull base and mandible above and clavicles and lung apices below. Vertebra sizes, discs,
    lordosis, pose, position in the field of view, neck girth, head and shoulders vary with ``seed``
    as in a population of adults (ranges and sources: ``xctrs_monai.data.phantom.anatomy``), and so
    do tissue intensities and noise; the result is deterministic for a seed. The anatomy is in true
    millimetres, so grids with the same field of view (``size * spacing``) show the same anatomy,
    and the C1..C7 bone always lies inside the field of view (``FOV_MARGIN`` from its faces).

    Args:
        seed: random seed (any non-negative integer).
        size: number of voxels along each axis (cubic grid). Defaults to ``DEFAULT_IMG_SIZE`` (128).
        spacing: isotropic voxel size in mm. Defaults to ``DEFAULT_SPACING`` (1.25).

    Returns:
        ``(ct_hu, labels, affine)``: ``ct_hu`` float32 ``XYZ`` in HU (-1024..3071), ``labels`` uint8
        ``XYZ`` with 0 background and 1..7 = C1..C7 (a voxel is ``k`` iff its centre lies in the bone
        of Ck), ``affine`` the float64 ``4x4`` RAS voxel-to-mm matrix (``phantom_affine``).

    Raises:
        ValueError: when ``seed`` is not a non-negative integer, ``size`` not an integer >= 16 or ``spacing <= 0``.
    """
    seed, size, spacing = check_phantom_args(seed, size, spacing)
    rng = np.random.default_rng(seed)
    anatomy = sample_anatomy(rng)
    tissues = sample_tissues(rng)
    grid = Grid(size, spacing)
    column = pose_column(anatomy, fov=size * spacing)

    ct = np.full((size,) * 3, HU_AIR, dtype=np.float32)
    paint_soft_tissues(ct, grid, column, anatomy, tissues)
    bones = BoneAccumulator(grid)
    add_bones(bones, column, anatomy)
    labels = compose_bone(ct, bones, tissues)
    ct += tissues.noise_sd * rng.standard_normal(ct.shape, dtype=np.float32)
    np.clip(ct, -1024.0, 3071.0, out=ct)
    return ct, labels, phantom_affine(size, spacing)

# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Bones of the phantom: the vertebrae C1..T2, skull base, mandible, hyoid and clavicles, composed
into the CT (cortical shell and cancellous core, box-filtered) and the exact C1..C7 label map."""

from __future__ import annotations

import numpy as np

from xctrs_monai.constants import NUM_SEG_CLASSES
from xctrs_monai.data.phantom.anatomy import NeckAnatomy
from xctrs_monai.data.phantom.column import Column
from xctrs_monai.data.phantom.frames import Frame, Grid
from xctrs_monai.data.phantom.sdf import capsule, ellipse2d, ellipsoid, intersect, plate, ring, smin, subtract
from xctrs_monai.data.phantom.soft_tissue import SKULL_CENTRE, SKULL_RADII
from xctrs_monai.data.phantom.tissues import TissueValues

__all__ = ["BoneAccumulator", "add_bones", "compose_bone"]

_SKULL, _JAW, _HYOID, _CLAVICLES = 10, 11, 12, (13, 14)  # object ids after C1..C7 (1..7), T1 (8), T2 (9)


class BoneAccumulator:
    """Keeps, per voxel, the smallest bone SDF (world mm) and the object it belongs to.

    Args:
        grid: the phantom grid.
    """

    def __init__(self, grid: Grid) -> None:
        self.grid = grid
        self.f = np.full((grid.size,) * 3, 1e4, dtype=np.float32)
        self.obj = np.zeros((grid.size,) * 3, dtype=np.uint8)

    def add(self, obj_id: int, frame: Frame, fn, box) -> None:
        """Add the bone ``fn(x, y, z)`` (local SDF) of ``obj_id``, evaluated in ``frame`` on the local ``box``
        padded by half a voxel (the reach of the partial volume outside the bone)."""
        pad = 0.5 * self.grid.spacing / frame.scale
        sl, loc = frame.local(self.grid, np.subtract(box[0], pad), np.add(box[1], pad))
        if sl is None:
            return
        f = fn(*loc).astype(np.float32) * np.float32(frame.scale)
        cur_f, cur_o = self.f[sl], self.obj[sl]
        m = f < cur_f
        cur_f[m] = f[m]
        cur_o[m] = obj_id


def _skull_base(atlas, size: float) -> list:
    """``(sdf, box)`` parts of the skull base in the head frame: the occipital bowl (a 5 mm shell) with
    the foramen magnum, the condyles over the atlas, the mastoids and the clivus. Small parts get
    small boxes, so that only the bowl is evaluated over the width of the head."""
    c0, r0 = np.asarray(SKULL_CENTRE), np.asarray(SKULL_RADII)

    def bowl(a, b, c):
        shell = np.abs(ellipsoid(a, b, c, SKULL_CENTRE, SKULL_RADII) + 2.5) - 2.5
        return subtract(shell, ellipse2d(a, b, (0.0, -10.0), (15.0 * size, 17.5 * size)))

    def clivus(a, b, c):
        return plate(a, b, c, (0.0, 10.0), (0.0, 34.0), 10.0, 22.0, 6.0)

    parts = [(bowl, (tuple(c0 - r0 - 1.0), tuple(c0 + r0 + 1.0))), (clivus, ((-11.0, -1.0, 15.0), (11.0, 45.0, 29.0)))]
    for s in (-1.0, 1.0):
        condyle = ((s * (atlas.ring_ax - 1.5), -2.0, 11.0), (6.0, 10.0, 4.5))
        mastoid = ((s * 55.0, -6.0, 14.0), (8.0, 10.0, 13.0))
        for centre, radii in (condyle, mastoid):
            lo, hi = tuple(np.subtract(centre, radii) - 1.0), tuple(np.add(centre, radii) + 1.0)
            parts.append((lambda a, b, c, centre=centre, radii=radii: ellipsoid(a, b, c, centre, radii), (lo, hi)))
    return parts


def _jaw(a, b, c):
    """Mandible: the anterior U of the body and the rami (head frame)."""
    f = intersect(ring(a, b, c, (0.0, 26.0, -32.0), (46.0, 52.0), 4.5, 10.0), -(b - 24.0))
    for s in (-1.0, 1.0):
        f = smin(f, plate(a, b, c, (s * 46.0, 24.0), (s * 48.0, 36.0), 3.5, -12.0, 22.0), 3.0)
    return f


def add_bones(bones: BoneAccumulator, column: Column, anatomy: NeckAnatomy) -> None:
    """Add the vertebrae (object id = level, 1..9), skull base, mandible, hyoid and clavicles."""
    for level in range(1, 10):
        shape = anatomy.vertebrae[level - 1]
        for fn, box in shape.parts():
            bones.add(level, column.frames[level], fn, box)
    for fn, box in _skull_base(anatomy.vertebrae[0], anatomy.size):
        bones.add(_SKULL, column.head, fn, box)
    bones.add(_JAW, column.head, _jaw, ((-60.0, 5.0, -50.0), (60.0, 90.0, 14.0)))
    by3 = anatomy.vertebrae[2].by
    hyoid_c = (0.0, by3 + 28.0, -2.0)

    def hyoid(a, b, c):
        return intersect(ring(a, b, c, hyoid_c, (17.0, 11.0), 2.0, 2.8), -(b - hyoid_c[1] + 2.0))

    bones.add(_HYOID, column.frames[3], hyoid, ((-22.0, by3 + 12.0, -8.0), (22.0, by3 + 44.0, 4.0)))
    for obj, s in zip(_CLAVICLES, (-1.0, 1.0)):
        p0, p1 = (s * 24.0, 58.0, -28.0), (s * 150.0, 0.0, 10.0)
        box = (np.minimum(p0, p1) - 9.0, np.maximum(p0, p1) + 9.0)
        bones.add(obj, column.thorax, lambda a, b, c, p0=p0, p1=p1: capsule(a, b, c, p0, p1, 7.0), box)


def compose_bone(ct: np.ndarray, bones: BoneAccumulator, tissues: TissueValues) -> np.ndarray:
    """Paint the bones into ``ct``; return the labels (uint8 ``XYZ``, ``k`` iff the voxel centre is in the bone of Ck).

    Each bone voxel blends the tissue outside, the cortical shell (``tissues.cortex`` thick) and the
    cancellous core by their box-filtered fractions of the voxel.
    """
    w = bones.grid.spacing
    m = bones.f < 0.5 * w
    fb = bones.f[m]
    out = np.clip((fb + 0.5 * w) / w, 0.0, 1.0)
    inner = np.clip((-tissues.cortex - fb + 0.5 * w) / w, 0.0, 1.0)
    cort = np.clip(1.0 - out - inner, 0.0, 1.0)
    ct[m] = out * ct[m] + cort * tissues.cortical + inner * tissues.cancellous[bones.obj[m]]
    vertebra = (bones.f <= 0.0) & (bones.obj >= 1) & (bones.obj < NUM_SEG_CLASSES)
    return np.where(vertebra, bones.obj, 0).astype(np.uint8)

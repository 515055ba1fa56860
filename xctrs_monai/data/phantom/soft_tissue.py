# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Soft tissues of the phantom: neck and head outline with fat and muscle, brain, airway, lung apices and discs.

Intensities are box-filtered over one voxel (partial volume): a shape with SDF ``f`` covers the
fraction ``clip(0.5 - f / spacing, 0, 1)`` of a voxel, so a coarse grid looks like a down-sampled
fine one.
"""

from __future__ import annotations

import numpy as np

from xctrs_monai.constants import HU_AIR
from xctrs_monai.data.phantom.anatomy import NeckAnatomy
from xctrs_monai.data.phantom.column import Column
from xctrs_monai.data.phantom.frames import Frame, Grid, frame_from_axis
from xctrs_monai.data.phantom.sdf import ellipse2d, ellipsoid, intersect
from xctrs_monai.data.phantom.tissues import TissueValues

__all__ = ["SKULL_CENTRE", "SKULL_RADII", "paint", "paint_soft_tissues"]

SKULL_CENTRE, SKULL_RADII = (0.0, -8.0, 62.0), (70.0, 88.0, 58.0)
"""Outer table of the skull in the head frame (mm at head scale 1; our choice for an adult head)."""

_SCALP = 6.0
_FACE_CENTRE, _FACE_RADII = (0.0, 26.0, -10.0), (54.0, 50.0, 34.0)
_LUNG_CENTRE, _LUNG_RADII = (45.0, 5.0, -48.0), (32.0, 40.0, 50.0)  # in the thorax frame, mirrored in x


def paint(ct: np.ndarray, f: np.ndarray, value, w: float, sl=None) -> None:
    """Blend ``value`` into ``ct`` (or ``ct[sl]``) by the voxel fraction inside ``f <= 0`` (voxel width ``w``)."""
    target = ct if sl is None else ct[sl]
    a = np.clip(0.5 - f / w, 0.0, 1.0)
    target += a * (value - target)


def _spine_curves(grid: Grid, column: Column, anatomy: NeckAnatomy):
    """Body centre x, y and front y of the column, and the vertebral level, at every z of the grid."""
    levels = list(range(9, 0, -1))  # T2 .. C1, rising in z
    zc = np.array([column.frames[lvl].origin[2] for lvl in levels])
    order = np.argsort(zc)  # the column rises; sort guards np.interp against a sharp kink
    zc = zc[order]

    def curve(values) -> np.ndarray:
        return np.interp(grid.coords, zc, np.asarray(values, dtype=np.float64)[order])

    front = [column.frames[lvl].origin[1] + anatomy.vertebrae[max(lvl, 2) - 1].by for lvl in levels]
    return (
        curve([column.frames[lvl].origin[0] for lvl in levels]),
        curve([column.frames[lvl].origin[1] for lvl in levels]),
        curve(front),
        curve(levels),
    )


def _along_z(v) -> np.ndarray:
    """A per-z profile as a float32 ``11Z`` array that broadcasts over the grid."""
    return np.asarray(v, dtype=np.float32)[None, None, :]


def _head_sdf(grid: Grid, head: Frame, centre, radii, pad: float):
    """Slices and world SDF of an ellipsoid in the head frame (or ``(None, None)`` outside the grid)."""
    sl, loc = head.local(grid, tuple(np.subtract(centre, radii) - pad), tuple(np.add(centre, radii) + pad))
    if sl is None:
        return None, None
    return sl, ellipsoid(*loc, centre, radii) * np.float32(head.scale)


def _paint_body(ct: np.ndarray, grid: Grid, column: Column, anatomy: NeckAnatomy, tissues: TissueValues) -> None:
    """Neck (an elliptic cylinder following the spine, widening into the shoulders below the thoracic
    inlet), head and face: subcutaneous fat, then textured muscle inside it, and the brain."""
    w = grid.spacing
    spine_x, spine_y, _, _ = _spine_curves(grid, column, anatomy)
    ax, ay = anatomy.neck_semi_axes
    widen = _along_z(np.maximum(column.thorax.origin[2] + 10.0 - grid.coords, 0.0))
    centre = (_along_z(spine_x), _along_z(spine_y + anatomy.neck_offset))
    f_body = ellipse2d(grid.x, grid.y, centre, (ax + 2.2 * widen, ay + 0.3 * widen))
    sl_skull, f_skull = _head_sdf(grid, column.head, SKULL_CENTRE, SKULL_RADII, _SCALP + 2.0)
    if sl_skull is not None:
        np.minimum(f_body[sl_skull], f_skull - _SCALP * column.head.scale, out=f_body[sl_skull])
    sl, f_face = _head_sdf(grid, column.head, _FACE_CENTRE, _FACE_RADII, 2.0)
    if sl is not None:
        np.minimum(f_body[sl], f_face, out=f_body[sl])
    paint(ct, f_body, tissues.fat, w)
    f_body += np.float32(anatomy.fat)
    paint(ct, f_body, tissues.soft + 6.0 * tissues.texture_volume(grid.size), w)
    if sl_skull is not None:
        paint(ct, f_skull + 5.0 * column.head.scale, tissues.brain, w, sl_skull)


def _paint_airway(ct: np.ndarray, grid: Grid, column: Column, anatomy: NeckAnatomy) -> None:
    """Pharynx -> larynx -> trachea in front of the vertebral bodies, from above C1 down."""
    spine_x, _, front_y, level = _spine_curves(grid, column, anatomy)
    gap = np.interp(level, [1, 3, 5, 6, 8], [5.0, 4.0, 6.0, 12.0, 16.0])
    arx = np.interp(level, [1, 3, 4, 5, 6, 8], [13.0, 12.0, 9.0, 8.0, 8.0, 8.0]) * anatomy.airway_scale[0]
    ary = np.interp(level, [1, 3, 4, 5, 6, 8], [7.0, 6.0, 8.0, 7.5, 7.0, 7.0]) * anatomy.airway_scale[1]
    cy = front_y + gap + ary
    top = column.frames[1].origin[2] + 10.0
    pad = grid.spacing  # the partial volume reaches half a voxel beyond the wall
    lo = (np.min(spine_x - arx) - pad, np.min(cy - ary) - pad, grid.coords[0])
    sl = grid.slices(lo, (np.max(spine_x + arx) + pad, np.max(cy + ary) + pad, top + pad))
    if sl is None:
        return
    cx, cy, rx, ry = (_along_z(v[sl[2]]) for v in (spine_x, cy, arx, ary))
    f_air = ellipse2d(grid.x[sl[0]], grid.y[:, sl[1]], (cx, cy), (rx, ry))
    paint(ct, intersect(f_air, grid.z[:, :, sl[2]] - np.float32(top)), HU_AIR, grid.spacing, sl)


def _paint_lungs(ct: np.ndarray, grid: Grid, column: Column, tissues: TissueValues) -> None:
    """The two lung apices below the clavicles."""
    for sign in (-1.0, 1.0):
        centre = column.thorax.to_world((sign * _LUNG_CENTRE[0], *_LUNG_CENTRE[1:]))
        sl = grid.slices(centre - np.asarray(_LUNG_RADII) - 2.0, centre + np.asarray(_LUNG_RADII) + 2.0)
        if sl is not None:
            f = ellipsoid(grid.x[sl[0]], grid.y[:, sl[1]], grid.z[:, :, sl[2]], centre, _LUNG_RADII)
            paint(ct, f, tissues.lung, grid.spacing, sl)


def _paint_discs(ct: np.ndarray, grid: Grid, column: Column, anatomy: NeckAnatomy, tissues: TissueValues) -> None:
    """Discs C2/C3 .. T1/T2: elliptic slabs between the endplates, in the mean frame of their neighbours."""
    for lvl in range(2, 9):
        above, below = anatomy.vertebrae[lvl - 1], anatomy.vertebrae[lvl]
        top = column.frames[lvl].to_world((0.0, 0.0, -above.bh))
        bottom = column.frames[lvl + 1].to_world((0.0, 0.0, below.bh))
        fd = frame_from_axis(0.5 * (top + bottom), top - bottom)
        hh = 0.5 * np.linalg.norm(top - bottom) + 1.5
        rx, ry = 0.5 * (above.bx + below.bx) - 0.3, 0.5 * (above.by + below.by) - 0.3
        sl, loc = fd.local(grid, (-rx - 1, -ry - 1, -hh - 1), (rx + 1, ry + 1, hh + 1))
        if sl is not None:
            f = intersect(ellipse2d(loc[0], loc[1], (0.0, 0.3), (rx, ry)), np.abs(loc[2]) - hh)
            paint(ct, f, tissues.disc, grid.spacing, sl)


def paint_soft_tissues(ct: np.ndarray, grid: Grid, column: Column, anatomy: NeckAnatomy, tissues: TissueValues) -> None:
    """Paint the soft tissues into ``ct`` (HU, ``XYZ``, filled with air), in place: neck, head, face
    and brain, then the airway, the lung apices and the discs."""
    _paint_body(ct, grid, column, anatomy, tissues)
    _paint_airway(ct, grid, column, anatomy)
    _paint_lungs(ct, grid, column, tissues)
    _paint_discs(ct, grid, column, anatomy, tissues)

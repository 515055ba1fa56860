# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Synthetic cervical-spine CT phantoms with exact C1..C7 labels.

The phantom is built from analytic shapes (ellipsoids, capsules, boxes, plates and elliptic tori)
written as approximate signed distance functions (SDFs) in a local frame per vertebra, and
evaluated on the voxel grid only inside each vertebra's bounding box.

Scale: the anatomy is defined in millimetres of an adult reference spine (C7 inferior endplate to
dens tip about 130 mm) and is scaled by ``ANATOMY_SCALE * fov / 128`` where ``fov = size * spacing``
(times a per-case size factor of 0.92-1.05). At ``fov = 128 mm`` the column C1..C7 is therefore about
90 mm tall and fits the field of view with the skull base above and the thoracic inlet (T1,
clavicles, lung apices) below. Any ``size``/``spacing`` with the same field of view gives the same
anatomy on a coarser or finer grid.

Intensities: bone voxels are box-filtered over one voxel (partial volume), so that a coarse grid
looks like a down-sampled fine one. Labels are exact: a voxel is labelled ``k`` (``k = 1..7`` for
C1..C7) iff its centre lies inside the bone (cortical or cancellous) of vertebra ``k``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["ANATOMY_SCALE", "make_phantom", "phantom_affine"]

ANATOMY_SCALE = 0.7
"""Reference-adult millimetres to world millimetres at a 128 mm field of view."""

_REF_FOV = 128.0
_EPS = 1e-6


# --------------------------------------------------------------------------------------------
# approximate signed distance functions (negative inside), all on broadcastable float32 arrays
# --------------------------------------------------------------------------------------------
def _ellipsoid(x, y, z, c, r):
    qx, qy, qz = (x - c[0]) / r[0], (y - c[1]) / r[1], (z - c[2]) / r[2]
    k0 = np.sqrt(qx * qx + qy * qy + qz * qz)
    k1 = np.sqrt((qx / r[0]) ** 2 + (qy / r[1]) ** 2 + (qz / r[2]) ** 2)
    g = k0 * (k0 - 1.0) / np.maximum(k1, _EPS)
    return np.where(k0 < 1.0, np.minimum(g, (k0 - 1.0) * min(r)), g)


def _ellipse2d(x, y, c, r):
    """SDF of an ellipse in the plane (an infinite elliptic cylinder); ``c``/``r`` may be arrays."""
    qx, qy = (x - c[0]) / r[0], (y - c[1]) / r[1]
    k0 = np.sqrt(qx * qx + qy * qy)
    k1 = np.sqrt((qx / r[0]) ** 2 + (qy / r[1]) ** 2)
    g = k0 * (k0 - 1.0) / np.maximum(k1, _EPS)
    return np.where(k0 < 1.0, np.minimum(g, (k0 - 1.0) * np.minimum(r[0], r[1])), g)


def _box(x, y, z, c, h, rounding=0.0):
    qx = np.abs(x - c[0]) - (h[0] - rounding)
    qy = np.abs(y - c[1]) - (h[1] - rounding)
    qz = np.abs(z - c[2]) - (h[2] - rounding)
    outside = np.sqrt(np.maximum(qx, 0) ** 2 + np.maximum(qy, 0) ** 2 + np.maximum(qz, 0) ** 2)
    inside = np.minimum(np.maximum(np.maximum(qx, qy), qz), 0.0)
    return outside + inside - rounding


def _capsule(x, y, z, a, b, r):
    ba = np.subtract(b, a, dtype=np.float32)
    px, py, pz = x - a[0], y - a[1], z - a[2]
    t = np.clip((px * ba[0] + py * ba[1] + pz * ba[2]) / float(ba @ ba), 0.0, 1.0)
    return np.sqrt((px - t * ba[0]) ** 2 + (py - t * ba[1]) ** 2 + (pz - t * ba[2]) ** 2) - r


def _plate(x, y, z, a, b, half_thickness, zc, half_height):
    """A vertical plate: a 2D segment ``a -> b`` in the xy plane, thickened, cut to a z slab."""
    bax, bay = b[0] - a[0], b[1] - a[1]
    px, py = x - a[0], y - a[1]
    t = np.clip((px * bax + py * bay) / (bax * bax + bay * bay), 0.0, 1.0)
    d = np.sqrt((px - t * bax) ** 2 + (py - t * bay) ** 2) - half_thickness
    return _intersect(d, np.abs(z - zc) - half_height)


def _ring(x, y, z, c, r, rw, rh):
    """An elliptic torus: ellipse ``c``, ``r`` in the xy plane, tube half-width ``rw``, half-height ``rh``."""
    d = _ellipse2d(x, y, c[:2], r)
    return (np.sqrt((d / rw) ** 2 + ((z - c[2]) / rh) ** 2) - 1.0) * min(rw, rh)


def _union(*fs):
    out = fs[0]
    for f in fs[1:]:
        out = np.minimum(out, f)
    return out


def _intersect(a, b):
    return np.maximum(a, b)


def _subtract(a, b):
    return np.maximum(a, -b)


def _smin(a, b, k):
    """Smooth union with a fillet of size ``k``."""
    h = np.maximum(k - np.abs(a - b), 0.0) / k
    return np.minimum(a, b) - h * h * k * 0.25


# --------------------------------------------------------------------------------------------
# grid and frames
# --------------------------------------------------------------------------------------------
@dataclass
class _Grid:
    size: int
    spacing: float

    def __post_init__(self) -> None:
        self.origin = -0.5 * (self.size - 1) * self.spacing
        self.coords = (self.origin + self.spacing * np.arange(self.size)).astype(np.float32)
        self.x = self.coords[:, None, None]
        self.y = self.coords[None, :, None]
        self.z = self.coords[None, None, :]

    def slices(self, lo, hi) -> tuple[slice, slice, slice] | None:
        """Voxel slices covering the world box ``[lo, hi]`` (mm), or None when outside the grid."""
        i0 = np.floor((np.asarray(lo) - self.origin) / self.spacing).astype(int)
        i1 = np.ceil((np.asarray(hi) - self.origin) / self.spacing).astype(int) + 1
        i0, i1 = np.clip(i0, 0, self.size), np.clip(i1, 0, self.size)
        if np.any(i1 <= i0):
            return None
        return tuple(slice(int(a), int(b)) for a, b in zip(i0, i1))


@dataclass
class _Frame:
    """A local anatomical frame: ``world = origin + rot @ (scale * local)``; rot columns are local x, y, z."""

    origin: np.ndarray
    rot: np.ndarray
    scale: float

    def to_world(self, p) -> np.ndarray:
        return self.origin + self.rot @ (self.scale * np.asarray(p, dtype=np.float64))

    def local(self, grid: _Grid, lo_local, hi_local):
        """Slices of the grid that cover the local box, and the local coordinates (ref mm) there."""
        corners = np.array(
            [
                [a, b, c]
                for a in (lo_local[0], hi_local[0])
                for b in (lo_local[1], hi_local[1])
                for c in (lo_local[2], hi_local[2])
            ]
        )
        world = np.stack([self.to_world(p) for p in corners])
        sl = grid.slices(world.min(0), world.max(0))
        if sl is None:
            return None, None
        dx = grid.x[sl[0]] - np.float32(self.origin[0])
        dy = grid.y[:, sl[1]] - np.float32(self.origin[1])
        dz = grid.z[:, :, sl[2]] - np.float32(self.origin[2])
        r = (self.rot / self.scale).astype(np.float32)
        loc = tuple(r[0, k] * dx + r[1, k] * dy + r[2, k] * dz for k in range(3))
        return sl, loc


def _rot_x(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _rot_y(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rot_z(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def _frame_from_axis(origin, axis, axial_rotation: float, scale: float) -> _Frame:
    ez = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    ex = np.array([1.0, 0.0, 0.0]) - ez[0] * ez
    ex /= np.linalg.norm(ex)
    ey = np.cross(ez, ex)
    rot = np.stack([ex, ey, ez], axis=1) @ _rot_z(axial_rotation)
    return _Frame(np.asarray(origin, dtype=np.float64), rot, scale)


# --------------------------------------------------------------------------------------------
# vertebrae (local frame, reference-adult mm; origin at the vertebral body centre, x right,
# y anterior, z superior)
# --------------------------------------------------------------------------------------------
@dataclass
class _Dims:
    bx: float  # body half-width
    by: float  # body half-depth
    bh: float  # body half-height
    cw: float  # canal half-width
    cd: float  # canal half-depth
    spine_len: float  # spinous process length
    tp_len: float  # transverse process length beyond the body
    foramen_r: float  # foramen transversarium radius
    bifid: bool


def _subaxial(x, y, z, d: _Dims):
    """C3..C7 (and T1): body, uncinate processes, pedicles, pillars, laminae, spinous and transverse processes."""
    yc = -d.by - d.cd  # canal centre
    body = _box(x, y, z, (0.0, 0.0, 0.0), (d.bx, d.by, d.bh), rounding=2.5)
    body = _smin(body, _ellipsoid(x, y, z, (0.0, 1.0, 0.0), (d.bx - 0.5, d.by + 0.8, d.bh - 1.5)), 1.0)
    unc = _union(*[_ellipsoid(x, y, z, (s * (d.bx - 1.0), -1.0, d.bh), (1.6, 5.0, 2.2)) for s in (-1.0, 1.0)])
    f = _smin(body, unc, 1.0)
    xp = d.cw + 4.0  # pillar centre x
    yp = yc - 1.0
    # articular pillars: boxes sheared so that the facet planes descend posteriorly (about 40 degrees)
    zs = z - 0.84 * (y - yp)
    for s in (-1.0, 1.0):
        ped = _capsule(x, y, z, (s * (d.bx - 2.5), -d.by + 2.0, 0.5), (s * (d.cw + 1.5), yp + 1.0, 0.5), 2.9)
        pillar = _box(x, y, zs, (s * xp, yp, 0.0), (4.2, 5.0, d.bh + 1.6), rounding=1.5)
        lamina = _plate(x, y, z, (s * (d.cw + 0.5), yp - 3.0), (0.0, yc - d.cd - 2.5), 1.6, -1.5, 4.5)
        tp_c = (s * (d.bx + 0.5 * d.tp_len - 1.0), -d.by + 2.0, -0.5)
        tp = _box(x, y, z, tp_c, (0.5 * d.tp_len + 1.0, 4.2, 3.0), rounding=1.5)
        if d.foramen_r > 0:
            tp = _subtract(tp, _ellipse2d(x, y, (s * (d.bx + 3.2), -d.by + 2.0), (d.foramen_r, d.foramen_r)))
        f = _smin(f, ped, 1.5)
        f = _union(f, pillar)
        f = _smin(f, lamina, 1.5)
        f = _smin(f, tp, 1.2)
    y0 = yc - d.cd - 2.0
    tip = (0.0, y0 - d.spine_len, -1.5 - 0.35 * d.spine_len)
    sp = _capsule(1.25 * x, y, z, (0.0, y0, -1.5), tip, 3.0)
    if d.bifid:
        tips = [_ellipsoid(x, y, z, (s * 2.6, tip[1] - 0.5, tip[2]), (2.3, 3.0, 2.6)) for s in (-1.0, 1.0)]
        sp = _smin(sp, _union(*tips), 1.0)
    else:
        sp = _smin(sp, _ellipsoid(x, y, z, (0.0, tip[1] - 1.0, tip[2]), (3.5, 3.5, 3.2)), 1.0)
    f = _smin(f, sp, 1.5)
    return f


def _subaxial_box(d: _Dims):
    return (
        (-(d.bx + d.tp_len + 3.0), -(d.by + 2 * d.cd + d.spine_len + 9.0), -(d.bh + 0.6 * d.spine_len + 14.0)),
        (d.bx + d.tp_len + 3.0, d.by + 3.0, d.bh + 14.0),
    )


def _axis(x, y, z, d: _Dims, dens_len: float, dens_r: float):
    """C2: tall body with the dens, large superior facets, strong bifid spinous process."""
    yc = -d.by - d.cd
    body = _box(x, y, z, (0.0, 0.0, 0.0), (d.bx, d.by, d.bh), rounding=3.0)
    lip = _ellipsoid(x, y, z, (0.0, d.by - 1.5, -d.bh + 1.0), (d.bx - 2.5, 3.0, 3.5))  # anterior-inferior lip
    f = _smin(body, lip, 1.5)
    dens = _capsule(x, y, z, (0.0, 1.0, d.bh - 2.0), (0.0, 1.5, d.bh + dens_len), dens_r * 0.85)
    dens = _smin(dens, _ellipsoid(x, y, z, (0.0, 1.5, d.bh + dens_len - 0.5), (dens_r, dens_r, dens_r * 1.1)), 2.0)
    f = _smin(f, dens, 2.0)
    yp = yc - 1.0
    zs = z - 0.84 * (y - yp)
    for s in (-1.0, 1.0):
        sup = _ellipsoid(x, y, z, (s * 11.0, -0.5, d.bh - 0.5), (6.0, 7.5, 3.5))  # superior articular facet
        ped = _capsule(x, y, z, (s * (d.bx - 2.0), -d.by + 1.5, 1.0), (s * (d.cw + 2.0), yp + 1.0, -2.0), 3.6)
        pillar = _box(x, y, zs, (s * (d.cw + 4.0), yp, -d.bh + 4.0), (4.2, 5.0, 5.5), rounding=1.5)
        lamina = _plate(x, y, z, (s * (d.cw + 1.0), yp - 3.0), (0.0, yc - d.cd - 3.0), 2.0, -2.0, 6.0)
        tp = _box(x, y, z, (s * (d.bx + 3.5), -3.5, -1.0), (4.5, 4.0, 3.2), rounding=1.5)
        tp = _subtract(tp, _ellipse2d(x, y, (s * (d.bx + 3.0), -3.5), (d.foramen_r, d.foramen_r)))
        f = _smin(f, sup, 2.0)
        f = _smin(f, ped, 1.5)
        f = _union(f, pillar)
        f = _smin(f, lamina, 1.5)
        f = _smin(f, tp, 1.0)
    y0 = yc - d.cd - 2.5
    tip = (0.0, y0 - d.spine_len, -3.0 - 0.3 * d.spine_len)
    sp = _capsule(1.15 * x, y, z, (0.0, y0, -2.0), tip, 4.0)
    sp = _smin(sp, _union(*[_ellipsoid(x, y, z, (s * 3.5, tip[1], tip[2]), (3.0, 3.5, 4.0)) for s in (-1.0, 1.0)]), 1.5)
    return _smin(f, sp, 2.0)


def _axis_box(d: _Dims, dens_len: float, dens_r: float):
    return (
        (-(d.bx + 10.0), -(d.by + 2 * d.cd + d.spine_len + 10.0), -(d.bh + 0.3 * d.spine_len + 10.0)),
        (d.bx + 10.0, d.by + 3.0, d.bh + dens_len + dens_r * 1.2 + 1.0),
    )


def _atlas(x, y, z, ring_ax: float, ring_ay: float, tp_len: float):
    """C1: ring of anterior and posterior arches, lateral masses, tubercles, long transverse processes.

    Local origin on the dens axis at the height of the anterior arch; the ring centre lies posterior.
    """
    ry0 = 9.5 - ring_ay  # ring centre so that the anterior arch centre is at y = 9.5
    arch_a = _ring(x, y, z, (0.0, ry0, 0.0), (ring_ax, ring_ay), 2.8, 5.0)
    arch_p = _ring(x, y, z, (0.0, ry0, -0.5), (ring_ax, ring_ay), 3.6, 4.2)
    f = np.where(y > ry0 + 0.3 * ring_ay, arch_a, arch_p)
    f = _smin(f, _ellipsoid(x, y, z, (0.0, 10.8, 0.0), (4.0, 2.4, 5.5)), 1.0)  # anterior tubercle
    f = _smin(f, _ellipsoid(x, y, z, (0.0, ry0 - ring_ay - 0.5, -0.5), (4.0, 3.0, 4.8)), 1.0)  # posterior tubercle
    for s in (-1.0, 1.0):
        lm = _ellipsoid(x, y, z, (s * (ring_ax - 1.5), -3.0, -1.0), (6.5, 8.5, 7.5))
        tp = _box(x, y, z, (s * (ring_ax + 0.5 * tp_len), -4.0, -0.5), (0.5 * tp_len + 1.5, 4.0, 3.5), rounding=2.0)
        tp = _subtract(tp, _ellipse2d(x, y, (s * (ring_ax + 5.0), -4.5), (3.0, 3.0)))
        f = _smin(f, lm, 2.0)
        f = _smin(f, tp, 1.5)
    return f


def _atlas_box(ring_ax: float, ring_ay: float, tp_len: float):
    return (-(ring_ax + tp_len + 4.0), 9.5 - 2 * ring_ay - 5.0, -10.0), (ring_ax + tp_len + 4.0, 14.0, 7.0)


# --------------------------------------------------------------------------------------------
# painting helpers
# --------------------------------------------------------------------------------------------
def _alpha(f, w: float):
    """Fraction of a voxel of width ``w`` inside ``f <= 0`` (box-filtered step)."""
    return np.clip(0.5 - f / w, 0.0, 1.0)


def _paint(ct, f, value, w: float, sl=None) -> None:
    target = ct if sl is None else ct[sl]
    a = _alpha(f, w)
    target += a * (value - target)


class _BoneAccumulator:
    """Keeps, per voxel, the smallest bone SDF (world mm) and the object it belongs to."""

    def __init__(self, grid: _Grid) -> None:
        self.grid = grid
        self.f = np.full((grid.size,) * 3, 1e4, dtype=np.float32)
        self.obj = np.zeros((grid.size,) * 3, dtype=np.uint8)

    def add(self, obj_id: int, frame: _Frame, fn, box) -> None:
        sl, loc = frame.local(self.grid, *box)
        if sl is None:
            return
        f = fn(*loc).astype(np.float32) * np.float32(frame.scale)
        cur_f, cur_o = self.f[sl], self.obj[sl]
        m = f < cur_f
        cur_f[m] = f[m]
        cur_o[m] = obj_id


# --------------------------------------------------------------------------------------------
# the phantom
# --------------------------------------------------------------------------------------------
def phantom_affine(size: int, spacing: float) -> np.ndarray:
    """The RAS affine of a phantom grid: ``diag(spacing)``, volume centred on the world origin.

    Args:
        size: number of voxels along each axis.
        spacing: voxel size in mm.

    Returns:
        a float64 ``4x4`` voxel-to-world (RAS, mm) matrix.
    """
    aff = np.diag([spacing, spacing, spacing, 1.0]).astype(np.float64)
    aff[:3, 3] = -0.5 * (size - 1) * spacing
    return aff


def _subaxial_dims(level: int, g: float, rng: np.random.Generator) -> _Dims:
    """Reference dimensions for C3..C7 (``level`` 3..7) and T1 (8), scaled by ``g`` and jittered."""
    t = (level - 3) / 4.0
    j = lambda: float(rng.uniform(0.95, 1.05))  # noqa: E731
    spine_len = {3: 10.0, 4: 10.5, 5: 11.5, 6: 13.5, 7: 21.0, 8: 23.0}[level]
    tp_len = 10.5 + 2.5 * t if level < 8 else 16.0
    return _Dims(
        bx=(8.0 + 2.5 * t) * g * j(),
        by=(7.5 + 1.0 * t) * g * j(),
        bh=(6.4 + 0.5 * t) * g * j(),
        cw=(12.0 + 1.0 * min(t, 1.0)) * g * j(),
        cd=(7.0 - 0.5 * min(t, 1.0)) * g * j(),
        spine_len=spine_len * g * j(),
        tp_len=tp_len * g * j(),
        foramen_r=(2.8 if level < 7 else (1.8 if level == 7 else 0.0)) * g,
        bifid=level < 7,
    )


def make_phantom(seed: int, size: int = 128, spacing: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Make a synthetic neck CT with a labelled cervical spine.

    The column C1..C7 (atlas ring with lateral masses and arches, axis with the dens rising through
    the ring, C3..C7 with bodies, pedicles, pillars, laminae, spinous and transverse processes with
    foramina transversaria) sits in a neck with muscle, subcutaneous fat and an airway, with the skull
    base above and T1, clavicles and lung apices below. Sizes, lordosis, rotations, neck shape,
    tissue intensities and noise vary with ``seed``; the result is deterministic for a seed.
    The anatomy is scaled to the field of view ``size * spacing`` (see the module docstring), so
    different grids with the same field of view show the same anatomy.

    Args:
        seed: random seed (any non-negative integer).
        size: number of voxels along each axis (cubic grid). Defaults to 128.
        spacing: isotropic voxel size in mm. Defaults to 1.0.

    Returns:
        ``(ct_hu, labels, affine)``: ``ct_hu`` float32 ``XYZ`` in HU (-1024..3071), ``labels`` uint8
        ``XYZ`` with 0 background and 1..7 = C1..C7, ``affine`` the float64 ``4x4`` RAS voxel-to-mm
        matrix (axes X right, Y anterior, Z superior).

    Raises:
        ValueError: when ``seed`` is negative, ``size < 16`` or ``spacing <= 0``.
    """
    if int(seed) < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}.")
    if int(size) != size or size < 16:
        raise ValueError(f"size must be an integer >= 16, got {size}.")
    if not spacing > 0:
        raise ValueError(f"spacing must be > 0, got {spacing}.")
    size, spacing = int(size), float(spacing)
    rng = np.random.default_rng(int(seed))
    grid = _Grid(size, spacing)
    fov = size * spacing
    w = spacing
    g = float(rng.uniform(0.92, 1.05))  # anatomy size factor
    s = ANATOMY_SCALE * fov / _REF_FOV * g  # ref mm -> world mm
    gs = float(rng.uniform(0.95, 1.05))  # bone-only size factor (neck stays)

    # ---- the column: C7 .. C2 centres along a lordotic curve (in ref mm, frame-free first)
    dims = {lvl: _subaxial_dims(lvl, gs, rng) for lvl in range(3, 9)}
    c2 = _Dims(
        bx=8.8 * gs,
        by=8.0 * gs,
        bh=10.0 * gs,
        cw=12.3 * gs,
        cd=8.0 * gs,
        spine_len=14.0 * gs,
        tp_len=0.0,
        foramen_r=2.6 * gs,
        bifid=True,
    )
    dens_len, dens_r = float(rng.uniform(13.0, 16.0)) * gs, float(rng.uniform(4.6, 5.4)) * gs
    ring_ax, ring_ay = float(rng.uniform(14.5, 16.0)) * gs, float(rng.uniform(17.0, 19.0)) * gs
    atlas_tp = float(rng.uniform(15.0, 19.0)) * gs
    disc = [float(rng.uniform(4.5, 6.0)) * gs for _ in range(6)]  # T1/C7, C7/C6, ..., C3/C2

    # link j joins level (8 - j) to (7 - j): T1->C7, C7->C6, ..., C3->C2; theta > 0 leans anterior.
    # The lordosis (C2..C7 Cobb angle) is spread over the links C7->C6 .. C3->C2.
    lordosis = np.deg2rad(rng.uniform(-5.0, 35.0))
    lean = np.deg2rad(rng.uniform(-6.0, 8.0))
    scol = np.deg2rad(rng.normal(0.0, 1.5, size=6))
    theta = lean + lordosis * (0.5 - np.clip((np.arange(6) - 1) / 4.0, 0.0, 1.0))
    axial = np.deg2rad(rng.normal(0.0, 2.0, size=9))
    heights = [dims[8].bh, dims[7].bh, dims[6].bh, dims[5].bh, dims[4].bh, dims[3].bh, c2.bh]
    centres, links = [np.zeros(3)], []
    for j in range(6):
        u = np.array([np.sin(scol[j]), np.cos(scol[j]) * np.sin(theta[j]), np.cos(scol[j]) * np.cos(theta[j])])
        links.append(u)
        centres.append(centres[-1] + u * (heights[j] + disc[j] + heights[j + 1]))
    # vertebra axes: mean of the adjacent link directions (T1 and C2 take their single link)
    vaxes = [links[0]] + [links[i - 1] + links[i] for i in range(1, 6)] + [links[5]]
    # place the column: dens tip 0.17 fov below the top, mean body y slightly posterior to the centre
    tmp = [_frame_from_axis(c * s, a, 0.0, s) for c, a in zip(centres, vaxes)]
    dens_tip = tmp[-1].to_world((0.0, 1.5, c2.bh + dens_len + dens_r * 1.1))
    shift = np.array(
        [
            float(rng.normal(0.0, 1.0)) * s,
            -0.04 * fov + float(rng.normal(0.0, 1.5)) * s - np.mean([t.origin[1] for t in tmp[1:]]),
            0.33 * fov - dens_tip[2],
        ]
    )
    frames = {lvl: _frame_from_axis(centres[8 - lvl] * s + shift, vaxes[8 - lvl], axial[lvl], s) for lvl in range(2, 9)}
    # C1 on the dens axis, with the larger atlanto-axial rotation; the head rides on C1
    f2 = frames[2]
    c1_origin = f2.to_world((0.0, 1.0, c2.bh + 2.5 + 2.0 + 9.0 * gs))
    flex = np.deg2rad(rng.normal(0.0, 4.0))
    frames[1] = _Frame(c1_origin, f2.rot @ _rot_z(np.deg2rad(rng.normal(0.0, 5.0))) @ _rot_x(-flex), s)
    head = _Frame(frames[1].to_world((0.0, 0.0, 2.0)), frames[1].rot @ _rot_x(np.deg2rad(rng.normal(0.0, 3.0))), s)

    # ---- tissue intensities
    hu_soft = float(rng.uniform(25.0, 55.0))
    hu_fat = float(rng.uniform(-115.0, -85.0))
    hu_brain = float(rng.uniform(28.0, 40.0))
    hu_disc = float(rng.uniform(80.0, 100.0))
    hu_cort = float(rng.uniform(900.0, 1400.0))
    hu_canc = float(rng.uniform(180.0, 350.0))
    hu_lung = float(rng.uniform(-880.0, -820.0))
    cortex = float(rng.uniform(1.2, 1.8)) * s  # cortical thickness, world mm
    noise_sd = float(rng.uniform(5.0, 18.0))

    # ---- soft tissues: neck (elliptic cylinder following the spine), head, shoulders
    x, y, z = grid.x, grid.y, grid.z
    zc = np.array([frames[lvl].origin[2] for lvl in range(8, 0, -1)])
    yc = np.array([frames[lvl].origin[1] for lvl in range(8, 0, -1)])
    xc = np.array([frames[lvl].origin[0] for lvl in range(8, 0, -1)])
    spine_y = np.interp(grid.coords, zc, yc).astype(np.float32)[None, None, :]
    spine_x = np.interp(grid.coords, zc, xc).astype(np.float32)[None, None, :]
    neck_ax, neck_ay = float(rng.uniform(52.0, 64.0)) * s, float(rng.uniform(54.0, 62.0)) * s
    neck_dy = float(rng.uniform(0.0, 5.0)) * s
    z_inlet = frames[7].origin[2] - 8.0 * s
    widen = np.maximum(z_inlet - grid.coords, 0.0).astype(np.float32)[None, None, :]
    f_neck = _ellipse2d(x, y, (spine_x, spine_y + neck_dy), (neck_ax + 2.2 * widen, neck_ay + 0.3 * widen))
    # head outline (skull + scalp) and face/jaw soft tissue, evaluated only in their bounding boxes
    skull_c, skull_r = (0.0, -8.0, 56.0), (62.0, 80.0, 46.0)
    scalp = 6.0
    f_body = f_neck.copy()
    skull_box = tuple(np.subtract(skull_c, skull_r) - scalp - 2.0), tuple(np.add(skull_c, skull_r) + scalp + 2.0)
    sl_skull, loc = head.local(grid, *skull_box)
    f_skull_out = None
    if sl_skull is not None:
        f_skull_out = _ellipsoid(*loc, skull_c, skull_r) * s
        np.minimum(f_body[sl_skull], f_skull_out - scalp * s, out=f_body[sl_skull])
    face_c, face_r = (0.0, 24.0, -10.0), (52.0, 46.0, 32.0)
    sl, loc = head.local(grid, tuple(np.subtract(face_c, face_r) - 2.0), tuple(np.add(face_c, face_r) + 2.0))
    if sl is not None:
        np.minimum(f_body[sl], _ellipsoid(*loc, face_c, face_r) * s, out=f_body[sl])
    fat_t = float(rng.uniform(3.0, 8.0)) * s

    ct = np.full((size,) * 3, -1000.0, dtype=np.float32)
    _paint(ct, f_body, hu_fat, w)
    tex = torch.from_numpy(rng.standard_normal((1, 1, 6, 6, 6)).astype(np.float32))
    tex = torch.nn.functional.interpolate(tex, size=(size,) * 3, mode="trilinear", align_corners=True)[0, 0].numpy()
    f_body += fat_t
    _paint(ct, f_body, hu_soft + 6.0 * tex, w)
    if f_skull_out is not None:
        _paint(ct, f_skull_out + 5.0 * s, hu_brain, w, sl_skull)

    # airway: pharynx -> larynx -> trachea, anterior to the bodies, from the skull base down
    zb = grid.coords
    half_depth = np.array([dims[8].by, dims[7].by, dims[6].by, dims[5].by, dims[4].by, dims[3].by, c2.by, c2.by])
    body_front = np.interp(zb, zc, yc + half_depth * s)
    lv = np.interp(zb, zc, np.arange(8, 0, -1).astype(float))  # continuous vertebral level at each z
    gap = np.interp(lv, [1, 3, 5, 6, 8], [5.0, 4.0, 6.0, 12.0, 16.0]) * s
    arx = np.interp(lv, [1, 3, 4, 5, 6, 8], [13.0, 12.0, 9.0, 8.0, 8.0, 8.0]) * s * float(rng.uniform(0.85, 1.15))
    ary = np.interp(lv, [1, 3, 4, 5, 6, 8], [7.0, 6.0, 8.0, 7.5, 7.0, 7.0]) * s * float(rng.uniform(0.85, 1.15))
    acy = body_front + gap + ary
    z_air_top = frames[1].origin[2] + 10.0 * s
    acy, arx, ary = (v.astype(np.float32)[None, None, :] for v in (acy, arx, ary))
    f_air = _ellipse2d(x, y, (spine_x, acy), (arx, ary))
    f_air = _intersect(f_air, (z - np.float32(z_air_top)))
    _paint(ct, f_air, -1000.0, w)
    # lung apices below the clavicles
    f1 = frames[8]
    for sgn in (-1.0, 1.0):
        lc = f1.to_world((sgn * 36.0, 2.0, -34.0))
        sl = grid.slices(lc - 50.0 * s, lc + 50.0 * s)
        if sl is not None:
            fl = _ellipsoid(x[sl[0]] / s, y[:, sl[1]] / s, z[:, :, sl[2]] / s, lc / s, (26.0, 34.0, 40.0)) * s
            _paint(ct, fl, hu_lung, w, sl)
    # intervertebral discs (C2/C3 .. C7/T1), in the mean frame of their neighbours
    for lvl in range(2, 8):
        fa, fb = frames[lvl], frames[lvl + 1]
        da = c2 if lvl == 2 else dims[lvl]
        db = dims[lvl + 1]
        top = fa.to_world((0.0, 0.0, -da.bh))
        bot = fb.to_world((0.0, 0.0, db.bh))
        ax_ = top - bot
        fd = _frame_from_axis(0.5 * (top + bot), ax_, 0.0, s)
        hh = 0.5 * np.linalg.norm(ax_) / s + 1.5
        rx, ry = 0.5 * (da.bx + db.bx) - 0.3, 0.5 * (da.by + db.by) - 0.3
        sl, (dx_, dy_, dz_) = fd.local(grid, (-rx - 1, -ry - 1, -hh - 1), (rx + 1, ry + 1, hh + 1))
        if sl is not None:
            fdisc = _intersect(_ellipse2d(dx_, dy_, (0.0, 0.3), (rx, ry)), np.abs(dz_) - hh) * s
            _paint(ct, fdisc, hu_disc, w, sl)

    # ---- bones
    bones = _BoneAccumulator(grid)
    for lvl in range(3, 9):
        d = dims[lvl]
        bones.add(lvl if lvl <= 7 else 8, frames[lvl], lambda a, b, c, d=d: _subaxial(a, b, c, d), _subaxial_box(d))
    bones.add(2, frames[2], lambda a, b, c: _axis(a, b, c, c2, dens_len, dens_r), _axis_box(c2, dens_len, dens_r))
    atlas_box = _atlas_box(ring_ax, ring_ay, atlas_tp)
    bones.add(1, frames[1], lambda a, b, c: _atlas(a, b, c, ring_ax, ring_ay, atlas_tp), atlas_box)
    # skull base: occipital bowl with the foramen magnum, condyles, clivus, mastoids (label 0)
    def _skull(a, b, c):
        inner = tuple(r - 5.0 for r in skull_r)
        f = _subtract(_ellipsoid(a, b, c, skull_c, skull_r), _ellipsoid(a, b, c, skull_c, inner))
        f = _subtract(f, _ellipse2d(a, b, (0.0, -10.0), (14.0 * gs, 17.0 * gs)))
        for sg in (-1.0, 1.0):
            f = _smin(f, _ellipsoid(a, b, c, (sg * (ring_ax - 2.0), -2.0, 11.0), (5.0, 9.0, 4.5)), 2.0)
            f = _union(f, _ellipsoid(a, b, c, (sg * 48.0, -6.0, 14.0), (7.0, 9.0, 12.0)))
        f = _smin(f, _plate(a, b, c, (0.0, 10.0), (0.0, 32.0), 9.0, 22.0, 6.0), 3.0)
        return f

    bones.add(9, head, _skull, ((-80.0, -100.0, 5.0), (80.0, 70.0, 120.0)))
    # mandible (U-shaped body and rami) and hyoid, in the head frame (label 0)
    def _jaw(a, b, c):
        body = _ring(a, b, c, (0.0, 24.0, -30.0), (44.0, 50.0), 4.0, 9.0)
        body = _intersect(body, -(b - 22.0))
        f = body
        for sg in (-1.0, 1.0):
            f = _smin(f, _plate(a, b, c, (sg * 44.0, 22.0), (sg * 46.0, 34.0), 3.0, -12.0, 20.0), 3.0)
        return f

    bones.add(10, head, _jaw, ((-56.0, 5.0, -45.0), (56.0, 82.0, 12.0)))
    f3 = frames[3]
    hyoid_c = (0.0, dims[3].by + 26.0, -2.0)
    hyoid_box = ((-20.0, dims[3].by + 10.0, -8.0), (20.0, dims[3].by + 40.0, 4.0))
    def _hyoid(a, b, c):
        return _intersect(_ring(a, b, c, hyoid_c, (15.0, 10.0), 1.8, 2.5), -(b - hyoid_c[1] + 2.0))

    bones.add(11, f3, _hyoid, hyoid_box)

    # clavicles, in the T1 frame (label 0)
    for k, sg in enumerate((-1.0, 1.0)):
        p0, p1 = (sg * 12.0, 48.0, -8.0), (sg * 78.0, 10.0, 18.0)
        box = (np.minimum(p0, p1) - 7.0, np.maximum(p0, p1) + 7.0)
        bones.add(12 + k, f1, lambda p, q, r, p0=p0, p1=p1: _capsule(p, q, r, p0, p1, 6.0), box)

    # composite bone (box-filtered cortical/cancellous profile) and read the labels
    canc = np.full(256, hu_canc, dtype=np.float32)  # cancellous HU per bone object
    canc[1:14] += rng.normal(0.0, 25.0, size=13).astype(np.float32)
    m = bones.f < 0.5 * w
    fb = bones.f[m]
    out = np.clip((fb + 0.5 * w) / w, 0.0, 1.0)
    inner = np.clip((-cortex - fb + 0.5 * w) / w, 0.0, 1.0)
    cort = np.clip(1.0 - out - inner, 0.0, 1.0)
    ct[m] = out * ct[m] + cort * hu_cort + inner * canc[bones.obj[m]]
    labels = np.where((bones.f <= 0.0) & (bones.obj >= 1) & (bones.obj <= 7), bones.obj, 0).astype(np.uint8)

    ct += noise_sd * rng.standard_normal(ct.shape, dtype=np.float32)
    np.clip(ct, -1024.0, 3071.0, out=ct)
    return ct, labels, phantom_affine(size, spacing)

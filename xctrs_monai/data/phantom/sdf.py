# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Approximate signed distance functions (SDFs, negative inside, in mm) of the phantom's shapes.

All functions take broadcastable float32 coordinate arrays (``x``, ``y``, ``z``, as ``Grid`` and
``Frame.local`` give them) and return the SDF on their broadcast shape. The ellipse and ellipsoid use
the ``k0 * (k0 - 1) / k1`` approximation of the distance (I. Quilez, "ellipsoid SDF"), close to the
true distance near the surface, which is where the box-filtered partial volume needs it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["box", "capsule", "ellipse2d", "ellipsoid", "intersect", "plate", "ring", "smin", "subtract", "union"]

_EPS = 1e-6


def _ellipse_distance(q: list, r: list, inner_scale) -> np.ndarray:
    """Shared core of the ellipse and ellipsoid SDFs: ``q`` normalised coordinates, ``r`` radii."""
    k0 = np.sqrt(sum(qi * qi for qi in q))
    k1 = np.sqrt(sum((qi / ri) ** 2 for qi, ri in zip(q, r)))
    g = k0 * (k0 - 1.0) / np.maximum(k1, _EPS)
    return np.where(k0 < 1.0, np.minimum(g, (k0 - 1.0) * inner_scale), g)


def ellipsoid(x, y, z, c, r) -> np.ndarray:
    """Ellipsoid with centre ``c`` and semi-axes ``r`` (mm)."""
    q = [(x - c[0]) / r[0], (y - c[1]) / r[1], (z - c[2]) / r[2]]
    return _ellipse_distance(q, list(r), min(r))


def ellipse2d(x, y, c, r) -> np.ndarray:
    """Ellipse in the xy plane (an infinite elliptic cylinder along z); ``c`` and ``r`` may be arrays."""
    q = [(x - c[0]) / r[0], (y - c[1]) / r[1]]
    return _ellipse_distance(q, [r[0], r[1]], np.minimum(r[0], r[1]))


def box(x, y, z, c, h, rounding: float = 0.0) -> np.ndarray:
    """Axis-aligned box with centre ``c``, half extents ``h`` and edges rounded by ``rounding`` (mm)."""
    qx = np.abs(x - c[0]) - (h[0] - rounding)
    qy = np.abs(y - c[1]) - (h[1] - rounding)
    qz = np.abs(z - c[2]) - (h[2] - rounding)
    outside = np.sqrt(np.maximum(qx, 0) ** 2 + np.maximum(qy, 0) ** 2 + np.maximum(qz, 0) ** 2)
    inside = np.minimum(np.maximum(np.maximum(qx, qy), qz), 0.0)
    return outside + inside - rounding


def capsule(x, y, z, a, b, r: float) -> np.ndarray:
    """Segment ``a -> b`` thickened to radius ``r``."""
    ba = np.subtract(b, a, dtype=np.float32)
    px, py, pz = x - a[0], y - a[1], z - a[2]
    t = np.clip((px * ba[0] + py * ba[1] + pz * ba[2]) / float(ba @ ba), 0.0, 1.0)
    return np.sqrt((px - t * ba[0]) ** 2 + (py - t * ba[1]) ** 2 + (pz - t * ba[2]) ** 2) - r


def plate(x, y, z, a, b, half_thickness: float, zc: float, half_height: float) -> np.ndarray:
    """A vertical plate: the 2D segment ``a -> b`` in the xy plane, thickened, cut to ``|z - zc| <= half_height``."""
    bax, bay = b[0] - a[0], b[1] - a[1]
    px, py = x - a[0], y - a[1]
    t = np.clip((px * bax + py * bay) / (bax * bax + bay * bay), 0.0, 1.0)
    d = np.sqrt((px - t * bax) ** 2 + (py - t * bay) ** 2) - half_thickness
    return intersect(d, np.abs(z - zc) - half_height)


def ring(x, y, z, c, r, rw: float, rh: float) -> np.ndarray:
    """Elliptic torus: ellipse ``c[:2]``, ``r`` at height ``c[2]``, tube half-width ``rw``, half-height ``rh``."""
    d = ellipse2d(x, y, c[:2], r)
    return (np.sqrt((d / rw) ** 2 + ((z - c[2]) / rh) ** 2) - 1.0) * min(rw, rh)


def union(*fs) -> np.ndarray:
    """Union of shapes."""
    out = fs[0]
    for f in fs[1:]:
        out = np.minimum(out, f)
    return out


def intersect(a, b) -> np.ndarray:
    """Intersection of two shapes."""
    return np.maximum(a, b)


def subtract(a, b) -> np.ndarray:
    """``a`` without ``b``."""
    return np.maximum(a, -b)


def smin(a, b, k: float) -> np.ndarray:
    """Smooth union with a fillet of size ``k`` (mm)."""
    h = np.maximum(k - np.abs(a - b), 0.0) / k
    return np.minimum(a, b) - h * h * k * 0.25

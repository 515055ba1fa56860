# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Vertebra shapes as signed distance functions in their local frame.

Local frame (mm): origin at the centre of the vertebral body (C1: on the dens axis at the height of
the anterior arch), x to the patient's right, y anterior, z superior. Each shape gives its SDF, a
local box that holds it (where the SDF is evaluated) and sample points inside its bone (to place
the column in the field of view). The measured sizes are fields; the small parts without a
measurement of their own (pedicles, pillars, laminae, tubercles) are fixed shape choices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xctrs_monai.data.phantom.sdf import box, capsule, ellipse2d, ellipsoid, plate, ring, smin, subtract, union

__all__ = ["Atlas", "Axis", "Subaxial", "inside_points"]

_FACET_SHEAR = 0.84  # facet planes descend posteriorly at about 40 degrees: z' = z - 0.84 (y - y_pillar)


@dataclass(frozen=True)
class _Vertebra:
    """Sizes (mm) shared by C2..T2, and the bone as a union of parts with boxes of their own.

    Args:
        bx: body half-width. by: body half-depth (the box; C3..T2 bulge 0.9 mm further anterior).
        bh: body half-height. cw: canal half-width. cd: canal half-depth.
        spine_len: spinous process length behind the laminae.
        foramen_r: radius of the foramen transversarium (0: none).
    """

    bx: float
    by: float
    bh: float
    cw: float
    cd: float
    spine_len: float
    foramen_r: float

    def parts(self) -> list:
        """``(sdf, (lo, hi))`` of each part: its SDF and the local box that holds it. Parts are
        evaluated in their own boxes (the long processes would otherwise widen the box of the whole)."""
        raise NotImplementedError

    def sdf(self, x, y, z) -> np.ndarray:
        """SDF of the whole bone: the union of its parts."""
        return union(*[fn(x, y, z) for fn, _ in self.parts()])

    def box(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Local ``(lo, hi)`` corners of a box that holds the whole bone."""
        boxes = np.array([b for _, b in self.parts()])
        return tuple(boxes[:, 0].min(0)), tuple(boxes[:, 1].max(0))


@dataclass(frozen=True)
class Subaxial(_Vertebra):
    """C3..C7, T1 and T2: body with uncinate processes, pedicles, articular pillars, laminae, spinous and
    transverse processes (with foramina transversaria when ``foramen_r > 0``).

    Args:
        tp_len: transverse process length beyond the body (after the sizes of ``_Vertebra``).
        bifid: a bifid spinous tip.
    """

    tp_len: float
    bifid: bool

    def _core(self, x, y, z) -> np.ndarray:
        """Body with uncinate processes, pedicles, pillars and laminae."""
        yc = -self.by - self.cd  # canal centre
        f = box(x, y, z, (0.0, 0.0, 0.0), (self.bx, self.by, self.bh), rounding=2.5)
        f = smin(f, ellipsoid(x, y, z, (0.0, 1.0, 0.0), (self.bx - 0.5, self.by + 0.8, self.bh - 1.5)), 1.0)
        for s in (-1.0, 1.0):  # uncinate processes
            f = smin(f, ellipsoid(x, y, z, (s * (self.bx - 1.0), -1.0, self.bh), (1.6, 5.0, 2.2)), 1.0)
        yp = yc - 1.0  # pillar centre y
        zs = z - _FACET_SHEAR * (y - yp)
        for s in (-1.0, 1.0):
            ped_a, ped_b = (s * (self.bx - 2.5), -self.by + 2.0, 0.5), (s * (self.cw + 1.5), yp + 1.0, 0.5)
            ped = capsule(x, y, z, ped_a, ped_b, 2.9)
            pillar = box(x, y, zs, (s * (self.cw + 4.0), yp, 0.0), (4.2, 5.0, self.bh + 1.6), rounding=1.5)
            lamina = plate(x, y, z, (s * (self.cw + 0.5), yp - 3.0), (0.0, yc - self.cd - 2.5), 1.6, -1.5, 4.5)
            f = smin(union(smin(f, ped, 1.5), pillar), lamina, 1.5)
        return f

    def _transverse(self, s: float):
        """Transverse process of side ``s`` (+1 right) with its foramen."""

        def fn(x, y, z):
            tp_c = (s * (self.bx + 0.5 * self.tp_len - 1.0), -self.by + 2.0, -0.5)
            tp = box(x, y, z, tp_c, (0.5 * self.tp_len + 1.0, 4.2, 3.0), rounding=1.5)
            if self.foramen_r > 0:
                hole = ellipse2d(x, y, (s * (self.bx + 3.2), -self.by + 2.0), (self.foramen_r, self.foramen_r))
                tp = subtract(tp, hole)
            return tp

        return fn

    def _spinous(self, x, y, z) -> np.ndarray:
        y0 = -self.by - 2 * self.cd - 2.0
        tip = (0.0, y0 - self.spine_len, -1.5 - 0.35 * self.spine_len)
        sp = capsule(1.25 * x, y, z, (0.0, y0, -1.5), tip, 3.0)
        if self.bifid:
            tips = [ellipsoid(x, y, z, (s * 2.6, tip[1] - 0.5, tip[2]), (2.3, 3.0, 2.6)) for s in (-1.0, 1.0)]
            return smin(sp, union(*tips), 1.0)
        return smin(sp, ellipsoid(x, y, z, (0.0, tip[1] - 1.0, tip[2]), (3.5, 3.5, 3.2)), 1.0)

    def parts(self) -> list:
        top = self.bh + 1.6 + _FACET_SHEAR * 5.0 + 1.0  # pillar top (sheared) with a 1 mm pad
        half_x = max(self.cw + 9.2, self.bx + 1.6)
        y0 = -self.by - 2 * self.cd - 2.0  # where the laminae meet the spinous process
        core = ((-half_x, y0 - 4.0, -top), (half_x, self.by + 2.5, top))
        y_tp, tip_z = -self.by + 2.0, 1.5 + 0.35 * self.spine_len
        spinous = ((-5.5, y0 - self.spine_len - 5.0, -tip_z - 4.5), (5.5, y0 + 4.0, 2.5))
        out = [(self._core, core), (self._spinous, spinous)]
        for s in (-1.0, 1.0):
            xs = sorted((s * (self.bx - 2.5), s * (self.bx + self.tp_len + 1.0)))
            out.append((self._transverse(s), ((xs[0], y_tp - 5.2, -4.5), (xs[1], y_tp + 5.2, 3.5))))
        return out


@dataclass(frozen=True)
class Axis(_Vertebra):
    """C2: tall body with the dens, large superior facets, strong bifid spinous process.

    Args:
        dens_len: dens height above the body (after the sizes of ``_Vertebra``).
        dens_r: dens radius.
    """

    dens_len: float
    dens_r: float

    def _core(self, x, y, z) -> np.ndarray:
        """Body with its anterior-inferior lip, superior facets, pedicles, pillars, laminae, transverse processes."""
        yc = -self.by - self.cd
        f = box(x, y, z, (0.0, 0.0, 0.0), (self.bx, self.by, self.bh), rounding=3.0)
        lip = ellipsoid(x, y, z, (0.0, self.by - 1.5, -self.bh + 1.0), (self.bx - 2.5, 3.0, 3.5))
        f = smin(f, lip, 1.5)
        yp = yc - 1.0
        zs = z - _FACET_SHEAR * (y - yp)
        for s in (-1.0, 1.0):
            sup = ellipsoid(x, y, z, (s * (self.cw + 5.0), -0.5, self.bh - 0.5), (7.0, 8.0, 3.5))  # superior facet
            ped_a, ped_b = (s * (self.bx - 2.0), -self.by + 1.5, 1.0), (s * (self.cw + 2.0), yp + 1.0, -2.0)
            ped = capsule(x, y, z, ped_a, ped_b, 3.6)
            pillar = box(x, y, zs, (s * (self.cw + 4.0), yp, -self.bh + 4.0), (4.2, 5.0, 5.5), rounding=1.5)
            lamina = plate(x, y, z, (s * (self.cw + 1.0), yp - 3.0), (0.0, yc - self.cd - 3.0), 2.0, -2.0, 6.0)
            tp = box(x, y, z, (s * (self.bx + 3.5), -3.5, -1.0), (4.5, 4.0, 3.2), rounding=1.5)
            tp = subtract(tp, ellipse2d(x, y, (s * (self.bx + 3.0), -3.5), (self.foramen_r, self.foramen_r)))
            f = smin(smin(union(smin(smin(f, sup, 2.0), ped, 1.5), pillar), lamina, 1.5), tp, 1.0)
        return f

    def _dens(self, x, y, z) -> np.ndarray:
        top = self.bh + self.dens_len
        dens = capsule(x, y, z, (0.0, 1.0, self.bh - 2.0), (0.0, 1.5, top), self.dens_r * 0.85)
        return smin(dens, ellipsoid(x, y, z, (0.0, 1.5, top - 0.5), (self.dens_r, self.dens_r, self.dens_r * 1.1)), 2.0)

    def _spinous(self, x, y, z) -> np.ndarray:
        y0 = -self.by - 2 * self.cd - 2.5
        tip = (0.0, y0 - self.spine_len, -3.0 - 0.3 * self.spine_len)
        sp = capsule(1.15 * x, y, z, (0.0, y0, -2.0), tip, 4.0)
        tips = [ellipsoid(x, y, z, (s * 3.5, tip[1], tip[2]), (3.0, 3.5, 4.0)) for s in (-1.0, 1.0)]
        return smin(sp, union(*tips), 1.5)

    def parts(self) -> list:
        half_x = max(self.bx + 9.5, self.cw + 13.0)
        low = self.bh + 1.5 + _FACET_SHEAR * 5.0 + 1.0  # pillar bottom (sheared) with a 1 mm pad
        y0 = -self.by - 2 * self.cd - 2.5
        core = ((-half_x, y0 - 5.0, -low), (half_x, self.by + 2.5, self.bh + 4.0))
        r, top = self.dens_r + 1.0, self.bh + self.dens_len + 1.1 * self.dens_r + 1.0
        dens = ((-r, 1.0 - r, self.bh - 3.0 - self.dens_r), (r, 1.5 + r, top))
        tip_z = 3.0 + 0.3 * self.spine_len
        spinous = ((-8.0, y0 - self.spine_len - 4.5, -tip_z - 5.0), (8.0, y0 + 5.0, 3.0))
        return [(self._core, core), (self._dens, dens), (self._spinous, spinous)]


@dataclass(frozen=True)
class Atlas:
    """C1: ring of anterior and posterior arches, lateral masses, tubercles, long transverse processes.

    The local origin lies on the dens axis at the height of the anterior arch; the ring centre lies
    posterior to it so that the anterior arch centre is at ``y = 9.5``.

    Args:
        ring_ax: half-width of the ring (arch centre line). ring_ay: half-depth of the ring.
        tp_len: transverse process length beyond the ring. mass: half-sizes (x, y, z) of a lateral mass.
    """

    ring_ax: float
    ring_ay: float
    tp_len: float
    mass: tuple[float, float, float] = (6.5, 8.5, 7.5)

    def sdf(self, x, y, z) -> np.ndarray:
        ry0 = 9.5 - self.ring_ay
        arch_a = ring(x, y, z, (0.0, ry0, 0.0), (self.ring_ax, self.ring_ay), 2.8, 5.0)
        arch_p = ring(x, y, z, (0.0, ry0, -0.5), (self.ring_ax, self.ring_ay), 3.6, 4.2)
        f = np.where(y > ry0 + 0.3 * self.ring_ay, arch_a, arch_p)
        f = smin(f, ellipsoid(x, y, z, (0.0, 10.8, 0.0), (4.0, 2.4, 5.5)), 1.0)  # anterior tubercle
        back = ry0 - self.ring_ay - 0.5
        f = smin(f, ellipsoid(x, y, z, (0.0, back, -0.5), (4.0, 3.0, 4.8)), 1.0)  # posterior tubercle
        for s in (-1.0, 1.0):
            lm = ellipsoid(x, y, z, (s * (self.ring_ax - 1.5), -3.0, -1.0), self.mass)
            tp_c = (s * (self.ring_ax + 0.5 * self.tp_len), -4.0, -0.5)
            tp = box(x, y, z, tp_c, (0.5 * self.tp_len + 1.5, 4.0, 3.5), rounding=2.0)
            tp = subtract(tp, ellipse2d(x, y, (s * (self.ring_ax + 5.0), -4.5), (3.0, 3.0)))
            f = smin(smin(f, lm, 2.0), tp, 1.5)
        return f

    def box(self) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
        """Local ``(lo, hi)`` corners of a box that holds the bone."""
        half_x = self.ring_ax + self.tp_len + 4.0
        low = -max(10.0, self.mass[2] + 2.5)
        return (-half_x, 9.5 - 2 * self.ring_ay - 5.0, low), (half_x, 14.0, max(7.0, self.mass[2]))

    def parts(self) -> list:
        """One part: the whole ring."""
        return [(self.sdf, self.box())]


def inside_points(shape: Subaxial | Axis | Atlas, step: float = 2.0) -> np.ndarray:
    """Local points (``N3``, mm) of a ``step`` lattice on each part's box that lie inside the bone of ``shape``."""
    points = []
    for fn, (lo, hi) in shape.parts():
        axes = [np.arange(a, b + step, step, dtype=np.float32) for a, b in zip(lo, hi)]
        f = fn(axes[0][:, None, None], axes[1][None, :, None], axes[2][None, None, :])
        idx = np.argwhere(np.broadcast_to(f, tuple(len(a) for a in axes)) <= 0.0)
        points.append(np.stack([axes[k][idx[:, k]] for k in range(3)], axis=1))
    return np.concatenate(points).astype(np.float64)

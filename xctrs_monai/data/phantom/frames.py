# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""The voxel grid of a phantom and the local anatomical frames its shapes are written in."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from xctrs_monai.constants import grid_origin

__all__ = ["Frame", "Grid", "frame_from_axis", "rot_x", "rot_y", "rot_z"]


@dataclass
class Grid:
    """A cubic grid centred on the world origin (``constants.grid_origin``), RAS, in mm.

    Args:
        size: voxels along each axis.
        spacing: voxel size in mm.
    """

    size: int
    spacing: float
    coords: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.origin = grid_origin(self.size, self.spacing)
        self.coords = (self.origin + self.spacing * np.arange(self.size)).astype(np.float32)
        self.x = self.coords[:, None, None]
        self.y = self.coords[None, :, None]
        self.z = self.coords[None, None, :]

    def slices(self, lo, hi) -> tuple[slice, slice, slice] | None:
        """Voxel slices covering the world box ``[lo, hi]`` (mm), or None when it misses the grid."""
        i0 = np.floor((np.asarray(lo) - self.origin) / self.spacing).astype(int)
        i1 = np.ceil((np.asarray(hi) - self.origin) / self.spacing).astype(int) + 1
        i0, i1 = np.clip(i0, 0, self.size), np.clip(i1, 0, self.size)
        if np.any(i1 <= i0):
            return None
        return tuple(slice(int(a), int(b)) for a, b in zip(i0, i1))


@dataclass
class Frame:
    """A local anatomical frame: ``world = origin + rot @ (scale * local)`` (mm).

    The columns of ``rot`` are the local x (right), y (anterior) and z (superior) axes in the world.
    """

    origin: np.ndarray
    rot: np.ndarray
    scale: float = 1.0

    def to_world(self, p) -> np.ndarray:
        """World coordinates of local points ``p`` (``3`` or ``N3``)."""
        p = np.asarray(p, dtype=np.float64)
        return self.origin + (self.scale * p) @ self.rot.T

    def moved(self, rotation: np.ndarray, pivot=(0.0, 0.0, 0.0), shift=(0.0, 0.0, 0.0)) -> Frame:
        """This frame rotated by the world ``rotation`` about ``pivot``, then translated by ``shift``."""
        pivot = np.asarray(pivot, dtype=np.float64)
        origin = pivot + rotation @ (self.origin - pivot) + np.asarray(shift, dtype=np.float64)
        return Frame(origin, rotation @ self.rot, self.scale)

    def local(self, grid: Grid, lo_local, hi_local):
        """The grid slices covering the local box ``[lo_local, hi_local]`` and the local coordinates there.

        Returns:
            ``(slices, (x, y, z))`` with broadcastable float32 local coordinates, or ``(None, None)``
            when the box misses the grid.
        """
        corners = np.array(np.meshgrid(*zip(lo_local, hi_local), indexing="ij")).reshape(3, -1).T
        world = self.to_world(corners)
        sl = grid.slices(world.min(0), world.max(0))
        if sl is None:
            return None, None
        dx = grid.x[sl[0]] - np.float32(self.origin[0])
        dy = grid.y[:, sl[1]] - np.float32(self.origin[1])
        dz = grid.z[:, :, sl[2]] - np.float32(self.origin[2])
        r = (self.rot / self.scale).astype(np.float32)
        return sl, tuple(r[0, k] * dx + r[1, k] * dy + r[2, k] * dz for k in range(3))


def rot_x(a: float) -> np.ndarray:
    """Rotation by ``a`` radians about x (positive turns +y toward +z)."""
    c, s = np.cos(a), np.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def rot_y(a: float) -> np.ndarray:
    """Rotation by ``a`` radians about y (positive turns +z toward +x)."""
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rot_z(a: float) -> np.ndarray:
    """Rotation by ``a`` radians about z (positive turns +x toward +y)."""
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def frame_from_axis(origin, axis, axial_rotation: float = 0.0, scale: float = 1.0) -> Frame:
    """A frame whose local z is ``axis`` and local x the world x made orthogonal to it, then turned about
    z by ``axial_rotation`` (rad)."""
    ez = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    ex = np.array([1.0, 0.0, 0.0]) - ez[0] * ez
    ex /= np.linalg.norm(ex)
    ey = np.cross(ez, ex)
    return Frame(np.asarray(origin, dtype=np.float64), np.stack([ex, ey, ez], axis=1) @ rot_z(axial_rotation), scale)

# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""The one home of the numbers in the design contract (``DESIGN.md``).

Code and bundle configs reference these names instead of repeating the values: the default grid and
field of view, the grid convention, the biplanar projection geometry, the attenuation of water, the HU
window of the network's [0, 1] CT scale, and the label names and colours.

Field of view: the default grid is 128^3 voxels of 1.25 mm, a 160 mm cube. An adult C1..C7 column with
its discs is 110-140 mm from the dens tip to the inferior endplate of C7, so 160 mm holds it with a
margin for where the spine lies in the image and for flexion or extension. The paper (Ge et al., 2021,
Sect. 2.1) reconstructs 128^3 voxels and does not give the voxel size; ours keeps the 128^3 grid and
chooses the spacing so that a real adult spine fits. Coarser grids with the same field of view (64^3
at 2.5 mm, 32^3 at 5 mm) see the same anatomy.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "DEFAULT_IMG_SIZE",
    "DEFAULT_SPACING",
    "DEFAULT_FOV",
    "AP_SDD",
    "AP_SAD",
    "LA_SDD",
    "LA_SAD",
    "DEFAULT_GEOMETRY",
    "MU_WATER",
    "HU_AIR",
    "HU_WINDOW",
    "VERTEBRAE",
    "NUM_SEG_CLASSES",
    "LABEL_COLOURS",
    "grid_origin",
    "grid_affine",
]

DEFAULT_IMG_SIZE = 128
"""Voxels along each axis of the reconstructed CT (the paper's 128^3)."""

DEFAULT_SPACING = 1.25
"""Isotropic voxel size in mm of the default grid."""

DEFAULT_FOV = DEFAULT_IMG_SIZE * DEFAULT_SPACING
"""Edge of the reconstructed cube in mm (160 mm): ``img_size * spacing`` of every default grid."""

AP_SDD, AP_SAD = 1000.0, 900.0
"""AP view: source-to-detector and source-to-isocenter distances in mm."""

LA_SDD, LA_SAD = 1500.0, 1350.0
"""Lateral view: source-to-detector and source-to-isocenter distances in mm."""

DEFAULT_GEOMETRY: dict[str, tuple[float, float]] = {"ap": (AP_SDD, AP_SAD), "la": (LA_SDD, LA_SAD)}
"""``{view: (sdd, sad)}`` in mm."""

MU_WATER = 0.02
"""Linear attenuation of water in 1/mm: ``mu = MU_WATER * (1 + HU / 1000)``, clipped at 0."""

HU_AIR = -1000.0
"""HU of air, the padding value of CT volumes."""

HU_WINDOW: tuple[float, float] = (-1000.0, 2000.0)
"""HU window mapped linearly to the network's [0, 1] CT scale (clipped)."""

VERTEBRAE: tuple[str, ...] = ("C1", "C2", "C3", "C4", "C5", "C6", "C7")
"""Names of labels 1..7; label 0 is background."""

NUM_SEG_CLASSES = len(VERTEBRAE) + 1
"""Segmentation channels: background and C1..C7."""

LABEL_COLOURS: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0),
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
)
"""RGB colour (0..255) of background and C1..C7."""


def grid_origin(size: int, spacing: float) -> float:
    """World coordinate (mm) of the first voxel centre of a grid centred on the origin: ``-(size - 1) / 2 * spacing``."""
    return -0.5 * (size - 1) * spacing


def grid_affine(size: int, spacing: float) -> np.ndarray:
    """The RAS voxel-to-world (mm) ``4x4`` float64 matrix of a cubic grid centred on the world origin."""
    affine = np.diag([spacing, spacing, spacing, 1.0]).astype(np.float64)
    affine[:3, 3] = grid_origin(size, spacing)
    return affine

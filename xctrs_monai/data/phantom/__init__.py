# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Synthetic adult neck CT phantoms with exact C1..C7 labels, at true scale, varying like patients.

The phantom is built from analytic shapes written as approximate signed distance functions in a
local frame per bone, evaluated on the voxel grid only inside each bone's box. Its parts, one job
per module:

- ``sdf``: the shape primitives; ``frames``: the grid and the local anatomical frames;
- ``vertebrae``: the shapes of C1, C2 and C3..T2;
- ``anatomy``: the sampled morphometry and pose (one dataclass, ranges and their sources);
- ``tissues``: the sampled CT values; ``column``: the posed column placed in the field of view;
- ``soft_tissue`` and ``bones``: painting the CT and reading the labels;
- ``make``: ``make_phantom``, which assembles them.
"""

from __future__ import annotations

from .anatomy import NeckAnatomy, sample_anatomy
from .column import FOV_MARGIN, POSITION_SPREAD, Column, pose_column
from .make import PHANTOM_VERSION, make_phantom, phantom_affine

__all__ = [
    "FOV_MARGIN",
    "PHANTOM_VERSION",
    "POSITION_SPREAD",
    "Column",
    "NeckAnatomy",
    "make_phantom",
    "phantom_affine",
    "pose_column",
    "sample_anatomy",
]

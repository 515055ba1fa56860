# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Pose the column: vertebra frames along the curved spine, the atlas and head on top, the whole
neck turned and tilted, and placed in the field of view."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xctrs_monai.data.phantom.anatomy import NeckAnatomy
from xctrs_monai.data.phantom.frames import Frame, frame_from_axis, rot_x, rot_y, rot_z
from xctrs_monai.data.phantom.vertebrae import inside_points

__all__ = ["FOV_MARGIN", "POSITION_SPREAD", "Column", "pose_column"]

FOV_MARGIN = 8.0
"""Bone of C1..C7 stays this far (mm) inside each face of the field of view."""

POSITION_SPREAD = (12.0, 15.0, 20.0)
"""Largest offset (mm) of the C1..C7 bounding-box centre from the grid centre along X, Y, Z (our choice:
the field of view of a radiograph is not centred on the spine); less where the field of view is too tight."""

_LEVELS = (9, 8, 7, 6, 5, 4, 3, 2)  # T2, T1, C7..C2, bottom to top


@dataclass
class Column:
    """Frames of the posed neck (world mm).

    Args:
        frames: ``{level: Frame}`` for C1 (1), C2 (2), C3..C7, T1 (8), T2 (9).
        head: frame of the skull, mandible and face (on C1).
        thorax: frame of the clavicles and lung apices (at T1, upright, lowered by the shoulder drop).
    """

    frames: dict[int, Frame]
    head: Frame
    thorax: Frame


def _link_angles(anatomy: NeckAnatomy) -> np.ndarray:
    """Sagittal angle (rad) of the 7 links T2->T1, T1->C7, C7->C6, ..., C3->C2 from the superior axis.

    The lordosis runs linearly over the links C7->C6 .. C3->C2 around the column's inclination, so
    the axis of C7 (mean of its two links) and of C2 (its lower link) differ by the C2-C7 Cobb angle.
    """
    half = 0.5 * anatomy.lordosis
    sub = anatomy.lean + np.linspace(half, -half, 5)
    # T1->C7 continues C7's lower link; T2->T1 is 3 deg less inclined (upper thoracic kyphosis, our choice)
    return np.deg2rad(np.concatenate([[anatomy.lean + half - 3.0, anatomy.lean + half], sub]))


def pose_column(anatomy: NeckAnatomy, fov: float) -> Column:
    """Build the posed column of ``anatomy`` and place it in a cubic field of view of edge ``fov`` (mm).

    The column is built upward from T2 along links whose lengths are the half heights of the bodies
    and the discs between them; each vertebra's axis is the mean of its two links. C1 sits on the
    dens with its own rotation and flexion, the head on C1. The neck is then tilted and turned about
    T1 and shifted: the centre of the bounding box of the bone of C1..C7 goes to a point of the
    interval that is at most ``POSITION_SPREAD`` from the grid centre and keeps the bone
    ``FOV_MARGIN`` inside the field of view, chosen along each axis by ``anatomy.position`` (-1: its
    lower end, 1: its upper end). A field of view too small for the column centres it (and crops it).

    Args:
        anatomy: the sampled anatomy.
        fov: edge of the field of view in mm (``size * spacing``).

    Returns:
        the ``Column``.
    """
    shapes = {level: anatomy.vertebrae[level - 1] for level in range(1, 10)}
    theta = _link_angles(anatomy)
    gamma = np.deg2rad(np.asarray(anatomy.coronal))
    links = np.stack([np.sin(gamma), np.cos(gamma) * np.sin(theta), np.cos(gamma) * np.cos(theta)], axis=1)
    centres = [np.zeros(3)]
    for j, (lower, upper) in enumerate(zip(_LEVELS[:-1], _LEVELS[1:])):
        length = shapes[lower].bh + anatomy.discs[upper - 2] + shapes[upper].bh
        centres.append(centres[-1] + links[j] * length)
    axes = [links[0]] + [links[j - 1] + links[j] for j in range(1, 7)] + [links[6]]
    axial = np.deg2rad(np.asarray(anatomy.axial))
    frames = {lvl: frame_from_axis(c, a, axial[lvl - 1]) for lvl, c, a in zip(_LEVELS, centres, axes)}
    c2 = shapes[2]
    c1_origin = frames[2].to_world((0.0, 1.2, c2.bh + 0.6 * c2.dens_len + 6.0))
    turn_c1 = rot_z(np.deg2rad(anatomy.atlas_rotation + anatomy.axial[0])) @ rot_x(-np.deg2rad(anatomy.atlas_flexion))
    frames[1] = Frame(c1_origin, frames[2].rot @ turn_c1)
    head_rot = frames[1].rot @ rot_x(-np.deg2rad(anatomy.head_flexion))
    head = Frame(frames[1].to_world((0.0, 0.0, 2.0)), head_rot, anatomy.head_scale)
    thorax = Frame(frames[8].origin - np.array([0.0, 0.0, anatomy.shoulder_drop]), np.eye(3))

    turn = rot_z(np.deg2rad(anatomy.neck_rotation)) @ rot_y(np.deg2rad(anatomy.lateral_tilt))
    pivot = frames[8].origin
    frames = {lvl: f.moved(turn, pivot) for lvl, f in frames.items()}
    head, thorax = head.moved(turn, pivot), thorax.moved(turn, pivot)

    points = np.concatenate([frames[lvl].to_world(inside_points(shapes[lvl], step=3.0)) for lvl in range(1, 8)])
    lo, hi = points.min(0), points.max(0)
    room, half, spread = 0.5 * fov - FOV_MARGIN, 0.5 * (hi - lo), np.asarray(POSITION_SPREAD)
    # the box centre may go where the spread allows and the bone stays in the room; position picks it
    low, high = np.maximum(-spread, half - room), np.minimum(spread, room - half)
    target = np.where(high >= low, low + 0.5 * (np.asarray(anatomy.position) + 1.0) * (high - low), 0.0)
    shift = target - 0.5 * (lo + hi)
    frames = {lvl: f.moved(np.eye(3), shift=shift) for lvl, f in frames.items()}
    return Column(frames, head.moved(np.eye(3), shift=shift), thorax.moved(np.eye(3), shift=shift))

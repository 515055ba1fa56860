# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""View alignment of the AP- and LA-derived 3D features (Ge et al., KBS 2021, Eq. 5-7).

Axis conventions (see ``DESIGN.md``): volumes are ``BCXYZ`` in RAS (X toward the patient's right,
Y anterior, Z superior). The canonical AP radiograph is ``[X, Z]`` (beam along Y) and the canonical
LA radiograph is ``[Y, Z]`` (beam along X). The channel->depth reshape of SpaDRNet (Eq. 4) turns a
view's 2D feature into a 3D feature whose two image axes are kept and whose new last axis ("depth")
runs along that view's beam direction:

- AP feature ``[B, C, X, Z, D]`` with depth ``D`` along the volume's Y axis,
- LA feature ``[B, C, Y, Z, D]`` with depth ``D`` along the volume's X axis.

Depth convention: depth index ``d`` *is* volume index ``d`` along that axis, i.e. depth increases
toward +Y (anterior) for AP and toward +X (patient's right) for LA, whatever the beam direction
(AP beam travels -Y, LA beam travels -X). The convention only has to be fixed once: the network
learns what each depth slot means, and the projector and this permutation agree on every other axis.
"""

from __future__ import annotations

import torch

__all__ = ["align_views"]


def align_views(ap_feat: torch.Tensor, la_feat: torch.Tensor) -> torch.Tensor:
    """Permute AP and LA 3D features onto the volume grid and concatenate them along channels.

    This is the paper's Eq. 6-7 written for the DESIGN.md layouts: the AP feature
    ``[B, C, X, Z, D_Y]`` becomes ``[B, C, X, Y, Z]`` and the LA feature ``[B, C, Y, Z, D_X]`` becomes
    ``[B, C, X, Y, Z]``. Channels ``[0, C)`` of the result come from AP and ``[C, 2C)`` from LA (the
    paper lists LA first; the order has no effect beyond naming the channels).

    So ``out[b, c, x, y, z] == ap_feat[b, c, x, z, y]`` and ``out[b, C + c, x, y, z] == la_feat[b, c, y, z, x]``.

    Args:
        ap_feat: AP-derived feature ``BCXZD`` (depth along +Y, index d = volume index y).
        la_feat: LA-derived feature ``BCYZD`` (depth along +X, index d = volume index x).

    Returns:
        ``B(2C)XYZ`` aligned feature.

    Raises:
        ValueError: when the tensors are not 5D or their sizes do not describe the same volume.
    """
    if ap_feat.dim() != 5 or la_feat.dim() != 5:
        raise ValueError(f"ap_feat and la_feat must be 5D, got shapes {list(ap_feat.shape)} and {list(la_feat.shape)}.")
    b, c, x, z, y = ap_feat.shape
    if list(la_feat.shape) != [b, c, y, z, x]:
        raise ValueError(
            f"la_feat must be [B, C, Y, Z, X] = {[b, c, y, z, x]} to match ap_feat [B, C, X, Z, Y] = "
            f"{list(ap_feat.shape)}, got {list(la_feat.shape)}."
        )
    ap_xyz = ap_feat.permute(0, 1, 2, 4, 3)  # [B, C, X, Y, Z]
    la_xyz = la_feat.permute(0, 1, 4, 2, 3)  # [B, C, X, Y, Z]
    return torch.cat([ap_xyz, la_xyz], dim=1)

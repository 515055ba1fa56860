# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""View alignment (Eq. 5-7) against the DESIGN.md layouts, and the channel->depth convention feeding it."""

from __future__ import annotations

import pytest
import torch

from xctrs_monai.networks import align_views
from xctrs_monai.networks.spadrnet import _ToVolume

# (B, C, X, Y, Z, marker (c, x, y, z))
TEST_CASES_MARKER = [
    (1, 2, 6, 7, 5, (1, 4, 2, 3)),
    (2, 3, 8, 8, 8, (0, 0, 7, 5)),
    (1, 1, 4, 5, 6, (0, 3, 0, 0)),
]

ILL_CASES = [
    ((1, 2, 4, 5, 6), (1, 2, 4, 5, 6), r"\[1, 2, 6, 5, 4\]"),  # LA not [B, C, Y, Z, X]
    ((1, 2, 4, 5, 6), (1, 3, 6, 5, 4), "la_feat"),  # channel mismatch
    ((1, 2, 4, 5), (1, 2, 4, 5), "5D"),
]


@pytest.mark.parametrize("b, c, nx, ny, nz, marker", TEST_CASES_MARKER)
def test_markers_land_on_the_same_voxel(b, c, nx, ny, nz, marker):
    ch, x, y, z = marker
    ap = torch.zeros(b, c, nx, nz, ny)  # [B, C, X, Z, depth = Y]
    la = torch.zeros(b, c, ny, nz, nx)  # [B, C, Y, Z, depth = X]
    ap[:, ch, x, z, y] = 1.0
    la[:, ch, y, z, x] = 2.0
    out = align_views(ap, la)
    assert out.shape == (b, 2 * c, nx, ny, nz)
    assert out[:, ch, x, y, z].eq(1.0).all() and out[:, c + ch, x, y, z].eq(2.0).all()
    assert out.count_nonzero() == 2 * b  # nothing else lit


def test_pixel_columns_meet_on_the_voxel_line():
    """An AP pixel (x, z) spans volume line (x, :, z); an LA pixel (y, z) spans (:, y, z) (DESIGN.md)."""
    nx, ny, nz, (x, y, z) = 5, 6, 7, (1, 4, 2)
    ap, la = torch.zeros(1, 1, nx, nz, ny), torch.zeros(1, 1, ny, nz, nx)
    ap[0, 0, x, z, :] = torch.arange(1, ny + 1.0)  # depth index d = volume y index d
    la[0, 0, y, z, :] = torch.arange(1, nx + 1.0)  # depth index d = volume x index d
    out = align_views(ap, la)
    torch.testing.assert_close(out[0, 0, x, :, z], torch.arange(1, ny + 1.0))
    torch.testing.assert_close(out[0, 1, :, y, z], torch.arange(1, nx + 1.0))
    assert out[0, 0].count_nonzero() == ny and out[0, 1].count_nonzero() == nx


def test_random_features_follow_the_index_formula():
    ap, la = torch.randn(2, 3, 4, 6, 5), torch.randn(2, 3, 5, 6, 4)  # X=4, Y=5, Z=6
    out = align_views(ap, la)
    torch.testing.assert_close(out[:, :3], torch.einsum("bcxzy->bcxyz", ap))
    torch.testing.assert_close(out[:, 3:], torch.einsum("bcyzx->bcxyz", la))


def test_channel_to_depth_convention():
    """SpaDRNet's reshape (Eq. 4) sends 2D channel c * D + d to 3D channel c at depth index d."""
    n_ch, depth = 3, 4
    to_volume = _ToVolume(2, n_ch, depth, norm=None, act=None)
    with torch.no_grad():
        to_volume.conv.weight.zero_()
        to_volume.conv.bias.copy_(torch.arange(n_ch * depth, dtype=torch.float32))
        out = to_volume(torch.randn(1, 2, 5, 6))
    assert out.shape == (1, n_ch, 5, 6, depth)
    expected = (torch.arange(n_ch)[:, None] * depth + torch.arange(depth)).float()  # [c, d]
    torch.testing.assert_close(out[0, :, 2, 3, :], expected)


@pytest.mark.parametrize("ap_shape, la_shape, match", ILL_CASES)
def test_ill_shapes(ap_shape, la_shape, match):
    with pytest.raises(ValueError, match=match):
        align_views(torch.zeros(ap_shape), torch.zeros(la_shape))

# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Shapes and argument checks of the network building blocks, in 2D and 3D."""

from __future__ import annotations

import pytest
import torch

from xctrs_monai.networks import DConv, Down, MultiPathStep, MultiScaleExchange, SeqConv, UConv, Up

# (block class, kwargs, input shape without batch, expected output shape without batch)
TEST_CASES_BLOCK = []
for _dims in (2, 3):
    _s, _up, _down = (8,) * _dims, (32,) * _dims, (2,) * _dims
    TEST_CASES_BLOCK += [
        (SeqConv, {"spatial_dims": _dims, "in_channels": 3, "out_channels": 5}, (3, *_s), (5, *_s)),
        (SeqConv, {"spatial_dims": _dims, "in_channels": 3, "out_channels": 5, "norm": None}, (3, *_s), (5, *_s)),
        (DConv, {"spatial_dims": _dims, "in_channels": 3, "out_channels": 5}, (3, *_s), (5, *(4,) * _dims)),
        (Up, {"spatial_dims": _dims, "in_channels": 3, "out_channels": 2, "scale_factor": 4}, (3, *_s), (2, *_up)),
        (Down, {"spatial_dims": _dims, "in_channels": 3, "out_channels": 6, "num_steps": 2}, (3, *_s), (6, *_down)),
        (UConv, {"spatial_dims": _dims, "in_channels": 4, "out_channels": 2}, (4, *_s), (2, *(16,) * _dims)),
    ]

ILL_CASES = [
    (SeqConv, {"spatial_dims": 1, "in_channels": 2, "out_channels": 2}, "spatial_dims"),
    (SeqConv, {"spatial_dims": 2, "in_channels": 0, "out_channels": 2}, "in_channels"),
    (SeqConv, {"spatial_dims": 2, "in_channels": 2, "out_channels": 2, "kernel_size": 4}, "kernel_size"),
    (Up, {"spatial_dims": 3, "in_channels": 2, "out_channels": 2, "scale_factor": 0}, "scale_factor"),
    (Down, {"spatial_dims": 3, "in_channels": 2, "out_channels": 2, "num_steps": 0}, "num_steps"),
    (UConv, {"spatial_dims": 4, "in_channels": 2, "out_channels": 2}, "spatial_dims"),
    (MultiScaleExchange, {"spatial_dims": 2, "in_channels": [2, 4], "out_channels": [2]}, r"\[2, 4\]"),
    (MultiScaleExchange, {"spatial_dims": 2, "in_channels": [], "out_channels": []}, "non-empty"),
    (MultiPathStep, {"spatial_dims": 2, "in_channels": [2], "out_channels": [2], "new_path_channels": -1}, "-1"),
]


@pytest.mark.parametrize("block, kwargs, in_shape, out_shape", TEST_CASES_BLOCK)
def test_block_shape(block, kwargs, in_shape, out_shape):
    net = block(**kwargs)
    with torch.no_grad():
        out = net(torch.randn(2, *in_shape))
    assert out.shape == (2, *out_shape)


@pytest.mark.parametrize("dims", [2, 3])
def test_exchange_and_step_shapes(dims):
    xs = [torch.randn(1, c, *(16 >> k,) * dims) for k, c in enumerate((2, 4, 6))]
    exchange = MultiScaleExchange(dims, [2, 4, 6], [3, 5, 7])
    outs = exchange(xs)
    assert [tuple(o.shape) for o in outs] == [(1, c, *(16 >> k,) * dims) for k, c in enumerate((3, 5, 7))]
    step = MultiPathStep(dims, [2, 4, 6], [2, 4, 6], new_path_channels=8)
    outs = step(xs)
    assert [tuple(o.shape) for o in outs] == [(1, c, *(16 >> k,) * dims) for k, c in enumerate((2, 4, 6, 8))]


def test_up_commutes_with_nearest_upsampling():
    """Up runs its 1x1 conv + norm before up-sampling; that equals up-sampling first."""
    torch.manual_seed(0)
    up = Up(3, 3, 2, scale_factor=2, norm="instance").eval()
    x = torch.randn(1, 3, 4, 4, 4)
    conv, norm = up[0], up[1]
    reference = norm(conv(torch.nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")))
    torch.testing.assert_close(up(x), reference, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("block, kwargs, match", ILL_CASES)
def test_ill_arguments(block, kwargs, match):
    with pytest.raises(ValueError, match=match):
        block(**kwargs)

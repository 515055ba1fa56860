# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""MulSISNet: shapes, gradient flow and argument checks (small configs)."""

from __future__ import annotations

import pytest
import torch

from xctrs_monai.networks import MulSISNet

NARROW = {"channels": (4, 8, 8, 8), "norm": ("group", {"num_groups": 2})}

TEST_CASE_1 = [NARROW, (2, 1, 16, 16, 16), 8]
TEST_CASE_2 = [{**NARROW, "out_channels": 3}, (1, 1, 32, 32, 32), 3]
TEST_CASE_3 = [{"channels": (2, 4, 4, 4), "norm": ("group", {"num_groups": 2})}, (1, 1, 64, 64, 64), 8]
TEST_CASE_4 = [{"channels": (4, 8), "num_layers": 3, "norm": "instance"}, (1, 1, 16, 32, 24), 8]  # non-cubic
TEST_CASE_5 = [{**NARROW, "num_layers": 6, "act": "prelu"}, (1, 1, 16, 16, 16), 8]
TEST_CASES_SHAPE = [TEST_CASE_1, TEST_CASE_2, TEST_CASE_3, TEST_CASE_4, TEST_CASE_5]

ILL_CASES = [
    [{"channels": (4, 8, 8, 8)}, "num_groups=8"],  # default GroupNorm(8) does not divide 4
    [{**NARROW, "num_layers": 3}, "3"],
    [{"channels": (4, -8, 8, 8)}, r"\(4, -8, 8, 8\)"],
    [{"out_channels": 0}, "out_channels"],
]


@pytest.mark.parametrize("kwargs, in_shape, n_out", TEST_CASES_SHAPE)
def test_shape(kwargs, in_shape, n_out):
    net = MulSISNet(**kwargs).eval()
    with torch.no_grad():
        out = net(torch.rand(*in_shape))
    assert out.shape == (in_shape[0], n_out, *in_shape[2:])


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    net = MulSISNet(**NARROW)
    out = net(torch.rand(2, 1, 16, 16, 16))
    (out * torch.randn_like(out)).sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("kwargs, match", ILL_CASES)
def test_ill_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MulSISNet(**kwargs)


def test_ill_input():
    with pytest.raises(ValueError, match=r"\[1, 1, 20, 16, 16\]"):
        MulSISNet(**NARROW)(torch.rand(1, 1, 20, 16, 16))

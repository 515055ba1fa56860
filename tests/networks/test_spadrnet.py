# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""SpaDRNet: shapes, output range, gradient flow and argument checks (small configs)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from xctrs_monai.networks import SpaDRNet

NARROW = {"channels": (4, 8, 8, 8), "volume_channels": (2, 4, 4, 4)}

TEST_CASE_1 = [{"img_size": 16, **NARROW}, 2]
TEST_CASE_2 = [{"img_size": 32, **NARROW, "out_act": None}, 1]
TEST_CASE_3 = [{"img_size": 64, "channels": (4, 4, 4, 4), "volume_channels": (1, 2, 2, 2)}, 1]
TEST_CASE_4 = [{"img_size": 32, "channels": (4, 8, 8), "volume_channels": (2, 4), "fusion_layers": 2}, 1]  # 2 scales
TEST_CASE_5 = [{"img_size": 16, **NARROW, "norm": None, "act": "relu"}, 1]
TEST_CASES_SHAPE = [TEST_CASE_1, TEST_CASE_2, TEST_CASE_3, TEST_CASE_4, TEST_CASE_5]

ILL_CASES = [
    [{"img_size": 24}, "24"],
    [{"img_size": 8}, "8"],
    [{"img_size": 16, "volume_channels": (2, 2, 2, 2, 2)}, "len"],  # 5 scales > 4 steps
    [{"img_size": 16, "channels": (4, 8, 8, 8, 8), "volume_channels": (2, 2, 2, 2, 2)}, "too small"],
    [{"channels": (4, 0, 8, 8)}, r"\(4, 0, 8, 8\)"],
    [{"volume_channels": ()}, "volume_channels"],
    [{"fusion_layers": -1}, "-1"],
    [{"in_channels": 0}, "in_channels"],
]


@pytest.mark.parametrize("kwargs, batch", TEST_CASES_SHAPE)
def test_shape(kwargs, batch):
    n = kwargs["img_size"]
    net = SpaDRNet(**kwargs).eval()
    with torch.no_grad():
        out = net(torch.rand(batch, 1, n, n), torch.rand(batch, 1, n, n))
    assert out.shape == (batch, 1, n, n, n)
    if kwargs.get("out_act", "sigmoid") == "sigmoid":
        assert out.min() >= 0.0 and out.max() <= 1.0


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    net = SpaDRNet(img_size=16, **NARROW)
    out = net(torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 16))
    (out * torch.randn_like(out)).sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name


def test_views_are_not_interchangeable():
    """AP and LA have their own encoders and axes: swapping the inputs changes the volume."""
    torch.manual_seed(0)
    net = SpaDRNet(img_size=16, **NARROW).eval()
    ap, la = torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 16)
    with torch.no_grad():
        assert not torch.allclose(net(ap, la), net(la, ap))


class _BackProjector(torch.nn.Module):
    """Stand-in view encoder: at scale ``s`` every pixel of the max-pooled radiograph fills its depth line
    ``[c, a, b, :]`` in all ``C_s`` channels, the layout ``[B, C_s, a, b, depth]`` of the real encoders."""

    def __init__(self, volume_channels):
        super().__init__()
        self.volume_channels = volume_channels

    def forward(self, x):
        outs = []
        for s, c in enumerate(self.volume_channels):
            img = F.max_pool2d(x, 2**s) if s else x
            outs.append(img[..., None].expand(-1, c, -1, -1, img.shape[-1]).contiguous())
        return outs


def test_geometric_wiring_of_the_views():
    """DESIGN.md / Eq. 5-7: an AP pixel (x, z) fills the line (x, :, z) of the aligned features, an LA
    pixel (y, z) the line (:, y, z); AP in channels [0, C_s), LA in [C_s, 2 C_s), at every scale."""
    n, x, y, z = 16, 3, 12, 6  # distinct coordinates, so a swapped or transposed view lands elsewhere
    net = SpaDRNet(img_size=n, **NARROW).eval()
    net.ap_encoder = _BackProjector(NARROW["volume_channels"])
    net.la_encoder = _BackProjector(NARROW["volume_channels"])
    captured = []
    net.fusion[0].register_forward_pre_hook(lambda module, args: captured.append([f.clone() for f in args[0]]))
    ap, la = torch.zeros(1, 1, n, n), torch.zeros(1, 1, n, n)
    ap[0, 0, x, z] = 1.0
    la[0, 0, y, z] = 1.0
    with torch.no_grad():
        net(ap, la)
    for s, (feat, c) in enumerate(zip(captured[0], NARROW["volume_channels"])):
        m = n >> s
        line_ap, line_la = torch.zeros(m, m, m), torch.zeros(m, m, m)
        line_ap[x >> s, :, z >> s] = 1.0
        line_la[:, y >> s, z >> s] = 1.0
        assert feat.shape == (1, 2 * c, m, m, m)
        assert torch.equal(feat[0, :c], line_ap.expand(c, -1, -1, -1)), f"AP line at scale {s}"
        assert torch.equal(feat[0, c:], line_la.expand(c, -1, -1, -1)), f"LA line at scale {s}"


@pytest.mark.parametrize("kwargs, match", ILL_CASES)
def test_ill_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SpaDRNet(**kwargs)


def test_ill_input():
    net = SpaDRNet(img_size=16, **NARROW)
    with pytest.raises(ValueError, match=r"\[1, 1, 32, 32\]"):
        net(torch.rand(1, 1, 32, 32), torch.rand(1, 1, 16, 16))

# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""XCTRSNet: deployable forward, coupling with its sub-networks, TorchScript round trips."""

from __future__ import annotations

import io

import pytest
import torch

from xctrs_monai.networks import MulSISNet, SpaDRNet, XCTRSNet

SMALL = {
    "recon_channels": (4, 8, 8, 8),
    "recon_volume_channels": (2, 4, 4, 4),
    "seg_channels": (4, 8, 8, 8),
    "seg_norm": ("group", {"num_groups": 2}),
}

TEST_CASE_1 = [{"img_size": 16, **SMALL}, 2]
TEST_CASE_2 = [{"img_size": 32, **SMALL, "recon_out_act": None, "seg_out_channels": 4}, 1]
TEST_CASES_SHAPE = [TEST_CASE_1, TEST_CASE_2]

ILL_CASES = [
    [{"img_size": 48, **SMALL}, "48"],
    [{"img_size": 16, **{**SMALL, "seg_norm": ("group", {"num_groups": 3})}}, "num_groups=3"],
    [{"img_size": 16, **{**SMALL, "recon_channels": (4, 8)}}, "len"],
]


@pytest.mark.parametrize("kwargs, batch", TEST_CASES_SHAPE)
def test_shape_and_coupling(kwargs, batch):
    torch.manual_seed(0)
    n = kwargs["img_size"]
    net = XCTRSNet(**kwargs).eval()
    assert isinstance(net.reconstructor, SpaDRNet) and isinstance(net.segmenter, MulSISNet)
    image = torch.rand(batch, 2, n, n)
    with torch.no_grad():
        out = net(image)
        ct = net.reconstructor(image[:, :1], image[:, 1:])
        seg = net.segmenter(ct)
    assert out.shape == (batch, 1 + kwargs.get("seg_out_channels", 8), n, n, n)
    torch.testing.assert_close(out[:, :1], ct)
    torch.testing.assert_close(out[:, 1:], seg)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_script_round_trip():
    torch.manual_seed(0)
    net = XCTRSNet(img_size=16, **SMALL).eval()
    image = torch.rand(1, 2, 16, 16)
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(net), buffer)
    buffer.seek(0)
    loaded = torch.jit.load(buffer)
    with torch.no_grad():
        torch.testing.assert_close(loaded(image), net(image))


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::torch.jit.TracerWarning")
def test_trace_matches_eager():
    torch.manual_seed(0)
    net = XCTRSNet(img_size=16, **SMALL).eval()
    other = torch.rand(2, 2, 16, 16)
    with torch.no_grad():
        traced = torch.jit.trace(net, torch.rand(1, 2, 16, 16), check_trace=False)
        torch.testing.assert_close(traced(other), net(other))


@pytest.mark.parametrize("kwargs, match", ILL_CASES)
def test_ill_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        XCTRSNet(**kwargs)


def test_ill_input():
    with pytest.raises(ValueError, match=r"\[1, 1, 16, 16\]"):
        XCTRSNet(img_size=16, **SMALL)(torch.rand(1, 1, 16, 16))


def test_export_matches_eager():
    """``torch.export`` (the successor of TorchScript, deprecated in recent torch) also works."""
    torch.manual_seed(0)
    net = XCTRSNet(img_size=16, **SMALL).eval()
    image = torch.rand(1, 2, 16, 16)
    exported = torch.export.export(net, (image,))
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(image), net(image))

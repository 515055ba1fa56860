# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""CoarseToFineDecoding: the layers it registers, the order it joins the scales in, TorchScript."""

from __future__ import annotations

import pytest
import torch

from xctrs_monai.networks.decoder import CoarseToFineDecoding

WIDTHS = (2, 4, 6)  # distinct widths: a join of the wrong scale cannot even run


class _Decoder(CoarseToFineDecoding):
    def __init__(self, checkpointing: bool = False) -> None:
        super().__init__()
        self.checkpointing = checkpointing
        self.build_decoder(WIDTHS, norm=None, act=None)

    def forward(self, f0: torch.Tensor, f1: torch.Tensor, f2: torch.Tensor) -> torch.Tensor:
        return self.decode([f0, f1, f2])


def _features(seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(1, c, n, n, n, generator=g) for c, n in zip(WIDTHS, (8, 4, 2))]


def test_layers_and_their_names():
    net = _Decoder()
    # entry k serves scale s = len(WIDTHS) - 2 - k: k=0 joins scale 1 with scale 2, k=1 scale 0 with scale 1
    assert [(u[0].in_channels, u[0].out_channels) for u in net.ups] == [(6, 4), (4, 2)]
    assert [(j[0].in_channels, j[0].out_channels) for j in net.joins] == [(8, 4), (4, 2)]
    assert {k.split(".")[0] for k in net.state_dict()} == {"ups", "joins"}  # the names checkpoints hold


def test_decode_against_hand_written_composition():
    torch.manual_seed(0)
    net = _Decoder().eval()
    f0, f1, f2 = _features()
    with torch.no_grad():
        g1 = net.joins[0](torch.cat([f1, net.ups[0](f2)], dim=1))
        expected = net.joins[1](torch.cat([f0, net.ups[1](g1)], dim=1))
        out = net(f0, f1, f2)
    assert out.shape == (1, 2, 8, 8, 8)
    assert torch.equal(out, expected)  # the same operations in the same order: bit-identical


@pytest.mark.parametrize("checkpointing", [False, True])
def test_checkpointing_and_torchscript_give_the_same_output(checkpointing):
    torch.manual_seed(0)
    net = _Decoder(checkpointing=checkpointing).train()
    reference = _Decoder()
    reference.load_state_dict(net.state_dict())
    feats = _features()
    # checkpointing re-runs the same float32 operations: equal up to summation order, far below 1e-6
    torch.testing.assert_close(net(*feats), reference(*feats), rtol=1e-6, atol=1e-6)
    scripted = torch.jit.script(reference.eval())
    with torch.no_grad():
        assert torch.equal(scripted(*feats), reference(*feats))

# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Channels-last conversion, activation checkpointing and bfloat16 autocast of the networks (small configs)."""

from __future__ import annotations

import copy

import pytest
import torch

from xctrs_monai.networks import MulSISNet, SpaDRNet, XCTRSNet, checkpoint_call, to_channels_last

N = 16
SMALL = {
    "recon_channels": (4, 8, 8, 8),
    "recon_volume_channels": (2, 4, 4, 4),
    "seg_channels": (8, 8, 8, 8),
    "seg_num_layers": 4,
}


def _saved_bytes(fn) -> int:
    """Bytes that autograd keeps for the backward pass of ``fn()`` (each storage once)."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values())


def test_to_channels_last_module():
    torch.manual_seed(0)
    net = XCTRSNet(img_size=N, **SMALL).eval()
    reference = copy.deepcopy(net)
    params = list(net.parameters())
    assert to_channels_last(net) is net
    assert [id(p) for p in net.parameters()] == [id(p) for p in params]  # an optimizer built before keeps working
    n2d = n3d = 0
    for module in net.modules():
        if isinstance(module, torch.nn.Conv2d):
            assert module.weight.is_contiguous(memory_format=torch.channels_last), module
            n2d += module.weight.shape[1] > 1  # a 1-input-channel weight is channels-last either way
        elif isinstance(module, (torch.nn.Conv3d, torch.nn.ConvTranspose3d)):
            assert module.weight.is_contiguous(memory_format=torch.channels_last_3d), module
            n3d += not module.weight.is_contiguous()
    assert n2d > 0 and n3d > 0  # both layouts were really changed
    image = torch.rand(1, 2, N, N)
    with torch.no_grad():
        # same arithmetic in another memory order: float32 summation order differences only
        torch.testing.assert_close(net(to_channels_last(image)), reference(image), rtol=1e-4, atol=1e-5)


def test_to_channels_last_tensor_and_errors():
    x4, x5 = torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4, 4)
    assert to_channels_last(x4).is_contiguous(memory_format=torch.channels_last) and not x4.is_contiguous(
        memory_format=torch.channels_last
    )
    assert to_channels_last(x5).is_contiguous(memory_format=torch.channels_last_3d)
    torch.testing.assert_close(to_channels_last(x5), x5, rtol=0, atol=0)
    x3 = torch.rand(2, 3, 4)
    assert to_channels_last(x3) is x3
    with pytest.raises(TypeError, match="list"):
        to_channels_last([x4])

    class Mixed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.rand(2, 2, 3, 3))
            self.conv = torch.nn.Conv3d(2, 2, 1)

    with pytest.raises(ValueError, match="Mixed"):
        to_channels_last(Mixed())


def test_checkpoint_call_recomputes_only_with_grad():
    calls = []

    def f(x):
        calls.append(torch.is_grad_enabled())
        return (x * 2).sin()

    x = torch.rand(5, requires_grad=True)
    checkpoint_call(f, x).sum().backward()
    assert len(calls) == 2  # forward, then the recomputation in backward
    expected = 2 * (2 * x.detach()).cos()
    torch.testing.assert_close(x.grad, expected)
    calls.clear()
    with torch.no_grad():
        checkpoint_call(f, x)
    assert calls == [False]


@pytest.mark.parametrize(
    "make, inputs",
    [
        [
            lambda cp: SpaDRNet(img_size=N, channels=(4, 8, 8, 8), volume_channels=(2, 4, 4, 4), checkpointing=cp),
            lambda: (torch.rand(2, 1, N, N), torch.rand(2, 1, N, N)),
        ],
        [
            lambda cp: MulSISNet(channels=(8, 8, 8, 8), num_layers=4, checkpointing=cp),
            lambda: (torch.rand(2, 1, N, N, N),),
        ],
    ],
)
def test_checkpointing_same_outputs_and_gradients_less_memory(make, inputs):
    torch.manual_seed(0)
    plain = make(False)
    ckpt = make(True)
    ckpt.load_state_dict(plain.state_dict())
    args = inputs()
    grads = []
    for net in (plain, ckpt):
        out = net(*args)
        (out * torch.linspace(-1, 1, out.numel()).reshape(out.shape)).sum().backward()
        grads.append({k: p.grad.clone() for k, p in net.named_parameters()})
        with torch.no_grad():
            grads[-1]["out"] = out.detach()
    # the recomputation repeats the same float32 operations in the same order: equal up to rounding
    for key, value in grads[0].items():
        torch.testing.assert_close(grads[1][key], value, rtol=1e-5, atol=1e-6, msg=key)
    # activations inside the checkpointed blocks are not kept: at least half of them go
    assert _saved_bytes(lambda: ckpt(*args)) < 0.5 * _saved_bytes(lambda: plain(*args))


def test_bf16_autocast_matches_float32():
    """bfloat16 autocast (8-bit mantissa) against float32 on a small X-CTRSNet."""
    torch.manual_seed(0)
    net = XCTRSNet(img_size=N, **SMALL).eval()
    image = torch.rand(2, 2, N, N)
    with torch.no_grad():
        reference = net(image)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = net(image)
    assert low.dtype == torch.bfloat16
    error = low.float() - reference
    # CT on [0, 1] after the sigmoid: bf16 keeps 8 mantissa bits (relative rounding 2^-9 per op); over
    # ~15 renormalised layers the mean error is ~2e-3 here (seeds 0-4: 1.3e-3 to 2.8e-3); a layer that
    # breaks in bf16 (overflow, a norm computed without float32 accumulation) gives errors of order 0.1
    assert error[:, 0].abs().mean() < 5e-3
    # segmentation logits: error energy relative to the logits' own variation, 4 % here (seeds 0-4: up
    # to 7 %, random weights give nearly tied logits); a broken layer gives order 1
    seg = reference[:, 1:] - reference[:, 1:].mean()
    assert error[:, 1:].norm() / seg.norm() < 0.15

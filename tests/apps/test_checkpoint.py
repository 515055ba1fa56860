# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Checkpoints: the network arguments in the state dict, unwrapping, refusals, MONAI's checkpoint tools."""

from __future__ import annotations

import json

import pytest
import torch
from monai.networks.utils import copy_model_state

from xctrs_monai.apps.checkpoint import load_network, read_checkpoint, unwrap_state_dict
from xctrs_monai.networks import XCTRSNet

ARGS = {
    "img_size": 16,
    "recon_channels": [4, 4, 4, 4],
    "seg_channels": [8, 8, 8, 8],
    "recon_volume_channels": [4, 4, 4, 4],
}


@pytest.fixture(scope="module")
def network():
    torch.manual_seed(0)
    return XCTRSNet(**ARGS, recon_out_act=None).eval()


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_state_dict_carries_the_network_arguments(tmp_path, network):
    path = tmp_path / "model.pt"
    torch.save(network.state_dict(), path)
    ckpt = read_checkpoint(path)
    assert ckpt.network_args["img_size"] == 16 and ckpt.network_args["recon_out_act"] is None
    assert ckpt.network_args["seg_norm"] == ["group", {"num_groups": 8}]  # JSON: tuples read back as lists
    rebuilt = XCTRSNet(**ckpt.network_args)
    rebuilt.load_state_dict(ckpt.state_dict)
    assert _same_weights(rebuilt, network)
    x = torch.rand(1, 2, 16, 16)
    with torch.no_grad():
        assert torch.equal(rebuilt.eval()(x), network(x))  # the linear head came back (a sigmoid would differ)


def test_monai_tools_and_torchscript_keep_working(network):
    """The extra state is a tensor: MONAI's copy_model_state (ckpt_export) copies it like a weight, and the
    scripted network gives the same output."""
    target = XCTRSNet(**ARGS, recon_out_act=None)
    _, changed, unchanged = copy_model_state(target, network.state_dict())
    assert "_extra_state" in changed and not unchanged and _same_weights(target, network)
    x = torch.rand(1, 2, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.script(network)(x), network(x))


def test_set_extra_state_refuses_garbage(network):
    state = dict(network.state_dict())
    state["_extra_state"] = torch.tensor([1, 2, 255], dtype=torch.uint8)
    with pytest.raises(ValueError, match="XCTRSNet extra state must be the JSON"):
        XCTRSNet(**ARGS).load_state_dict(state)


@pytest.mark.parametrize(
    "wrap",
    [
        lambda s: s,
        lambda s: {"model": s},
        lambda s: {"network": s, "optimizer": {"state": {}, "param_groups": []}, "trainer": {"epoch": 3}},
        lambda s: {f"module.{k}": v for k, v in s.items()},
        lambda s: {"model": {f"module.{k}": v for k, v in s.items()}},
        lambda s: {"state_dict": {f"_orig_mod.{k}": v for k, v in s.items()}},
    ],
    ids=["plain", "model_wrapper", "trainer_network_key", "ddp_prefix", "model_and_ddp", "state_dict_compiled"],
)
def test_unwrapping(tmp_path, network, wrap):
    path = tmp_path / "ckpt.pt"
    torch.save(wrap(network.state_dict()), path)
    ckpt = read_checkpoint(path)
    assert ckpt.state_dict.keys() == network.state_dict().keys()
    loaded = load_network(ckpt, XCTRSNet(**ARGS, recon_out_act=None))
    assert _same_weights(loaded, network)


@pytest.mark.parametrize(
    "content, message",
    [
        (lambda s: {"epoch": 3, "lr": 0.1}, "holds no state dict of network weights"),
        (lambda s: [1, 2, 3], "holds no state dict"),
        (
            lambda s: {**s, "segmenter.head.bias": torch.full_like(s["segmenter.head.bias"], float("nan"))},
            "NaN or infinite values in 'segmenter.head.bias'",
        ),
        (
            lambda s: {**s, "segmenter.head.bias": torch.full_like(s["segmenter.head.bias"], float("inf"))},
            "NaN or infinite",
        ),
    ],
)
def test_refused_contents(tmp_path, network, content, message):
    path = tmp_path / "bad.pt"
    torch.save(content(network.state_dict()), path)
    with pytest.raises(ValueError, match=message) as err:
        read_checkpoint(path)
    assert f"Checkpoint '{path}'" in str(err.value)


class _Payload:
    def __reduce__(self):
        import os

        return (os.system, ("touch payload_ran",))


def test_pickle_payload_is_not_run(tmp_path, monkeypatch, network):
    monkeypatch.chdir(tmp_path)
    torch.save({"model": network.state_dict(), "evil": _Payload()}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="cannot be read as a PyTorch state dict"):
        read_checkpoint(tmp_path / "evil.pt")
    assert not (tmp_path / "payload_ran").exists()


def test_mismatched_network_is_refused(tmp_path, network):
    path = tmp_path / "model.pt"
    torch.save(network.state_dict(), path)
    with pytest.raises(ValueError, match=r"was trained with another network: recon_out_act=None \(config: 'sigmoid'\)"):
        load_network(read_checkpoint(path), XCTRSNet(**ARGS))
    old = tmp_path / "old.pt"
    torch.save({k: v for k, v in network.state_dict().items() if k != "_extra_state"}, old)
    with pytest.raises(ValueError, match="does not fit the network of the config: .*shape mismatches"):
        load_network(read_checkpoint(old), XCTRSNet(**{**ARGS, "seg_channels": [16, 16, 16, 16]}))
    assert _same_weights(load_network(read_checkpoint(old), XCTRSNet(**ARGS, recon_out_act=None)), network)


def test_channels_last_and_runtime_arguments(tmp_path, network):
    path = tmp_path / "model.pt"
    torch.save(XCTRSNet(**ARGS, recon_out_act=None, checkpointing=True).state_dict(), path)
    # trained with activation checkpointing: the same network for inference (no mismatch on that argument)
    converted = load_network(read_checkpoint(path), XCTRSNet(**ARGS, recon_out_act=None), channels_last=True)
    converted.load_state_dict(network.state_dict())
    formats = {
        p.dim(): p.is_contiguous(memory_format=torch.channels_last if p.dim() == 4 else torch.channels_last_3d)
        for p in converted.parameters()
        if p.dim() in (4, 5)
    }
    assert formats == {4: True, 5: True}
    x = torch.rand(1, 2, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(
            converted.eval()(x), network(x), atol=1e-4, rtol=1e-4
        )  # float32, another summation order
    assert json.loads(json.dumps(network.network_args, default=repr))["img_size"] == 16

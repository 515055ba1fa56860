# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0

from __future__ import annotations

import copy
import math

import pytest
import torch

from monai.data import DataLoader
from monai.engines.utils import IterationEvents
from xctrs_monai.engines import XCTRSKeys, XCTRSTrainer, unwrap_network
from xctrs_monai.losses import MultiViewPerceptualLoss, XCTRSLoss
from xctrs_monai.networks import XCTRSNet, instance_norm_channels_last_backward_ok


TERMS = ["loss_mae", "loss_seg", "loss_rsc_seg", "loss_rsc_div", "loss_rsc"]


def tiny_net(**kwargs) -> XCTRSNet:
    """The ``net`` fixture's network (16^3), seeded here so that two calls give the same weights."""
    torch.manual_seed(0)
    return XCTRSNet(img_size=16, recon_channels=(4, 4, 4, 4), seg_channels=(8, 8, 8, 8),
                    recon_volume_channels=(2, 2, 2, 2), seg_num_layers=4, **kwargs)


def _trainer(net, loss, items, **kwargs) -> XCTRSTrainer:
    loader = DataLoader(items, batch_size=1)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    return XCTRSTrainer(device="cpu", max_epochs=1, train_data_loader=loader, network=net, optimizer=opt,
                        loss_function=loss, **kwargs)


def test_coupled_iteration_output_and_update(net, fake_items):
    loss = XCTRSLoss(use_mv_perceptual=False)
    trainer = _trainer(net, loss, fake_items(2))
    before = {k: v.detach().clone() for k, v in net.state_dict().items()}
    trainer.run()
    assert trainer.state.iteration == 2
    out = trainer.state.output  # decollated: one dict per batch item
    assert isinstance(out, list) and len(out) == 1
    item = out[0]
    for key in (XCTRSKeys.XRAY, XCTRSKeys.CT, XCTRSKeys.LABEL, XCTRSKeys.PRED, XCTRSKeys.PRED_CT,
                XCTRSKeys.PRED_SEG, XCTRSKeys.PRED_SEG_GT, XCTRSKeys.LOSS, *TERMS):
        assert key in item, key
    assert item[XCTRSKeys.PRED].shape == (9, 16, 16, 16) and item[XCTRSKeys.PRED_SEG_GT].shape == (8, 16, 16, 16)
    assert "loss_mv" not in item  # switched-off term is not reported
    expected = sum(float(item[f"loss_{k}"]) for k in ("mae", "seg", "rsc_seg", "rsc_div"))
    assert float(item[XCTRSKeys.LOSS]) == pytest.approx(expected, rel=1e-5)
    after = net.state_dict()
    changed = {name.split(".")[0] for name, v in after.items() if not torch.equal(before[name], v)}
    assert changed == {"reconstructor", "segmenter"}  # one optimizer steps both networks
    assert not trainer.scaler.is_enabled()


def test_segment_gt_follows_rsc_switch(net, fake_items):
    trainer = _trainer(net, XCTRSLoss(use_mv_perceptual=False, use_rsc=False), fake_items(2))
    assert trainer.segment_gt_ct is False
    trainer.run()
    assert XCTRSKeys.PRED_SEG_GT not in trainer.state.output[0]
    assert "loss_rsc" not in trainer.state.output[0] and "loss_seg" in trainer.state.output[0]


def test_plain_callable_loss(net, fake_items):
    calls = []

    def mae(ct_hat, ct, seg_hat, seg_gt, label):
        calls.append(seg_gt is None)
        return (ct_hat - ct).abs().mean()

    trainer = _trainer(net, mae, fake_items(2), segment_gt_ct=False)
    trainer.run()
    assert calls == [True, True]
    assert set(k for k in trainer.state.output[0] if k.startswith("loss")) == {"loss"}


def test_missing_ct_raises(net, fake_items):
    items = fake_items(1)
    del items[0]["image"]
    with pytest.raises(ValueError, match="ground-truth CT"):
        _trainer(net, XCTRSLoss(use_mv_perceptual=False), items).run()


def test_unwrap_network(net):
    assert unwrap_network(torch.nn.DataParallel(torch.nn.DataParallel(net))) is net
    assert unwrap_network(net) is net
    # torch.compile's wrapper is kept (its wrapped module is a private attribute) but exposes the
    # attributes the trainer needs: segmenter is the network's own
    assert unwrap_network(torch.compile(net)).segmenter is net.segmenter


def _grads_of_one_step(net, loss, items, **kwargs) -> tuple[float, dict[str, torch.Tensor]]:
    """Loss and gradients of the first training step (read before the optimizer changes anything)."""
    trainer = _trainer(net, loss, items[:1], **kwargs)
    grads: dict[str, torch.Tensor] = {}

    @trainer.on(IterationEvents.BACKWARD_COMPLETED)
    def _record(engine):
        grads.update({k: p.grad.detach().clone() for k, p in net.named_parameters() if p.grad is not None})

    trainer.run()
    return float(trainer.state.output[0][XCTRSKeys.LOSS]), grads


def test_bf16_step_is_finite_and_unscaled(net, fake_items):
    trainer = _trainer(net, XCTRSLoss(use_mv_perceptual=False), fake_items(2), amp=True,
                       amp_kwargs={"dtype": torch.bfloat16})
    assert trainer.amp_dtype == torch.bfloat16 and not trainer.scaler.is_enabled()  # bf16 needs no scaling
    before = [p.detach().clone() for p in net.parameters()]
    trainer.run()
    item = trainer.state.output[0]
    assert math.isfinite(item[XCTRSKeys.LOSS])
    assert item[XCTRSKeys.PRED].dtype == torch.float32 and item[XCTRSKeys.PRED_SEG_GT].dtype == torch.float32
    assert all(not torch.equal(b, p) for b, p in zip(before, net.parameters()))


def test_bf16_step_close_to_float32(fake_items):
    """Same weights and batch: the bf16 loss and gradients follow the float32 ones."""
    items = fake_items(1)
    net32 = tiny_net()
    net16 = copy.deepcopy(net32)
    loss32, g32 = _grads_of_one_step(net32, XCTRSLoss(use_mv_perceptual=False), items)
    loss16, g16 = _grads_of_one_step(net16, XCTRSLoss(use_mv_perceptual=False), items, amp=True,
                                     amp_kwargs={"dtype": torch.bfloat16})
    # bf16 rounds to 8 mantissa bits (2^-9 relative) per operation: the loss agrees to 1e-4 here
    assert loss16 == pytest.approx(loss32, rel=1e-3)
    flat32 = torch.cat([g.flatten() for g in g32.values()])
    flat16 = torch.cat([g16[k].flatten() for k in g32])
    # gradients of a random 16^3 network are small residues of cancelling terms (InstanceNorm removes
    # the mean), so bf16 rounding moves them more than the loss: cosine 0.97 here. A missing or
    # sign-flipped term, or a gradient left scaled (fp16 scaler), shows as cosine < 0.5 or a norm ratio
    # far from 1
    assert torch.nn.functional.cosine_similarity(flat16, flat32, dim=0) > 0.9
    assert 0.8 < flat16.norm() / flat32.norm() < 1.25


def test_fp16_uses_the_grad_scaler(net, fake_items):
    trainer = _trainer(net, XCTRSLoss(use_mv_perceptual=False), fake_items(1), amp=True,
                       amp_kwargs={"dtype": torch.float16})
    assert trainer.scaler.is_enabled()
    trainer.run()
    assert math.isfinite(trainer.state.output[0][XCTRSKeys.LOSS])
    assert trainer.scaler.get_scale() > 0
    # autocast's CPU default is bfloat16: no scaler
    assert not _trainer(net, XCTRSLoss(use_mv_perceptual=False), fake_items(1), amp=True).scaler.is_enabled()


def test_ill_amp_dtype(net, fake_items):
    with pytest.raises(ValueError, match="torch.float32"):
        _trainer(net, XCTRSLoss(use_mv_perceptual=False), fake_items(1), amp=True, amp_kwargs={"dtype": torch.float32})


def test_channels_last_step(fake_items):
    """Channels-last training gives the float32 gradients (GroupNorm in both networks: see the next test)."""
    items = fake_items(1)
    plain = tiny_net(recon_norm=("group", {"num_groups": 2}))
    fast = copy.deepcopy(plain)
    loss_plain, g_plain = _grads_of_one_step(plain, XCTRSLoss(use_mv_perceptual=False), items)
    loss_fast, g_fast = _grads_of_one_step(fast, XCTRSLoss(use_mv_perceptual=False), items, channels_last=True)
    convs = [m for m in fast.modules() if isinstance(m, (torch.nn.Conv3d, torch.nn.ConvTranspose3d))]
    assert convs and all(m.weight.is_contiguous(memory_format=torch.channels_last_3d) for m in convs)
    # same float32 arithmetic in another memory order: summation-order differences only
    assert loss_fast == pytest.approx(loss_plain, rel=1e-5)
    for key, g in g_plain.items():
        torch.testing.assert_close(g_fast[key].contiguous(), g, rtol=1e-3, atol=1e-6, msg=key)


def test_channels_last_refused_where_instance_norm_backward_is_wrong(net, fake_items):
    x = torch.rand(1, 3, 4, 4, 4, requires_grad=True)
    grad = torch.rand(1, 3, 4, 4, 4)
    out = torch.nn.functional.instance_norm(x)
    (plain,) = torch.autograd.grad(out, x, grad, retain_graph=True)
    (other,) = torch.autograd.grad(out, x, grad.contiguous(memory_format=torch.channels_last_3d))
    build_ok = torch.allclose(plain, other, rtol=1e-4, atol=1e-6)  # independent check of this torch build
    if not build_ok:  # torch 2.13.0 on CPU
        assert not instance_norm_channels_last_backward_ok("cpu")
        with pytest.raises(ValueError, match="instance_norm"):
            _trainer(net, XCTRSLoss(use_mv_perceptual=False), fake_items(1), channels_last=True)
    else:
        _trainer(net, XCTRSLoss(use_mv_perceptual=False), fake_items(1), channels_last=True).run()


def test_checkpointed_step_gives_the_same_gradients(fake_items):
    """Activation checkpointing of both networks and of the multi-view VGG loss changes memory, not maths."""
    items = fake_items(1)
    plain, ckpt = tiny_net(), tiny_net(checkpointing=True)
    ckpt.load_state_dict(plain.state_dict())
    results = []
    for net, cp in ((plain, False), (ckpt, True)):
        loss = XCTRSLoss(perceptual=MultiViewPerceptualLoss(num_slices=4, checkpointing=cp))
        results.append(_grads_of_one_step(net, loss, items))
    (loss_plain, g_plain), (loss_ckpt, g_ckpt) = results
    # the recomputation repeats the same float32 operations in the same order: equal up to rounding
    assert loss_ckpt == pytest.approx(loss_plain, rel=1e-6)
    assert g_ckpt.keys() == g_plain.keys()
    for key, g in g_plain.items():
        torch.testing.assert_close(g_ckpt[key], g, rtol=1e-5, atol=1e-7, msg=key)

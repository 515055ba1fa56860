# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0

from __future__ import annotations

import pytest
import torch

from monai.data import DataLoader
from xctrs_monai.engines import XCTRSKeys, XCTRSTrainer, unwrap_network
from xctrs_monai.losses import XCTRSLoss


TERMS = ["loss_mae", "loss_seg", "loss_rsc_seg", "loss_rsc_div", "loss_rsc"]


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
    assert unwrap_network(torch.nn.DataParallel(net)) is net
    assert unwrap_network(net) is net

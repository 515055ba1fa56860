# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0

from __future__ import annotations

import pytest
import torch

from monai.data import MetaTensor, list_data_collate
from xctrs_monai.engines import XCTRSPrepareBatch


N = 16


def test_shapes_and_types(fake_items):
    batch = list_data_collate(fake_items(2))
    batch["xray_ap"] = MetaTensor(batch["xray_ap"])
    xray, ct, label = XCTRSPrepareBatch()(batch, device="cpu")
    assert xray.shape == (2, 2, N, N) and ct.shape == (2, 1, N, N, N) and label.shape == (2, 1, N, N, N)
    assert type(xray) is torch.Tensor
    assert torch.equal(xray[:, 0], batch["xray_ap"].as_tensor()[:, 0])
    assert torch.equal(xray[:, 1], batch["xray_la"][:, 0])


def test_optional_targets_and_missing_views(fake_items):
    batch = list_data_collate(fake_items(1))
    del batch["image"], batch["label"]
    xray, ct, label = XCTRSPrepareBatch()(batch)
    assert xray.shape == (1, 2, N, N) and ct is None and label is None
    del batch["xray_la"]
    with pytest.raises(KeyError, match="xray_la"):
        XCTRSPrepareBatch()(batch)


def test_custom_keys(fake_items):
    item = fake_items(1)[0]
    renamed = {"ap": item["xray_ap"], "la": item["xray_la"], "ct": item["image"], "seg": item["label"]}
    batch = list_data_collate([renamed])
    xray, ct, label = XCTRSPrepareBatch(ap_key="ap", la_key="la", ct_key="ct", label_key="seg")(batch)
    assert xray.shape == (1, 2, N, N) and ct is not None and label is not None

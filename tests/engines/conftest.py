# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0

from __future__ import annotations

import pytest
import torch

from xctrs_monai.networks import XCTRSNet

N = 16


def tiny_net() -> XCTRSNet:
    return XCTRSNet(
        img_size=N,
        recon_channels=(4, 4, 4, 4),
        seg_channels=(8, 8, 8, 8),
        recon_volume_channels=(2, 2, 2, 2),
        seg_num_layers=4,
    )


def _fake_items(n: int = 2, seed: int = 0) -> list[dict]:
    gen = torch.Generator().manual_seed(seed)
    items = []
    for i in range(n):
        items.append(
            {
                "xray_ap": torch.rand(1, N, N, generator=gen),
                "xray_la": torch.rand(1, N, N, generator=gen),
                "image": torch.rand(1, N, N, N, generator=gen),
                "label": torch.randint(0, 8, (1, N, N, N), generator=gen).float(),
                "case_id": f"case_{i}",
            }
        )
    return items


@pytest.fixture
def net() -> XCTRSNet:
    """A tiny XCTRSNet on 16^3."""
    torch.manual_seed(0)
    return tiny_net()


@pytest.fixture
def fake_items():
    """Factory of random data dicts (``xray_ap``, ``xray_la``, ``image``, ``label``, ``case_id``) of side 16."""
    return _fake_items

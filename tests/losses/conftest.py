# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def single_thread():
    """Run the loss tests on one intra-op thread: the many tiny VGG convolutions here are dominated by
    OpenMP synchronisation and slow down badly on a shared, busy CPU. Restored after each test."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def channel_picking_vgg(tmp_path) -> str:
    """A VGG16 weights file (torchvision layout, ``features.0.*`` only: enough for ``layers="conv1_1"``) whose
    conv1_1 copies input channel c to output channel c (centre tap, no bias): conv1_1's output is then the
    VGG's normalised input."""
    weight = torch.zeros(64, 3, 3, 3)
    for c in range(3):
        weight[c, c, 1, 1] = 1.0
    path = tmp_path / "channel_picking_vgg16.pth"
    torch.save({"features.0.weight": weight, "features.0.bias": torch.zeros(64)}, path)
    return str(path)

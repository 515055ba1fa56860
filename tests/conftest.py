# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0

from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True)
def single_thread():
    """Run every test on one intra-op thread. The tests use tiny tensors, whose operations on a shared, busy
    2-core machine are dominated by OpenMP synchronisation: the exact-resume test of tests/bundle took 79 s
    with 2 threads and 4.6 s with 1 while other jobs used the cores. Subprocesses get
    ``OMP_NUM_THREADS=1``. Restored after each test."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def small_vgg_file():
    """Write a torchvision-format VGG16 state dict (keys ``features.N.*``) holding only the layers up to
    relu2_2, about 1 MB: the format of ``vgg16-397923af.pth`` without its 528 MB. Returns a writer."""

    def _write(path: Path) -> Path:
        gen = torch.Generator().manual_seed(0)
        state = {}
        for index, (out_ch, in_ch) in {0: (64, 3), 2: (64, 64), 5: (128, 64), 7: (128, 128)}.items():
            state[f"features.{index}.weight"] = torch.randn(out_ch, in_ch, 3, 3, generator=gen) * 0.05
            state[f"features.{index}.bias"] = torch.randn(out_ch, generator=gen) * 0.05
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(state, path)
        return path

    return _write

# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0

from __future__ import annotations

import numpy as np
import pytest
import torch
from ignite.engine import Engine, Events

from monai.data import DataLoader, Dataset
from monai.transforms import RandomizableTransform

from xctrs_monai.handlers import EpochSeedHandler, epoch_seed


class RandDraw(RandomizableTransform):
    """Add a draw of the transform's own generator to the item (as a random augmentation does)."""

    def __call__(self, data):
        return {**data, "draw": float(self.R.uniform())}


def _record(epochs: int, seeded: bool, start_epoch: int = 0) -> list[list[tuple]]:
    """Draws per epoch: (shuffled item index, transform draw, torch draw, numpy draw) for each iteration."""
    dataset = Dataset(data=[{"i": i} for i in range(4)], transform=RandDraw(prob=1.0))
    seen: list[list[tuple]] = []

    def step(engine, batch):
        draws = (batch["i"].tolist(), batch["draw"].tolist(), float(torch.rand(1)), float(np.random.rand()))
        seen[-1].append(draws)

    loader = DataLoader(dataset, batch_size=2, shuffle=True, num_workers=0)
    engine = Engine(step)
    engine.add_event_handler(Events.EPOCH_STARTED, lambda e: seen.append([]))
    if seeded:
        EpochSeedHandler(seed=3).attach(engine)
    engine.load_state_dict({"epoch": start_epoch, "max_epochs": epochs, "epoch_length": 2})
    engine.run(loader)
    return seen


def test_resumed_epochs_replay_the_uninterrupted_ones():
    full = _record(epochs=3, seeded=True)
    resumed = _record(epochs=3, seeded=True, start_epoch=1)  # as after loading the checkpoint of epoch 1
    assert resumed == full[1:]
    assert full[1] != full[2]  # each epoch draws anew
    # the plain run (seeded once, at start-up) does not replay: the failure this handler prevents
    torch.manual_seed(0)
    plain = _record(epochs=3, seeded=False)
    torch.manual_seed(0)
    plain_resumed = _record(epochs=3, seeded=False, start_epoch=1)
    assert plain_resumed != plain[1:]


def test_epoch_seed_values():
    assert epoch_seed(0, 1) == epoch_seed(0, 1)
    seeds = {epoch_seed(s, e, r) for s in range(3) for e in range(1, 4) for r in range(2)}
    assert len(seeds) == 18  # (seed, epoch, rank) triples never share a stream; seed + epoch would
    assert all(0 <= s < 2**32 for s in seeds)


def test_ill_seed():
    with pytest.raises(ValueError, match="seed must be >= 0"):
        EpochSeedHandler(seed=-1)

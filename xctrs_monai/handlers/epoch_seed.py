# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Per-epoch seeding, so that a training run resumed from a checkpoint replays the epochs it lost exactly."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import torch.distributed as dist

from monai.data.utils import set_rnd
from monai.utils import IgniteInfo, min_version, optional_import, set_determinism

Events, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Events")
if TYPE_CHECKING:
    from ignite.engine import Engine
else:
    Engine, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Engine")

__all__ = ["EpochSeedHandler", "epoch_seed"]


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """
    A 32-bit seed for one epoch of one process, drawn from ``numpy.random.SeedSequence([seed, epoch, rank])``,
    so that nearby ``(seed, epoch, rank)`` triples give unrelated streams (unlike ``seed + epoch``).

    Args:
        seed: the run's seed (non-negative).
        epoch: the epoch number (1 for the first epoch).
        rank: the process rank in a distributed run. Defaults to 0.

    Returns:
        a seed in ``[0, 2**32)``.
    """
    return int(np.random.SeedSequence([int(seed), int(epoch), int(rank)]).generate_state(1)[0])


class EpochSeedHandler:
    """
    Seed every random number generator at the start of each epoch from ``(seed, epoch, rank)`` alone.

    ``monai.utils.set_determinism(seed)`` at start-up makes a run reproducible from its first iteration only:
    a run resumed from the checkpoint of epoch ``k`` starts the generators again and draws other shuffles
    and augmentations than the uninterrupted run drew in epoch ``k + 1``. With this handler the randomness
    of an epoch depends on the epoch, not on what ran before it, so a run killed and resumed ends with the
    same weights as an uninterrupted run (given deterministic kernels; on CPU they are).

    At ``EPOCH_STARTED`` it calls ``monai.utils.set_determinism`` (python, numpy, torch CPU and CUDA
    generators) and ``monai.data.utils.set_rnd`` on the dataset of ``engine.state.dataloader``, which seeds
    the random transforms that run in the main process (``num_workers=0``; MONAI's ``DataLoader`` does it
    once, at construction). Worker processes are seeded by the ``DataLoader`` from the torch generator when
    the epoch's iterator is created, which happens after this handler; the shuffling sampler draws from it
    too. In a distributed run each rank gets its own stream.

    Args:
        seed: the run's seed. Defaults to 0.
        name: identifier of the ``logging.Logger``; ``None`` uses ``engine.logger``. Defaults to ``None``.

    Raises:
        ValueError: when ``seed`` is negative.
    """

    def __init__(self, seed: int = 0, name: str | None = None) -> None:
        if int(seed) < 0:
            raise ValueError(f"seed must be >= 0, got {seed}.")
        self.seed = int(seed)
        self.logger = logging.getLogger(name)
        self._name = name

    def attach(self, engine: Engine) -> None:
        """
        Args:
            engine: the trainer whose epochs are seeded.
        """
        if self._name is None:
            self.logger = engine.logger
        engine.add_event_handler(Events.EPOCH_STARTED, self)

    def __call__(self, engine: Engine) -> None:
        """Seed the generators for the epoch that is starting."""
        rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
        seed = epoch_seed(self.seed, engine.state.epoch, rank)
        set_determinism(seed=seed)
        dataset = getattr(engine.state.dataloader, "dataset", None)
        if dataset is not None:
            set_rnd(dataset, seed)
        self.logger.debug(f"epoch {engine.state.epoch}: random generators seeded with {seed}.")

# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Warm-up schedules for the X-CTRSNet loss weights (Ge et al., 2021, Sect. 2.3)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

from monai.utils import IgniteInfo, min_version, optional_import

Events, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Events")
if TYPE_CHECKING:
    from ignite.engine import Engine
else:
    Engine, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Engine")

__all__ = ["linear_warmup", "LossWeightScheduler"]


def linear_warmup(step: int, start: float, end: float, warmup: int, delay: int = 0) -> float:
    """
    Linear ramp from ``start`` to ``end``: ``start`` for the first ``delay`` steps, ``end`` from step
    ``delay + warmup`` on.

    Args:
        step: number of completed steps (epochs or iterations), starting at 0.
        start: value before the ramp.
        end: value after the ramp.
        warmup: length of the ramp in steps; ``0`` jumps to ``end`` at ``delay``.
        delay: steps to hold ``start`` before the ramp. Defaults to 0.

    Returns:
        the scheduled value at ``step``.
    """
    if warmup <= 0:
        return float(end) if step >= delay else float(start)
    frac = min(max((step - delay) / warmup, 0.0), 1.0)
    return float(start + (end - start) * frac)


class LossWeightScheduler:
    """
    Linearly warm up selected weights of the X-CTRSNet loss at the start of training.

    Early reconstructions are noise, and segmenting them sends a misleading signal to both networks;
    RSC learning (Ge et al., 2021, Sect. 2.3) counters this by training MulSISNet on the ground-truth CT.
    This handler complements it: the weights of the terms that depend on the reconstruction (by default the
    segmentation Dice on the reconstruction and the RSC consistency term) ramp from ``start`` to their target
    over the first ``warmup`` epochs (or iterations), while the reconstruction loss and the segmentation of
    the ground-truth CT keep full weight.

    The value is a function of ``engine.state.epoch`` / ``engine.state.iteration`` only, so a resumed run
    continues the schedule where it stopped. The current weights are kept in ``engine.state.loss_weights``.

    Args:
        loss: the loss whose weights are scheduled. A weight ``name`` is set as ``loss.weights[name]`` when
            ``loss.weights`` is a mutable mapping, else as the attribute ``loss.<name>``.
        weights: ``{name: target value}``. Defaults to ``None``: the loss's current values of ``names``.
        names: weight names to schedule when ``weights`` is not given. Defaults to ``None``.
        warmup: ramp length in epochs (``epoch_level=True``) or iterations. Defaults to 5.
        start: fraction of the target at the beginning of the ramp. Defaults to 0.0.
        delay: epochs/iterations to hold ``start`` before the ramp begins. Defaults to 0.
        epoch_level: schedule per epoch (set at ``EPOCH_STARTED``) or per iteration (``ITERATION_STARTED``).
            Defaults to ``True``.
        name: identifier of the ``logging.Logger``; ``None`` uses ``engine.logger``. Defaults to ``None``.

    Raises:
        ValueError: when no weight is named, ``warmup`` or ``delay`` is negative, or a weight is unknown.
    """

    def __init__(
        self,
        loss: Any,
        weights: Mapping[str, float] | None = None,
        names: list[str] | tuple[str, ...] | None = None,
        warmup: int = 5,
        start: float = 0.0,
        delay: int = 0,
        epoch_level: bool = True,
        name: str | None = None,
    ) -> None:
        if warmup < 0:
            raise ValueError(f"warmup must be >= 0, got {warmup}.")
        if delay < 0:
            raise ValueError(f"delay must be >= 0, got {delay}.")
        self.loss = loss
        if weights is None:
            if not names:
                raise ValueError("give the scheduled weights as `weights={name: target}` or `names=[...]`.")
            weights = {n: self._get(n) for n in names}
        if not weights:
            raise ValueError("`weights` must name at least one loss weight.")
        for n in weights:
            self._get(n)  # raises for unknown names
        self.targets = {k: float(v) for k, v in weights.items()}
        self.warmup = int(warmup)
        self.start = float(start)
        self.delay = int(delay)
        self.epoch_level = epoch_level
        self.logger = logging.getLogger(name)
        self._name = name

    def _store(self) -> MutableMapping | None:
        store = getattr(self.loss, "weights", None)
        return store if isinstance(store, MutableMapping) else None

    def _get(self, key: str) -> float:
        store = self._store()
        if store is not None and key in store:
            return float(store[key])
        if store is None and hasattr(self.loss, key):
            return float(getattr(self.loss, key))
        raise ValueError(f"loss {type(self.loss).__name__} has no weight '{key}'.")

    def _set(self, key: str, value: float) -> None:
        store = self._store()
        if store is not None:
            store[key] = value
        else:
            setattr(self.loss, key, value)

    def values(self, step: int) -> dict[str, float]:
        """
        The weights after ``step`` completed epochs/iterations.

        Args:
            step: completed epochs (``epoch_level=True``) or iterations, from 0.

        Returns:
            ``{name: weight}``.
        """
        return {
            k: linear_warmup(step, self.start * target, target, self.warmup, self.delay)
            for k, target in self.targets.items()
        }

    def attach(self, engine: Engine) -> None:
        """
        Args:
            engine: the trainer whose loss is scheduled.
        """
        if self._name is None:
            self.logger = engine.logger
        event = Events.EPOCH_STARTED if self.epoch_level else Events.ITERATION_STARTED
        engine.add_event_handler(event, self)
        engine.add_event_handler(Events.COMPLETED, self.restore)

    def __call__(self, engine: Engine) -> None:
        """Set the weights for the epoch/iteration that is starting."""
        step = (engine.state.epoch if self.epoch_level else engine.state.iteration) - 1
        current = self.values(max(step, 0))
        for k, v in current.items():
            self._set(k, v)
        previous = getattr(engine.state, "loss_weights", None)
        engine.state.loss_weights = current
        if self.epoch_level and current != previous:
            self.logger.info("loss weights: " + ", ".join(f"{k}={v:.4g}" for k, v in current.items()))

    def restore(self, engine: Engine | None = None) -> None:
        """Put the target weights back, so the loss object is not left mid-ramp after training."""
        for k, v in self.targets.items():
            self._set(k, v)

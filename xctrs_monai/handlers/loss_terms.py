# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Per-term loss logging for the coupled X-CTRSNet iteration (Eq. 1 and Eq. 16 of Ge et al., 2021)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch

from monai.utils import IgniteInfo, is_scalar, min_version, optional_import

Events, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Events")
if TYPE_CHECKING:
    from ignite.engine import Engine
else:
    Engine, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Engine")

__all__ = ["LOSS_PREFIX", "from_loss_terms", "LossTermsHandler"]

LOSS_PREFIX = "loss"


def _first_item(output: Any) -> dict | None:
    """The iteration output as one dict: the first item of a decollated list, or the dict itself."""
    if isinstance(output, dict):
        return output
    if isinstance(output, (list, tuple)) and len(output) > 0 and isinstance(output[0], dict):
        return output[0]
    return None


def _to_float(value: Any) -> float | None:
    if isinstance(value, torch.Tensor):
        return float(value.detach().float().mean().item()) if value.numel() > 0 else None
    if is_scalar(value):
        return float(value)
    return None


def from_loss_terms(keys: Sequence[str] | None = None, prefix: str = "") -> Callable[[Any], dict[str, float]]:
    """
    Build an ``output_transform`` that returns the loss terms of one iteration as ``{name: float}``.

    The X-CTRSNet trainer puts the total loss under ``"loss"`` and every term of Eq. 1 / Eq. 16 under
    ``"loss_<term>"`` in ``engine.state.output``. MONAI's ``StatsHandler`` and ``TensorBoardStatsHandler``
    print or plot a dict output one scalar per key, so::

        StatsHandler(output_transform=from_loss_terms(prefix="train_"))

    logs ``train_loss``, ``train_loss_mae``, ``train_loss_rsc_seg`` ... at every iteration.

    Args:
        keys: output keys to report. Defaults to ``None``: every key that starts with ``"loss"``.
        prefix: text put in front of every reported name (e.g. ``"train_"``). Defaults to ``""``.

    Returns:
        a callable mapping ``engine.state.output`` (a dict or a decollated list of dicts, where the loss
        values are replicated into every item) to a dict of Python floats.
    """

    def _transform(output: Any) -> dict[str, float]:
        item = _first_item(output)
        if item is None:
            return {}
        names = list(keys) if keys is not None else [k for k in item if str(k).startswith(LOSS_PREFIX)]
        values = {}
        for name in names:
            value = _to_float(item.get(name))
            if value is not None:
                values[f"{prefix}{name}"] = value
        return values

    return _transform


class LossTermsHandler:
    """
    Publish the epoch mean of every loss term as ``engine.state.metrics[prefix + term]``.

    The iteration-level terms are noisy (one volume per step); their epoch means are what one compares
    across runs and ablations (``use_rsc``, ``use_mv_perceptual``, ...). Once published as metrics, MONAI's
    ``StatsHandler`` prints them and ``TensorBoardStatsHandler`` plots them at the end of every epoch next to
    the validation metrics; attach this handler before those two.

    Args:
        keys: output keys to average. Defaults to ``None``: every key starting with ``"loss"``.
        prefix: name prefix of the published metrics. Defaults to ``"train_"``.
        output_transform: maps ``engine.state.output`` to ``{term: float}``. Defaults to
            ``from_loss_terms(keys)``.
        name: identifier of the ``logging.Logger`` to use; ``None`` uses ``engine.logger``.
            Defaults to ``None``.
    """

    def __init__(
        self,
        keys: Sequence[str] | None = None,
        prefix: str = "train_",
        output_transform: Callable[[Any], dict[str, float]] | None = None,
        name: str | None = None,
    ) -> None:
        self.prefix = prefix
        self.output_transform = from_loss_terms(keys) if output_transform is None else output_transform
        self.logger = logging.getLogger(name)
        self._name = name
        self._sums: dict[str, float] = {}
        self._counts: dict[str, int] = {}

    def attach(self, engine: Engine) -> None:
        """
        Args:
            engine: the trainer whose iteration output carries the loss terms.
        """
        if self._name is None:
            self.logger = engine.logger
        engine.add_event_handler(Events.EPOCH_STARTED, self.reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.iteration_completed)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self.epoch_completed)

    def reset(self, engine: Engine | None = None) -> None:
        """Forget the sums of the previous epoch."""
        self._sums, self._counts = {}, {}

    def iteration_completed(self, engine: Engine) -> None:
        """Add this iteration's terms to the running sums."""
        for term, value in self.output_transform(engine.state.output).items():
            self._sums[term] = self._sums.get(term, 0.0) + value
            self._counts[term] = self._counts.get(term, 0) + 1

    def epoch_completed(self, engine: Engine) -> None:
        """Write the epoch means into ``engine.state.metrics``."""
        means = self.compute()
        engine.state.metrics.update(means)
        if means:
            text = " ".join(f"{k}: {v:.4f}" for k, v in means.items())
            self.logger.debug(f"Epoch[{engine.state.epoch}] loss terms -- {text}")

    def compute(self) -> dict[str, float]:
        """The means accumulated so far, as ``{prefix + term: mean}``."""
        return {f"{self.prefix}{k}": self._sums[k] / self._counts[k] for k in self._sums if self._counts[k] > 0}

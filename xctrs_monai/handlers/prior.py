# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Score the X-ray-blind prior beside the model, on the same cases and with the same metrics."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from monai.utils import IgniteInfo, min_version, optional_import

Events, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Events")
if TYPE_CHECKING:
    from ignite.engine import Engine
else:
    Engine, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Engine")

__all__ = ["PRIOR_PREFIX", "XrayBlindPriorHandler"]

PRIOR_PREFIX = "prior_"
"""Prefix of the prior's entries in ``engine.state.metrics`` and ``engine.state.metric_details``."""


class XrayBlindPriorHandler:
    """
    Run a second evaluator whose network is the X-ray-blind prior (``xctrs_monai.metrics.XrayBlindPrior``) and
    put its results beside the model's: every metric ``name`` of the prior evaluator appears in the model
    evaluator's ``engine.state.metrics`` and ``engine.state.metric_details`` as ``prefix + name``.

    The prior is constant, so its evaluator runs once, when the model evaluator first starts an epoch; later
    validation epochs reuse the figures. Because they are in ``engine.state.metrics`` at every epoch,
    ``StatsHandler`` prints them and ``TensorBoardStatsHandler`` logs them as constant lines beside the
    learning curve (``prior_val_mean_dice`` beside ``val_mean_dice``), and ``MetricsTableHandler`` puts
    the prior in the first row of the evaluation table.

    The prior evaluator must iterate the model evaluator's data loader (the same cases in the same order)
    and carry the same metrics (in a bundle config: ``"key_val_metric": "%validate#key_metric"``,
    ``"additional_metrics": "%validate#additional_metrics"``). With several processes, attach the handler
    on every rank: the metrics gather their values across ranks.

    Args:
        evaluator: the evaluator of the prior (an ``XCTRSEvaluator`` whose network is the prior).
        prefix: prefix of the prior's metric names. Defaults to ``"prior_"``.
        rerun: run the prior evaluator at every epoch instead of once. Defaults to False.
        name: identifier of the ``logging.Logger``; None uses ``engine.logger``. Defaults to None.
    """

    def __init__(
        self, evaluator: Any, prefix: str = PRIOR_PREFIX, rerun: bool = False, name: str | None = None
    ) -> None:
        if not prefix:
            raise ValueError("prefix must be a non-empty string, so that prior and model metrics stay apart.")
        self.evaluator = evaluator
        self.prefix = prefix
        self.rerun = rerun
        self.logger = logging.getLogger(name)
        self._name = name
        self.metrics: dict[str, Any] | None = None
        self.details: dict[str, Any] = {}

    def attach(self, engine: Engine) -> None:
        """
        Args:
            engine: the model evaluator.
        """
        if self._name is None:
            self.logger = engine.logger
        # the prior's own engine messages ("Got new best metric ...") would read as the model's: quiet them
        self.evaluator.logger = logging.getLogger(f"{engine.logger.name}.prior")
        self.evaluator.logger.setLevel(logging.WARNING)
        engine.add_event_handler(Events.EPOCH_STARTED, self)

    def __call__(self, engine: Engine) -> None:
        """Run the prior evaluator if needed and copy its figures into ``engine.state`` under ``prefix``.

        Raises:
            ValueError: when the two evaluators read different data loaders.
        """
        if getattr(self.evaluator, "data_loader", None) is not getattr(engine, "data_loader", None):
            raise ValueError(
                "the prior evaluator must read the model evaluator's data loader (the same cases in the same"
                " order); set its val_data_loader to the same object."
            )
        if self.metrics is None or self.rerun:
            self.evaluator.run()
            self.metrics = dict(self.evaluator.state.metrics)
            self.details = dict(getattr(self.evaluator.state, "metric_details", None) or {})
            figures = ", ".join(f"{k} {v:.4g}" for k, v in self.metrics.items() if isinstance(v, float))
            self.logger.info(f"X-ray-blind prior: {figures}")
        engine.state.metrics.update({self.prefix + k: v for k, v in self.metrics.items()})
        if not hasattr(engine.state, "metric_details"):
            engine.state.metric_details = {}  # type: ignore[attr-defined]
        engine.state.metric_details.update({self.prefix + k: v for k, v in self.details.items()})  # type: ignore

# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Engines for the coupled X-CTRSNet iteration (Ge et al., 2021): trainer, evaluator, batch preparation."""

from __future__ import annotations

from .distributed import rank_zero_first
from .evaluator import XCTRSEvaluator
from .keys import XCTRSKeys
from .prepare_batch import XCTRSPrepareBatch
from .trainer import XCTRSTrainer, unwrap_network

__all__ = ["XCTRSEvaluator", "XCTRSKeys", "XCTRSPrepareBatch", "XCTRSTrainer", "rank_zero_first", "unwrap_network"]

# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Reduction of per-sample loss values, shared by the composite losses of this package."""

from __future__ import annotations

import torch

from monai.utils import LossReduction

__all__ = ["check_reduction", "reduce_per_sample"]


def check_reduction(reduction: LossReduction | str) -> str:
    """Return ``reduction`` as a plain string, or raise if it is not ``"none"``, ``"mean"`` or ``"sum"``.

    Raises:
        ValueError: when ``reduction`` is not one of the allowed values.
    """
    allowed = [r.value for r in LossReduction]
    value = reduction.value if isinstance(reduction, LossReduction) else reduction
    if value not in allowed:
        raise ValueError(f"reduction must be one of {allowed}, got {reduction!r}.")
    return str(value)


def reduce_per_sample(values: torch.Tensor, reduction: str) -> torch.Tensor:
    """Reduce a ``B`` tensor of per-sample loss values.

    Args:
        values: per-sample losses, shape ``B``.
        reduction: ``"none"`` keeps shape ``B``; ``"mean"`` / ``"sum"`` give a 0-dim tensor.

    Returns:
        the reduced tensor.
    """
    if reduction == LossReduction.MEAN.value:
        return values.mean()
    if reduction == LossReduction.SUM.value:
        return values.sum()
    return values

# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Surface distances of the vertebra segmentation in millimetres: HD95 and ASSD on MONAI's metrics.

Dice per vertebra is MONAI's ``DiceMetric`` (``include_background=False``, ``ignore_empty=True``) as it is.
The two subclasses here add what an evaluation table needs on top of MONAI's ``HausdorffDistanceMetric`` and
``SurfaceDistanceMetric``: a fixed voxel spacing (so that the ``IgniteMetricHandler``, which passes no
``spacing``, gets distances in mm) and one rule for classes that are missing (MONAI returns NaN or inf
depending on the metric and on which side is empty):

- a class absent from the ground truth gives NaN (left out of means, as ``DiceMetric`` does);
- a class present in the ground truth but absent from the prediction gives the diagonal of the field of
  view in mm, the largest distance the volume can hold, so that a missed vertebra counts as the worst
  case instead of an infinite mean or a silently dropped value.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from monai.metrics import HausdorffDistanceMetric, SurfaceDistanceMetric
from monai.utils import MetricReduction

__all__ = ["PhysicalHausdorffDistanceMetric", "PhysicalSurfaceDistanceMetric", "resolve_missing_classes"]

_EMPTY_WARNING = r".*is all 0, this may result in nan/inf distance"


def _spacing_tuple(spacing: float | Sequence[float] | None, spatial_dims: int) -> tuple[float, ...]:
    if spacing is None:
        return (1.0,) * spatial_dims
    values = np.asarray(spacing, dtype=np.float64).reshape(-1)
    if values.size not in (1, spatial_dims):
        raise ValueError(f"spacing must be a number or {spatial_dims} numbers, got {spacing}.")
    return tuple(float(v) for v in np.broadcast_to(values, (spatial_dims,)))


def _checked_spacing(spacing: float | Sequence[float] | None) -> float | tuple[float, ...] | None:
    if spacing is None:
        return None
    values = np.asarray(spacing, dtype=np.float64)
    if values.ndim > 1 or values.size == 0 or not np.all(values > 0):
        raise ValueError(f"spacing must be a positive number or one positive number per axis, got {spacing}.")
    return float(values) if values.ndim == 0 else tuple(float(v) for v in values)


def resolve_missing_classes(
    distances: torch.Tensor,
    y_pred: torch.Tensor,
    y: torch.Tensor,
    include_background: bool = False,
    spacing: float | Sequence[float] | None = None,
) -> torch.Tensor:
    """
    Apply the missing-class rule to per-class distances: NaN where the ground truth lacks the class, the
    field-of-view diagonal (in the units of ``spacing``) where only the prediction lacks it.

    Args:
        distances: ``[B, C']`` from a MONAI surface-distance metric (``C' = C - 1`` without background).
        y_pred: one-hot prediction ``BCXYZ``.
        y: one-hot ground truth ``BCXYZ``.
        include_background: whether ``distances`` has the background column. Defaults to False.
        spacing: voxel size (a number or one per axis); None means 1. Defaults to None.

    Returns:
        ``[B, C']`` float32.
    """
    first = 0 if include_background else 1
    spatial = tuple(range(2, y.ndim))
    gt_present = y[:, first:].bool().any(dim=spatial) if spatial else y[:, first:].bool()
    pred_present = y_pred[:, first:].bool().any(dim=spatial) if spatial else y_pred[:, first:].bool()
    extent = _spacing_tuple(spacing, len(spatial))
    diagonal = math.sqrt(sum((n * s) ** 2 for n, s in zip(y.shape[2:], extent)))
    out = distances.float().clone()
    out = torch.where(pred_present.to(out.device), out, torch.full_like(out, diagonal))
    return torch.where(gt_present.to(out.device), out, torch.full_like(out, math.nan))


class _PhysicalDistanceMixin:
    """Adds the fixed ``spacing`` (unless a call passes one) and the missing-class rule to a MONAI distance metric."""

    spacing: float | tuple[float, ...] | None
    include_background: bool

    def _compute_tensor(  # type: ignore[override]
        self, y_pred: torch.Tensor, y: torch.Tensor, **kwargs: Any
    ) -> torch.Tensor:
        spacing = kwargs.pop("spacing", None)
        spacing = self.spacing if spacing is None else spacing
        with warnings.catch_warnings():  # MONAI warns of empty classes; resolve_missing_classes handles them
            warnings.filterwarnings("ignore", message=_EMPTY_WARNING)
            # MONAI 1.5-1.6 pass their own deprecated argument internally (get_mask_edges): not ours to act on
            warnings.filterwarnings("ignore", message=".*always_return_as_numpy.*")
            distances = super()._compute_tensor(y_pred, y, spacing=spacing, **kwargs)
        return resolve_missing_classes(distances, y_pred, y, self.include_background, spacing)


class PhysicalHausdorffDistanceMetric(_PhysicalDistanceMixin, HausdorffDistanceMetric):
    """
    MONAI's ``HausdorffDistanceMetric`` with a fixed voxel ``spacing`` (distances in mm, by default the 95th
    percentile: HD95) and the missing-class rule of :func:`resolve_missing_classes`.

    Inputs are one-hot ``BCXYZ`` (or lists of ``CXYZ``) as for MONAI's metric; ``spacing`` passed to a call
    overrides the one given here.

    Args:
        spacing: voxel size in mm, a number or one per axis; None means 1 (voxel units). Defaults to None.
        include_background: Defaults to False.
        distance_metric: Defaults to ``"euclidean"``.
        percentile: Defaults to 95.
        directed: Defaults to False.
        reduction: Defaults to ``"mean"``.
        get_not_nans: Defaults to False.

    Raises:
        ValueError: when ``percentile`` is outside [0, 100] or ``spacing`` is not positive.
    """

    def __init__(
        self,
        spacing: float | Sequence[float] | None = None,
        include_background: bool = False,
        distance_metric: str = "euclidean",
        percentile: float | None = 95.0,
        directed: bool = False,
        reduction: MetricReduction | str = MetricReduction.MEAN,
        get_not_nans: bool = False,
    ) -> None:
        if percentile is not None and not 0 <= percentile <= 100:
            raise ValueError(f"percentile must be in [0, 100] or None, got {percentile}.")
        super().__init__(
            include_background=include_background,
            distance_metric=distance_metric,
            percentile=percentile,
            directed=directed,
            reduction=reduction,
            get_not_nans=get_not_nans,
        )
        self.spacing = _checked_spacing(spacing)


class PhysicalSurfaceDistanceMetric(_PhysicalDistanceMixin, SurfaceDistanceMetric):
    """
    MONAI's ``SurfaceDistanceMetric`` with a fixed voxel ``spacing`` (distances in mm), symmetric by default
    (ASSD: the mean over the surface points of both segmentations), and the missing-class rule of
    :func:`resolve_missing_classes`.

    Args:
        spacing: voxel size in mm, a number or one per axis; None means 1 (voxel units). Defaults to None.
        include_background: Defaults to False.
        symmetric: Defaults to True.
        distance_metric: Defaults to ``"euclidean"``.
        reduction: Defaults to ``"mean"``.
        get_not_nans: Defaults to False.

    Raises:
        ValueError: when ``spacing`` is not positive.
    """

    def __init__(
        self,
        spacing: float | Sequence[float] | None = None,
        include_background: bool = False,
        symmetric: bool = True,
        distance_metric: str = "euclidean",
        reduction: MetricReduction | str = MetricReduction.MEAN,
        get_not_nans: bool = False,
    ) -> None:
        super().__init__(
            include_background=include_background,
            symmetric=symmetric,
            distance_metric=distance_metric,
            reduction=reduction,
            get_not_nans=get_not_nans,
        )
        self.spacing = _checked_spacing(spacing)

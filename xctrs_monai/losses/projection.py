# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Projection-consistency loss: L1 between radiographs (DRRs) of the reconstructed and the ground-truth CT."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch.nn.modules.loss import _Loss

from monai.utils import LossReduction

from xctrs_monai.constants import HU_WINDOW
from xctrs_monai.losses._reduction import check_reduction, reduce_per_sample

__all__ = ["ProjectionConsistencyLoss", "unit_to_hu"]


def unit_to_hu(volume: torch.Tensor, hu_window: Sequence[float] = HU_WINDOW) -> torch.Tensor:
    """Map a CT on the network's [0, 1] scale back to Hounsfield units, ``x * (hi - lo) + lo``.

    Args:
        volume: CT on the [0, 1] scale, any shape.
        hu_window: ``(lo, hi)`` HU window that was mapped to [0, 1]. Defaults to ``constants.HU_WINDOW``.

    Returns:
        the CT in HU, same shape.
    """
    lo, hi = float(hu_window[0]), float(hu_window[1])
    return volume * (hi - lo) + lo


class ProjectionConsistencyLoss(_Loss):
    """L1 distance between projections of the reconstructed and of the ground-truth CT.

    Not part of X-CTRSNet (Ge et al., 2021): an optional extra term asking the reconstruction to
    reproduce the ground truth's radiographs, off by default in ``XCTRSLoss``. The projector is
    injected: any callable ``projector(volume B1XYZ) -> (ap B1UV, la B1UV)`` (or any sequence of
    ``B...`` views), differentiable with respect to ``volume`` — in the product the projector layer
    ``xctrs_monai.networks.layers.BiplanarProjector``. Both CTs go through the same projector; the
    loss of a sample is the sum over views of the mean absolute pixel difference.

    The network's CT lives on the [0, 1] scale while the projector integrates attenuation from HU;
    ``to_hu`` says how a volume is converted before projecting: True maps it with ``unit_to_hu`` and
    ``hu_window``, False passes it unchanged, a callable is applied as is.

    Args:
        projector: ``volume -> (ap, la)`` callable; an ``nn.Module`` becomes a submodule.
        to_hu: conversion before projection, see above. Defaults to True.
        hu_window: ``(lo, hi)`` HU window of the [0, 1] scale, used when ``to_hu`` is True.
            Defaults to ``constants.HU_WINDOW``.
        reduction: ``"none"`` (per-sample ``B``), ``"mean"`` or ``"sum"``. Defaults to ``"mean"``.

    Raises:
        ValueError: when ``projector`` is not callable, ``to_hu`` is neither a bool nor a callable,
            ``hu_window`` is not an increasing pair, or ``reduction`` is unknown.
    """

    def __init__(
        self,
        projector: Callable[[torch.Tensor], Sequence[torch.Tensor]],
        to_hu: bool | Callable[[torch.Tensor], torch.Tensor] = True,
        hu_window: Sequence[float] = HU_WINDOW,
        reduction: LossReduction | str = LossReduction.MEAN,
    ) -> None:
        super().__init__(reduction=check_reduction(reduction))
        if not callable(projector):
            raise ValueError(f"projector must be a callable volume -> (ap, la), got {type(projector).__name__}.")
        if not (isinstance(to_hu, bool) or callable(to_hu)):
            raise ValueError(f"to_hu must be a bool or a callable, got {type(to_hu).__name__}.")
        hu_window = tuple(float(v) for v in hu_window)
        if len(hu_window) != 2 or not hu_window[0] < hu_window[1]:
            raise ValueError(f"hu_window must be (lo, hi) with lo < hi, got {hu_window}.")
        self.projector = projector
        self.to_hu = to_hu
        self.hu_window = hu_window

    def _project(self, volume: torch.Tensor) -> list[torch.Tensor]:
        if self.to_hu is True:
            volume = unit_to_hu(volume, self.hu_window)
        elif callable(self.to_hu):
            volume = self.to_hu(volume)
        views = self.projector(volume)
        if isinstance(views, torch.Tensor) or not isinstance(views, Sequence) or len(views) == 0:
            raise ValueError(f"projector must return a sequence of views such as (ap, la), got {type(views).__name__}.")
        return list(views)

    def view_losses(self, input: torch.Tensor, target: torch.Tensor) -> list[torch.Tensor]:
        """Unreduced per-view L1 terms.

        Args:
            input: reconstructed CT, ``B1XYZ`` on the [0, 1] scale (or as ``to_hu`` expects).
            target: ground-truth CT, same shape.

        Returns:
            one per-sample mean absolute difference per view (``B`` each), in the projector's order.

        Raises:
            ValueError: when the volume shapes differ, or the projector's views do not match.
        """
        if input.shape != target.shape:
            raise ValueError(f"input and target shapes differ: {tuple(input.shape)} vs {tuple(target.shape)}.")
        pred_views = self._project(input)
        with torch.set_grad_enabled(torch.is_grad_enabled() and target.requires_grad):
            target_views = self._project(target)
        if len(pred_views) != len(target_views) or any(p.shape != t.shape for p, t in zip(pred_views, target_views)):
            raise ValueError("the projector returned views of different number or shape for input and target.")
        return [(p - t).abs().flatten(1).mean(1) for p, t in zip(pred_views, target_views)]

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Sum over views of the L1 projection difference, see ``view_losses`` for the arguments.

        Returns:
            the loss, reduced over the batch as ``reduction`` says.
        """
        return reduce_per_sample(torch.stack(self.view_losses(input, target)).sum(0), self.reduction)

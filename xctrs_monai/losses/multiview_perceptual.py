# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Multi-view VGG perceptual loss (Eq. 10) and the reconstruction loss L_R (Eq. 11) of X-CTRSNet."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch.nn.modules.loss import _Loss
from torch.utils.checkpoint import checkpoint

from monai.transforms import Randomizable
from monai.utils import LossReduction

from xctrs_monai.losses._reduction import check_reduction, reduce_per_sample
from xctrs_monai.losses.vgg16 import VGG16Features

__all__ = ["PLANES", "MultiViewPerceptualLoss", "ReconstructionLoss"]

PLANES: dict[str, int] = {"axial": 4, "coronal": 3, "sagittal": 2}
"""Plane name -> the axis of a ``B1XYZ`` (RAS) volume the slices are taken along: axial slices are
``XY`` images along Z, coronal ones ``XZ`` images along Y, sagittal ones ``YZ`` images along X."""

_SAMPLING = ("uniform", "random")


class MultiViewPerceptualLoss(_Loss, Randomizable):
    """Multi-view VGG loss of X-CTRSNet (Ge et al., 2021, Sec. 2.1.3, Eq. 10).

    The reconstructed and the ground-truth CT are cut into 2D slices along the axial, coronal and
    sagittal planes (see ``PLANES``); each slice goes through a frozen VGG16 (``VGG16Features``) and
    the squared L2 distance of the feature maps is taken. A plane's term is the mean of that distance
    over its slices (the paper's 1/L, 1/W, 1/H factors); the loss is the sum of the plane terms.

    Normalisation: following the feature reconstruction loss of Johnson et al. (2016), the paper's
    reference [30], each slice's squared distance is divided by the number of feature elements
    ``C' * H' * W'`` (i.e. a mean over feature elements) so that the value does not scale with the
    image size; with several ``feature_layer`` entries the per-layer means are summed. Eq. 10 itself
    writes the unnormalised squared norm. Per sample, a plane term is therefore the mean of
    ``(vgg(pred_slice) - vgg(gt_slice))**2`` over all slices and feature elements.

    For speed, a subset of slices per plane can be used (same indices for prediction and target, and
    for every sample in the batch): ``slice_stride`` keeps every k-th slice, ``num_slices`` keeps k
    slices; ``sampling="uniform"`` spreads them evenly (centred in equal bins), ``"random"`` draws
    them anew at each call from ``self.R`` (seed with ``set_random_state``). All selected slices of a
    plane (over the batch) go through the VGG in one batched call for the prediction and one for the
    target; the target call records no graph unless the target requires grad (halves activation memory).

    The VGG is moved to the input's device on first use; ``.to(device)`` on the loss also works.

    Args:
        planes: subset of ``("axial", "coronal", "sagittal")``. Defaults to all three.
        feature_layer: VGG16 layer(s) compared, as in ``VGG16Features(layers=...)``.
            Defaults to ``"relu2_2"`` (Johnson et al.'s content layer; the paper does not name one).
        weights_path: torchvision-format VGG16 weights, see ``VGG16Features``. Defaults to None
            (random VGG weights with a one-time warning: not the paper's loss).
        slice_stride: use every ``slice_stride``-th slice. Defaults to 1 (all slices).
        num_slices: use this many slices per plane (all if the plane has fewer). Defaults to None.
        sampling: ``"uniform"`` or ``"random"`` choice of the subsampled slices. Defaults to ``"uniform"``.
        reduction: ``"none"`` (per-sample ``B``), ``"mean"`` or ``"sum"`` over the batch. Defaults to ``"mean"``.
        checkpointing: while training, recompute each plane's VGG features in the backward pass instead of
            keeping those of all planes (about a third of the memory, one more VGG pass). Defaults to False.

    Raises:
        ValueError: for an unknown or repeated plane, ``slice_stride < 1``, ``num_slices < 1``, both
            ``slice_stride > 1`` and ``num_slices`` given, an unknown ``sampling`` or ``reduction``.
    """

    def __init__(
        self,
        planes: Sequence[str] = ("axial", "coronal", "sagittal"),
        feature_layer: str | int | Sequence[str | int] = "relu2_2",
        weights_path: str | os.PathLike | None = None,
        slice_stride: int = 1,
        num_slices: int | None = None,
        sampling: str = "uniform",
        reduction: LossReduction | str = LossReduction.MEAN,
        checkpointing: bool = False,
    ) -> None:
        super().__init__(reduction=check_reduction(reduction))
        self.checkpointing = bool(checkpointing)
        planes = (planes,) if isinstance(planes, str) else tuple(planes)
        if not planes or any(p not in PLANES for p in planes) or len(set(planes)) != len(planes):
            raise ValueError(f"planes must be distinct names from {tuple(PLANES)}, got {planes!r}.")
        if isinstance(slice_stride, bool) or not isinstance(slice_stride, int) or slice_stride < 1:
            raise ValueError(f"slice_stride must be an integer >= 1, got {slice_stride!r}.")
        if num_slices is not None and (
            isinstance(num_slices, bool) or not isinstance(num_slices, int) or num_slices < 1
        ):
            raise ValueError(f"num_slices must be None or an integer >= 1, got {num_slices!r}.")
        if num_slices is not None and slice_stride != 1:
            raise ValueError(
                "give either slice_stride or num_slices, not both "
                f"(slice_stride={slice_stride}, num_slices={num_slices})."
            )
        if sampling not in _SAMPLING:
            raise ValueError(f"sampling must be one of {_SAMPLING}, got {sampling!r}.")
        self.planes = planes
        self.slice_stride = slice_stride
        self.num_slices = num_slices
        self.sampling = sampling
        self.vgg = VGG16Features(layers=feature_layer, weights_path=weights_path)
        self.set_random_state()
        self._indices: dict[str, np.ndarray] = {}

    def randomize(self, data: Mapping[str, int]) -> None:
        """Choose the slice indices of each plane for the next call.

        Args:
            data: plane name -> number of slices of the volume along that plane.
        """
        self._indices = {plane: self._choose(n) for plane, n in data.items()}

    def _choose(self, n: int) -> np.ndarray:
        random = self.sampling == "random"
        if self.num_slices is not None and self.num_slices < n:
            k = self.num_slices
            if random:
                return np.sort(self.R.choice(n, size=k, replace=False))
            return np.floor((np.arange(k) + 0.5) * n / k).astype(np.int64)
        if self.slice_stride > 1:
            offset = int(self.R.randint(min(self.slice_stride, n))) if random else min(self.slice_stride // 2, n - 1)
            return np.arange(offset, n, self.slice_stride, dtype=np.int64)
        return np.arange(n, dtype=np.int64)

    @staticmethod
    def _slices(volume: torch.Tensor, axis: int, index: torch.Tensor) -> torch.Tensor:
        """``B1XYZ`` -> ``(B*k)1HW`` slices along ``axis`` at ``index`` (sample-major order)."""
        picked = volume.index_select(axis, index)  # B1.. with k along `axis`
        moved = picked.movedim(axis, 1)  # Bk1HW
        return moved.reshape(-1, 1, *moved.shape[3:])

    def _distance(self, pred: torch.Tensor, target: torch.Tensor, batch: int) -> torch.Tensor:
        """Per-sample mean squared feature distance of two ``(B*k)1HW`` slice stacks -> ``B``."""
        pred_feats = self.vgg(pred)
        with torch.set_grad_enabled(torch.is_grad_enabled() and target.requires_grad):
            target_feats = self.vgg(target)
        total = pred.new_zeros(batch)
        for fp, ft in zip(pred_feats, target_feats):
            total = total + (fp - ft).pow(2).reshape(batch, -1).mean(dim=1)
        return total

    def plane_losses(self, input: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Unreduced per-plane terms of Eq. 10.

        Args:
            input: reconstructed CT on the [0, 1] scale, ``B1XYZ``.
            target: ground-truth CT on the same scale, ``B1XYZ``.

        Returns:
            plane name -> per-sample term, shape ``B``.

        Raises:
            ValueError: when the shapes differ or are not ``B1XYZ``.
        """
        if input.ndim != 5 or input.shape[1] != 1 or input.shape != target.shape:
            raise ValueError(
                f"input and target must both be B1XYZ volumes of one shape, got {tuple(input.shape)} "
                f"and {tuple(target.shape)}."
            )
        vgg_param = next(self.vgg.parameters())
        if vgg_param.device != input.device:
            self.vgg.to(input.device)
        self.randomize({plane: input.shape[PLANES[plane]] for plane in self.planes})
        batch = input.shape[0]
        out: dict[str, torch.Tensor] = {}
        for plane in self.planes:
            axis = PLANES[plane]
            index = torch.as_tensor(self._indices[plane], device=input.device)
            args = (self._slices(input, axis, index), self._slices(target, axis, index), batch)
            if self.checkpointing and torch.is_grad_enabled():
                out[plane] = checkpoint(self._distance, *args, use_reentrant=False)
            else:
                out[plane] = self._distance(*args)
        return out

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Multi-view VGG loss.

        Args:
            input: reconstructed CT on the [0, 1] scale, ``B1XYZ``.
            target: ground-truth CT on the same scale, ``B1XYZ``.

        Returns:
            sum of the plane terms, reduced over the batch as ``reduction`` says (``B`` for ``"none"``).
        """
        terms = self.plane_losses(input, target)
        return reduce_per_sample(torch.stack(list(terms.values())).sum(0), self.reduction)


class ReconstructionLoss(_Loss):
    """Reconstruction loss of SpaDRNet, L_R = MAE + multi-view VGG loss (Ge et al., 2021, Eq. 11).

    The MAE is the mean absolute voxel difference (Eq. 11 writes an L1 norm; the mean makes it
    independent of the grid size). Table 1's first row (SpaDRNet without the VGG loss) is
    ``perceptual_weight=0`` or ``use_mv_perceptual=False`` in ``XCTRSLoss``.

    Args:
        perceptual: the multi-view loss to use; its own ``reduction`` is ignored. Defaults to None,
            which builds ``MultiViewPerceptualLoss()`` (random VGG weights unless configured).
        mae_weight: weight of the MAE term. Defaults to 1.0.
        perceptual_weight: weight of the multi-view term; 0 skips computing it. Defaults to 1.0.
        reduction: ``"none"`` (per-sample ``B``), ``"mean"`` or ``"sum"``. Defaults to ``"mean"``.

    Raises:
        ValueError: for a negative weight or an unknown ``reduction``.
    """

    def __init__(
        self,
        perceptual: MultiViewPerceptualLoss | None = None,
        mae_weight: float = 1.0,
        perceptual_weight: float = 1.0,
        reduction: LossReduction | str = LossReduction.MEAN,
    ) -> None:
        super().__init__(reduction=check_reduction(reduction))
        for name, w in (("mae_weight", mae_weight), ("perceptual_weight", perceptual_weight)):
            if not float(w) >= 0.0:
                raise ValueError(f"{name} must be >= 0, got {w}.")
        self.mae_weight = float(mae_weight)
        self.perceptual_weight = float(perceptual_weight)
        if perceptual is None and self.perceptual_weight > 0:
            perceptual = MultiViewPerceptualLoss()
        self.perceptual = perceptual

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """L_R of ``input`` (reconstructed CT) against ``target`` (ground-truth CT), both ``B1XYZ`` on [0, 1].

        Returns:
            the weighted sum, reduced over the batch as ``reduction`` says.

        Raises:
            ValueError: when the shapes differ.
        """
        if input.shape != target.shape:
            raise ValueError(f"input and target shapes differ: {tuple(input.shape)} vs {tuple(target.shape)}.")
        total = self.mae_weight * (input - target).abs().flatten(1).mean(1)
        if self.perceptual_weight > 0:
            if self.perceptual is None:
                raise ValueError("perceptual_weight > 0 needs a perceptual loss, got perceptual=None.")
            planes = self.perceptual.plane_losses(input, target)
            total = total + self.perceptual_weight * torch.stack(list(planes.values())).sum(0)
        return reduce_per_sample(total, self.reduction)

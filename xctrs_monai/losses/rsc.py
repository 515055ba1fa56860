# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Segmentation Dice loss L_S (Eq. 15) and the reconstruction-segmentation consistency loss L_RSC (Eq. 16)."""

from __future__ import annotations

import torch
from torch.nn.modules.loss import _Loss

from monai.losses import DiceLoss
from monai.networks.utils import one_hot
from monai.utils import LossReduction

from xctrs_monai.losses._reduction import check_reduction, reduce_per_sample

__all__ = ["DIVERGENCE_TARGETS", "RSCLoss", "segmentation_dice_loss"]

DIVERGENCE_TARGETS = ("soft", "hard")


def segmentation_dice_loss(
    include_background: bool = True, reduction: LossReduction | str = LossReduction.MEAN
) -> DiceLoss:
    """The segmentation loss L_S = 1 - Dice of X-CTRSNet (Ge et al., 2021, Eq. 15) as a MONAI ``DiceLoss``.

    Softmax over the class logits, integer labels one-hot encoded, one Dice per sample and class.

    Args:
        include_background: whether class 0 takes part. Defaults to True (Eq. 15 sums over all voxels).
        reduction: as MONAI's ``DiceLoss``; ``"none"`` gives ``BC111``. Defaults to ``"mean"``.

    Returns:
        ``DiceLoss(softmax=True, to_onehot_y=True, ...)``, called as ``loss(logits B8XYZ, labels B1XYZ)``.
    """
    return DiceLoss(
        include_background=include_background, to_onehot_y=True, softmax=True, reduction=check_reduction(reduction)
    )


def _check_logits(name: str, logits: torch.Tensor) -> None:
    if logits.ndim < 3 or logits.shape[1] < 2:
        raise ValueError(f"{name} must be class logits BCXYZ with C >= 2, got shape {tuple(logits.shape)}.")


class RSCLoss(_Loss):
    """Reconstruction-segmentation consistency loss of X-CTRSNet (Ge et al., 2021, Sec. 2.3, Eq. 16).

    ``L_RSC = (1 - Dice(S(ct), y)) + (1 - Dice(S(ct_hat), S(ct)))``: the segmenter S is trained on the
    ground-truth CT as well (``segmentation_term``), and the reconstruction is penalised by the
    divergence between the segmentations of the reconstructed and of the real CT (``divergence_term``).
    Eq. 16 writes "dice"; as in Eq. 15 it is read as the Dice *loss* 1 - Dice (minimising the Dice
    coefficient itself would reward inconsistency).

    Divergence target (``divergence_target``):

    - ``"soft"`` (default): the target is ``softmax(seg_gt_ct_logits)`` and the Dice is MONAI's
      soft-label formulation (``DiceLoss(soft_label=True)``, i.e. ``|p - q|_1 / (|p|_1 + |q|_1)`` per
      class), which is zero exactly when both probability maps agree and is symmetric in p and q.
      It keeps S's uncertainty on the real CT instead of forcing the reconstruction's segmentation
      towards over-confident labels.
    - ``"hard"``: the target is the one-hot argmax of the GT-CT segmentation (no gradient can reach it).

    Gradient (``divergence_grad_to_gt_seg``): the paper describes the divergence as penalising the
    *reconstruction*. With False (default) the GT-CT segmentation is detached in the divergence term,
    so that term only back-propagates through ``seg_hat_logits = S(R(x))``, i.e. into R (via ``ct_hat``)
    and into S's parameters along that branch; S(ct) is a fixed target there and is trained only by
    the segmentation term against the labels. With True (soft target only) the divergence also pulls
    S(ct) towards S(ct_hat). Keeping S's parameters out of the divergence entirely would need the
    caller to evaluate ``S(ct_hat)`` with frozen parameters; that is outside this loss.

    Args:
        include_background: whether class 0 takes part in both Dice terms. Defaults to True.
        divergence_target: ``"soft"`` or ``"hard"``, see above. Defaults to ``"soft"``.
        divergence_grad_to_gt_seg: let the divergence term back-propagate into ``seg_gt_ct_logits``.
            Defaults to False.
        reduction: ``"none"`` (per-sample ``B``), ``"mean"`` or ``"sum"``. Defaults to ``"mean"``.

    Raises:
        ValueError: for an unknown ``divergence_target`` or ``reduction``, or
            ``divergence_grad_to_gt_seg=True`` with the hard target.
    """

    def __init__(
        self,
        include_background: bool = True,
        divergence_target: str = "soft",
        divergence_grad_to_gt_seg: bool = False,
        reduction: LossReduction | str = LossReduction.MEAN,
    ) -> None:
        super().__init__(reduction=check_reduction(reduction))
        if divergence_target not in DIVERGENCE_TARGETS:
            raise ValueError(f"divergence_target must be one of {DIVERGENCE_TARGETS}, got {divergence_target!r}.")
        if divergence_grad_to_gt_seg and divergence_target == "hard":
            raise ValueError(
                "divergence_grad_to_gt_seg=True needs divergence_target='soft'; a hard (argmax) target has no gradient."
            )
        self.include_background = include_background
        self.divergence_target = divergence_target
        self.divergence_grad_to_gt_seg = bool(divergence_grad_to_gt_seg)
        self.seg_dice = segmentation_dice_loss(include_background=include_background, reduction="none")
        self.div_dice = DiceLoss(
            include_background=include_background,
            softmax=False,
            soft_label=divergence_target == "soft",
            reduction="none",
        )

    def segmentation_term(self, seg_gt_ct_logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        """Dice loss of the segmentation of the ground-truth CT against the labels.

        Args:
            seg_gt_ct_logits: S(ct) logits, ``BCXYZ`` (C = 8 here).
            label: integer labels, ``B1XYZ``.

        Returns:
            per-sample loss (mean over classes), shape ``B``.
        """
        _check_logits("seg_gt_ct_logits", seg_gt_ct_logits)
        return self.seg_dice(seg_gt_ct_logits, label).flatten(1).mean(1)

    def divergence_term(self, seg_hat_logits: torch.Tensor, seg_gt_ct_logits: torch.Tensor) -> torch.Tensor:
        """Dice divergence between the segmentations of the reconstructed and the ground-truth CT.

        Args:
            seg_hat_logits: S(ct_hat) logits, ``BCXYZ``.
            seg_gt_ct_logits: S(ct) logits, ``BCXYZ``.

        Returns:
            per-sample loss (mean over classes), shape ``B``.

        Raises:
            ValueError: when the two shapes differ.
        """
        _check_logits("seg_hat_logits", seg_hat_logits)
        if seg_hat_logits.shape != seg_gt_ct_logits.shape:
            raise ValueError(
                f"seg_hat_logits and seg_gt_ct_logits shapes differ: {tuple(seg_hat_logits.shape)} vs "
                f"{tuple(seg_gt_ct_logits.shape)}."
            )
        pred = torch.softmax(seg_hat_logits, dim=1)
        reference = seg_gt_ct_logits if self.divergence_grad_to_gt_seg else seg_gt_ct_logits.detach()
        if self.divergence_target == "soft":
            target = torch.softmax(reference, dim=1)
        else:
            target = one_hot(reference.argmax(dim=1, keepdim=True), num_classes=reference.shape[1]).to(pred.dtype)
        return self.div_dice(pred, target).flatten(1).mean(1)

    def terms(
        self, seg_hat_logits: torch.Tensor, seg_gt_ct_logits: torch.Tensor, label: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Both RSC terms and their sum.

        Args:
            seg_hat_logits: S(ct_hat) logits, ``BCXYZ``.
            seg_gt_ct_logits: S(ct) logits, ``BCXYZ``.
            label: integer labels, ``B1XYZ``.

        Returns:
            ``{"rsc_seg": ..., "rsc_div": ..., "loss": rsc_seg + rsc_div}``, each reduced as ``reduction``
            says; ``"loss"`` carries the graph, the other two are detached (for logging).
        """
        seg = self.segmentation_term(seg_gt_ct_logits, label)
        div = self.divergence_term(seg_hat_logits, seg_gt_ct_logits)
        return {
            "rsc_seg": reduce_per_sample(seg, self.reduction).detach(),
            "rsc_div": reduce_per_sample(div, self.reduction).detach(),
            "loss": reduce_per_sample(seg + div, self.reduction),
        }

    def forward(
        self, seg_hat_logits: torch.Tensor, seg_gt_ct_logits: torch.Tensor, label: torch.Tensor
    ) -> torch.Tensor:
        """L_RSC (Eq. 16), see ``terms`` for the arguments.

        Returns:
            the loss, reduced over the batch as ``reduction`` says.
        """
        return self.terms(seg_hat_logits, seg_gt_ct_logits, label)["loss"]

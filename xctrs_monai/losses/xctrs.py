# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Total training loss of X-CTRSNet (Eq. 1) with per-term values for logging and run-time weights."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch.nn.modules.loss import _Loss

from monai.utils import LossReduction

from xctrs_monai.losses._reduction import check_reduction, reduce_per_sample
from xctrs_monai.losses.multiview_perceptual import MultiViewPerceptualLoss
from xctrs_monai.losses.projection import ProjectionConsistencyLoss
from xctrs_monai.losses.rsc import RSCLoss, segmentation_dice_loss

__all__ = ["WEIGHT_KEYS", "XCTRSLoss"]

WEIGHT_KEYS = ("mae", "mv", "seg", "rsc_seg", "rsc_div", "proj")
"""Keys of ``XCTRSLoss.weights``, one per weighted term."""


class XCTRSLoss(_Loss):
    """Total loss of X-CTRSNet, L = L_R + L_S + L_RSC (Ge et al., 2021, Eq. 1), with ablation switches.

    ``total = w_mae * MAE + w_mv * MV + w_seg * L_S + w_rsc_seg * RSC_seg + w_rsc_div * RSC_div
    [+ w_proj * PROJ]`` where

    - ``MAE``: mean absolute voxel error of the reconstruction (Eq. 11),
    - ``MV``: multi-view VGG loss (Eq. 10, ``MultiViewPerceptualLoss``),
    - ``L_S``: Dice loss of S(ct_hat) against the labels (Eq. 15, softmax + one-hot ``DiceLoss``),
    - ``RSC_seg`` / ``RSC_div``: the two terms of Eq. 16 (``RSCLoss``): Dice loss of S(ct) against the
      labels, and the Dice divergence between S(ct_hat) and S(ct),
    - ``PROJ``: L1 between DRRs of ct_hat and ct (``ProjectionConsistencyLoss``; not in the paper, off
      by default).

    With all weights 1.0 (the default) and ``use_projection=False`` this is Eq. 1. Table 1's rows are
    the switches: SpaDRNet alone (``use_mv_perceptual=False, use_segmentation=False, use_rsc=False``),
    + MV-vgg (``use_segmentation=False, use_rsc=False``), + MulSISNet (``use_rsc=False``), full model
    (defaults). A switched-off term is neither computed nor reported; the segmentation arguments may
    then be None.

    Per-term values: ``terms(...)`` returns a dict with the key ``"loss"`` (the weighted total, with
    graph, used for ``backward``) and one detached tensor per computed term (``"mae"``, ``"mv"``,
    ``"seg"``, ``"rsc_seg"``, ``"rsc_div"``, ``"rsc"`` = rsc_seg + rsc_div, ``"proj"``), unweighted,
    reduced as ``reduction`` says. ``forward`` returns ``terms(...)["loss"]``. A training step does
    ``out = loss.terms(...); out["loss"].backward()`` and logs every other entry.

    Run-time weights: ``self.weights`` is a plain dict with exactly the keys ``WEIGHT_KEYS``, read at
    every call, so a handler may change it at any time, e.g. ``loss.weights["rsc_div"] = 0.1`` during
    warm-up. Keys cannot be added or removed (checked at every call). A weight of 0 still computes and
    reports its term; the ``use_*`` switches skip the computation and are meant to be set at
    construction (the components they need are built then).

    Args:
        weights: initial weights for some or all of ``WEIGHT_KEYS``; missing keys are 1.0. Defaults to None.
        use_mv_perceptual: include the multi-view VGG loss (Table 1, "loss_MV-vgg"). Defaults to True.
        use_segmentation: include L_S (Table 1, "MulSISNet"). Defaults to True.
        use_rsc: include the RSC terms (Table 1, "RSC Learning"). Defaults to True.
        use_projection: include the projection-consistency term. Defaults to False.
        perceptual: the multi-view loss to use (e.g. with ``weights_path`` and ``num_slices`` set); its
            own ``reduction`` is ignored. Defaults to None: ``MultiViewPerceptualLoss()`` is built when
            ``use_mv_perceptual`` (random VGG weights, with a warning).
        projection: the projection-consistency loss (it holds the injected projector); required when
            ``use_projection``. Defaults to None.
        include_background: whether class 0 takes part in the Dice terms. Defaults to True.
        divergence_target: ``"soft"`` or ``"hard"``, see ``RSCLoss``. Defaults to ``"soft"``.
        divergence_grad_to_gt_seg: let the divergence back-propagate into S(ct), see ``RSCLoss``.
            Defaults to False.
        reduction: ``"none"`` (per-sample ``B``), ``"mean"`` or ``"sum"`` for every term. Defaults to ``"mean"``.

    Raises:
        ValueError: for an unknown weight key, a negative or non-finite weight, ``use_projection``
            without ``projection``, or a bad argument of ``RSCLoss``.
    """

    def __init__(
        self,
        weights: Mapping[str, float] | None = None,
        use_mv_perceptual: bool = True,
        use_segmentation: bool = True,
        use_rsc: bool = True,
        use_projection: bool = False,
        perceptual: MultiViewPerceptualLoss | None = None,
        projection: ProjectionConsistencyLoss | None = None,
        include_background: bool = True,
        divergence_target: str = "soft",
        divergence_grad_to_gt_seg: bool = False,
        reduction: LossReduction | str = LossReduction.MEAN,
    ) -> None:
        super().__init__(reduction=check_reduction(reduction))
        merged = dict.fromkeys(WEIGHT_KEYS, 1.0)
        if weights is not None:
            unknown = sorted(set(weights) - set(WEIGHT_KEYS))
            if unknown:
                raise ValueError(f"unknown loss weight(s) {unknown}; allowed keys: {WEIGHT_KEYS}.")
            merged.update({k: float(v) for k, v in weights.items()})
        self.weights: dict[str, float] = merged
        self._check_weights()

        if use_projection and projection is None:
            raise ValueError("use_projection=True needs projection=ProjectionConsistencyLoss(projector), got None.")
        self.use_mv_perceptual = bool(use_mv_perceptual)
        self.use_segmentation = bool(use_segmentation)
        self.use_rsc = bool(use_rsc)
        self.use_projection = bool(use_projection)

        if perceptual is None and self.use_mv_perceptual:
            perceptual = MultiViewPerceptualLoss()
        self.perceptual = perceptual
        self.projection = projection
        self.seg_dice = segmentation_dice_loss(include_background=include_background, reduction="none")
        self.rsc = RSCLoss(
            include_background=include_background,
            divergence_target=divergence_target,
            divergence_grad_to_gt_seg=divergence_grad_to_gt_seg,
            reduction="none",
        )

    def _check_weights(self) -> None:
        if set(self.weights) != set(WEIGHT_KEYS):
            raise ValueError(f"loss weights must have exactly the keys {WEIGHT_KEYS}, got {sorted(self.weights)}.")
        for key, value in self.weights.items():
            if not (math.isfinite(float(value)) and float(value) >= 0.0):
                raise ValueError(f"loss weight {key!r} must be finite and >= 0, got {value}.")

    @staticmethod
    def _require(name: str, value: torch.Tensor | None, switch: str) -> torch.Tensor:
        if value is None:
            raise ValueError(f"{name} is required when {switch}=True, got None.")
        return value

    def terms(
        self,
        ct_hat: torch.Tensor,
        ct: torch.Tensor,
        seg_hat_logits: torch.Tensor | None = None,
        seg_gt_ct_logits: torch.Tensor | None = None,
        label: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Compute every enabled term and the weighted total.

        Args:
            ct_hat: reconstructed CT R(x) on the [0, 1] scale, ``B1XYZ``.
            ct: ground-truth CT on the [0, 1] scale, ``B1XYZ``.
            seg_hat_logits: S(ct_hat) logits, ``B8XYZ``; needed by ``use_segmentation`` and ``use_rsc``.
            seg_gt_ct_logits: S(ct) logits, ``B8XYZ``; needed by ``use_rsc``.
            label: integer labels 0..7, ``B1XYZ``; needed by ``use_segmentation`` and ``use_rsc``.

        Returns:
            ``"loss"``: the weighted total (with graph); the enabled terms, unweighted and detached
            (see the class docstring). Shapes: 0-dim, or ``B`` with ``reduction="none"``.

        Raises:
            ValueError: when an enabled term lacks its input, shapes do not match, or ``weights`` has
                been given a wrong key or value.
        """
        self._check_weights()
        if ct_hat.shape != ct.shape:
            raise ValueError(f"ct_hat and ct shapes differ: {tuple(ct_hat.shape)} vs {tuple(ct.shape)}.")
        per_sample: dict[str, torch.Tensor] = {"mae": (ct_hat - ct).abs().flatten(1).mean(1)}
        if self.use_mv_perceptual:
            if self.perceptual is None:
                raise ValueError("use_mv_perceptual=True needs a perceptual loss, got perceptual=None.")
            per_sample["mv"] = torch.stack(list(self.perceptual.plane_losses(ct_hat, ct).values())).sum(0)
        if self.use_segmentation:
            logits = self._require("seg_hat_logits", seg_hat_logits, "use_segmentation")
            labels = self._require("label", label, "use_segmentation")
            per_sample["seg"] = self.seg_dice(logits, labels).flatten(1).mean(1)
        if self.use_rsc:
            logits = self._require("seg_hat_logits", seg_hat_logits, "use_rsc")
            gt_logits = self._require("seg_gt_ct_logits", seg_gt_ct_logits, "use_rsc")
            labels = self._require("label", label, "use_rsc")
            per_sample["rsc_seg"] = self.rsc.segmentation_term(gt_logits, labels)
            per_sample["rsc_div"] = self.rsc.divergence_term(logits, gt_logits)
        if self.use_projection:
            if self.projection is None:
                raise ValueError("use_projection=True needs a projection loss, got projection=None.")
            per_sample["proj"] = torch.stack(self.projection.view_losses(ct_hat, ct)).sum(0)

        total = sum(self.weights[key] * value for key, value in per_sample.items())
        out = {key: reduce_per_sample(value, self.reduction).detach() for key, value in per_sample.items()}
        if self.use_rsc:
            out["rsc"] = out["rsc_seg"] + out["rsc_div"]
        out["loss"] = reduce_per_sample(total, self.reduction)  # type: ignore[arg-type]
        return out

    def forward(
        self,
        ct_hat: torch.Tensor,
        ct: torch.Tensor,
        seg_hat_logits: torch.Tensor | None = None,
        seg_gt_ct_logits: torch.Tensor | None = None,
        label: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The weighted total, ``terms(...)["loss"]``; see ``terms`` for the arguments."""
        return self.terms(ct_hat, ct, seg_hat_logits, seg_gt_ct_logits, label)["loss"]

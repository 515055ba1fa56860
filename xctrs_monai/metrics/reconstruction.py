# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Reconstruction metrics as Ge et al. (2021) define them: PSNR (Eq. 18), global SSIM (Eq. 17), and MAE in HU.

All three work on the network's [0, 1] CT scale (the HU window ``constants.HU_WINDOW`` mapped linearly and
clipped): the prediction is clipped to [0, 1] first, the ground truth is expected on [0, 1] already (as
``ScaleIntensityRanged(..., clip=True)`` leaves it). MONAI's ``PSNRMetric(max_val=1)`` and windowed
``SSIMMetric(data_range=1)`` are the other definitions the evaluation table reports beside these.
"""

from __future__ import annotations

import torch

from monai.metrics.regression import RegressionMetric
from monai.utils import MetricReduction

from xctrs_monai.constants import HU_WINDOW

__all__ = [
    "compute_paper_psnr",
    "compute_global_ssim",
    "compute_mae_hu",
    "PaperPSNRMetric",
    "GlobalSSIMMetric",
    "MAEHUMetric",
]


def _flat_pair(y_pred: torch.Tensor, y: torch.Tensor, clip: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``(y_pred, y)`` as float64 ``[B, voxels]``, ``y_pred`` clipped to [0, 1] when ``clip``."""
    if y_pred.shape != y.shape:
        raise ValueError(f"y_pred and y must have the same shape, got {tuple(y_pred.shape)} and {tuple(y.shape)}.")
    if y_pred.ndim < 2:
        raise ValueError(f"y_pred and y must be batch-first (B1XYZ), got shape {tuple(y_pred.shape)}.")
    y_pred = y_pred.detach().double()
    if clip:
        y_pred = y_pred.clamp(0.0, 1.0)
    return y_pred.reshape(y_pred.shape[0], -1), y.detach().double().reshape(y.shape[0], -1)


def compute_paper_psnr(y_pred: torch.Tensor, y: torch.Tensor, clip: bool = True) -> torch.Tensor:
    """
    PSNR of Ge et al. (2021), Eq. 18: ``10 log10(MAX_y^2 / MSE)``, per case.

    ``MAX_y`` is the maximum of the case's ground truth (not a fixed data range, as in MONAI's
    ``PSNRMetric``) and the MSE is taken over all voxels of the volume.

    Args:
        y_pred: reconstruction, ``B1XYZ`` (any batch-first shape) on the [0, 1] CT scale.
        y: ground truth, same shape, on [0, 1].
        clip: clip ``y_pred`` to [0, 1] first. Defaults to True.

    Returns:
        ``[B, 1]`` PSNR in dB (float32); ``inf`` for a perfect reconstruction.

    Raises:
        ValueError: when the shapes differ or have no batch axis.
    """
    yp, yt = _flat_pair(y_pred, y, clip)
    mse = (yp - yt).pow(2).mean(dim=1)
    peak = yt.amax(dim=1)
    return (10.0 * torch.log10(peak.pow(2) / mse)).float().unsqueeze(1)


def compute_global_ssim(
    y_pred: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 1.0,
    k1: float = 0.01,
    k2: float = 0.03,
    clip: bool = True,
) -> torch.Tensor:
    """
    Global SSIM of Ge et al. (2021), Eq. 17: one SSIM per case from the means, variances and covariance over
    all voxels (no sliding window)::

        SSIM = (2 mu_x mu_y + c1) (2 cov_xy + c2) / ((mu_x^2 + mu_y^2 + c1) (var_x + var_y + c2))

    The paper names ``c1`` and ``c2`` only as stabilising constants; we use Wang et al. (2004)'s
    ``c1 = (k1 L)^2`` and ``c2 = (k2 L)^2`` with ``k1 = 0.01``, ``k2 = 0.03`` and ``L = data_range``, and
    their unbiased (``1 / (N - 1)``) variances and covariance.

    Args:
        y_pred: reconstruction, ``B1XYZ`` (any batch-first shape) on the [0, 1] CT scale.
        y: ground truth, same shape, on [0, 1].
        data_range: ``L``, the range of the intensity scale. Defaults to 1.0.
        k1: constant of ``c1``. Defaults to 0.01.
        k2: constant of ``c2``. Defaults to 0.03.
        clip: clip ``y_pred`` to [0, 1] first. Defaults to True.

    Returns:
        ``[B, 1]`` SSIM (float32).

    Raises:
        ValueError: when the shapes differ or a volume has fewer than 2 voxels.
    """
    yp, yt = _flat_pair(y_pred, y, clip)
    n = yp.shape[1]
    if n < 2:
        raise ValueError(f"global SSIM needs at least 2 voxels per case, got {n}.")
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    mu_p, mu_t = yp.mean(dim=1), yt.mean(dim=1)
    dp, dt = yp - mu_p[:, None], yt - mu_t[:, None]
    var_p, var_t = dp.pow(2).sum(dim=1) / (n - 1), dt.pow(2).sum(dim=1) / (n - 1)
    cov = (dp * dt).sum(dim=1) / (n - 1)
    ssim = ((2 * mu_p * mu_t + c1) * (2 * cov + c2)) / ((mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2))
    return ssim.float().unsqueeze(1)


def compute_mae_hu(
    y_pred: torch.Tensor, y: torch.Tensor, hu_window: tuple[float, float] = HU_WINDOW, clip: bool = True
) -> torch.Tensor:
    """
    Mean absolute error in Hounsfield units: the [0, 1] error scaled by the width of the HU window.

    Both volumes are on the window's [0, 1] scale, so the error is that of HU values clipped to the window
    (``HU_WINDOW`` = [-1000, 2000]: 1.0 on [0, 1] is 3000 HU).

    Args:
        y_pred: reconstruction, ``B1XYZ`` (any batch-first shape) on the [0, 1] CT scale.
        y: ground truth, same shape, on [0, 1].
        hu_window: the HU values of 0 and 1. Defaults to ``constants.HU_WINDOW``.
        clip: clip ``y_pred`` to [0, 1] first. Defaults to True.

    Returns:
        ``[B, 1]`` MAE in HU (float32).

    Raises:
        ValueError: when the shapes differ or the window is empty.
    """
    low, high = float(hu_window[0]), float(hu_window[1])
    if not high > low:
        raise ValueError(f"hu_window must be (low, high) with high > low, got {tuple(hu_window)}.")
    yp, yt = _flat_pair(y_pred, y, clip)
    return ((yp - yt).abs().mean(dim=1) * (high - low)).float().unsqueeze(1)


class PaperPSNRMetric(RegressionMetric):
    """
    Cumulative PSNR of Ge et al. (2021), Eq. 18 (``MAX`` = the ground truth's maximum, per case); see
    :func:`compute_paper_psnr`. Use it like MONAI's ``PSNRMetric``, e.g. with ``monai.handlers.IgniteMetricHandler``.

    Args:
        clip: clip the prediction to [0, 1] first. Defaults to True.
        reduction: see ``monai.metrics.RegressionMetric``. Defaults to ``"mean"``.
        get_not_nans: return the count of non-NaN values too. Defaults to False.
    """

    def __init__(
        self, clip: bool = True, reduction: MetricReduction | str = MetricReduction.MEAN, get_not_nans: bool = False
    ) -> None:
        super().__init__(reduction=reduction, get_not_nans=get_not_nans)
        self.clip = clip

    def _compute_metric(self, y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return compute_paper_psnr(y_pred, y, clip=self.clip)


class GlobalSSIMMetric(RegressionMetric):
    """
    Cumulative global SSIM of Ge et al. (2021), Eq. 17 (one SSIM over the whole volume); see
    :func:`compute_global_ssim`.

    Args:
        data_range: ``L`` of ``c1 = (k1 L)^2``, ``c2 = (k2 L)^2``. Defaults to 1.0.
        k1: Defaults to 0.01.
        k2: Defaults to 0.03.
        clip: clip the prediction to [0, 1] first. Defaults to True.
        reduction: see ``monai.metrics.RegressionMetric``. Defaults to ``"mean"``.
        get_not_nans: return the count of non-NaN values too. Defaults to False.

    Raises:
        ValueError: when ``data_range``, ``k1`` or ``k2`` is not positive.
    """

    def __init__(
        self,
        data_range: float = 1.0,
        k1: float = 0.01,
        k2: float = 0.03,
        clip: bool = True,
        reduction: MetricReduction | str = MetricReduction.MEAN,
        get_not_nans: bool = False,
    ) -> None:
        super().__init__(reduction=reduction, get_not_nans=get_not_nans)
        for name, value in (("data_range", data_range), ("k1", k1), ("k2", k2)):
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value}.")
        self.data_range, self.k1, self.k2, self.clip = float(data_range), float(k1), float(k2), clip

    def _compute_metric(self, y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return compute_global_ssim(y_pred, y, data_range=self.data_range, k1=self.k1, k2=self.k2, clip=self.clip)


class MAEHUMetric(RegressionMetric):
    """
    Cumulative mean absolute error in HU of reconstructions on the [0, 1] CT scale; see :func:`compute_mae_hu`.

    Args:
        hu_window: the HU values of 0 and 1. Defaults to ``constants.HU_WINDOW``.
        clip: clip the prediction to [0, 1] first. Defaults to True.
        reduction: see ``monai.metrics.RegressionMetric``. Defaults to ``"mean"``.
        get_not_nans: return the count of non-NaN values too. Defaults to False.

    Raises:
        ValueError: when ``hu_window`` is not ``(low, high)`` with ``high > low``.
    """

    def __init__(
        self,
        hu_window: tuple[float, float] = HU_WINDOW,
        clip: bool = True,
        reduction: MetricReduction | str = MetricReduction.MEAN,
        get_not_nans: bool = False,
    ) -> None:
        super().__init__(reduction=reduction, get_not_nans=get_not_nans)
        if len(hu_window) != 2 or not float(hu_window[1]) > float(hu_window[0]):
            raise ValueError(f"hu_window must be (low, high) with high > low, got {hu_window}.")
        self.hu_window = (float(hu_window[0]), float(hu_window[1]))
        self.clip = clip

    def _compute_metric(self, y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return compute_mae_hu(y_pred, y, hu_window=self.hu_window, clip=self.clip)

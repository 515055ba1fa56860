# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Randomised radiograph realism for DRRs: scatter, quantum noise, detector blur, gamma and window.

It operates on raw line integrals (the output of :class:`~xctrs_monai.transforms.BiplanarDRRd`), before
:class:`~xctrs_monai.transforms.NormalizeXrayd`. Training pipeline: ``BiplanarDRRd -> RandXrayAppearanced
-> NormalizeXrayd``. Linear contrast or brightness changes are not offered: the percentile normalisation
that follows would undo them; the gamma curve and the window clipping are the contrast jitter that survives.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from monai.config import KeysCollection
from monai.config.type_definitions import NdarrayOrTensor
from monai.data.meta_obj import get_track_meta
from monai.transforms.transform import MapTransform, RandomizableTransform
from monai.utils import convert_to_dst_type, convert_to_tensor

__all__ = ["gaussian_blur_2d", "RandXrayAppearance", "RandXrayAppearanced"]


def gaussian_blur_2d(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of the last two axes with edge-replicating padding (no dark borders).

    Args:
        img: ``[C, H, W]`` float image.
        sigma: standard deviation in pixels (``<= 0`` returns ``img``).

    Returns:
        the blurred ``[C, H, W]`` image.
    """
    if sigma <= 0:
        return img
    radius = max(1, int(math.ceil(3.0 * sigma)))
    offsets = torch.arange(-radius, radius + 1, dtype=img.dtype, device=img.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    x = img[:, None]  # [C, 1, H, W]
    x = F.conv2d(F.pad(x, (0, 0, radius, radius), mode="replicate"), kernel.view(1, 1, -1, 1))
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="replicate"), kernel.view(1, 1, 1, -1))
    return x[:, 0]


def _check_range(name: str, value: Sequence[float], low: float, high: float | None = None) -> tuple[float, float]:
    lo, hi = (float(v) for v in value)
    if not (low <= lo <= hi and (high is None or hi <= high)) or not math.isfinite(hi):
        bound = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be an ordered (min, max) pair within {bound}, got {tuple(value)}.")
    return lo, hi


def _check_prob(name: str, value: float) -> float:
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value}.")
    return float(value)


class RandXrayAppearance(RandomizableTransform):
    """Random acquisition realism for a DRR given as line integrals ``p`` (``I = I0 * exp(-p)``).

    In this order, each step with its own probability: (1) scatter, a smooth additive intensity
    ``S = fraction * blur(1 - I, sigma)`` from the photons the object removed; (2) quantum noise,
    ``counts ~ Poisson(I0 * I)`` at ``I0`` photons per unobstructed pixel; (3) detector blur, a Gaussian on
    the (noisy) intensity; then back to ``p = -log(I / I0)``; (4) a window, clipping a random fraction of the
    value range at each end; (5) a gamma curve on the value range. Parameters are drawn from the transform's
    random state (:meth:`set_random_state`), so a seed gives the same result.

    Args:
        prob: probability of applying anything. Defaults to 1.0.
        noise_prob: probability of quantum noise. Defaults to 0.8.
        photons: ``(min, max)`` photons per unobstructed pixel, sampled log-uniformly. Defaults to ``(1e4, 1e5)``.
        blur_prob: probability of detector blur. Defaults to 0.5.
        blur_sigma: ``(min, max)`` Gaussian sigma in pixels. Defaults to ``(0.3, 1.2)``.
        scatter_prob: probability of scatter. Defaults to 0.5.
        scatter_fraction: ``(min, max)`` fraction of the removed photons reaching the detector as scatter.
            Defaults to ``(0.02, 0.1)``.
        scatter_sigma: ``(min, max)`` scatter blur sigma as a fraction of the shorter image side.
            Defaults to ``(0.05, 0.2)``.
        gamma_prob: probability of a gamma curve. Defaults to 0.5.
        gamma: ``(min, max)`` gamma, sampled log-uniformly. Defaults to ``(0.7, 1.4)``.
        window_prob: probability of window clipping. Defaults to 0.3.
        window: ``(min, max)`` fraction of the value range clipped at each end. Defaults to ``(0.0, 0.05)``.

    Raises:
        ValueError: for a probability outside ``[0, 1]`` or a badly ordered or out-of-range ``(min, max)``.
    """

    backend = [torch.Tensor.__name__, np.ndarray.__name__]

    def __init__(
        self,
        prob: float = 1.0,
        noise_prob: float = 0.8,
        photons: Sequence[float] = (1e4, 1e5),
        blur_prob: float = 0.5,
        blur_sigma: Sequence[float] = (0.3, 1.2),
        scatter_prob: float = 0.5,
        scatter_fraction: Sequence[float] = (0.02, 0.1),
        scatter_sigma: Sequence[float] = (0.05, 0.2),
        gamma_prob: float = 0.5,
        gamma: Sequence[float] = (0.7, 1.4),
        window_prob: float = 0.3,
        window: Sequence[float] = (0.0, 0.05),
    ) -> None:
        RandomizableTransform.__init__(self, _check_prob("prob", prob))
        self.noise_prob = _check_prob("noise_prob", noise_prob)
        self.blur_prob = _check_prob("blur_prob", blur_prob)
        self.scatter_prob = _check_prob("scatter_prob", scatter_prob)
        self.gamma_prob = _check_prob("gamma_prob", gamma_prob)
        self.window_prob = _check_prob("window_prob", window_prob)
        self.photons = _check_range("photons", photons, 1.0)
        self.blur_sigma = _check_range("blur_sigma", blur_sigma, 0.0)
        self.scatter_fraction = _check_range("scatter_fraction", scatter_fraction, 0.0, 1.0)
        self.scatter_sigma = _check_range("scatter_sigma", scatter_sigma, 0.0)
        self.gamma = _check_range("gamma", gamma, 1e-6)
        self.window = _check_range("window", window, 0.0, 0.49)
        self.params: dict = {}

    def randomize(self, data=None) -> None:
        """Draw whether to apply each step and its parameters (always the same number of draws)."""
        super().randomize(None)
        r = self.R
        self.params = {
            "noise": r.rand() < self.noise_prob,
            "photons": float(np.exp(r.uniform(np.log(self.photons[0]), np.log(self.photons[1])))),
            "noise_seed": int(r.randint(0, 2**31 - 1)),
            "blur": r.rand() < self.blur_prob,
            "blur_sigma": float(r.uniform(*self.blur_sigma)),
            "scatter": r.rand() < self.scatter_prob,
            "scatter_fraction": float(r.uniform(*self.scatter_fraction)),
            "scatter_sigma": float(r.uniform(*self.scatter_sigma)),
            "gamma": float(np.exp(r.uniform(np.log(self.gamma[0]), np.log(self.gamma[1]))))
            if r.rand() < self.gamma_prob
            else None,
            "window": (float(r.uniform(*self.window)), float(r.uniform(*self.window)))
            if r.rand() < self.window_prob
            else None,
        }

    def __call__(self, img: NdarrayOrTensor, randomize: bool = True) -> NdarrayOrTensor:
        """
        Args:
            img: line integrals ``[C, H, W]`` (dimensionless, e.g. a raw DRR).
            randomize: draw new parameters first; ``False`` reuses the last ones (and the same noise).

        Returns:
            the modified line integrals, same shape and type as ``img`` (float32, float64 stays float64).

        Raises:
            ValueError: when ``img`` is not ``[C, H, W]``.
        """
        img = convert_to_tensor(img, track_meta=get_track_meta())
        if img.ndim != 3:
            raise ValueError(f"RandXrayAppearance expects a radiograph [C, H, W], got shape {tuple(img.shape)}.")
        if randomize:
            self.randomize()
        if not self._do_transform:
            return img
        p = self.params
        x = convert_to_tensor(img, track_meta=False)
        x = x.to(torch.float64 if x.dtype == torch.float64 else torch.float32)
        if p["scatter"] or p["noise"] or p["blur"]:
            intensity = torch.exp(-x)
            if p["scatter"]:
                sigma = p["scatter_sigma"] * min(x.shape[-2:])
                intensity = intensity + p["scatter_fraction"] * gaussian_blur_2d(1.0 - intensity, sigma)
            if p["noise"]:
                lam = (intensity.clamp(min=0.0) * p["photons"]).detach().cpu().double().numpy()
                counts = np.random.RandomState(p["noise_seed"]).poisson(lam)
                counts = torch.as_tensor(counts, dtype=x.dtype, device=x.device)
                intensity = counts.clamp(min=1.0) / p["photons"]
            if p["blur"]:
                intensity = gaussian_blur_2d(intensity, p["blur_sigma"])
            x = -torch.log(intensity)
        if p["window"] is not None or p["gamma"] is not None:
            lo, hi = x.min(), x.max()
            span = hi - lo
            if bool(span > 0):
                if p["window"] is not None:
                    x = x.clamp(lo + p["window"][0] * span, hi - p["window"][1] * span)
                if p["gamma"] is not None:
                    x = lo + span * ((x - lo) / span).clamp(0.0, 1.0) ** p["gamma"]
        out, *_ = convert_to_dst_type(x, img, dtype=x.dtype)
        return out


class RandXrayAppearanced(RandomizableTransform, MapTransform):
    """Dictionary-based wrapper of :class:`RandXrayAppearance` for the two DRR views.

    Whether to apply is decided once per call (``prob``); each key then gets its own parameters and noise,
    as two exposures would.

    Args:
        keys: keys of the line-integral radiographs, e.g. ``["xray_ap", "xray_la"]``.
        prob: probability of applying anything to the sample. Defaults to 1.0.
        allow_missing_keys: don't raise an exception when a key is missing. Defaults to False.
        kwargs: the effects' parameters of :class:`RandXrayAppearance` (``noise_prob``, ``photons``,
            ``blur_prob``, ``blur_sigma``, ``scatter_prob``, ``scatter_fraction``, ``scatter_sigma``,
            ``gamma_prob``, ``gamma``, ``window_prob``, ``window``), with its defaults.
    """

    backend = RandXrayAppearance.backend

    def __init__(self, keys: KeysCollection, prob: float = 1.0, allow_missing_keys: bool = False, **kwargs) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, _check_prob("prob", prob))
        self.appearance = RandXrayAppearance(prob=1.0, **kwargs)

    def set_random_state(
        self, seed: int | None = None, state: np.random.RandomState | None = None
    ) -> RandXrayAppearanced:
        super().set_random_state(seed, state)
        self.appearance.set_random_state(seed, state)
        return self

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        self.randomize(None)
        for key in self.key_iterator(d):
            if self._do_transform:
                d[key] = self.appearance(d[key], randomize=True)
            else:
                d[key] = convert_to_tensor(d[key], track_meta=get_track_meta())
        return d

# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Tests of RandXrayAppearance(d): determinism, each effect, the DRR training pipeline."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from monai.data import MetaTensor
from monai.transforms import Compose
from xctrs_monai.transforms import (
    BiplanarDRRd,
    NormalizeXrayd,
    RandXrayAppearance,
    RandXrayAppearanced,
    gaussian_blur_2d,
)

OFF = {"noise_prob": 0.0, "blur_prob": 0.0, "scatter_prob": 0.0, "gamma_prob": 0.0, "window_prob": 0.0}


def _drr_like(n: int = 32) -> torch.Tensor:
    u, v = torch.meshgrid(torch.linspace(-1, 1, n), torch.linspace(-1, 1, n), indexing="ij")
    return (3.0 * torch.clamp(1.0 - u**2 - 0.5 * v**2, min=0.0) + 0.5 * (u.abs() < 0.1))[None]


EFFECT_CASES = [
    {"noise_prob": 1.0},
    {"blur_prob": 1.0},
    {"scatter_prob": 1.0},
    {"gamma_prob": 1.0, "gamma": (1.3, 1.4)},
    {"window_prob": 1.0, "window": (0.05, 0.1)},
    {},  # the defaults
]


@pytest.mark.parametrize("kwargs", EFFECT_CASES)
def test_each_effect_changes_the_image_deterministically(kwargs):
    img = _drr_like()
    transform = RandXrayAppearance(**{**OFF, **kwargs}) if kwargs else RandXrayAppearance()
    first = transform.set_random_state(seed=7)(img)
    second = transform.set_random_state(seed=7)(img)
    assert first.shape == img.shape and first.dtype == torch.float32
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    assert not torch.allclose(first, img)
    torch.testing.assert_close(transform(img, randomize=False), first)  # same parameters and noise
    assert torch.isfinite(first).all()


def test_disabled_is_identity_and_seeds_differ():
    img = _drr_like()
    torch.testing.assert_close(RandXrayAppearance(**OFF)(img), img)
    torch.testing.assert_close(RandXrayAppearance(prob=0.0)(img), img)
    noisy = RandXrayAppearance(**{**OFF, "noise_prob": 1.0})
    assert not torch.allclose(noisy.set_random_state(1)(img), noisy.set_random_state(2)(img))


def test_quantum_noise_level():
    photons, line_integral = 2e4, 2.0
    img = torch.full((1, 64, 64), line_integral, dtype=torch.float64)
    noise = RandXrayAppearance(**{**OFF, "noise_prob": 1.0, "photons": (photons, photons)}).set_random_state(0)
    out = noise(img)
    assert out.dtype == torch.float64
    expected_std = 1.0 / math.sqrt(photons * math.exp(-line_integral))  # Poisson, after -log
    assert float(out.std()) == pytest.approx(expected_std, rel=0.1)
    assert float(out.mean()) == pytest.approx(line_integral, abs=3 * expected_std / 64)


def test_scatter_lowers_contrast():
    img = _drr_like()
    out = RandXrayAppearance(**{**OFF, "scatter_prob": 1.0, "scatter_fraction": (0.1, 0.1)}).set_random_state(0)(img)
    assert float(out.max() - out.min()) < float(img.max() - img.min())


@pytest.mark.parametrize("gamma", [1.35, 0.75])
def test_gamma_direction(gamma):
    """The gamma curve maps the value range onto itself: gamma > 1 lowers every value inside the range
    (t ** gamma < t on (0, 1)), gamma < 1 raises it; the ends stay. Checked against the curve by hand."""
    img = _drr_like()
    out = RandXrayAppearance(**{**OFF, "gamma_prob": 1.0, "gamma": (gamma, gamma)}).set_random_state(0)(img)
    lo, hi = float(img.min()), float(img.max())
    inside = (img > lo + 1e-3) & (img < hi - 1e-3)
    if gamma > 1:
        assert (out[inside] < img[inside]).all()
    else:
        assert (out[inside] > img[inside]).all()
    # float32 min/max and a power of values ~1: a few ulp
    assert float(out.min()) == pytest.approx(lo, abs=1e-5) and float(out.max()) == pytest.approx(hi, rel=1e-5)
    mid = lo + 0.5 * (hi - lo)
    pixel = torch.argmin((img - mid).abs())
    t = (float(img.flatten()[pixel]) - lo) / (hi - lo)
    assert float(out.flatten()[pixel]) == pytest.approx(lo + (hi - lo) * t**gamma, rel=1e-5)


def test_window_clips_both_ends_and_keeps_the_middle():
    img = _drr_like()
    out = RandXrayAppearance(**{**OFF, "window_prob": 1.0, "window": (0.1, 0.1)}).set_random_state(0)(img)
    lo, hi = float(img.min()), float(img.max())
    low, high = lo + 0.1 * (hi - lo), hi - 0.1 * (hi - lo)
    # float32 of values ~3: 1e-5 relative
    assert float(out.min()) == pytest.approx(low, rel=1e-5) and float(out.max()) == pytest.approx(high, rel=1e-5)
    middle = (img > low) & (img < high)
    torch.testing.assert_close(out[middle], img[middle])


def test_scatter_adds_photons_most_behind_dense_parts():
    """Scatter adds intensity, so every line integral drops, and most where the object removed most photons."""
    img = _drr_like()
    out = RandXrayAppearance(**{**OFF, "scatter_prob": 1.0, "scatter_fraction": (0.1, 0.1)}).set_random_state(0)(img)
    drop = img - out
    assert (drop[img > 0.1] > 0).all()
    dense, thin = img > 0.8 * float(img.max()), (img > 0.1) & (img < 0.3)
    assert float(drop[dense].mean()) > 3 * float(drop[thin].mean())


def test_blur_smooths_edges():
    """Detector blur spreads the sharp bright line (|u| < 0.1): its edge step shrinks, the flat parts keep."""
    img = _drr_like()
    out = RandXrayAppearance(**{**OFF, "blur_prob": 1.0, "blur_sigma": (1.0, 1.0)}).set_random_state(0)(img)
    step_in, step_out = (img[0, 1:] - img[0, :-1]).abs().max(), (out[0, 1:] - out[0, :-1]).abs().max()
    assert float(step_out) < 0.7 * float(step_in)


def test_blur_keeps_flat_images_flat():
    flat = torch.full((2, 9, 13), 1.5)
    torch.testing.assert_close(gaussian_blur_2d(flat, 2.0), flat)


def test_dictionary_determinism_and_independent_views():
    data = {"xray_ap": MetaTensor(_drr_like(), meta={"view": "ap"}), "xray_la": _drr_like()}
    transform = RandXrayAppearanced(keys=["xray_ap", "xray_la"], **{**OFF, "noise_prob": 1.0})
    first = transform.set_random_state(seed=3)(data)
    second = transform.set_random_state(seed=3)(data)
    for key in data:
        torch.testing.assert_close(first[key], second[key], rtol=0, atol=0)
    assert isinstance(first["xray_ap"], MetaTensor) and first["xray_ap"].meta["view"] == "ap"
    assert not torch.allclose(first["xray_ap"] - data["xray_ap"], first["xray_la"] - data["xray_la"])
    skipped = RandXrayAppearanced(keys=["xray_ap", "xray_la"], prob=0.0)(data)
    torch.testing.assert_close(skipped["xray_la"], data["xray_la"])


ILL_CASES = [
    [{"prob": 1.5}, "prob"],
    [{"noise_prob": -0.1}, "noise_prob"],
    [{"photons": (1e5, 1e4)}, "photons"],
    [{"window": (0.0, 0.6)}, "window"],
    [{"gamma": (0.0, 1.0)}, "gamma"],
]


@pytest.mark.parametrize("kwargs, message", ILL_CASES)
def test_ill_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RandXrayAppearance(**kwargs)
    with pytest.raises(ValueError, match=message):
        RandXrayAppearanced(keys="xray_ap", **kwargs)


def test_training_pipeline():
    ct = torch.full((1, 20, 20, 20), -1000.0)
    ct[0, 4:16, 5:15, 3:17] = 40.0
    ct[0, 8:12, 7:11, 3:17] = 900.0
    affine = np.diag([1.5, 1.5, 1.5, 1.0])
    pipeline = Compose(
        [
            BiplanarDRRd(keys="image"),
            RandXrayAppearanced(keys=["xray_ap", "xray_la"]),
            NormalizeXrayd(keys=["xray_ap", "xray_la"]),
        ]
    )
    pipeline.set_random_state(seed=0)
    out = pipeline({"image": MetaTensor(ct, affine=torch.as_tensor(affine))})
    pipeline.set_random_state(seed=0)
    again = pipeline({"image": MetaTensor(ct, affine=torch.as_tensor(affine))})
    for key in ("xray_ap", "xray_la"):
        assert out[key].shape == (1, 20, 20)
        assert float(out[key].min()) == 0.0 and float(out[key].max()) == 1.0
        torch.testing.assert_close(out[key], again[key])

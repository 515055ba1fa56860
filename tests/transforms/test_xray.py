# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Tests of the canonical <-> display orientation, NormalizeXray and the PNG preview."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

from monai.data import MetaTensor
from xctrs_monai.transforms import (
    BiplanarDRR,
    NormalizeXray,
    NormalizeXrayd,
    canonical_to_display,
    display_to_canonical,
    write_xray_preview,
)

ROUND_TRIP_CASES = [
    ["ap", np.random.RandomState(0).rand(7, 5)],
    ["la", np.random.RandomState(1).rand(1, 6, 9)],
    ["ap", torch.rand(1, 8, 3)],
    ["la", torch.rand(2, 1, 4, 6)],
]


@pytest.mark.parametrize("view, img", ROUND_TRIP_CASES)
def test_round_trip(view, img):
    display = canonical_to_display(img, view)
    assert type(display) is type(img)
    assert display.shape == img.shape[:-2] + (img.shape[-1], img.shape[-2])
    back = display_to_canonical(display, view)
    np.testing.assert_array_equal(np.asarray(back), np.asarray(img))


def test_display_convention_of_canonical_axes():
    # AP canonical [X, Z]: a pixel at the patient's right (high X) and superior (high Z)
    ap = torch.zeros(1, 10, 12)
    ap[0, 8, 11] = 1.0
    r, c = torch.nonzero(canonical_to_display(ap, "ap")[0])[0].tolist()
    assert r == 0  # superior on the top row
    assert c == 1  # patient's right on the viewer's left
    # LA canonical [Y, Z]: an anterior (high Y), inferior (low Z) pixel
    la = torch.zeros(1, 10, 12)
    la[0, 9, 0] = 1.0
    r, c = torch.nonzero(canonical_to_display(la, "la")[0])[0].tolist()
    assert r == 11  # inferior at the bottom
    assert c == 0  # anterior on the viewer's left: the patient faces left


def test_drr_marker_display():
    """A dense marker on the patient's right, superior and anterior, seen in the DRRs as displayed."""
    ct = torch.full((1, 16, 16, 16), -1000.0)
    ct[0, 12:14, 11:13, 12:14] = 1000.0  # right (high X), anterior (high Y), superior (high Z)
    ap, la = BiplanarDRR(geometry="parallel")(ct, spacing=(1.0, 1.0, 1.0))
    ap_r, ap_c = np.unravel_index(int(torch.argmax(canonical_to_display(ap, "ap")[0])), (16, 16))
    la_r, la_c = np.unravel_index(int(torch.argmax(canonical_to_display(la, "la")[0])), (16, 16))
    assert ap_r < 8 and ap_c < 8  # top-left: superior, patient's right on the viewer's left
    assert la_r < 8 and la_c < 8  # top-left: superior, anterior on the viewer's left


def test_metatensor_affine_follows_the_pixels():
    affine = torch.tensor([[0.5, 0.0, -2.0], [0.0, 0.25, -1.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    img = MetaTensor(torch.rand(1, 6, 4), affine=affine)
    display = canonical_to_display(img, "ap")
    assert isinstance(display, MetaTensor) and display.shape == (1, 4, 6)
    for r, c in [(0, 0), (3, 5), (1, 2)]:
        a, z = 6 - 1 - c, 4 - 1 - r  # the canonical pixel shown at (r, c)
        assert float(display[0, r, c]) == float(img[0, a, z])
        world_display = display.affine @ torch.tensor([r, c, 1.0], dtype=torch.float64)
        world_canonical = affine @ torch.tensor([a, z, 1.0], dtype=torch.float64)
        torch.testing.assert_close(world_display, world_canonical)
    torch.testing.assert_close(display_to_canonical(display, "ap").affine, affine)


@pytest.mark.parametrize("bad", [[np.zeros(5), "ap", "2 dimensions"], [np.zeros((3, 3)), "pa", "view"]])
def test_orientation_errors(bad):
    img, view, message = bad
    with pytest.raises(ValueError, match=message):
        canonical_to_display(img, view)


NORMALIZE_CASES = [
    [{}, torch.arange(1000.0).reshape(1, 25, 40)],
    [{"lower": 5.0, "upper": 95.0}, np.random.RandomState(3).normal(3.0, 2.0, (1, 32, 32))],
    [{"channel_wise": True}, torch.stack([torch.rand(16, 16), 100.0 + 5.0 * torch.rand(16, 16)])],
    [{"clip": False}, torch.linspace(-3.0, 7.0, 400).reshape(20, 20)],
]


@pytest.mark.parametrize("kwargs, img", NORMALIZE_CASES)
def test_normalize_range(kwargs, img):
    out = NormalizeXray(**kwargs)(img)
    assert type(out) is type(img) and out.shape == img.shape
    out = torch.as_tensor(out)
    if kwargs.get("clip", True):
        assert float(out.min()) == 0.0 and float(out.max()) == 1.0
    else:
        assert float(out.min()) < 0.0 < 1.0 < float(out.max())
    if kwargs.get("channel_wise"):
        assert all(float(c.max()) == 1.0 and float(c.min()) == 0.0 for c in out)
    lower = kwargs.get("lower", 0.5)
    assert float((out <= 0.0).double().mean()) == pytest.approx(lower / 100.0, abs=0.02)


def test_normalize_nearly_constant_uses_min_max():
    img = torch.zeros(1, 30, 30)
    img[0, 3, 4] = 2.0  # one bright pixel: the 99.5th percentile is still 0
    out = NormalizeXray()(img)
    assert float(out[0, 3, 4]) == 1.0 and float(out.sum()) == 1.0


def test_normalize_dictionary_and_metadata():
    img = MetaTensor(torch.rand(1, 8, 8) * 4.0, meta={"view": "ap"})
    d = NormalizeXrayd(keys=["xray_ap", "xray_la"])({"xray_ap": img, "xray_la": torch.rand(1, 8, 8)})
    assert isinstance(d["xray_ap"], MetaTensor) and d["xray_ap"].meta["view"] == "ap"
    assert float(d["xray_la"].max()) == 1.0


NORMALIZE_ILL_CASES = [
    [{}, torch.full((1, 8, 8), 3.0), "constant"],
    [{}, torch.tensor([[[0.0, float("nan")], [1.0, 2.0]]]), "non-finite"],
    [{}, torch.tensor([[[0.0, float("inf")], [1.0, 2.0]]]), "non-finite"],
    [{}, torch.zeros(1, 0, 4), "empty"],
]


@pytest.mark.parametrize("kwargs, img, message", NORMALIZE_ILL_CASES)
def test_normalize_errors(kwargs, img, message):
    with pytest.raises(ValueError, match=message):
        NormalizeXray(**kwargs)(img)


@pytest.mark.parametrize("lower, upper", [(50.0, 10.0), (-1.0, 99.0), (1.0, 101.0)])
def test_normalize_bad_percentiles(lower, upper):
    with pytest.raises(ValueError, match="percentiles"):
        NormalizeXray(lower, upper)


def test_write_preview(tmp_path):
    canonical = torch.zeros(1, 20, 30)
    canonical[0, 16:19, 25:28] = 5.0  # patient's right, superior
    canonical[0, 4:6, 2:4] = 1.0
    path = write_xray_preview(tmp_path / "ap.png", canonical, "ap")
    assert path == os.fspath(tmp_path / "ap.png") and os.listdir(tmp_path) == ["ap.png"]
    with Image.open(path) as png:
        assert png.mode == "L" and png.size == (20, 30)  # width = X, height = Z
        pixels = np.asarray(png)
    r, c = np.unravel_index(int(np.argmax(pixels)), pixels.shape)
    assert pixels.max() == 255 and r < 5 and c < 4  # bright marker top-left
    write_xray_preview(tmp_path / "ap.png", canonical[0].numpy(), "ap", invert=True)  # overwrite, 2D input
    with Image.open(path) as png:
        assert np.asarray(png)[r, c] == 0
    with pytest.raises(ValueError, match="one canonical image"):
        write_xray_preview(tmp_path / "bad.png", torch.rand(2, 4, 4), "la")
    assert sorted(os.listdir(tmp_path)) == ["ap.png"]

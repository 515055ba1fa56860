# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""ResetAffine(d): augmented volumes go back on an axis-aligned grid that the projector accepts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monai.data import MetaTensor
from monai.transforms import Affine, Flip

from xctrs_monai.transforms import BiplanarDRR, ResetAffine, ResetAffined


def _volume(shape=(1, 12, 10, 14), spacing=(2.0, 1.5, 3.0)):
    affine = np.diag(list(spacing) + [1.0])
    affine[:3, 3] = [-10.0, 5.0, 20.0]
    return MetaTensor(torch.rand(shape) * 1000 - 500, affine=torch.as_tensor(affine))


def _centre_world(img):
    centre = torch.tensor([(n - 1) / 2 for n in img.shape[1:]] + [1.0], dtype=torch.float64)
    return (img.affine.to(torch.float64) @ centre)[:3]


@pytest.mark.parametrize("motion", [Affine(rotate_params=(0.1, 0.0, 0.05), padding_mode="border"), Flip(0)])
def test_moved_volume_is_projectable_and_keeps_its_centre(motion):
    vol = _volume()
    moved = motion(vol)[0] if isinstance(motion, Affine) else motion(vol)
    with pytest.raises(ValueError, match="Orientationd"):
        BiplanarDRR()(moved)
    centre = _centre_world(moved)
    reset = ResetAffine(spacing=(2.0, 1.5, 3.0))(moved)
    np.testing.assert_allclose(reset.affine[:3, :3].numpy(), np.diag([2.0, 1.5, 3.0]), atol=1e-6)
    np.testing.assert_allclose(_centre_world(reset).numpy(), centre.numpy(), atol=1e-6)
    torch.testing.assert_close(reset.as_tensor(), moved.as_tensor())
    ap, la = BiplanarDRR()(reset)
    assert ap.shape == (1, 12, 14) and la.shape == (1, 10, 14)


def test_default_spacing_is_the_voxel_size_after_a_flip():
    reset = ResetAffine()(Flip(0)(_volume()))
    np.testing.assert_allclose(reset.affine[:3, :3].numpy(), np.diag([2.0, 1.5, 3.0]), atol=1e-6)


def test_explicit_spacing_and_dictionary_wrapper():
    data = {"image": Flip(0)(_volume()), "label": Flip(0)(_volume())}
    out = ResetAffined(["image", "label", "missing"], spacing=4.0, allow_missing_keys=True)(data)
    for key in ("image", "label"):
        np.testing.assert_allclose(out[key].affine[:3, :3].numpy(), np.diag([4.0] * 3))


ILL_CASES = [[{"spacing": 0.0}, "0.0"], [{"spacing": (1.0, 2.0)}, r"\(1.0, 2.0\)"]]


@pytest.mark.parametrize("kwargs, message", ILL_CASES)
def test_ill_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ResetAffine(**kwargs)


def test_plain_tensor_and_2d_input_are_refused():
    with pytest.raises(ValueError, match="MetaTensor"):
        ResetAffine()(torch.zeros(1, 4, 4, 4))
    with pytest.raises(ValueError, match="CXYZ"):
        ResetAffine()(MetaTensor(torch.zeros(1, 4, 4)))

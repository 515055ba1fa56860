# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Tests of the BiplanarDRR(d) transforms: values and metadata of the MetaTensor outputs, the dictionary
wrapper, orientation checks and bad input (the projector's numbers: tests/networks/layers)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from monai.data import MetaTensor
from xctrs_monai.constants import MU_WATER
from xctrs_monai.transforms import BiplanarDRR, BiplanarDRRd, spacing_from_affine


def test_transform_metadata_and_dictionary():
    ct = MetaTensor(torch.full((1, 8, 10, 12), -1000.0), affine=torch.diag(torch.tensor([1.0, 2.0, 1.5, 1.0])))
    ct[0, 2:6, 3:7, 4:9] = 200.0
    ct.meta["filename_or_obj"] = "case_000.nii.gz"
    data = BiplanarDRRd(keys="image", geometry="parallel")({"image": ct, "label": 1})
    ap, la = data["xray_ap"], data["xray_la"]
    assert isinstance(ap, MetaTensor) and ap.shape == (1, 8, 12) and la.shape == (1, 10, 12)
    assert ap.meta["view"] == "ap" and la.meta["view"] == "la" and ap.meta["filename_or_obj"] == "case_000.nii.gz"
    assert la.meta["pixel_spacing"] == pytest.approx((2.0, 1.5))
    np.testing.assert_allclose(np.asarray(la.affine)[:2, :2], np.diag([2.0, 1.5]))
    # float32 sum of 4 equal terms: exact to a few ulp
    assert float(ap.max()) == pytest.approx(MU_WATER * 1.2 * 4 * 2.0, rel=1e-5)  # 4 voxels of 2 mm along Y
    assert float(la.max()) == pytest.approx(MU_WATER * 1.2 * 4 * 1.0, rel=1e-5)  # 4 voxels of 1 mm along X
    plain_ap, _ = BiplanarDRR(geometry="parallel")(ct.as_tensor(), spacing=(1.0, 2.0, 1.5))
    assert not isinstance(plain_ap, MetaTensor)
    torch.testing.assert_close(plain_ap, ap.as_tensor())
    # an LPS-world affine of a RAS-ordered array is accepted
    lps = MetaTensor(ct.as_tensor(), affine=torch.diag(torch.tensor([-1.0, -2.0, 1.5, 1.0])), meta={"space": "LPS"})
    assert spacing_from_affine(lps.affine, "LPS") == (1.0, 2.0, 1.5)
    torch.testing.assert_close(BiplanarDRR(geometry="parallel")(lps)[0].as_tensor(), ap.as_tensor())


def test_unchanged_transform_outputs():
    """The transform on a MetaTensor gives the numbers and metadata it gave before the projector became a layer.

    Reference values computed on main at commit b1f4166 with ``BiplanarDRR()`` on this volume (float32)."""
    x = torch.arange(12, dtype=torch.float64)[:, None, None]
    y = torch.arange(10, dtype=torch.float64)[None, :, None]
    z = torch.arange(14, dtype=torch.float64)[None, None, :]
    volume = 1400.0 * torch.sin(0.7 * x + 0.3 * y) * torch.cos(0.45 * z - 0.2 * y) + 150.0 * x - 400.0
    ct = MetaTensor(volume.float()[None], affine=torch.diag(torch.tensor([1.0, 1.5, 0.8, 1.0], dtype=torch.float64)))
    ap, la = BiplanarDRR()(ct)
    assert ap.dtype == la.dtype == torch.float32 and ap.shape == (1, 12, 14) and la.shape == (1, 10, 14)
    # float32 images of values ~0.5, summed in float64: 1e-6 relative is float32 rounding, a real change is 1e-3
    assert float(ap.double().sum()) == pytest.approx(72.33994624018669, rel=1e-6)
    assert float(la.double().sum()) == pytest.approx(48.3429913520813, rel=1e-6)
    assert float(ap[0, 6, 7]) == pytest.approx(0.6431360244750977, rel=1e-6)
    assert float(la[0, 5, 7]) == pytest.approx(0.3140268623828888, rel=1e-6)
    assert ap.meta["pixel_spacing"] == pytest.approx((1000.0 / 900.0, 0.8 * 1000.0 / 900.0))
    assert la.meta["pixel_spacing"] == pytest.approx((1.5 * 1500.0 / 1350.0, 0.8 * 1500.0 / 1350.0))
    expected_ap_affine = [[1.1111111111111112, 0.0, -6.111111111111112], [0.0, 0.888888888888889, -5.777777777777779]]
    expected_la_affine = [[1.6666666666666667, 0.0, -7.5], [0.0, 0.888888888888889, -5.777777777777779]]
    np.testing.assert_allclose(ap.affine[:2].numpy(), expected_ap_affine, rtol=1e-12)
    np.testing.assert_allclose(la.affine[:2].numpy(), expected_la_affine, rtol=1e-12)


def _oblique_affine(degrees: float) -> torch.Tensor:
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return torch.tensor([[c, -s, 0, 0], [s, c, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=torch.float64)


def _nan_voxel() -> torch.Tensor:
    volume = torch.zeros(1, 6, 6, 6)
    volume[0, 2, 3, 4] = float("nan")
    return volume


ILL_CALL_CASES = [
    [torch.zeros(1, 16, 16), None, "channel-first 3D volume"],  # a 2D image
    [torch.full((1, 4, 4, 4), float("nan")), (1.0, 1.0, 1.0), "non-finite"],
    [_nan_voxel(), (1.0, 1.0, 1.0), "non-finite"],  # one NaN voxel reaches the pixels of its rays
    [torch.zeros(1, 4, 4, 4), (0.0, 1.0, 1.0), "spacing"],
    [torch.zeros(1, 4, 4, 4), (1.0, -1.0, 1.0), "spacing"],
    [torch.zeros(1, 4, 4, 4), None, "spacing"],  # a plain tensor without spacing
    [MetaTensor(torch.zeros(1, 4, 4, 4), affine=torch.diag(torch.tensor([-1.0, -1.0, 1.0, 1.0]))), None, "RAS"],
    [MetaTensor(torch.zeros(1, 4, 4, 4), affine=_oblique_affine(10.0)), None, "Orientationd"],
    # an explicit spacing does not bypass the orientation check
    [MetaTensor(torch.zeros(1, 4, 4, 4), affine=_oblique_affine(10.0)), (1.0, 1.0, 1.0), "Orientationd"],
]


@pytest.mark.parametrize("img, spacing, message", ILL_CALL_CASES)
def test_ill_input(img, spacing, message):
    with pytest.raises(ValueError, match=message):
        BiplanarDRR()(img, spacing=spacing)


ILL_ARG_CASES = [
    [{"ap_sad": 1000.0}, "ap_sad must be smaller"],
    [{"geometry": "fan"}, "geometry"],
    [{"output": "log"}, "output"],
    [{"units": "mu"}, "takes no units"],
    [{"sdd": 1000.0}, "unknown projector options"],
]


@pytest.mark.parametrize("kwargs, message", ILL_ARG_CASES)
def test_ill_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BiplanarDRR(**kwargs)
    with pytest.raises(ValueError, match=message):
        BiplanarDRRd(keys="image", **kwargs)

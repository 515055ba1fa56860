# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Golden values: the network input of the bundle's inference preprocessing for two fixed radiograph pairs.

The reference numbers were computed on ``main`` at commit b1f4166 (before the radiograph reader was moved
to a MONAI ``ImageReader``), with the inference preprocessing of that commit on a 32^3 grid of 5 mm, by
this file's ``_summary``. They pin the whole chain (DICOM LUTs and MONOCHROME1, PNG bit depths, pixel
spacing, resampling with anti-aliasing, crop/pad, display -> canonical, normalisation): a refactor must
leave them unchanged.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "transforms"))
from xray_files import write_dicom, write_png  # noqa: E402

INFERENCE = str(Path(__file__).resolve().parents[2] / "bundle" / "configs" / "inference.json")
SIZE, SPACING = 32, 5.0

# per case, per view (AP, LA): sum, sum weighted by the first index, by the second index, sum of squares,
# pixel [3, 5], pixel [20, 11] of the normalised canonical network input (main at b1f4166)
GOLDEN = {
    "dicom": [
        [
            295.62347891856916,
            4467.916653956054,
            3607.8203593760263,
            117.58113240938486,
            0.4566873013973236,
            0.6466889381408691,
        ],
        [
            294.67561392698553,
            4493.464953864255,
            3571.7459430218732,
            117.53749453591496,
            0.45729508996009827,
            0.6567989587783813,
        ],
    ],
    "png": [
        [
            297.4816870788345,
            4536.275568882003,
            3665.0219037128845,
            119.51853612011668,
            0.4596753716468811,
            0.6302487850189209,
        ],
        [
            305.8198183982913,
            4646.920879135985,
            3710.772558315375,
            126.13893247561795,
            0.4470720887184143,
            0.6542170643806458,
        ],
    ],
}


def _display_image(rows: int, cols: int, shift: float) -> np.ndarray:
    """A smooth, asymmetric display-layout image (a flip or transpose changes every summary value)."""
    r = np.arange(rows)[:, None] / rows
    c = np.arange(cols)[None, :] / cols
    img = 0.3 * r + 0.1 * c
    img = img + np.exp(-(((r - 0.35) / 0.08) ** 2 + ((c - 0.6 + shift) / 0.05) ** 2))
    img = img + 0.6 * np.exp(-(((r - 0.7) / 0.15) ** 2 + ((c - 0.3) / 0.1) ** 2))
    return img + 0.2 * np.sin(9 * r + 5 * c) ** 2


@pytest.fixture(scope="module")
def golden_pairs(tmp_path_factory):
    root = tmp_path_factory.mktemp("golden")
    # DICOM: AP MONOCHROME2 with ImagerPixelSpacing 1.5 mm; LA MONOCHROME1, PixelSpacing 1.3 mm, rescale and a
    # window that clips the low end; both are shrunk about 4x onto the 5.56 mm / 5.56 mm detector pixels
    ap = write_dicom(root / "ap.dcm", _display_image(136, 120, 0.0), 1.5, "MONOCHROME2", "ImagerPixelSpacing")
    la = write_dicom(
        root / "la.dcm",
        _display_image(150, 140, 0.1),
        1.3,
        "MONOCHROME1",
        "PixelSpacing",
        window=(30000, 50000),
        slope=0.5,
        intercept=-100,
    )
    # PNG (16-bit AP, 8-bit LA), no pixel spacing: the centre square is resized to the detector
    ap_png = write_png(root / "ap.png", _display_image(100, 80, 0.05), 16)
    la_png = write_png(root / "la.png", _display_image(90, 110, -0.1), 8)
    return {"dicom": (str(ap), str(la)), "png": (str(ap_png), str(la_png))}


def _network_input(ap: str, la: str) -> torch.Tensor:
    """``[2, N, N]``: what the inference preprocessing of ``inference.json`` feeds the network."""
    parser = ConfigParser()
    parser.read_config(INFERENCE)
    parser.update({"img_size": SIZE, "spacing": SPACING})
    data = parser.get_parsed_content("preprocessing")({"xray_ap": ap, "xray_la": la, "case_id": "golden"})
    return torch.cat([torch.as_tensor(data["xray_ap"]), torch.as_tensor(data["xray_la"])]).double()


def _summary(image: torch.Tensor) -> list[list[float]]:
    i = torch.arange(image.shape[-1], dtype=torch.float64)
    return [
        [
            float(c.sum()),
            float((c * i[:, None]).sum()),
            float((c * i[None, :]).sum()),
            float((c**2).sum()),
            float(c[3, 5]),
            float(c[20, 11]),
        ]
        for c in image
    ]


@pytest.mark.parametrize("case", ["dicom", "png"])
def test_network_input_unchanged(golden_pairs, case):
    summary = _summary(_network_input(*golden_pairs[case]))
    # float32 pipeline summed in float64: 1e-5 relative covers summation order; a one-pixel shift, a flip or
    # another filter changes these values by more than 1e-3
    np.testing.assert_allclose(summary, GOLDEN[case], rtol=1e-5, atol=1e-6)

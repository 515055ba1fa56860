# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""CheckXrayPair(d): modality, view headers (swap refused or exchanged), same image twice, aspect ratio."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from xctrs_monai.transforms import CheckXrayPair, CheckXrayPaird, view_from_header


def _image(name: str, seed: int = 0, shape=(40, 30), **meta) -> MetaTensor:
    pixels = np.random.default_rng(seed).random(shape)
    info = {"filename_or_obj": name, "pixel_sha256": f"sha{seed}", "rows": shape[0], "columns": shape[1], **meta}
    return MetaTensor(torch.as_tensor(pixels.T)[None], meta=info)


@pytest.mark.parametrize(
    "meta, expected",
    [
        ({"view_position": "AP"}, "ap"),
        ({"view_position": "pa"}, "ap"),
        ({"view_position": "LL"}, "la"),
        ({"view_position": "RL"}, "la"),
        ({"view_position": "LLO"}, "oblique"),
        ({"patient_orientation": "L\\F"}, "ap"),
        ({"patient_orientation": "F\\R"}, "ap"),  # rotated image: the column direction tells
        ({"patient_orientation": "P\\F"}, "la"),
        ({"patient_orientation": "A\\H"}, "la"),
        ({"view_position": "AP", "patient_orientation": "P\\F"}, "ap"),  # ViewPosition decides
        ({"patient_orientation": "L\\P"}, ""),  # an axial slice: neither
        ({}, ""),
    ],
)
def test_view_from_header(meta, expected):
    assert view_from_header(meta)[0] == expected


def test_good_pair_passes_unchanged():
    ap, la = _image("a.dcm", 1, view_position="AP", modality="DX"), _image(
        "l.dcm", 2, view_position="LL", modality="CR"
    )
    out_ap, out_la = CheckXrayPair()(ap, la)
    assert out_ap is ap and out_la is la and ap.meta["swapped_inputs"] is False


def test_files_without_headers_pass():
    ap, la = _image("a.png", 1), _image("l.png", 2)
    assert CheckXrayPair()(ap, la) == (ap, la)


@pytest.mark.parametrize(
    "ap_meta, la_meta, message",
    [
        (
            {"modality": "CT"},
            {},
            r"AP radiograph 'a.dcm': Modality CT is not a projection radiograph \(accepted: DX, CR, RF, XA\)",
        ),
        ({}, {"modality": "MR"}, r"LA radiograph 'l.dcm': Modality MR is not"),
        ({"view_position": "LL"}, {}, r"AP radiograph 'a.dcm' is a lateral view \(ViewPosition LL\), not an AP view"),
        (
            {},
            {"patient_orientation": "L\\F"},
            r"LA radiograph 'l.dcm' is a frontal \(AP/PA\) view \(PatientOrientation L\\F\)",
        ),
        ({"view_position": "AP"}, {"view_position": "AP"}, r"LA radiograph 'l.dcm' is a frontal"),
        ({"view_position": "RAO"}, {}, r"AP radiograph 'a.dcm' is an oblique view"),
        (
            {"view_position": "LL"},
            {"view_position": "AP"},
            r"The views look swapped: the AP input 'a.dcm' has ViewPosition LL",
        ),
    ],
)
def test_refused_pairs(ap_meta, la_meta, message):
    with pytest.raises(ValueError, match=message):
        CheckXrayPair()(_image("a.dcm", 1, **ap_meta), _image("l.dcm", 2, **la_meta))


def test_swap_allowed_exchanges_and_says_so():
    ap, la = _image("a.dcm", 1, view_position="LL"), _image("l.dcm", 2, view_position="AP")
    out = CheckXrayPaird(keys=("xray_ap", "xray_la"), allow_swap=True)({"xray_ap": ap, "xray_la": la})
    assert out["xray_ap"] is la and out["xray_la"] is ap
    assert la.meta["swapped_inputs"] is True and ap.meta["swapped_inputs"] is True


def test_same_image_twice():
    with pytest.raises(ValueError, match="The AP and LA radiographs are the same image \\('a.dcm' and 'b.dcm'"):
        CheckXrayPair()(_image("a.dcm", 1), _image("b.dcm", 1))


def test_aspect_ratio():
    with pytest.raises(
        ValueError, match=r"AP radiograph 'strip.png' is 50 x 400 pixels \(aspect 8.0:1\); a radiograph is at most 3:1"
    ):
        CheckXrayPair()(_image("strip.png", 1, shape=(50, 400)), _image("l.png", 2))
    CheckXrayPair(max_aspect=10)(_image("strip.png", 1, shape=(50, 400)), _image("l.png", 2))
    with pytest.raises(ValueError, match="max_aspect must be >= 1"):
        CheckXrayPair(max_aspect=0.5)
    with pytest.raises(ValueError, match="keys must be"):
        CheckXrayPaird(keys="xray_ap")

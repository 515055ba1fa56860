# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""LoadXrayd + XrayToDetectord: phantom -> DRR -> display-layout DICOM/PNG/NIfTI -> loaded back = the canonical DRR."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import LoadImage
from PIL import Image
from xray_files import quantise, write_dicom, write_nifti, write_png

from xctrs_monai.data import make_phantom
from xctrs_monai.transforms import LoadXrayd, NormalizeXrayd, XrayToDetector, XrayToDetectord
from xctrs_monai.transforms.drr import BiplanarDRR
from xctrs_monai.transforms.xray import NormalizeXray, canonical_to_display

SIZE, SPACING = 32, 4.0


@pytest.fixture(scope="module")
def drrs():
    ct, _, affine = make_phantom(3, size=SIZE, spacing=SPACING)
    ap, la = BiplanarDRR()(MetaTensor(torch.as_tensor(ct)[None], affine=torch.as_tensor(affine)))
    return {"ap": ap, "la": la, "pixel": {"ap": ap.meta["pixel_spacing"][0], "la": la.meta["pixel_spacing"][0]}}


def _display(drrs, view) -> np.ndarray:
    return np.asarray(canonical_to_display(drrs[view].as_tensor(), view)[0], dtype=np.float64)


def _expected(drrs, view) -> np.ndarray:
    return np.asarray(NormalizeXray()(drrs[view].as_tensor()), dtype=np.float64)


def _load(path, view, **kwargs) -> MetaTensor:
    key = f"xray_{view}"
    data = {key: str(path)}
    for transform in (
        LoadXrayd(keys=key),
        XrayToDetectord(keys=key, img_size=SIZE, spacing=SPACING, **kwargs),
        NormalizeXrayd(keys=key),
    ):
        data = transform(data)  # not Compose: its RuntimeError would wrap the errors tested here
    return data[key]


# 16-bit quantisation of a [0, 1] image: 1 / 65535 = 1.5e-5 per step, 2e-4 leaves room for the normalisation percentiles
ATOL_16 = 2e-4


@pytest.mark.parametrize("view", ["ap", "la"])
@pytest.mark.parametrize(
    "photometric, spacing_tag, slope, intercept",
    [("MONOCHROME2", "ImagerPixelSpacing", 1.0, 0.0), ("MONOCHROME1", "PixelSpacing", 0.5, -1000.0)],
)
def test_dicom_round_trip(tmp_path, drrs, view, photometric, spacing_tag, slope, intercept):
    path = write_dicom(
        tmp_path / f"{view}.dcm",
        _display(drrs, view),
        drrs["pixel"][view],
        photometric,
        spacing_tag,
        slope=slope,
        intercept=intercept,
    )
    out = _load(path, view)
    assert isinstance(out, MetaTensor) and out.shape == (1, SIZE, SIZE) and out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), _expected(drrs, view), atol=ATOL_16)
    assert out.meta["resampling"] == "detector_geometry" and out.meta["pixel_spacing_source"] == spacing_tag
    assert out.meta["detector_spacing"] == pytest.approx(drrs["pixel"][view]) and out.meta["view"] == view
    assert str(path) == out.meta["filename_or_obj"]
    # the affine of the detector grid: one pixel = detector spacing, centred on the beam axis
    np.testing.assert_allclose(out.affine.numpy() @ [(SIZE - 1) / 2, (SIZE - 1) / 2, 1], [0, 0, 1], atol=1e-9)


@pytest.mark.parametrize("view", ["ap", "la"])
@pytest.mark.parametrize(
    "bits, rgb, atol", [(16, False, ATOL_16), (8, False, 6e-3), (8, True, 6e-3)]
)  # 8 bit: 1/255 = 4e-3 steps
def test_png_round_trip(tmp_path, drrs, view, bits, rgb, atol):
    path = write_png(tmp_path / f"{view}.png", _display(drrs, view), bits, rgb)
    out = _load(path, view, pixel_spacing=drrs["pixel"][view])
    np.testing.assert_allclose(out.numpy(), _expected(drrs, view), atol=atol)
    assert out.meta["pixel_spacing_source"] == "argument"


def test_nifti_round_trip_and_canonical_layout(tmp_path, drrs):
    path = write_nifti(tmp_path / "ap.nii.gz", _display(drrs, "ap"), drrs["pixel"]["ap"])
    np.testing.assert_allclose(
        _load(path, "ap").numpy(), _expected(drrs, "ap"), atol=1e-5
    )  # float32 file: exact up to rounding
    # a canonical image in MONAI's 2D array convention (e.g. a DRR saved by this project) loads without the
    # display conversion; MONAI's own LoadImage reads both files back as the canonical array
    canonical = drrs["la"].numpy()[0]
    files = {"nii": tmp_path / "la_canonical.nii.gz", "png": tmp_path / "la_canonical.png"}
    nib.save(nib.Nifti1Image(canonical.astype(np.float32), np.eye(4)), str(files["nii"]))
    Image.fromarray(np.ascontiguousarray(quantise(canonical).astype(np.uint16).T)).save(files["png"])
    for path in files.values():
        monai_array = np.asarray(LoadImage(image_only=True)(str(path)), dtype=np.float64)
        assert np.corrcoef(monai_array.ravel(), canonical.ravel())[0, 1] > 0.9999
        out = _load(path, "la", layout="canonical", pixel_spacing=drrs["pixel"]["la"]).numpy()
        np.testing.assert_allclose(out, _expected(drrs, "la"), atol=ATOL_16)


def test_flip_lr_and_flip_ud(tmp_path, drrs):
    display = _display(drrs, "ap")
    mirrored = write_dicom(tmp_path / "pa.dcm", display[:, ::-1], drrs["pixel"]["ap"])
    np.testing.assert_allclose(_load(mirrored, "ap", flip_lr=True).numpy(), _expected(drrs, "ap"), atol=ATOL_16)
    upside_down = write_dicom(tmp_path / "ud.dcm", display[::-1], drrs["pixel"]["ap"])
    np.testing.assert_allclose(_load(upside_down, "ap", flip_ud=True).numpy(), _expected(drrs, "ap"), atol=ATOL_16)
    assert not np.allclose(_load(mirrored, "ap").numpy(), _expected(drrs, "ap"), atol=1e-2)


@pytest.mark.parametrize(
    "view, orientation, stored",
    [
        ("ap", ("R", "F"), lambda d: d[:, ::-1]),  # e.g. a PA stored as acquired
        ("ap", ("F", "L"), lambda d: d.T),  # rotated by 90 degrees
        ("la", ("A", "H"), lambda d: d[::-1, ::-1]),  # a lateral facing right, upside down
        ("la", ("P", "F"), lambda d: d),  # already in display layout
    ],
)
def test_patient_orientation(tmp_path, drrs, view, orientation, stored):
    path = write_dicom(tmp_path / "o.dcm", stored(_display(drrs, view)), drrs["pixel"][view], orientation=orientation)
    out = _load(path, view, use_patient_orientation=True)
    np.testing.assert_allclose(out.numpy(), _expected(drrs, view), atol=ATOL_16)


def test_padding_and_crop_keep_the_centre(tmp_path, drrs):
    display = _display(drrs, "ap")
    canvas = np.full((SIZE + 10, SIZE + 6), display.min())
    canvas[5 : 5 + SIZE, 3 : 3 + SIZE] = display
    path = write_dicom(tmp_path / "big.dcm", canvas, drrs["pixel"]["ap"])
    np.testing.assert_allclose(_load(path, "ap").numpy(), _expected(drrs, "ap"), atol=ATOL_16)
    small = display[4:-4, 2:-2]  # padded with its minimum, centred: 4 rows and 2 columns on each side
    image = MetaTensor(
        torch.as_tensor(small.T, dtype=torch.float32)[None],
        meta={"pixel_spacing": (1.0, 1.0), "pixel_spacing_source": "x"},
    )
    out = XrayToDetector("ap", img_size=SIZE, spacing=0.9)(image)  # detector pixel 0.9 * 1000 / 900 = 1 mm
    padded = canonical_to_display(out.as_tensor(), "ap")[0].numpy()
    np.testing.assert_allclose(padded[4:-4, 2:-2], small, atol=1e-5)  # float32 copy
    assert np.all(padded[:4] == np.float32(small.min())) and np.all(padded[:, :2] == np.float32(small.min()))


def test_resampling_geometry():
    """A dot 20 mm right of and 12 mm below the image centre lands 20/12 mm from the detector centre."""
    fine, size = 0.25, 64
    image = np.zeros((400, 300))
    r0, c0 = (400 - 1) / 2 + 12 / fine, (300 - 1) / 2 + 20 / fine
    image[int(r0) - 2 : int(r0) + 3, int(c0) - 2 : int(c0) + 3] = 1.0
    loaded = MetaTensor(
        torch.as_tensor(image.T, dtype=torch.float32)[None],
        meta={"pixel_spacing": (fine, fine), "pixel_spacing_source": "x"},
    )
    out = XrayToDetector("ap", img_size=size, spacing=0.9, field_range=(0.1, 10))(loaded)  # 1 mm detector pixels
    display = canonical_to_display(out.as_tensor(), "ap")[0].numpy()
    peak = np.unravel_index(np.argmax(display), display.shape)
    assert abs(peak[0] - ((size - 1) / 2 + 12)) <= 1 and abs(peak[1] - ((size - 1) / 2 + 20)) <= 1


def test_centre_square_without_spacing(tmp_path, drrs):
    display = _display(drrs, "la")
    big = np.kron(display, np.ones((2, 2)))
    big = np.concatenate([np.full((16, big.shape[1]), display.min()), big, np.full((16, big.shape[1]), display.min())])
    out = _load(write_png(tmp_path / "la.png", big), "la")
    assert out.meta["resampling"] == "centre_square" and out.meta["pixel_spacing_source"] == "none"
    # the 2x upsampled copy shrunk back with anti-aliasing: close to, not equal to, the original
    assert np.corrcoef(out.numpy().ravel(), _expected(drrs, "la").ravel())[0, 1] > 0.98


def test_loadxrayd_messages(tmp_path, drrs):
    files = {v: str(write_dicom(tmp_path / f"{v}.dcm", _display(drrs, v), drrs["pixel"][v])) for v in ("ap", "la")}
    loader = LoadXrayd(keys=["xray_ap", "xray_la"])
    out = loader({"xray_ap": files["ap"], "xray_la": files["la"]})
    assert out["xray_ap"].shape == (1, SIZE, SIZE) and out["xray_ap"].meta["view"] == "ap"
    with pytest.raises(ValueError, match=r"Missing view: no LA radiograph given \(key 'xray_la'\)"):
        loader({"xray_ap": files["ap"], "xray_la": ""})
    with pytest.raises(
        ValueError, match=rf"^LA radiograph: Cannot read '{tmp_path / 'nope.dcm'}' as a radiograph: no such file"
    ):
        loader({"xray_ap": files["ap"], "xray_la": str(tmp_path / "nope.dcm")})
    partial = LoadXrayd(keys=["xray_ap", "xray_la"], allow_missing_keys=True)({"xray_ap": files["ap"]})
    assert "xray_la" not in partial and partial["xray_ap"].shape == (1, SIZE, SIZE)


@pytest.mark.parametrize(
    "spacing, message",
    [
        ((0.0, 0.0), "ImagerPixelSpacing 0\\\\0 is not a positive pixel spacing"),
        ((-0.2, -0.2), "is not a positive"),
        ((40.0, 40.0), "the pixel spacing looks wrong"),
        ((0.4, 0.4), "the pixel spacing looks wrong"),
    ],
)
def test_implausible_spacing_is_refused(tmp_path, drrs, spacing, message):
    """Detector field 32 x 4.44 = 142 mm; 32 pixels of 40 mm (9x) or of 0.4 mm (0.09x) are outside (0.25, 6)."""
    path = write_dicom(tmp_path / "ap.dcm", _display(drrs, "ap"), spacing)
    with pytest.raises(ValueError, match=message) as err:
        _load(path, "ap")
    assert f"AP radiograph '{path}'" in str(err.value)


ILL_CASES = [
    ({"view": "pa"}, "view must be one of"),
    ({"view": "ap", "spacing": 0}, "spacing must be > 0"),
    ({"view": "ap", "img_size": 0}, "img_size must be"),
    ({"view": "ap", "sdd": 100, "sad": 200}, "sad <= sdd"),
    ({"view": "ap", "pixel_spacing": -1}, "pixel_spacing of the AP view must be > 0"),
    ({"view": "ap", "layout": "viewer"}, "layout must be one of"),
    ({"view": "ap", "field_range": (2, 1)}, "field_range must be"),
]


@pytest.mark.parametrize("kwargs, message", ILL_CASES)
def test_ill_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        XrayToDetector(**kwargs)
    with pytest.raises(ValueError, match="cannot tell the view of key"):
        LoadXrayd(keys="image")


def test_detector_spacing_from_constants():
    from xctrs_monai.constants import AP_SAD, AP_SDD, DEFAULT_SPACING, LA_SAD, LA_SDD

    assert XrayToDetector("ap").detector_spacing == pytest.approx(DEFAULT_SPACING * AP_SDD / AP_SAD)
    assert XrayToDetector("la").detector_spacing == pytest.approx(DEFAULT_SPACING * LA_SDD / LA_SAD)
    assert Path(__file__).name == "test_load_xray.py"

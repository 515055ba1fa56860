# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""XrayReader: DICOM grey values against hand-computed ones, MONAI's 2D convention, registration with LoadImage."""

from __future__ import annotations

import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from monai.data import PILReader
from monai.transforms import LoadImage, LoadImaged
from PIL import Image

from xctrs_monai.data import XrayReader

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "transforms"))
from xray_files import write_dicom, write_nifti, write_png  # noqa: E402

# stored values 0, 1000, ..., 4000 along the columns of every row
STORED = np.tile(np.arange(0, 4001, 1000, dtype=np.uint16), (3, 1))


def _read(path, **kwargs) -> tuple[np.ndarray, dict]:
    reader = XrayReader(**kwargs)
    return reader.get_data(reader.read(path))


def _scaled(x: np.ndarray) -> np.ndarray:
    return (x - x.min()) / (x.max() - x.min())


def test_monochrome1_window_then_inversion(tmp_path):
    """DICOM PS3.3 C.11.2.1.2 linear window, c = 2000, w = 2001: below 999.5 -> 0, above 2999.5 -> 1, else
    (x - 1999.5) / 2000 + 0.5; MONOCHROME1 then inverts the windowed value."""
    path = write_dicom(tmp_path / "m1.dcm", None, 0.2, "MONOCHROME1", window=(2000, 2001), stored=STORED)
    display, meta = _read(path, reverse_indexing=False)
    window = np.clip((STORED[0] - 1999.5) / 2000 + 0.5, 0.0, 1.0)  # 0, 0.00025, 0.50025, 1, 1
    # 1e-6: the window output is a float of 16-bit range, rescaled to [0, 1] here
    np.testing.assert_allclose(_scaled(display)[0], 1.0 - window, atol=1e-6)
    assert meta["voi_applied"] and meta["photometric_interpretation"] == "MONOCHROME1"
    # inverting the stored values before the window would give 1 - window(4000 - x) = (0.99975, 1, ...)
    assert not np.allclose(_scaled(display)[0], 1.0 - np.clip((4000 - STORED[0] - 1999.5) / 2000 + 0.5, 0, 1), atol=0.1)
    raw, meta = _read(path, reverse_indexing=False, apply_voi=False)
    np.testing.assert_allclose(_scaled(raw)[0], [1.0, 0.75, 0.5, 0.25, 0.0])  # inverted stored values, exact
    assert not meta["voi_applied"]


def test_monochrome1_voi_lut_then_inversion(tmp_path):
    """VOI LUT: first mapped value 0, entry i = (i // 1000)^2 * 100 -> 0, 100, 400, 900, 1600 for the stored
    values; MONOCHROME1 then inverts: 1600 + 0 - v."""
    table = [(i // 1000) ** 2 * 100 for i in range(4001)]
    path = write_dicom(tmp_path / "lut.dcm", None, 0.2, "MONOCHROME1", voi_lut=(0, 16, table), stored=STORED)
    display, _ = _read(path, reverse_indexing=False)
    np.testing.assert_array_equal(display[0], [1600.0, 1500.0, 1200.0, 700.0, 0.0])
    # inversion before the LUT: LUT[4000 - x] = 1600, 900, 400, 100, 0
    assert not np.array_equal(display[0], [1600.0, 900.0, 400.0, 100.0, 0.0])


def test_rescale_and_monochrome2(tmp_path):
    path = write_dicom(tmp_path / "m2.dcm", None, 0.2, slope=0.5, intercept=-100.0, stored=STORED)
    display, meta = _read(path, reverse_indexing=False)
    np.testing.assert_array_equal(display[0], 0.5 * STORED[0] - 100.0)  # modality LUT, exact
    assert meta["modality"] == "DX" and meta["pixel_spacing_source"] == "ImagerPixelSpacing"


def test_monai_2d_convention_and_spacing(tmp_path):
    """Array axis 0 runs along the columns (as MONAI's PILReader and PydicomReader return it); the affine
    holds the column spacing on axis 0 and the row spacing on axis 1 (DICOM spacing is row, column)."""
    image = np.arange(12.0).reshape(3, 4)
    path = write_dicom(tmp_path / "a.dcm", image, (0.2, 0.1), stored=image)
    array, meta = _read(path)
    assert array.shape == (4, 3) and np.array_equal(array, image.T)
    np.testing.assert_allclose(np.diag(meta["affine"]), [0.1, 0.2, 1.0])
    assert meta["pixel_spacing"] == (0.2, 0.1) and meta["rows"] == 3 and meta["columns"] == 4
    png = write_png(tmp_path / "a.png", image, 16)
    ours, _ = _read(png)
    theirs, _ = PILReader().get_data(PILReader().read(str(png)))
    np.testing.assert_array_equal(ours, theirs)  # the same array as MONAI's own PNG reader


def test_spacing_tags(tmp_path):
    image = np.arange(12.0).reshape(3, 4)
    _, meta = _read(write_dicom(tmp_path / "p.dcm", image, 0.3, spacing_tag="PixelSpacing"))
    assert meta["pixel_spacing"] == (0.3, 0.3) and meta["pixel_spacing_source"] == "PixelSpacing"
    _, meta = _read(write_dicom(tmp_path / "z.dcm", image, 0.0))
    # an invalid spacing is reported as written (quality control refuses it), the affine stays the identity
    assert meta["pixel_spacing"] == (0.0, 0.0) and meta["pixel_spacing_source"] == "ImagerPixelSpacing"
    np.testing.assert_array_equal(meta["affine"], np.eye(3))
    _, meta = _read(write_dicom(tmp_path / "n.dcm", image))
    assert meta["pixel_spacing_source"] == "none"


@pytest.mark.parametrize("bits, rgb", [(8, False), (16, False), (8, True)])
def test_png_bit_depths(tmp_path, bits, rgb):
    image = np.linspace(0.0, 1.0, 20).reshape(4, 5)
    display, meta = _read(write_png(tmp_path / "x.png", image, bits, rgb), reverse_indexing=False)
    top = 255 if bits == 8 else 65535
    np.testing.assert_array_equal(display, np.round(image * top))
    assert meta["pixel_spacing_source"] == "none" and meta["pixel_spacing"] == (0.0, 0.0)


def test_nifti_2d(tmp_path):
    image = np.arange(12.0).reshape(3, 4)
    display, meta = _read(write_nifti(tmp_path / "x.nii.gz", image, 0.25), reverse_indexing=False)
    np.testing.assert_array_equal(display, image)
    assert meta["pixel_spacing"] == (0.25, 0.25) and meta["pixel_spacing_source"] == "pixdim"


def test_registered_with_loadimage(tmp_path):
    image = np.arange(12.0).reshape(3, 4)
    path = str(write_dicom(tmp_path / "a.dcm", image, 0.2, "MONOCHROME1", stored=image))
    out = LoadImaged(keys="x", reader="XrayReader", ensure_channel_first=True)({"x": path})["x"]
    assert out.shape == (1, 4, 3) and out.meta["pixel_spacing_source"] == "ImagerPixelSpacing"
    np.testing.assert_array_equal(out[0].numpy(), (11.0 - image).T)  # MONOCHROME1: max + min - x
    # automatic choice unchanged: a PNG still goes to MONAI's PIL reader, which reports the PIL format name
    png = str(write_png(tmp_path / "a.png", image, 8))
    assert LoadImage(image_only=True)(png).meta["format"] == "PNG"


def test_same_pixels_same_hash(tmp_path):
    image = np.arange(12.0).reshape(3, 4)
    a = _read(write_dicom(tmp_path / "a.dcm", image, 0.2, stored=image))[1]["pixel_sha256"]
    b = _read(write_dicom(tmp_path / "b.dcm", image, 0.4, view_position="LL", stored=image))[1]["pixel_sha256"]
    c = _read(write_dicom(tmp_path / "c.dcm", image, 0.2, stored=image + 1))[1]["pixel_sha256"]
    assert a == b != c


def _bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    image = np.random.default_rng(0).random((8, 8))
    garbage = tmp_path / "garbage.dcm"
    garbage.write_bytes(b"\x00\x01not a dicom at all" * 10)
    truncated = tmp_path / "truncated.dcm"
    truncated.write_bytes(write_dicom(tmp_path / "full.dcm", image, 0.2).read_bytes()[:-60])
    text_png = tmp_path / "text.png"
    text_png.write_text("hello")
    volume = tmp_path / "volume.nii.gz"
    nib.save(nib.Nifti1Image(np.random.rand(8, 8, 8).astype(np.float32), np.eye(4)), str(volume))
    nan = tmp_path / "nan.nii.gz"
    values = image.astype(np.float32)
    values[2, 3] = np.nan
    nib.save(nib.Nifti1Image(values, np.eye(4)), str(nan))
    constant = tmp_path / "constant.png"
    Image.fromarray(np.full((20, 20), 7, dtype=np.uint8)).save(constant)
    return {
        "missing": (tmp_path / "nope.dcm", "no such file"),
        "folder": (tmp_path, "not a file"),
        "garbage": (garbage, "not a DICOM file"),
        "truncated": (truncated, "Cannot read"),
        "text_png": (text_png, "UnidentifiedImageError"),
        "volume": (volume, "not a 2D radiograph"),
        "multiframe": (write_dicom(tmp_path / "multi.dcm", image, 0.2, frames=3), "multi-frame"),
        "nan": (nan, "NaN or infinite"),
        "constant": (constant, "all-constant"),
    }


@pytest.mark.parametrize(
    "case", ["missing", "folder", "garbage", "truncated", "text_png", "volume", "multiframe", "nan", "constant"]
)
def test_bad_files_name_the_file(tmp_path, case):
    path, message = _bad_files(tmp_path)[case]
    with pytest.raises(ValueError, match=message) as err:
        XrayReader().read(path)
    assert f"'{path}'" in str(err.value) and "\n" not in str(err.value)

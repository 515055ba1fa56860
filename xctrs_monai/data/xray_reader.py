# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Radiographs as a MONAI :class:`~monai.data.ImageReader`: DICOM DX/CR, 8/16-bit PNG/JPEG/TIFF, 2D NIfTI.

``XrayReader`` gives the grey values a viewer would see (DICOM modality LUT, then the VOI LUT or window,
then MONOCHROME1 inverted so that bright means attenuating) in MONAI's 2D array convention (array axis 0
runs along the image columns, axis 1 along the rows, as ``PILReader`` and ``PydicomReader`` return them),
with the pixel spacing at the detector in the affine and the DICOM fields that quality control needs
(modality, view position, patient orientation) in the metadata. Importing :mod:`xctrs_monai.data`
registers it with ``LoadImage``, so ``LoadImaged(keys="xray_ap", reader="XrayReader")`` works in any config.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from monai.config import PathLike
from monai.data import ImageReader
from monai.data.utils import is_supported_format
from monai.transforms.io.array import SUPPORTED_READERS
from monai.utils import MetaKeys, ensure_tuple

__all__ = ["XrayImage", "XrayReader", "DICOM_SUFFIXES", "PIL_SUFFIXES", "NIFTI_SUFFIXES"]

DICOM_SUFFIXES = ("dcm", "dicom")
PIL_SUFFIXES = ("png", "jpg", "jpeg", "tif", "tiff", "bmp")
NIFTI_SUFFIXES = ("nii", "nii.gz")


@dataclass
class XrayImage:
    """A radiograph as read: ``display`` is ``[rows, cols]`` float64 (a viewer's layout), ``meta`` its fields."""

    display: np.ndarray
    meta: dict = field(default_factory=dict)


def _to_grey(arr: np.ndarray) -> np.ndarray:
    """Colour ``[..., H, W, C]`` to grey: identical channels are kept exactly, otherwise ITU-R BT.601 luma."""
    if arr.shape[-1] == 4:  # RGBA: drop alpha
        arr = arr[..., :3]
    if arr.shape[-1] == 2:  # grey + alpha
        return arr[..., 0]
    if arr.shape[-1] != 3:
        raise ValueError(f"its pixel data has shape {tuple(arr.shape)}, expected grey or RGB")
    if np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2]):
        return arr[..., 0]
    return arr.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def _spacing_tag(ds, tag: str) -> tuple[float, float] | None:
    """``(row, col)`` spacing of a DICOM tag as written (possibly 0 or negative: quality control judges it)."""
    value = ds.get(tag)
    if value is None:
        return None
    try:
        values = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"its {tag} {value!r} is not a pair of numbers") from None
    if len(values) != 2:
        raise ValueError(f"its {tag} {list(values)} is not a pair (row, column) of numbers")
    return values


def _read_dicom(path: Path, apply_voi: bool) -> XrayImage:
    import pydicom
    from pydicom.errors import InvalidDicomError
    try:
        from pydicom.pixels import apply_modality_lut, apply_voi_lut
    except ImportError:  # pydicom 2 (pyproject allows >= 2.4; the MONAI Label environment pins 2.4.4)
        from pydicom.pixel_data_handlers.util import apply_modality_lut, apply_voi_lut

    try:
        ds = pydicom.dcmread(path)
    except InvalidDicomError:  # no preamble: some writers omit it
        ds = pydicom.dcmread(path, force=True)
        if "PixelData" not in ds:
            raise ValueError("it is not a DICOM file (no DICOM preamble, no pixel data)") from None
    if "PixelData" not in ds:
        raise ValueError("the DICOM file has no pixel data")
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        raise ValueError(f"it is a multi-frame DICOM ({frames} frames); give one radiograph per file")
    raw = ds.pixel_array
    if int(ds.get("SamplesPerPixel", 1) or 1) > 1:
        raw = _to_grey(raw)
    if raw.ndim != 2:
        raise ValueError(f"its pixel data has shape {tuple(raw.shape)}, expected a single 2D frame")
    arr = apply_modality_lut(raw, ds)
    has_voi = "VOILUTSequence" in ds or "WindowCenter" in ds
    if apply_voi and has_voi:
        arr = apply_voi_lut(arr, ds)
    arr = np.asarray(arr, dtype=np.float64)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    if photometric == "MONOCHROME1":
        # after the VOI LUT (DICOM PS3.3 C.7.6.3.1.2: MONOCHROME1 applies to the VOI output); an affine
        # inversion, as only the grey-level order matters after the per-image normalisation
        arr = float(np.nanmax(arr)) + float(np.nanmin(arr)) - arr
    spacing, source = None, "none"
    for tag in ("ImagerPixelSpacing", "PixelSpacing"):
        spacing = _spacing_tag(ds, tag)
        if spacing is not None:
            source = tag
            break
    meta = {
        "format": "dicom",
        "modality": str(ds.get("Modality", "")),
        "view_position": str(ds.get("ViewPosition", "")),
        "patient_orientation": "\\".join(str(v) for v in (ds.get("PatientOrientation") or [])),
        "photometric_interpretation": photometric,
        "voi_applied": bool(apply_voi and has_voi),
        "pixel_spacing": spacing,
        "pixel_spacing_source": source,
        "pixel_sha256": hashlib.sha256(np.ascontiguousarray(raw).tobytes()).hexdigest(),
    }
    return XrayImage(arr, meta)


def _read_pil(path: Path) -> XrayImage:
    from PIL import Image

    with Image.open(path) as im:
        frames = int(getattr(im, "n_frames", 1))
        if frames > 1:
            raise ValueError(f"it is a multi-frame image ({frames} frames); give one radiograph per file")
        mode = im.mode
        if mode in ("P", "PA", "1"):
            im = im.convert("RGB" if mode != "1" else "L")
        arr = np.asarray(im)
    sha = hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()
    if arr.ndim == 3:
        arr = _to_grey(arr)
    meta = {"format": "pil", "mode": mode, "pixel_spacing": None, "pixel_spacing_source": "none", "pixel_sha256": sha}
    return XrayImage(np.asarray(arr, dtype=np.float64), meta)


def _read_nifti(path: Path) -> XrayImage:
    import nibabel as nib

    img = nib.load(str(path))
    data = np.asarray(img.dataobj, dtype=np.float64)
    zooms = tuple(float(z) for z in img.header.get_zooms()[: data.ndim])
    keep = [i for i, n in enumerate(data.shape) if n > 1]
    if len(keep) != 2:
        raise ValueError(f"it holds an image of shape {tuple(data.shape)}, not a 2D radiograph (a 3D volume?)")
    data = data.reshape([data.shape[i] for i in keep])
    # MONAI/ITK 2D convention: array axis 0 runs along the columns, axis 1 along the rows; a 1 x 1 pixdim
    # is nibabel's placeholder and means unknown
    spacing = (zooms[keep[1]], zooms[keep[0]])
    known = spacing != (1.0, 1.0)
    meta = {
        "format": "nifti",
        "pixel_spacing": spacing if known else None,
        "pixel_spacing_source": "pixdim" if known else "none",
        "pixel_sha256": hashlib.sha256(np.ascontiguousarray(data).tobytes()).hexdigest(),
    }
    return XrayImage(data.T, meta)


def _kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(tuple(f".{s}" for s in NIFTI_SUFFIXES)):
        return "nifti"
    if name.endswith(tuple(f".{s}" for s in PIL_SUFFIXES)):
        return "pil"
    return "dicom"  # .dcm, .dicom, or no suffix (DICOM files often have none)


class XrayReader(ImageReader):
    """Read single-frame radiographs as a viewer sees them, in MONAI's 2D array convention.

    DICOM (DX, CR, ... any single-frame image): the modality LUT (RescaleSlope/RescaleIntercept), then
    the VOI LUT or window when present and ``apply_voi``, then MONOCHROME1 inverted to MONOCHROME2. The
    pixel spacing at the detector comes from ImagerPixelSpacing, else PixelSpacing (taken to be at the
    detector as well, as for CR). PNG/JPEG/TIFF/BMP (8 or 16 bit, grey or colour, colour made grey)
    carry no spacing. A 2D NIfTI follows the MONAI/ITK 2D convention; its ``pixdim`` is the spacing
    unless it is nibabel's placeholder 1 x 1.

    The array of :meth:`get_data` is ``[cols, rows]`` (``reverse_indexing=True``, like ``PILReader``) or
    ``[rows, cols]``. Its metadata holds MONAI's ``affine``/``original_affine`` (2D, the detector pixel
    spacing along each array axis; identity when unknown), ``spatial_shape``, ``original_channel_dim``
    (no channel), and ``pixel_spacing`` (``(row, col)`` mm as the file says, ``(0, 0)`` when unknown),
    ``pixel_spacing_source`` (``"ImagerPixelSpacing"``, ``"PixelSpacing"``, ``"pixdim"`` or ``"none"``),
    ``modality``, ``view_position``, ``patient_orientation`` (DICOM, else ``""``), ``format``,
    ``pixel_sha256`` (hash of the stored pixels, to spot the same image given twice), ``rows``, ``columns``.

    Args:
        apply_voi: apply a DICOM VOI LUT / window when the file has one. Defaults to ``True``.
        reverse_indexing: MONAI's 2D convention (array axis 0 along the columns). Defaults to ``True``.

    Raises:
        ValueError: from :meth:`read` / :meth:`get_data`, naming the file, when it is missing, cannot be
            decoded, is a 3D volume or multi-frame, or has no finite or no varying pixels.
    """

    def __init__(self, apply_voi: bool = True, reverse_indexing: bool = True) -> None:
        super().__init__()
        self.apply_voi = bool(apply_voi)
        self.reverse_indexing = bool(reverse_indexing)

    def verify_suffix(self, filename: Sequence[PathLike] | PathLike) -> bool:
        """Whether every file has a radiograph suffix (DICOM, PNG/JPEG/TIFF/BMP or NIfTI)."""
        return is_supported_format(filename, [*DICOM_SUFFIXES, *PIL_SUFFIXES, *NIFTI_SUFFIXES])

    def read(self, data: Sequence[PathLike] | PathLike, **kwargs) -> XrayImage | list[XrayImage]:
        """Read one radiograph file (or a list of them) into :class:`XrayImage` objects.

        Raises:
            ValueError: ``"Cannot read '<file>' as a radiograph: <reason>"``.
        """
        images = []
        for name in ensure_tuple(data):
            path = Path(name)
            try:
                if not path.is_file():
                    raise ValueError("no such file" if not path.exists() else "it is not a file")
                kind = _kind(path)
                image = {"dicom": _read_dicom, "pil": _read_pil, "nifti": _read_nifti}[kind](
                    path, *((self.apply_voi,) if kind == "dicom" else ())
                )
            except ValueError as e:
                raise ValueError(f"Cannot read '{path}' as a radiograph: {e}.") from None
            except Exception as e:  # any decoder failure: truncated, unsupported encoding, not an image
                raise ValueError(f"Cannot read '{path}' as a radiograph: {type(e).__name__}: {e}") from None
            _check_values(image.display, path)
            image.meta["filename_or_obj"] = str(path)
            images.append(image)
        return images if len(images) > 1 else images[0]

    def get_data(self, img: XrayImage | Sequence[XrayImage]) -> tuple[np.ndarray, dict]:
        """``(array, meta)`` of one radiograph (several are stacked on a new first axis, with the first one's meta)."""
        arrays, meta = [], {}
        for i, image in enumerate(ensure_tuple(img)):
            rows, cols = image.display.shape
            spacing = image.meta.get("pixel_spacing")
            known = spacing is not None and all(np.isfinite(s) and s > 0 for s in spacing)
            row_sp, col_sp = (float(spacing[0]), float(spacing[1])) if known else (1.0, 1.0)
            array = image.display.T if self.reverse_indexing else image.display
            axis_spacing = (col_sp, row_sp) if self.reverse_indexing else (row_sp, col_sp)
            arrays.append(np.ascontiguousarray(array))
            if i == 0:
                affine = np.diag([*axis_spacing, 1.0])
                meta = dict(image.meta)
                meta.update(
                    {
                        "pixel_spacing": tuple(float(s) for s in spacing) if spacing is not None else (0.0, 0.0),
                        "rows": rows,
                        "columns": cols,
                        MetaKeys.AFFINE: affine,
                        MetaKeys.ORIGINAL_AFFINE: affine.copy(),
                        MetaKeys.SPATIAL_SHAPE: np.asarray(array.shape),
                        MetaKeys.ORIGINAL_CHANNEL_DIM: float("nan"),
                    }
                )
                for key in ("modality", "view_position", "patient_orientation"):
                    meta.setdefault(key, "")
        if len(arrays) > 1:
            meta[MetaKeys.ORIGINAL_CHANNEL_DIM] = 0
            return np.stack(arrays), meta
        return arrays[0], meta


def _check_values(image: np.ndarray, path: Path) -> None:
    if not np.all(np.isfinite(image)):
        bad = int(np.sum(~np.isfinite(image)))
        raise ValueError(f"Cannot use '{path}' as a radiograph: {bad} of its pixels are NaN or infinite.")
    if image.size == 0 or float(np.ptp(image)) == 0.0:
        value = image.flat[0] if image.size else "n/a"
        raise ValueError(f"Cannot use '{path}' as a radiograph: it is all-constant (every pixel is {value}).")


def _register() -> None:
    """Make ``reader="XrayReader"`` known to ``LoadImage`` without changing its automatic choice of reader.

    ``LoadImage`` tries its readers from the last registered to the first and looks bare names up in
    ``monai.transforms.io.array.SUPPORTED_READERS`` (which MONAI documents as the place for user readers);
    the entry goes first, so files that another reader claims by suffix still go to that reader.
    """
    if "xrayreader" not in SUPPORTED_READERS:
        others = list(SUPPORTED_READERS.items())
        SUPPORTED_READERS.clear()
        SUPPORTED_READERS.update({"xrayreader": XrayReader, **dict(others)})


_register()

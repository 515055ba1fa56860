# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Reading real radiographs (DICOM, PNG/JPEG, 2D NIfTI) onto the network's canonical detector grid.

A radiograph is read in *display* layout (superior at the top, rows top to bottom, columns left to
right as a viewer sees it), converted to the grey values a viewer would see (DICOM modality LUT,
VOI LUT / window, MONOCHROME1 inverted to MONOCHROME2), resampled so that one pixel equals one
pixel of the training DRR detector, turned into the canonical layout of DESIGN.md with the shared
:func:`~xctrs_monai.transforms.xray.display_to_canonical` and normalised with the shared
:class:`~xctrs_monai.transforms.xray.NormalizeXray`, so that a real radiograph and a DRR of the
same anatomy give the same network input.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from monai.config import KeysCollection, PathLike
from monai.data import MetaTensor
from monai.transforms import MapTransform, Transform
from monai.utils import ensure_tuple_rep

from xctrs_monai.transforms.xray import NormalizeXray, display_to_canonical

__all__ = [
    "DEFAULT_GEOMETRY",
    "read_radiograph",
    "resample_to_detector",
    "centre_square_resize",
    "DISPLAY_ORIENTATION",
    "orient_to_display",
    "LoadXray",
    "LoadXrayd",
]

#: Source-to-detector and source-to-isocenter distances (mm) per view, as in DESIGN.md.
DEFAULT_GEOMETRY: dict[str, tuple[float, float]] = {"ap": (1000.0, 900.0), "la": (1500.0, 1350.0)}

_PIL_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif")
_NIFTI_SUFFIXES = (".nii", ".nii.gz")
_READERS = ("dicom", "pil", "nifti")
_LAYOUTS = ("display", "canonical")


def _guess_reader(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(_NIFTI_SUFFIXES):
        return "nifti"
    if name.endswith(_PIL_SUFFIXES):
        return "pil"
    from pydicom.misc import is_dicom

    if is_dicom(path) or name.endswith((".dcm", ".dicom")):
        return "dicom"
    return "pil"


def _read_dicom(path: Path, apply_voi: bool) -> tuple[np.ndarray, dict]:
    import pydicom
    from pydicom.errors import InvalidDicomError
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    try:
        ds = pydicom.dcmread(path)
    except InvalidDicomError:  # no preamble: some writers omit it
        ds = pydicom.dcmread(path, force=True)
        if "PixelData" not in ds:
            raise InvalidDicomError("not a DICOM file (no DICOM preamble, no pixel data)") from None
    if "PixelData" not in ds:
        raise ValueError("the DICOM file has no pixel data")
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        raise ValueError(f"it is a multi-frame DICOM ({frames} frames); give one radiograph per file")
    arr = ds.pixel_array
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if samples > 1:
        arr = _to_grey(arr)
    if arr.ndim != 2:
        raise ValueError(f"its pixel data has shape {tuple(arr.shape)}, expected a single 2D frame")
    arr = apply_modality_lut(arr, ds)
    has_voi = "VOILUTSequence" in ds or "WindowCenter" in ds
    if apply_voi and has_voi:
        arr = apply_voi_lut(arr, ds)
    arr = np.asarray(arr, dtype=np.float64)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    if photometric == "MONOCHROME1":
        # an affine inversion: only the grey-level order matters after the per-image normalisation
        arr = float(np.nanmax(arr)) + float(np.nanmin(arr)) - arr
    spacing, source = None, None
    for tag in ("ImagerPixelSpacing", "PixelSpacing"):
        value = ds.get(tag)
        if value is not None and len(value) == 2 and all(float(v) > 0 for v in value):
            spacing, source = (float(value[0]), float(value[1])), tag
            break
    meta = {
        "format": "dicom",
        "photometric_interpretation": photometric,
        "voi_applied": bool(apply_voi and has_voi),
        "view_position": str(ds.get("ViewPosition", "")),
        "patient_orientation": "\\".join(str(v) for v in (ds.get("PatientOrientation") or [])),
        "modality": str(ds.get("Modality", "")),
    }
    return arr, meta | {"pixel_spacing": spacing, "pixel_spacing_source": source}


def _to_grey(arr: np.ndarray) -> np.ndarray:
    """Colour ``[..., H, W, C]`` to grey: identical channels are kept exactly, otherwise ITU-R BT.601 luma."""
    arr = np.asarray(arr)
    if arr.shape[-1] == 4:  # RGBA: drop alpha
        arr = arr[..., :3]
    if arr.shape[-1] == 2:  # grey + alpha
        return arr[..., 0]
    if arr.shape[-1] != 3:
        raise ValueError(f"its pixel data has shape {tuple(arr.shape)}, expected grey or RGB")
    if np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2]):
        return arr[..., 0]
    return arr.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def _read_pil(path: Path) -> tuple[np.ndarray, dict]:
    from PIL import Image

    with Image.open(path) as im:
        frames = int(getattr(im, "n_frames", 1))
        if frames > 1:
            raise ValueError(f"it is a multi-frame image ({frames} frames); give one radiograph per file")
        mode = im.mode
        if mode in ("P", "PA", "1"):
            im = im.convert("RGB" if mode != "1" else "L")
        arr = np.asarray(im)
    if arr.ndim == 3:
        arr = _to_grey(arr)
    return np.asarray(arr, dtype=np.float64), {
        "format": "pil",
        "mode": mode,
        "pixel_spacing": None,
        "pixel_spacing_source": None,
    }


def _read_nifti(path: Path) -> tuple[np.ndarray, dict]:
    import nibabel as nib

    img = nib.load(str(path))
    data = np.asarray(img.dataobj, dtype=np.float64)
    zooms = tuple(float(z) for z in img.header.get_zooms()[: data.ndim])
    keep = [i for i, n in enumerate(data.shape) if n > 1]
    if len(keep) != 2:
        raise ValueError(f"it holds an image of shape {tuple(data.shape)}, not a 2D radiograph (a 3D volume?)")
    data = data.reshape([data.shape[i] for i in keep])
    # MONAI/ITK convention for 2D files: array axis 0 runs left to right (columns), axis 1 top to bottom (rows);
    # a 1 x 1 pixdim is nibabel's placeholder and is treated as unknown
    spacing = (zooms[keep[1]], zooms[keep[0]])
    has_spacing = all(z > 0 for z in spacing) and spacing != (1.0, 1.0)
    return data.T, {
        "format": "nifti",
        "pixel_spacing": spacing if has_spacing else None,
        "pixel_spacing_source": "pixdim" if has_spacing else None,
    }


def read_radiograph(filename: PathLike, reader: str | None = None, apply_voi: bool = True) -> tuple[np.ndarray, dict]:
    """Read a single-frame radiograph in display layout as a viewer would see it.

    DICOM (any single-frame image: DX, CR, ...): the modality LUT (RescaleSlope/RescaleIntercept) is
    applied, then the VOI LUT or window when present and ``apply_voi``; MONOCHROME1 is inverted so that
    bright means attenuating (MONOCHROME2). Pixel spacing is read from ImagerPixelSpacing (detector
    plane), else PixelSpacing (taken to be at the detector as well, as for CR). PNG/JPEG/TIFF (8 or 16 bit, grey or colour; colour is converted to grey)
    carry no spacing. A 2D NIfTI follows the MONAI/ITK 2D convention (array axis 0 = columns, axis 1 =
    rows) and its ``pixdim`` is used as the spacing unless it is nibabel's placeholder 1 x 1 (then unknown).

    Args:
        filename: path of the radiograph.
        reader: ``"dicom"``, ``"pil"`` or ``"nifti"``; defaults to ``None`` (guessed from the suffix and
            the DICOM preamble).
        apply_voi: apply a DICOM VOI LUT / window when the file has one. Defaults to ``True``.

    Returns:
        ``(image, meta)``: a float64 array ``[rows, cols]`` in display layout and a dict with
        ``pixel_spacing`` (``(row, col)`` mm or ``None``), ``pixel_spacing_source`` and format details.

    Raises:
        ValueError: naming the file, when it does not exist or cannot be read, is a 3D volume or
            multi-frame, has NaN/inf pixels, or is constant.
    """
    path = Path(filename)
    if reader is not None and reader not in _READERS:
        raise ValueError(f"reader must be one of {_READERS} or None, got {reader!r}.")
    if not path.is_file():
        raise ValueError(f"Radiograph file '{path}' does not exist or is not a file.")
    reader = reader or _guess_reader(path)
    try:
        if reader == "dicom":
            image, meta = _read_dicom(path, apply_voi)
        elif reader == "nifti":
            image, meta = _read_nifti(path)
        else:
            image, meta = _read_pil(path)
    except ValueError as e:
        raise ValueError(f"Cannot use '{path}' as a radiograph: {e}.") from e
    except Exception as e:  # any reader failure: unreadable, truncated, unsupported encoding
        raise ValueError(f"Cannot read radiograph '{path}' ({reader} reader): {type(e).__name__}: {e}") from e
    if not np.all(np.isfinite(image)):
        raise ValueError(f"Radiograph '{path}' has {int(np.sum(~np.isfinite(image)))} NaN or infinite pixels.")
    if image.size == 0 or float(np.ptp(image)) == 0.0:
        raise ValueError(f"Radiograph '{path}' is all-constant (every pixel is {image.flat[0] if image.size else 'n/a'}).")
    meta["original_shape"] = tuple(int(s) for s in image.shape)
    return image, meta


def resample_to_detector(
    image: np.ndarray, pixel_spacing: Sequence[float], target_spacing: float, size: int
) -> np.ndarray:
    """Resample a display-layout radiograph to a square detector grid of given pixel spacing.

    The image is rescaled by ``pixel_spacing / target_spacing`` (bilinear, anti-aliased when shrinking),
    then centre-cropped or padded with its minimum (no attenuation, as a DRR outside the CT volume) to
    ``size x size``, so that the image centre lands on the detector centre.

    Args:
        image: ``[rows, cols]`` array.
        pixel_spacing: ``(row, col)`` spacing of ``image`` in mm.
        target_spacing: detector pixel spacing in mm.
        size: detector side in pixels.

    Returns:
        ``[size, size]`` float32 array.
    """
    scale = (float(pixel_spacing[0]) / target_spacing, float(pixel_spacing[1]) / target_spacing)
    img = torch.as_tensor(np.asarray(image, dtype=np.float32))
    if not np.allclose(scale, 1.0, rtol=1e-6, atol=0.0):
        img = F.interpolate(
            img[None, None],
            scale_factor=scale,
            mode="bilinear",
            align_corners=False,
            antialias=min(scale) < 1.0,
            recompute_scale_factor=False,
        )[0, 0]
    return _centre_crop_or_pad(img.numpy(), size)


def _centre_crop_or_pad(image: np.ndarray, size: int) -> np.ndarray:
    out = np.full((size, size), float(image.min()), dtype=np.float32)
    src, dst = [], []
    for n in image.shape:
        if n >= size:
            start = (n - size) // 2
            src.append(slice(start, start + size))
            dst.append(slice(0, size))
        else:
            start = (size - n) // 2
            src.append(slice(0, n))
            dst.append(slice(start, start + n))
    out[tuple(dst)] = image[tuple(src)]
    return out


def centre_square_resize(image: np.ndarray, size: int) -> np.ndarray:
    """Crop the central square (side = the shorter image side) and resize it to ``size x size``.

    Used when the pixel spacing is unknown: the radiograph is assumed to be framed on the cervical
    spine, so the field of view is whatever the shorter side covers.

    Args:
        image: ``[rows, cols]`` array.
        size: output side in pixels.

    Returns:
        ``[size, size]`` float32 array.
    """
    side = min(image.shape)
    square = _centre_crop_or_pad(np.asarray(image, dtype=np.float32), side)
    if side == size:
        return square
    out = F.interpolate(
        torch.as_tensor(square)[None, None], size=(size, size), mode="bilinear", align_corners=False, antialias=side > size
    )
    return out[0, 0].numpy()


#: DICOM PatientOrientation (direction of the rows, direction of the columns) of each view's display layout
#: (``xctrs_monai.transforms.xray``): AP with the patient's left toward the right edge, LA with posterior
#: toward the right edge, feet toward the bottom.
DISPLAY_ORIENTATION: dict[str, tuple[str, str]] = {"ap": ("L", "F"), "la": ("P", "F")}
_OPPOSITE = {"L": "R", "R": "L", "A": "P", "P": "A", "H": "F", "F": "H"}


def orient_to_display(
    image: np.ndarray, patient_orientation: str, view: str
) -> tuple[np.ndarray, list[str]]:
    """Flip/transpose a radiograph so that its DICOM ``PatientOrientation`` matches the view's display layout.

    ``PatientOrientation`` gives the patient direction of increasing column index (along a row), then of
    increasing row index (down a column), e.g. ``"L\\F"``; only the first letter of each part (the main
    direction of an oblique) is used. The display layouts are :data:`DISPLAY_ORIENTATION`.

    Args:
        image: ``[rows, cols]`` array.
        patient_orientation: the DICOM value, parts separated by a backslash; empty means unknown.
        view: ``"ap"`` or ``"la"``.

    Returns:
        ``(image, operations)``: the re-oriented image and the operations applied, in order, from
        ``"transpose"``, ``"flip_lr"``, ``"flip_ud"`` (none when the orientation is unknown or already right).
    """
    parts = [p.strip().upper()[:1] for p in str(patient_orientation).split("\\")]
    if len(parts) != 2 or not all(p in _OPPOSITE for p in parts):
        return image, []
    along_row, down_col = parts
    want_row, want_col = DISPLAY_ORIENTATION[view]
    ops = []
    if along_row in "HF" and down_col not in "HF":
        image, along_row, down_col = image.T, down_col, along_row
        ops.append("transpose")
    if along_row == _OPPOSITE[want_row]:
        image = image[:, ::-1]
        ops.append("flip_lr")
    if down_col == _OPPOSITE[want_col]:
        image = image[::-1, :]
        ops.append("flip_ud")
    return image, ops


class LoadXray(Transform):
    """Load a radiograph file as a normalised canonical network input ``[1, N, N]``.

    Steps: :func:`read_radiograph` (display layout, DICOM LUTs, MONOCHROME1 inverted); optional
    mirroring of the display image (``flip_lr`` for a view acquired mirrored, e.g. a PA instead of an AP,
    or a right instead of a left lateral with this view's display convention; ``flip_ud`` for an image
    stored upside down); resampling to the training DRR detector, whose pixel spacing is
    ``spacing * sdd / sad`` (:func:`resample_to_detector`) when the pixel spacing is known, otherwise a
    centre square crop resized to ``N x N`` (:func:`centre_square_resize`); conversion to the canonical
    layout (AP ``[X, Z]``, LA ``[Y, Z]``) with the shared ``display_to_canonical``; the shared
    ``NormalizeXray``.

    Args:
        view: ``"ap"`` or ``"la"``.
        img_size: detector side N in pixels (the network's ``img_size``). Defaults to 128.
        spacing: voxel spacing (mm) of the training grid. Defaults to 1.0.
        sdd: source-to-detector distance (mm); defaults to ``None`` (the DESIGN.md value for ``view``).
        sad: source-to-isocenter distance (mm); defaults to ``None`` (the DESIGN.md value for ``view``).
        pixel_spacing: detector-plane pixel spacing (mm), a number or ``(row, col)``, overriding what the
            file says (use it for PNG/JPEG). Defaults to ``None``.
        flip_lr: mirror the display image left-right before the conversion. Defaults to ``False``.
        flip_ud: mirror the display image top-bottom before the conversion. Defaults to ``False``.
        use_patient_orientation: first re-orient a DICOM by its ``PatientOrientation`` tag
            (:func:`orient_to_display`); ``flip_lr``/``flip_ud`` then apply on top. Defaults to ``False``
            (the file is trusted to be in display layout, which is what viewers show).
        layout: ``"display"`` (a radiograph as viewed) or ``"canonical"`` (a canonical image as MONAI's
            ``SaveImage`` writes a ``[1, A, Z]`` tensor, e.g. a DRR saved by this project: MONAI's 2D readers
            give back the array unchanged, so no orientation conversion). Defaults to ``"display"``.
        apply_voi: apply a DICOM VOI LUT / window when present. Defaults to ``True``.
        normalize: apply the shared ``NormalizeXray``. Defaults to ``True``.
        reader: force ``"dicom"``, ``"pil"`` or ``"nifti"``. Defaults to ``None`` (guessed).

    Raises:
        ValueError: for a bad argument, or (naming the file) for an unusable file.
    """

    def __init__(
        self,
        view: str,
        img_size: int = 128,
        spacing: float = 1.0,
        sdd: float | None = None,
        sad: float | None = None,
        pixel_spacing: float | Sequence[float] | None = None,
        flip_lr: bool = False,
        flip_ud: bool = False,
        use_patient_orientation: bool = False,
        layout: str = "display",
        apply_voi: bool = True,
        normalize: bool = True,
        reader: str | None = None,
    ) -> None:
        view = str(view).lower()
        if view not in DEFAULT_GEOMETRY:
            raise ValueError(f"view must be one of {tuple(DEFAULT_GEOMETRY)}, got {view!r}.")
        if int(img_size) < 1:
            raise ValueError(f"img_size must be a positive integer, got {img_size}.")
        if float(spacing) <= 0:
            raise ValueError(f"spacing must be > 0 mm, got {spacing}.")
        sdd = DEFAULT_GEOMETRY[view][0] if sdd is None else float(sdd)
        sad = DEFAULT_GEOMETRY[view][1] if sad is None else float(sad)
        if not 0 < sad <= sdd:
            raise ValueError(f"need 0 < sad <= sdd, got sad={sad}, sdd={sdd}.")
        if pixel_spacing is not None:
            pixel_spacing = tuple(float(p) for p in ensure_tuple_rep(pixel_spacing, 2))
            if any(p <= 0 for p in pixel_spacing):
                raise ValueError(f"pixel_spacing must be > 0 mm, got {pixel_spacing}.")
        if layout not in _LAYOUTS:
            raise ValueError(f"layout must be one of {_LAYOUTS}, got {layout!r}.")
        if reader is not None and reader not in _READERS:
            raise ValueError(f"reader must be one of {_READERS} or None, got {reader!r}.")
        self.view = view
        self.img_size = int(img_size)
        self.spacing = float(spacing)
        self.sdd, self.sad = sdd, sad
        self.pixel_spacing = pixel_spacing
        self.flip_lr, self.flip_ud = bool(flip_lr), bool(flip_ud)
        self.use_patient_orientation = bool(use_patient_orientation)
        self.layout = layout
        self.apply_voi = bool(apply_voi)
        self.normalizer = NormalizeXray() if normalize else None
        self.reader = reader

    @property
    def detector_spacing(self) -> float:
        """Pixel spacing (mm) of the training DRR detector for this view: ``spacing * sdd / sad``."""
        return self.spacing * self.sdd / self.sad

    def __call__(self, filename: PathLike) -> MetaTensor:
        """
        Args:
            filename: path of the radiograph.

        Returns:
            ``[1, N, N]`` float32 MetaTensor in the canonical layout, with the radiograph's metadata
            (``filename_or_obj``, ``view``, ``pixel_spacing``, ``resampling``, ...).
        """
        image, meta = read_radiograph(filename, reader=self.reader, apply_voi=self.apply_voi)
        if self.pixel_spacing is not None:
            meta["pixel_spacing"], meta["pixel_spacing_source"] = self.pixel_spacing, "argument"
        meta["reoriented"] = ""
        if self.use_patient_orientation and meta.get("patient_orientation"):
            image, ops = orient_to_display(image, meta["patient_orientation"], self.view)
            if "transpose" in ops and meta["pixel_spacing"] is not None:
                meta["pixel_spacing"] = tuple(meta["pixel_spacing"])[::-1]
            meta["reoriented"] = ",".join(ops)
        if self.flip_lr:
            image = image[:, ::-1]
        if self.flip_ud:
            image = image[::-1, :]
        size, target = self.img_size, self.detector_spacing
        if meta["pixel_spacing"] is not None:
            image = resample_to_detector(image, meta["pixel_spacing"], target, size)
            meta["resampling"] = "detector_geometry"
        else:
            image = centre_square_resize(image, size)
            meta["resampling"] = "centre_square"
        if float(np.ptp(image)) == 0.0:
            raise ValueError(f"Radiograph '{filename}' is constant inside the {size}x{size} field of view.")
        img = torch.as_tensor(np.ascontiguousarray(image))[None]
        # "canonical" files follow MONAI's 2D IO (LoadImage/SaveImage): array axes = (file columns, file rows)
        img = display_to_canonical(img, self.view) if self.layout == "display" else img.transpose(-1, -2)
        affine = torch.diag(torch.tensor([target, target, 1.0], dtype=torch.float64))
        affine[:2, 2] = -(size - 1) / 2.0 * target
        meta.update(
            {
                "filename_or_obj": os.fspath(filename),
                "view": self.view,
                "detector_spacing": target,
                "flip_lr": self.flip_lr,
                "flip_ud": self.flip_ud,
                "original_channel_dim": "no_channel",
                "spatial_shape": (size, size),
            }
        )
        # collatable metadata (no None): an unknown spacing is stored as (0, 0) with source "none"
        meta["pixel_spacing"] = tuple(meta["pixel_spacing"] or (0.0, 0.0))
        meta["pixel_spacing_source"] = meta["pixel_spacing_source"] or "none"
        out = MetaTensor(torch.as_tensor(img, dtype=torch.float32).contiguous(), affine=affine, meta=meta)
        if self.normalizer is not None:
            out = self.normalizer(out)
        return out


class LoadXrayd(MapTransform):
    """Dictionary wrapper of :class:`LoadXray`: each key holds a path, replaced by the loaded image.

    Use one ``LoadXrayd`` per view when the views need different options (geometry, flips, spacing).

    Args:
        keys: keys of the radiograph paths, e.g. ``"ap"`` or ``("ap", "la")``.
        view: the view of each key (one value or one per key); defaults to ``None``, i.e. the key
            names themselves (``"ap"``/``"la"``).
        allow_missing_keys: don't raise for missing keys. Defaults to ``False``.
        kwargs: the other :class:`LoadXray` arguments (``img_size``, ``spacing``, ``flip_lr``, ...),
            the same for every key.

    Raises:
        ValueError: when a key (a view) is missing or empty and ``allow_missing_keys`` is ``False``.
    """

    def __init__(
        self,
        keys: KeysCollection,
        view: str | Sequence[str] | None = None,
        allow_missing_keys: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        views = [str(k) for k in self.keys] if view is None else ensure_tuple_rep(view, len(self.keys))
        self.loaders = {key: LoadXray(view=v, **kwargs) for key, v in zip(self.keys, views)}

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:
        d = dict(data)
        for key in self.keys:
            if d.get(key) is None or (isinstance(d[key], str) and not d[key].strip()):
                if self.allow_missing_keys:
                    continue
                raise ValueError(f"Missing view: no {key} radiograph given for case '{d.get('case_id', '?')}'.")
            d[key] = self.loaders[key](d[key])
        return d

# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Writers of radiograph files for the tests: DICOM DX (MONOCHROME1/2, rescale, window, VOI LUT), PNG, NIfTI."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

DX_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage - For Presentation


def quantise(image: np.ndarray, top: int = 65535) -> np.ndarray:
    """``image`` scaled linearly to the integers 0..top."""
    image = np.asarray(image, dtype=np.float64)
    return np.round((image - image.min()) / (image.max() - image.min()) * top)


def write_dicom(
    path: Path,
    image: np.ndarray,
    pixel_spacing: float | Sequence[float] | None = None,
    photometric: str = "MONOCHROME2",
    spacing_tag: str = "ImagerPixelSpacing",
    frames: int = 1,
    window: tuple[float, float] | None = None,
    slope: float = 1.0,
    intercept: float = 0.0,
    orientation: tuple[str, str] | None = None,
    modality: str = "DX",
    view_position: str | None = None,
    voi_lut: tuple[int, int, Sequence[int]] | None = None,
    stored: np.ndarray | None = None,
) -> Path:
    """Write a display-layout image ``[rows, cols]`` as a 16-bit DX DICOM and return its path.

    Values are quantised linearly to 0..65535 (or ``stored`` is written as is); MONOCHROME1 stores the
    inverted values. ``voi_lut`` is ``(first_mapped, bits, table)`` of a VOI LUT Sequence item.
    """
    q = quantise(image).astype(np.uint16) if stored is None else np.asarray(stored, dtype=np.uint16)
    if photometric == "MONOCHROME1" and stored is None:
        q = (65535 - q).astype(np.uint16)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = DX_SOP_CLASS
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = DX_SOP_CLASS, meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    if orientation is not None:
        ds.PatientOrientation = list(orientation)
    if view_position is not None:
        ds.ViewPosition = view_position
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.Rows, ds.Columns = int(q.shape[-2]), int(q.shape[-1])
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    if frames > 1:
        ds.NumberOfFrames = frames
        q = np.stack([q] * frames)
    if pixel_spacing is not None:
        values = [pixel_spacing] * 2 if np.isscalar(pixel_spacing) else list(pixel_spacing)
        setattr(ds, spacing_tag, [f"{v:.10g}" for v in values])
    if slope != 1.0 or intercept != 0.0:
        ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = f"{slope:g}", f"{intercept:g}", "US"
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = f"{window[0]:g}", f"{window[1]:g}"
    if voi_lut is not None:
        first, bits, table = voi_lut
        item = Dataset()
        item.LUTDescriptor = [len(table), first, bits]
        item.LUTData = np.asarray(table, dtype=np.uint16).tobytes()
        ds.VOILUTSequence = DicomSequence([item])
    ds.PixelData = q.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def write_png(path: Path, image: np.ndarray, bits: int = 16, rgb: bool = False) -> Path:
    """Write ``image`` quantised to 8 or 16 bits (8-bit optionally as RGB) as a PNG."""
    q = quantise(image, 255 if bits == 8 else 65535)
    im = Image.fromarray(q.astype(np.uint8 if bits == 8 else np.uint16))
    if rgb:
        im = im.convert("RGB")
    im.save(path)
    return path


def write_nifti(path: Path, display: np.ndarray, pixel_spacing: float) -> Path:
    """A display image as a 2D NIfTI in the MONAI/ITK 2D convention (array axis 0 = columns, axis 1 = rows)."""
    affine = np.diag([pixel_spacing, pixel_spacing, 1.0, 1.0])
    nib.save(nib.Nifti1Image(np.ascontiguousarray(display.T).astype(np.float32), affine), str(path))
    return path

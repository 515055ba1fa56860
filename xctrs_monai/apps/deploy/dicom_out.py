# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""DICOM outputs of the MONAI Deploy app: the reconstructed CT as a CT series in HU, and the C1..C7 label map
as a DICOM SEG that references it.

A DICOM SEG must reference the images it segments, and the radiographs are not a volume: the SEG's geometry
comes from the reconstructed CT, written first as a derived CT series (one slice per plane of the third voxel
axis) in the study of the radiographs. MONAI Deploy's ``DICOMSegmentationWriterOperator`` derives the SEG from
the *input* series, which here are the two radiographs, so the SEG is built with highdicom directly.
:func:`ct_series` needs pydicom only; :func:`vertebrae_seg` needs highdicom (the Deploy environment).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from xctrs_monai.constants import VERTEBRAE

__all__ = ["CT_SOP_CLASS", "PATIENT_STUDY_TAGS", "slice_geometry", "ct_series", "segment_codes", "vertebrae_seg"]

CT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.2"  # CT Image Storage
#: Patient and study attributes copied from the AP radiograph, so that the outputs join the radiographs' study.
PATIENT_STUDY_TAGS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyID",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "ReferringPhysicianName",
)
_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])


def slice_geometry(affine: np.ndarray, k: int) -> dict:
    """DICOM plane attributes of slice ``k`` (the third voxel axis) of an XYZ volume with a RAS ``affine`` in mm.

    A slice's pixel ``[row r, column c]`` is voxel ``(c, r, k)``: DICOM rows run along the second voxel axis and
    columns along the first. Patient coordinates are LPS (DICOM PS3.3 C.7.6.2.1.1), hence the sign flip of x, y.

    Returns:
        ``ImagePositionPatient``, ``ImageOrientationPatient``, ``PixelSpacing`` (row spacing, column spacing),
        ``SliceThickness``, as lists of floats.
    """
    m = _RAS_TO_LPS @ np.asarray(affine, dtype=np.float64)[:3, :3]
    step = np.linalg.norm(m, axis=0)
    position = _RAS_TO_LPS @ (np.asarray(affine, dtype=np.float64)[:3, :3] @ [0.0, 0.0, k] + affine[:3, 3])
    return {
        "ImagePositionPatient": [float(v) for v in position],
        "ImageOrientationPatient": [float(v) for v in np.concatenate([m[:, 0] / step[0], m[:, 1] / step[1]])],
        "PixelSpacing": [float(step[1]), float(step[0])],
        "SliceThickness": float(step[2]),
    }


def ct_series(ct_hu: np.ndarray, affine: np.ndarray, reference, series_description: str = "X-CTRSNet CT") -> list:
    """The reconstructed CT (XYZ, HU) as a derived CT series of single-frame pydicom datasets, one per XY plane.

    Args:
        ct_hu: the CT in Hounsfield units, XYZ.
        affine: its RAS voxel-to-world matrix in mm.
        reference: the AP radiograph's dataset: the patient and study attributes (:data:`PATIENT_STUDY_TAGS`)
            come from it.
        series_description: Defaults to ``"X-CTRSNet CT"``.

    Returns:
        the slices, in order of the third voxel axis; HU stored as rounded int16 (slope 1, intercept 0).

    Raises:
        ValueError: for a volume that is not 3D or an affine that is not 4x4.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ct_hu = np.asarray(ct_hu)
    if ct_hu.ndim != 3 or np.asarray(affine).shape != (4, 4):
        raise ValueError(f"ct_hu must be an XYZ volume with a 4x4 affine, got {ct_hu.shape} and {np.shape(affine)}.")
    pixels = np.clip(np.round(ct_hu), -32768, 32767).astype(np.int16)
    series_uid, frame_uid = generate_uid(), generate_uid()
    slices = []
    for k in range(ct_hu.shape[2]):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = CT_SOP_CLASS, generate_uid()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID, ds.SOPInstanceUID = CT_SOP_CLASS, ds.file_meta.MediaStorageSOPInstanceUID
        for tag in PATIENT_STUDY_TAGS:
            setattr(ds, tag, reference.get(tag, ""))
        ds.Modality, ds.ImageType = "CT", ["DERIVED", "SECONDARY", "AXIAL"]
        ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = series_uid, 901, k + 1
        ds.SeriesDescription, ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = series_description, frame_uid, ""
        ds.Manufacturer, ds.BodyPartExamined = "xctrs-monai", "CSPINE"
        for key, value in slice_geometry(affine, k).items():
            setattr(ds, key, value)
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows, ds.Columns = ct_hu.shape[1], ct_hu.shape[0]
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = 0, 1, "HU"
        ds.PixelData = np.ascontiguousarray(pixels[:, :, k].T).tobytes()
        slices.append(ds)
    return slices


def segment_codes(names: Sequence[str] = VERTEBRAE) -> list:
    """SNOMED CT codes of the vertebrae (``C1`` -> 14806007 "C1 vertebra"), from pydicom's code dictionary."""
    from pydicom.sr.codedict import codes

    return [getattr(codes.SCT, f"{name}Vertebra") for name in names]


def vertebrae_seg(labels: np.ndarray, ct_slices: Sequence, algorithm_version: str = "0.1.0"):
    """The C1..C7 label map (XYZ, 0 = background) as a DICOM SEG (highdicom) referencing ``ct_slices``.

    One segment per vertebra, numbered as the labels (1 = C1 ... 7 = C7), on the geometry of ``ct_slices``
    (:func:`ct_series` of the same affine). Needs highdicom.

    Raises:
        ValueError: when the label map and the CT series differ in shape, or labels fall outside 0..7.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    labels = np.asarray(labels)
    expected = (ct_slices[0].Columns, ct_slices[0].Rows, len(ct_slices))
    if labels.shape != expected:
        raise ValueError(f"labels have shape {labels.shape}, but the CT series is {expected} (columns, rows, slices).")
    if labels.min() < 0 or labels.max() > len(VERTEBRAE):
        raise ValueError(f"labels must be in 0..{len(VERTEBRAE)}, got {labels.min()}..{labels.max()}.")
    algorithm = hd.AlgorithmIdentificationSequence(
        name="X-CTRSNet", version=algorithm_version, family=codes.cid7162.ArtificialIntelligence
    )
    segments = [
        hd.seg.SegmentDescription(
            segment_number=i,
            segment_label=name,
            segmented_property_category=codes.SCT.AnatomicalStructure,
            segmented_property_type=code,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
        )
        for i, (name, code) in enumerate(zip(VERTEBRAE, segment_codes()), start=1)
    ]
    return hd.seg.Segmentation(
        source_images=list(ct_slices),
        pixel_array=np.ascontiguousarray(labels.transpose(2, 1, 0)).astype(np.uint8),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=segments,
        series_instance_uid=hd.UID(),
        series_number=902,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="xctrs-monai",
        manufacturer_model_name="X-CTRSNet",
        software_versions=algorithm_version,
        device_serial_number="0",
        series_description="X-CTRSNet C1-C7",
        omit_empty_frames=False,
    )

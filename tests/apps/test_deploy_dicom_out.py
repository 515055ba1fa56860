# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""The Deploy app's DICOM outputs: CT series geometry and HU against the RAS affine; the SEG (with highdicom)."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from xctrs_monai.apps.deploy import ct_series, segment_codes, slice_geometry, vertebrae_seg
from xctrs_monai.constants import VERTEBRAE

# an anisotropic, off-centre grid: a swapped axis or a missing RAS->LPS flip changes every position below
AFFINE = np.array([[2.0, 0, 0, -7.0], [0, 3.0, 0, 5.0], [0, 0, 4.0, -20.0], [0, 0, 0, 1]])
SHAPE = (5, 4, 3)  # X, Y, Z


def _reference():
    ds = Dataset()
    ds.PatientName, ds.PatientID, ds.StudyInstanceUID = "Phantom^0", "P0", pydicom.uid.generate_uid()
    ds.StudyDate, ds.StudyTime, ds.AccessionNumber, ds.StudyID = "20240101", "120000", "A1", "1"
    return ds


def test_slice_geometry_maps_pixels_to_the_affine_in_lps():
    for k in range(SHAPE[2]):
        g = slice_geometry(AFFINE, k)
        iop = np.asarray(g["ImageOrientationPatient"])
        row_spacing, col_spacing = g["PixelSpacing"]
        for c, r in ((0, 0), (4, 0), (0, 3), (4, 3)):
            # DICOM PS3.3 C.7.6.2.1.1: P = S + c * col_spacing * row_direction + r * row_spacing * column_direction
            p = np.asarray(g["ImagePositionPatient"]) + c * col_spacing * iop[:3] + r * row_spacing * iop[3:]
            ras = AFFINE @ [c, r, k, 1]
            np.testing.assert_allclose(p, [-ras[0], -ras[1], ras[2]], atol=1e-9)  # exact arithmetic
        assert g["SliceThickness"] == 4.0


def test_ct_series_round_trips_hu_through_dicom():
    ct = np.random.default_rng(0).uniform(-1000, 2000, SHAPE)
    ref = _reference()
    slices = ct_series(ct, AFFINE, ref)
    assert len(slices) == SHAPE[2] and len({s.SOPInstanceUID for s in slices}) == SHAPE[2]
    assert len({s.SeriesInstanceUID for s in slices}) == 1 and slices[0].StudyInstanceUID == ref.StudyInstanceUID
    for k, ds in enumerate(slices):
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        read = pydicom.dcmread(io.BytesIO(buffer.getvalue()))
        hu = read.pixel_array * float(read.RescaleSlope) + float(read.RescaleIntercept)
        assert hu.shape == (SHAPE[1], SHAPE[0])  # rows along Y, columns along X
        np.testing.assert_allclose(hu, ct[:, :, k].T, atol=0.5)  # stored as rounded integer HU
        assert read.PatientID == "P0" and read.Modality == "CT" and read.RescaleType == "HU"


def test_ct_series_refuses_a_2d_image():
    with pytest.raises(ValueError, match="XYZ volume"):
        ct_series(np.zeros((4, 4)), AFFINE, _reference())


def test_segment_codes_are_snomed_vertebrae():
    codes = segment_codes()
    assert [c.value for c in codes[:3]] == ["14806007", "39976000", "113205007"]  # C1, C2, C3 in SNOMED CT
    assert all(c.scheme_designator == "SCT" for c in codes) and len(codes) == len(VERTEBRAE)


def test_vertebrae_seg_frames_match_the_label_map():
    pytest.importorskip("highdicom")
    ref = _reference()
    ref.StudyInstanceUID = pydicom.uid.generate_uid()
    slices = ct_series(np.zeros(SHAPE), AFFINE, ref)
    labels = np.zeros(SHAPE, dtype=np.uint8)
    labels[1:3, 0:2, 0], labels[4, 3, 2], labels[0, 0, 1] = 2, 7, 1
    buffer = io.BytesIO()
    vertebrae_seg(labels, slices).save_as(buffer)
    seg = pydicom.dcmread(io.BytesIO(buffer.getvalue()))
    assert [s.SegmentLabel for s in seg.SegmentSequence] == list(VERTEBRAE)
    positions = {s.SOPInstanceUID: k for k, s in enumerate(slices)}
    frames = seg.pixel_array.reshape(-1, SHAPE[1], SHAPE[0])
    rebuilt = np.zeros(SHAPE, dtype=np.int64)
    for f, group in enumerate(seg.PerFrameFunctionalGroupsSequence):
        number = int(group.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        k = positions[group.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID]
        np.testing.assert_allclose(group.PlanePositionSequence[0].ImagePositionPatient, slices[k].ImagePositionPatient)
        rebuilt[:, :, k] += frames[f].T.astype(np.int64) * number
    np.testing.assert_array_equal(rebuilt, labels)
    with pytest.raises(ValueError, match="labels have shape"):
        vertebrae_seg(labels[:, :, :2], slices)

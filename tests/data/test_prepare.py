# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
from __future__ import annotations

import csv
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from xctrs_monai.constants import HU_AIR, grid_affine
from xctrs_monai.data import (
    LABEL_PRESETS,
    SourceCase,
    find_cases,
    make_phantom,
    prepare_case,
    prepare_dataset,
    resolve_label_mapping,
    save_nifti,
)

SIZE, SPACING = 64, 2.5  # output grid: 160 mm (true-scale phantoms need it)


def reorient(arr, affine, perm, flips=(), step=(1, 1, 1)):
    """Same anatomy in another voxel layout: permute/flip/subsample axes and fix the affine."""
    new = np.transpose(arr, perm)
    for d in flips:
        new = np.flip(new, d)
    p = np.zeros((4, 4))
    p[3, 3] = 1.0
    for d in range(3):
        if d in flips:
            p[perm[d], d], p[perm[d], 3] = -1.0, new.shape[d] - 1
        else:
            p[perm[d], d] = 1.0
    new = new[:: step[0], :: step[1], :: step[2]]
    return np.ascontiguousarray(new), affine @ p @ np.diag([*step, 1.0])


def world_centroids(labels, affine):
    return {k: (affine @ np.r_[np.argwhere(labels == k).mean(0), 1.0])[:3] for k in range(1, 8) if (labels == k).any()}


def write_dicom_series(folder: Path, vol_lps: np.ndarray, affine_ras: np.ndarray) -> None:
    """Write an axial CT series; ``vol_lps`` is XYZ with x -> patient left, y -> posterior, z -> superior."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True)
    sx, sy, sz = np.abs(np.diag(affine_ras)[:3])
    origin_lps = np.diag([-1.0, -1.0, 1.0]) @ affine_ras[:3, 3]
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    for k in range(vol_lps.shape[2]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.Modality, ds.PatientID, ds.PatientName, ds.SeriesNumber, ds.InstanceNumber = "CT", "P7", "Test^Neck", 1, k + 1
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [float(origin_lps[0]), float(origin_lps[1]), float(origin_lps[2] + k * sz)]
        ds.PixelSpacing, ds.SliceThickness = [float(sy), float(sx)], float(sz)
        ds.Rows, ds.Columns = vol_lps.shape[1], vol_lps.shape[0]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope = 0, 1
        ds.PixelData = np.ascontiguousarray(vol_lps[:, :, k].T).astype("<i2").tobytes()
        ds.save_as(folder / f"slice_{k:03d}.dcm", enforce_file_format=True)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A folder pair of 'real-format' cases, good and bad, plus their ground truth."""
    root = tmp_path_factory.mktemp("src")
    images, labels = root / "images", root / "labels"
    truth = {}
    ct, lab, aff = make_phantom(1, 40, 3.2)
    ct16, lab1, aff1 = np.rint(ct).astype(np.int16), lab, aff
    # LPS with anisotropic spacing (3.2, 3.2, 6.4)
    c, a = reorient(ct16, aff, (0, 1, 2), flips=(0, 1), step=(1, 1, 2))
    l, _ = reorient(lab, aff, (0, 1, 2), flips=(0, 1), step=(1, 1, 2))
    save_nifti(c, a, images / "neck01_ct.nii.gz")
    save_nifti(l, a, labels / "neck01_seg.nii.gz")
    truth["neck01"] = world_centroids(l, a)
    # PIL-like voxel order (axes permuted and flipped)
    ct, lab, aff = make_phantom(2, 40, 3.2)
    c, a = reorient(np.rint(ct).astype(np.int16), aff, (1, 2, 0), flips=(0,))
    l, _ = reorient(lab, aff, (1, 2, 0), flips=(0,))
    save_nifti(c, a, images / "neck02.nii.gz")
    save_nifti(l, a, labels / "neck02.nii.gz")
    truth["neck02"] = world_centroids(l, a)
    # DICOM series (LPS voxel order) with a NIfTI label on the same grid
    ct, lab, aff = make_phantom(3, 32, 4.0)
    c, a = reorient(np.rint(ct).astype(np.int16), aff, (0, 1, 2), flips=(0, 1))
    l, _ = reorient(lab, aff, (0, 1, 2), flips=(0, 1))
    write_dicom_series(images / "neck03", c, a)
    save_nifti(l, a, labels / "neck03_seg.nii.gz")
    truth["neck03"] = world_centroids(l, a)
    # bad cases
    (images / "bad_unreadable.nii.gz").write_bytes(b"this is not a nifti file")
    save_nifti(lab1, aff1, labels / "bad_unreadable.nii.gz")
    save_nifti(ct16[:, :, 10], aff1, images / "bad_2d.nii.gz")
    save_nifti(lab1[:, :, 10], aff1, labels / "bad_2d.nii.gz")
    save_nifti(ct16, aff1, images / "bad_nolabels.nii.gz")
    save_nifti(np.where(lab1 > 0, 20, 0).astype(np.uint8), aff1, labels / "bad_nolabels.nii.gz")
    save_nifti(ct16, aff1, images / "bad_shape.nii.gz")
    save_nifti(lab1[:-2], aff1, labels / "bad_shape.nii.gz")
    save_nifti(ct16, aff1, images / "bad_nolabelfile.nii.gz")
    return root, truth


@pytest.fixture(scope="module")
def prepared(source, tmp_path_factory):
    root, _ = source
    out = tmp_path_factory.mktemp("prepared")
    summary = prepare_dataset(out, root / "images", root / "labels", spacing=SPACING, size=SIZE, n_folds=3)
    return out, summary


def test_good_and_bad_cases_reported(prepared):
    out, summary = prepared
    assert sorted(summary["written"]) == ["neck01", "neck02", "neck03"]
    reasons = {s["case_id"]: s["reason"] for s in summary["skipped"]}
    assert reasons["bad_unreadable"].startswith("unreadable")
    assert reasons["bad_2d"].startswith("wrong dimensionality")
    assert reasons["bad_nolabels"].startswith("no cervical labels")
    assert reasons["bad_shape"].startswith("shape mismatch")
    assert reasons["bad_nolabelfile"].startswith("no label file")
    assert json.loads((out / "skipped.json").read_text()) == summary["skipped"]
    datalist = json.loads((out / "datalist.json").read_text())
    assert [i["case_id"] for i in datalist["training"]] == ["neck01", "neck02", "neck03"]
    assert sorted(i["fold"] for i in datalist["training"]) == [0, 1, 2]


@pytest.mark.parametrize("case_id", ["neck01", "neck02", "neck03"])
def test_output_on_the_grid_convention_and_in_place(prepared, source, case_id):
    """Outputs on constants.grid_affine; with the datalist's world offset, every vertebra is where it was."""
    out, _ = prepared
    img = nib.load(out / "images" / f"{case_id}.nii.gz")
    lab = nib.load(out / "labels" / f"{case_id}.nii.gz")
    assert img.shape == lab.shape == (SIZE,) * 3
    assert nib.aff2axcodes(img.affine) == ("R", "A", "S")
    np.testing.assert_allclose(img.affine, grid_affine(SIZE, SPACING), atol=1e-6)  # float32 NIfTI header
    np.testing.assert_allclose(img.affine, lab.affine)
    assert img.get_data_dtype() == np.int16 and lab.get_data_dtype() == np.uint8
    items = {i["case_id"]: i for i in json.loads((out / "datalist.json").read_text())["training"]}
    offset = np.asarray(items[case_id]["world_offset_mm"])
    labels = np.asanyarray(lab.dataobj)
    got = world_centroids(labels, lab.affine)
    want = source[1][case_id]
    assert set(got) == set(want) == set(range(1, 8))
    for k in want:
        # nearest-neighbour labels on a grid of SPACING mm: a centroid moves by well under one voxel
        np.testing.assert_allclose(got[k] + offset, want[k], atol=SPACING, err_msg=f"C{k} moved")
    # the grid centre is the C1..C7 box centre: the labelled voxels' box is centred on the grid centre
    idx = np.argwhere(labels > 0)
    np.testing.assert_allclose((idx.min(0) + idx.max(0)) / 2.0, (SIZE - 1) / 2.0, atol=1.0)  # within a voxel
    ct = np.asanyarray(img.dataobj)
    assert np.median(ct[labels > 0]) > 150 and ct.min() >= HU_AIR


def test_second_run_does_no_work(prepared, source):
    out, _ = prepared
    root, _ = source
    files = sorted(out.rglob("*.nii.gz"))
    mtimes = [f.stat().st_mtime_ns for f in files]
    summary = prepare_dataset(out, root / "images", root / "labels", spacing=SPACING, size=SIZE, n_folds=3)
    assert summary["written"] == [] and sorted(summary["done"]) == ["neck01", "neck02", "neck03"]
    assert [f.stat().st_mtime_ns for f in files] == mtimes
    assert not list(out.rglob(".*.tmp*"))
    # an interrupted run left outputs but no datalist: the world offsets are found again from the labels
    offsets = {i["case_id"]: i["world_offset_mm"] for i in json.loads((out / "datalist.json").read_text())["training"]}
    (out / "datalist.json").unlink()
    prepare_dataset(out, root / "images", root / "labels", spacing=SPACING, size=SIZE, n_folds=3)
    again = {i["case_id"]: i["world_offset_mm"] for i in json.loads((out / "datalist.json").read_text())["training"]}
    assert again == offsets and [f.stat().st_mtime_ns for f in files] == mtimes


def test_case_list_groups_patients(source, tmp_path):
    root, _ = source
    rows = [
        ("images/neck01_ct.nii.gz", "labels/neck01_seg.nii.gz", "pA", "a1"),
        ("images/neck02.nii.gz", "labels/neck02.nii.gz", "pA", "a2"),
        ("images/neck01_ct.nii.gz", "labels/neck01_seg.nii.gz", "pB", "b1"),
        ("images/neck02.nii.gz", "labels/neck02.nii.gz", "pC", "c1"),
    ]
    with (root / "cases.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", "label", "patient_id", "case_id"])
        w.writerows(rows)
    summary = prepare_dataset(tmp_path, cases=root / "cases.csv", spacing=4.0, size=32, n_folds=2)
    assert sorted(summary["written"]) == ["a1", "a2", "b1", "c1"]
    folds = {i["case_id"]: i["fold"] for i in json.loads((tmp_path / "datalist.json").read_text())["training"]}
    assert folds["a1"] == folds["a2"]
    assert sorted(folds.values()) == [0, 0, 1, 1]


@pytest.mark.parametrize("preset", sorted(LABEL_PRESETS))
def test_presets_map_to_c1_c7(preset, tmp_path):
    ct, lab, aff = make_phantom(4, 32, 4.0)
    inverse = {dst: src for src, dst in LABEL_PRESETS[preset].items()}
    src = np.zeros(lab.shape, dtype=np.uint8)
    for k in range(1, 8):
        src[lab == k] = inverse[k]
    src[(lab == 0) & (ct > 500)] = 90  # another structure, not cervical
    save_nifti(ct, aff, tmp_path / "ct.nii.gz")
    save_nifti(src, aff, tmp_path / "seg.nii.gz")
    save_nifti(lab, aff, tmp_path / "c1c7.nii.gz")
    case = SourceCase("x", tmp_path / "ct.nii.gz", tmp_path / "seg.nii.gz")
    _, out, out_aff, out_offset, _ = prepare_case(case, resolve_label_mapping(preset), spacing=4.0, size=32)
    reference = SourceCase("x", tmp_path / "ct.nii.gz", tmp_path / "c1c7.nii.gz")
    _, want, want_aff, want_offset, _ = prepare_case(reference, {k: k for k in range(1, 8)}, spacing=4.0, size=32)
    np.testing.assert_array_equal(out_aff, want_aff)
    np.testing.assert_array_equal(out_offset, want_offset)
    np.testing.assert_array_equal(out, want)
    assert set(np.unique(out).tolist()) == set(range(8))


def test_explicit_mapping():
    assert resolve_label_mapping({"50": 1, 44: 7}) == {50: 1, 44: 7}
    assert resolve_label_mapping('{"50": 1}') == {50: 1}
    assert resolve_label_mapping("TotalSeg_v2")[50] == 1 and resolve_label_mapping("totalseg_v1")[35] == 7


BAD_LABELS = [("totalseg", "totalseg"), ({50: 8}, "1..7"), ({"a": 1}, "integers"), ({}, "mapping"), ("{oops", "oops")]


@pytest.mark.parametrize("labels,match", BAD_LABELS)
def test_bad_label_arguments(labels, match):
    with pytest.raises(ValueError, match=match):
        resolve_label_mapping(labels)


def test_bad_source_arguments(tmp_path):
    with pytest.raises(ValueError, match="nowhere"):
        find_cases(tmp_path / "nowhere", tmp_path)
    with pytest.raises(ValueError, match="labels_dir"):
        find_cases(tmp_path, None)
    with pytest.raises(ValueError, match="missing.csv"):
        find_cases(cases=tmp_path / "missing.csv")
    with pytest.raises(ValueError, match="not both"):
        find_cases(tmp_path, tmp_path, cases=tmp_path / "c.csv")
    with pytest.raises(ValueError, match="spacing"):
        prepare_dataset(tmp_path, images_dir=tmp_path, labels_dir=tmp_path, spacing=0)
    with pytest.raises(ValueError, match="totalseg_v3"):
        prepare_dataset(tmp_path, images_dir=tmp_path, labels_dir=tmp_path, labels="totalseg_v3")


def test_context_margin_and_small_grid(source):
    root, _ = source
    case = SourceCase("neck02", root / "images" / "neck02.nii.gz", root / "labels" / "neck02.nii.gz")
    identity = LABEL_PRESETS["verse"]
    ct, lab, _, _, warns = prepare_case(case, identity, spacing=SPACING, size=SIZE, margin_mm=5.0, keep_context=False)
    assert warns == []
    idx = np.argwhere(lab > 0)
    lo, hi = idx.min(0) - 5.0 / SPACING - 1, idx.max(0) + 5.0 / SPACING + 1
    grid = np.indices(lab.shape).reshape(3, -1).T
    outside = np.any((grid < lo) | (grid > hi), axis=1).reshape(lab.shape)
    assert outside.any() and (ct[outside] == HU_AIR).all()
    with_context, *_ = prepare_case(case, identity, spacing=SPACING, size=SIZE, margin_mm=5.0, keep_context=True)
    assert (with_context[outside] > -900).any(), "the neck around the box is kept with keep_context"
    _, small, _, _, warns = prepare_case(case, identity, spacing=SPACING, size=16)
    assert small.shape == (16, 16, 16)
    assert any("exceeds the grid" in w for w in warns) and any("outside the grid" in w for w in warns)

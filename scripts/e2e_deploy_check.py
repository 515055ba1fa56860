# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""The checking half of ``scripts/e2e_deploy.sh``: what the MONAI Deploy app wrote for one study folder.

    python scripts/e2e_deploy_check.py outputs --out_dir OUT --img_size 32 --spacing 5 --input_dir IN
    python scripts/e2e_deploy_check.py refused --log LOG --must_say "No lateral radiograph" --must_name case0_ap.dcm

``outputs`` checks the NIfTI CT (HU window, RAS affine in mm of the reconstruction grid), the NIfTI label map
(0..7), the DICOM CT series (same HU, same geometry as the NIfTI) and the DICOM SEG (pydicom reads it; segments
C1..C7 with their SNOMED CT codes; each frame on the plane of the CT slice it references; its masks equal to the
NIfTI label map), and that the outputs join the radiographs' study. Needs pydicom and nibabel only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom

from xctrs_monai.constants import HU_WINDOW, NUM_SEG_CLASSES, VERTEBRAE, grid_affine

SNOMED = {"C1": "14806007", "C2": "39976000", "C3": "113205007"}  # spot checks, from SNOMED CT, not from pydicom
_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])


def check(condition: bool, message: str) -> None:
    if not condition:
        print(f"e2e_deploy: FAILED: {message}", file=sys.stderr)
        raise SystemExit(1)


def _voxel_to_lps(ds) -> np.ndarray:
    """The 4x4 matrix from (column, row, 0, 1) of a DICOM slice to LPS mm, from its plane attributes."""
    iop = np.asarray(ds.ImageOrientationPatient, dtype=np.float64)
    row_spacing, col_spacing = (float(v) for v in ds.PixelSpacing)
    m = np.eye(4)
    m[:3, 0], m[:3, 1] = iop[:3] * col_spacing, iop[3:] * row_spacing
    m[:3, 3] = np.asarray(ds.ImagePositionPatient, dtype=np.float64)
    return m


def outputs(out_dir: str, img_size: int, spacing: float, input_dir: str) -> None:
    cases = [p for p in Path(out_dir).iterdir() if p.is_dir()]
    check(len(cases) == 1, f"expected one case folder in {out_dir}, found {[p.name for p in cases]}")
    case = cases[0]
    report = json.loads((case / "report.json").read_text())
    ap_in = pydicom.dcmread(Path(input_dir) / "case0_ap.dcm")
    check(Path(report["inputs"]["ap"]["file"]).name == "case0_ap.dcm", f"AP input {report['inputs']['ap']['file']}")
    check(Path(report["inputs"]["la"]["file"]).name == "case0_la.dcm", f"LA input {report['inputs']['la']['file']}")
    affine = grid_affine(img_size, spacing)
    ct_img = nib.load(case / report["outputs"]["ct"])
    lab_img = nib.load(case / report["outputs"]["vertebrae"])
    for img, what in ((ct_img, "ct.nii.gz"), (lab_img, "vertebrae.nii.gz")):
        check(img.shape == (img_size,) * 3, f"{what}: shape {img.shape}")
        # 1e-4 mm: the affine is stored as float32 in the NIfTI header
        check(
            np.allclose(img.affine, affine, atol=1e-4),
            f"{what}: affine {img.affine.tolist()}, expected {affine.tolist()}",
        )
        check(img.header.get_xyzt_units()[0] == "mm", f"{what}: unit {img.header.get_xyzt_units()[0]}")
    ct = np.asarray(ct_img.dataobj, dtype=np.float64)
    check(
        HU_WINDOW[0] - 1e-3 <= ct.min() and ct.max() <= HU_WINDOW[1] + 1e-3,
        f"CT {ct.min()}..{ct.max()} outside {HU_WINDOW} HU",
    )
    check(ct.max() - ct.min() > 100, f"the CT is flat: {ct.min():.1f}..{ct.max():.1f} HU")
    labels = np.asarray(lab_img.dataobj)
    check(labels.min() >= 0 and labels.max() < NUM_SEG_CLASSES, f"labels {labels.min()}..{labels.max()}")
    print(
        f"  NIfTI: CT {ct.shape} {ct.min():.0f}..{ct.max():.0f} HU, labels {np.unique(labels).tolist()}, RAS affine in mm"
    )

    # the DICOM CT series: same HU (rounded to integers) and each slice where the NIfTI says
    slices = sorted(
        (pydicom.dcmread(p) for p in (case / "dicom" / "ct").glob("*.dcm")), key=lambda d: int(d.InstanceNumber)
    )
    check(len(slices) == img_size, f"{len(slices)} CT slices, expected {img_size}")
    by_uid = {}
    for k, ds in enumerate(slices):
        hu = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        check(
            np.abs(hu - ct[:, :, k].T).max() <= 0.5 + 1e-6,
            f"CT slice {k}: HU differ from ct.nii.gz by more than rounding",
        )
        expected = _RAS_TO_LPS @ (affine[:3, :3] @ [0.0, 0.0, k] + affine[:3, 3])
        corner = _voxel_to_lps(ds) @ [img_size - 1, 2, 0, 1]  # voxel (x = img_size-1, y = 2, k)
        check(
            np.allclose(ds.ImagePositionPatient, expected, atol=1e-3),
            f"CT slice {k} at {ds.ImagePositionPatient}, expected {expected}",
        )
        check(
            np.allclose(corner[:3], _RAS_TO_LPS @ (affine @ [img_size - 1, 2, k, 1])[:3], atol=1e-3),
            f"CT slice {k}: orientation",
        )
        check(
            ds.StudyInstanceUID == ap_in.StudyInstanceUID and ds.PatientID == ap_in.PatientID,
            "CT series not in the radiographs' study",
        )
        by_uid[ds.SOPInstanceUID] = (k, ds)
    print(
        f"  DICOM CT series: {len(slices)} slices, HU and geometry equal to ct.nii.gz, study {ap_in.StudyInstanceUID}"
    )

    # the DICOM SEG: segments C1..C7, each frame on the plane of the CT slice it references, masks = label map
    seg = pydicom.dcmread(case / "dicom" / "vertebrae_seg.dcm")
    check(
        seg.Modality == "SEG" and seg.StudyInstanceUID == ap_in.StudyInstanceUID, f"SEG modality {seg.Modality} / study"
    )
    segments = {int(s.SegmentNumber): s for s in seg.SegmentSequence}
    check(
        [segments[i].SegmentLabel for i in sorted(segments)] == list(VERTEBRAE),
        f"segment labels {[s.SegmentLabel for s in seg.SegmentSequence]}",
    )
    for name, code in SNOMED.items():
        got = segments[VERTEBRAE.index(name) + 1].SegmentedPropertyTypeCodeSequence[0]
        check(
            (got.CodeValue, got.CodingSchemeDesignator) == (code, "SCT"),
            f"segment {name}: code {got.CodeValue} {got.CodingSchemeDesignator}",
        )
    shared = seg.SharedFunctionalGroupsSequence[0]
    pixel = shared.PixelMeasuresSequence[0]
    check(
        np.allclose([float(v) for v in pixel.PixelSpacing], slices[0].PixelSpacing),
        f"SEG pixel spacing {pixel.PixelSpacing}",
    )
    check(
        np.allclose(shared.PlaneOrientationSequence[0].ImageOrientationPatient, slices[0].ImageOrientationPatient),
        "SEG orientation",
    )
    frames = seg.pixel_array.reshape(-1, seg.Rows, seg.Columns)
    check(seg.Rows == img_size and seg.Columns == img_size, f"SEG frames {seg.Rows}x{seg.Columns}")
    seen = np.zeros(labels.shape, dtype=np.int64)
    for f, group in enumerate(seg.PerFrameFunctionalGroupsSequence):
        number = int(group.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        uid = group.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        k, ct_slice = by_uid[uid]
        position = group.PlanePositionSequence[0].ImagePositionPatient
        check(
            np.allclose(position, ct_slice.ImagePositionPatient, atol=1e-3),
            f"SEG frame {f}: plane {position} vs its CT slice {ct_slice.ImagePositionPatient}",
        )
        check(
            np.array_equal(frames[f].astype(bool), (labels[:, :, k] == number).T),
            f"SEG frame {f} (segment {number}, slice {k}) differs from the label map",
        )
        seen[:, :, k] += frames[f].T.astype(np.int64) * number
    check(np.array_equal(seen, labels), "the SEG's segments do not add up to the label map")
    print(
        f"  DICOM SEG: {len(frames)} frames, segments {list(VERTEBRAE)}, each frame on its CT slice's plane, masks = vertebrae.nii.gz"
    )


def refused(log: str, must_say: str, must_name: str) -> None:
    """A refused study: the app's log holds a ValueError that says what is wrong and names the file."""
    text = Path(log).read_text()
    lines = [line for line in text.splitlines() if line.startswith("ValueError:")]
    check(bool(lines), f"no ValueError in {log}: {text[-800:]}")
    check(
        must_say in lines[-1] and must_name in lines[-1],
        f"the message does not say '{must_say}' / name '{must_name}': {lines[-1]}",
    )
    print(f"  refused as expected: {lines[-1][:300]}")


if __name__ == "__main__":
    import fire

    fire.Fire({"outputs": outputs, "refused": refused})

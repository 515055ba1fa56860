# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Inputs of the app end-to-end checks (``scripts/e2e_label.sh``, ``scripts/e2e_deploy.sh``): a tiny trained
model (cached) and phantom radiographs written as a viewer or a PACS would give them.

``tiny_model(folder)`` trains the bundle's ``train.json`` with a tiny overlay (32^3 at 5 mm, the quick demo's
grid, narrow widths, 8 phantoms, 3 epochs: about a minute on two cores) and exports it to TorchScript with
``python -m monai.bundle ckpt_export``, unless ``model.pt`` and ``model.ts`` are already there for the same
overlay. ``radiographs(folder)`` writes DRRs of two unseen phantoms as DICOM DX (with patient, study and
view tags) and as 16-bit PNG, and the bad inputs: a 3D NIfTI volume and a CT-modality DICOM slice.

    python scripts/e2e_apps_data.py tiny_model runs/e2e_apps/model
    python scripts/e2e_apps_data.py radiographs runs/e2e_apps/inputs
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

__all__ = ["TINY_OVERLAY", "tiny_model", "radiographs", "write_dx"]

REPO = Path(__file__).resolve().parents[1]
TINY_OVERLAY = {
    "img_size": 32,
    "spacing": 5.0,
    "recon_channels": [4, 8, 8, 16],
    "seg_channels": [8, 8, 16, 16],
    "network_def#recon_volume_channels": [2, 4, 4, 8],
    "network_def#recon_out_act": None,
    "num_phantoms": 8,
    "num_folds": 4,
    "epochs": 3,
    "warmup_epochs": 1,
    "num_workers": 0,
    "mv_num_slices": 2,
    "pretrained_vgg": False,
}
DX_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage - For Presentation
CT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.2"  # CT Image Storage


def _run(args: list[str], cwd: Path) -> None:
    print("+", " ".join(args), file=sys.stderr, flush=True)
    subprocess.run(args, cwd=cwd, check=True)


def tiny_model(folder: str) -> dict:
    """Train (or reuse) the tiny model under ``folder``: ``models/model.pt``, ``model.ts`` and ``tiny.json``."""
    root = Path(folder).resolve()
    root.mkdir(parents=True, exist_ok=True)
    overlay = root / "tiny.json"
    text = json.dumps(TINY_OVERLAY, indent=4)
    stamp = hashlib.sha256(text.encode()).hexdigest()[:16]
    files = {"checkpoint": root / "models" / "model.pt", "torchscript": root / "model.ts", "overlay": overlay}
    if all(p.is_file() for p in files.values()) and (root / "stamp").read_text().strip() == stamp:
        print(f"tiny model: reusing {root}", file=sys.stderr)
        return {k: str(v) for k, v in files.items()}
    overlay.write_text(text)
    configs = f"['{REPO / 'bundle/configs/train.json'}','{overlay}']"
    py = sys.executable
    _run([py, "-m", "monai.bundle", "run", "training", "--config_file", configs, "--bundle_root", str(root)], root)
    inference = f"['{REPO / 'bundle/configs/inference.json'}','{overlay}']"
    _run(
        [py, "-m", "monai.bundle", "ckpt_export", "network_def", "--filepath", str(files["torchscript"]),
         "--ckpt_file", str(files["checkpoint"]), "--config_file", inference,
         "--meta_file", str(REPO / "bundle/configs/metadata.json"), "--bundle_root", str(root)],
        root,
    )  # fmt: skip
    (root / "stamp").write_text(stamp)
    return {k: str(v) for k, v in files.items()}


def write_dx(
    path: Path,
    display: np.ndarray,
    pixel_spacing: float,
    view_position: str,
    orientation: tuple[str, str],
    patient: dict,
    modality: str = "DX",
) -> str:
    """A display-layout image ``[rows, cols]`` as a 16-bit DICOM radiograph with patient and study tags."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    q = np.round((display - display.min()) / max(float(np.ptp(display)), 1e-12) * 4095).astype(np.uint16)
    sop_class = DX_SOP_CLASS if modality == "DX" else CT_SOP_CLASS
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = sop_class, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    for key, value in patient.items():
        setattr(ds, key, value)
    ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = generate_uid(), 1 if view_position == "AP" else 2, 1
    ds.Modality, ds.ViewPosition, ds.PatientOrientation = modality, view_position, list(orientation)
    ds.BodyPartExamined, ds.SeriesDescription = "CSPINE", f"C-spine {view_position}"
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = q.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.ImagerPixelSpacing = [f"{pixel_spacing:.10g}"] * 2
    ds.PixelData = q.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return str(path)


def radiographs(folder: str, img_size: int = 32, spacing: float = 5.0, seed: int = 9001) -> dict:
    """Phantom DRR pairs ``case<i>_ap``/``case<i>_la`` as DICOM DX and PNG under ``folder``, and bad inputs.

    Returns:
        ``{"dicom": [(ap, la), ...], "png": [(ap, la), ...], "volume_3d": ..., "ct_slice": ...}``.
    """
    import torch
    from monai.data import MetaTensor
    from PIL import Image
    from pydicom.uid import generate_uid

    from xctrs_monai.data import make_phantom
    from xctrs_monai.data.io import save_nifti
    from xctrs_monai.transforms.drr import BiplanarDRR
    from xctrs_monai.transforms.xray import canonical_to_display

    root = Path(folder).resolve()
    root.mkdir(parents=True, exist_ok=True)
    out: dict = {"dicom": [], "png": []}
    for i in range(2):
        ct, _, affine = make_phantom(seed + i, size=img_size, spacing=spacing)
        drrs = BiplanarDRR()(MetaTensor(torch.as_tensor(ct)[None], affine=torch.as_tensor(affine)))
        pixel = float(drrs[0].meta["pixel_spacing"][0])
        patient = {
            "PatientName": f"Phantom^{i}",
            "PatientID": f"PHANTOM{i:03d}",
            "PatientSex": "O",
            "PatientBirthDate": "",
            "StudyInstanceUID": generate_uid(),
            "StudyID": f"{i + 1}",
            "AccessionNumber": f"ACC{i:04d}",
            "StudyDate": "20240101",
            "StudyTime": "120000",
            "ReferringPhysicianName": "",
        }
        pair_dcm, pair_png = [], []
        for view, drr, position, orientation in (("ap", drrs[0], "AP", ("L", "F")), ("la", drrs[1], "LL", ("P", "F"))):
            display = canonical_to_display(drr.as_tensor(), view)[0].numpy().astype(np.float64)
            pair_dcm.append(write_dx(root / f"case{i}_{view}.dcm", display, pixel, position, orientation, patient))
            png = root / "png" / f"case{i}_{view}.png"
            png.parent.mkdir(exist_ok=True)
            q = np.round((display - display.min()) / max(float(np.ptp(display)), 1e-12) * 65535).astype(np.uint16)
            Image.fromarray(q).save(png)
            pair_png.append(str(png))
        out["dicom"].append(tuple(pair_dcm))
        out["png"].append(tuple(pair_png))
        if i == 0:
            (root / "bad").mkdir(exist_ok=True)
            out["volume_3d"] = str(save_nifti(ct.astype(np.float32), affine, root / "bad" / "volume3d_ap.nii.gz"))
            ct_slice = ct[:, ct.shape[1] // 2, :].T[::-1].astype(np.float64)
            out["ct_slice"] = write_dx(
                root / "bad" / "ctslice_ap.dcm", ct_slice, spacing, "AP", ("L", "F"), patient, "CT"
            )
            out["pixel_spacing"] = pixel
    (root / "inputs.json").write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    import fire

    fire.Fire({"tiny_model": tiny_model, "radiographs": radiographs})

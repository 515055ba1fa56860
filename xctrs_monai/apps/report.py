# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Per-case inference report: output geometry, vertebra volumes and centroids, re-projection consistency."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from monai.config import KeysCollection, NdarrayOrTensor, PathLike
from monai.transforms import MapTransform
from scipy import ndimage

from xctrs_monai.data.io import save_json
from xctrs_monai.data.phantom_dataset import LABEL_NAMES

__all__ = [
    "vertebra_statistics",
    "normalized_cross_correlation",
    "psnr",
    "reprojection_consistency",
    "WriteReportd",
]

_VERTEBRAE = {int(k): v for k, v in LABEL_NAMES.items() if int(k) > 0}


def vertebra_statistics(
    labels: NdarrayOrTensor, affine: NdarrayOrTensor, names: Mapping[int, str] | None = None
) -> dict[str, dict]:
    """Volume (mm^3) and centroid (mm, in the affine's world frame) of each vertebra of a label map.

    Args:
        labels: ``XYZ`` (or ``1XYZ``) integer label map.
        affine: its ``4 x 4`` voxel-to-world affine.
        names: label id -> name; defaults to C1..C7 for labels 1..7 (``LABEL_NAMES`` of the dataset).

    Returns:
        ``{name: {"label", "voxels", "volume_mm3", "centroid_mm"}}``; ``centroid_mm`` is ``None`` for an
        absent vertebra (volume 0).
    """
    names = _VERTEBRAE if names is None else names
    lab = np.asarray(labels.detach().cpu() if isinstance(labels, torch.Tensor) else labels)
    if lab.ndim == 4 and lab.shape[0] == 1:
        lab = lab[0]
    if lab.ndim != 3:
        raise ValueError(f"labels must be a 3D label map XYZ, got shape {tuple(lab.shape)}.")
    aff = np.asarray(affine.detach().cpu() if isinstance(affine, torch.Tensor) else affine, dtype=np.float64)
    voxel_volume = float(abs(np.linalg.det(aff[:3, :3])))
    ids = sorted(int(i) for i in names)
    lab = lab.astype(np.int64, copy=False)
    counts = np.bincount(lab.ravel(), minlength=max(ids) + 1)
    present = [i for i in ids if counts[i] > 0]
    centres = dict(zip(present, ndimage.center_of_mass(np.ones(lab.shape, dtype=np.float32), lab, present)))
    stats = {}
    for i in ids:
        centroid = None
        if i in centres:
            centroid = [round(float(v), 3) for v in aff[:3, :3] @ np.asarray(centres[i]) + aff[:3, 3]]
        n = int(counts[i])
        stats[names[i]] = {"label": i, "voxels": n, "volume_mm3": round(n * voxel_volume, 6), "centroid_mm": centroid}
    return stats


def _flat(x: NdarrayOrTensor) -> np.ndarray:
    return np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float64).ravel()


def normalized_cross_correlation(a: NdarrayOrTensor, b: NdarrayOrTensor) -> float:
    """Zero-mean normalised cross-correlation of two images of equal shape, in [-1, 1] (0 if one is constant)."""
    x, y = _flat(a), _flat(b)
    if x.shape != y.shape:
        raise ValueError(f"images must have the same number of pixels, got {x.size} and {y.size}.")
    x, y = x - x.mean(), y - y.mean()
    denom = float(np.sqrt((x * x).sum() * (y * y).sum()))
    return float((x * y).sum() / denom) if denom > 0 else 0.0


def psnr(a: NdarrayOrTensor, b: NdarrayOrTensor, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio (dB) of two images on a common intensity scale (``inf`` if equal)."""
    x, y = _flat(a), _flat(b)
    mse = float(np.mean((x - y) ** 2))
    return float("inf") if mse == 0 else float(10.0 * np.log10(data_range**2 / mse))


def reprojection_consistency(xray: NdarrayOrTensor, drr: NdarrayOrTensor, ncc_threshold: float = 0.8) -> dict:
    """Agreement between a normalised input radiograph and the normalised DRR of the reconstruction.

    Both images must be in the same (canonical) layout and geometry and on the [0, 1] scale of the
    shared ``NormalizeXray``. A low score means that the reconstruction does not explain the input
    (out-of-distribution radiograph, wrong orientation or spacing, failed reconstruction).

    Args:
        xray: the network input for one view.
        drr: the DRR of the reconstructed CT in the same view.
        ncc_threshold: NCC below which the view is flagged unreliable. Defaults to 0.8.

    Returns:
        ``{"ncc", "psnr_db", "reliable"}``.
    """
    ncc = normalized_cross_correlation(xray, drr)
    return {"ncc": round(ncc, 4), "psnr_db": round(psnr(xray, drr), 3), "reliable": bool(ncc >= ncc_threshold)}


class WriteReportd(MapTransform):
    """Write ``<output_dir>/<case_id>/report.json`` for one inference result (atomically).

    The report holds the case id and inputs, the output geometry (shape, spacing, RAS affine, centred at
    the isocenter), the CT intensity range, per-vertebra volume and centroid computed from the label
    map (:func:`vertebra_statistics`), and per view the re-projection consistency between the input
    radiograph and the DRR of the reconstruction (:func:`reprojection_consistency`), with an overall
    ``reliable`` flag.

    Args:
        keys: ``(label_key, ct_key)``, e.g. ``("vertebrae", "ct")``; the label map must carry its affine.
        output_dir: the output root.
        xray_keys: keys of the normalised canonical input radiographs, one per view. Defaults to ``("ap", "la")``.
        drr_keys: keys of the DRRs of the reconstruction, in the same order. Defaults to ``("drr_ap", "drr_la")``.
        case_key: key of the case id. Defaults to ``"case_id"``.
        ncc_threshold: see :func:`reprojection_consistency`. Defaults to 0.8.
        filename: report file name. Defaults to ``"report.json"``.
        allow_missing_keys: don't raise for missing keys. Defaults to ``False``.
    """

    def __init__(
        self,
        keys: KeysCollection,
        output_dir: PathLike,
        xray_keys: Sequence[str] = ("ap", "la"),
        drr_keys: Sequence[str] = ("drr_ap", "drr_la"),
        case_key: str = "case_id",
        ncc_threshold: float = 0.8,
        filename: str = "report.json",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if len(self.keys) != 2:
            raise ValueError(f"keys must be (label_key, ct_key), got {self.keys}.")
        if len(xray_keys) != len(drr_keys):
            raise ValueError(f"xray_keys {xray_keys} and drr_keys {drr_keys} must pair up.")
        self.output_dir = Path(output_dir)
        self.xray_keys, self.drr_keys = tuple(xray_keys), tuple(drr_keys)
        self.case_key = case_key
        self.ncc_threshold = float(ncc_threshold)
        self.filename = filename

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:
        d = dict(data)
        label_key, ct_key = self.keys
        if label_key not in d and self.allow_missing_keys:
            return d
        labels = d[label_key]
        affine = np.asarray(labels.affine, dtype=np.float64)
        case_id = str(d[self.case_key])
        views = {}
        for xk, dk in zip(self.xray_keys, self.drr_keys):
            if xk in d and dk in d:
                views[xk] = reprojection_consistency(d[xk], d[dk], self.ncc_threshold)
        inputs = {}
        for xk in self.xray_keys:
            meta = getattr(d.get(xk), "meta", {})
            spacing = [float(v) for v in meta.get("pixel_spacing", ())]
            inputs[xk] = {
                "file": str(meta.get("filename_or_obj", "")),
                "pixel_spacing_mm": spacing if any(spacing) else None,
                "pixel_spacing_source": str(meta.get("pixel_spacing_source", "none")),
                "resampling": str(meta.get("resampling", "")),
                "detector_spacing_mm": float(meta.get("detector_spacing", 0.0)),
                "reoriented_by_patient_orientation": str(meta.get("reoriented", "")),
                "flip_lr": bool(meta.get("flip_lr", False)),
                "flip_ud": bool(meta.get("flip_ud", False)),
            }
        report = {
            "case_id": case_id,
            "inputs": inputs,
            "outputs": {"ct": "ct.nii.gz", "vertebrae": "vertebrae.nii.gz", "preview": "preview.png"},
            "geometry": {
                "shape": [int(s) for s in labels.shape[-3:]],
                "spacing_mm": [float(np.linalg.norm(affine[:3, i])) for i in range(3)],
                "affine_ras_mm": affine.round(6).tolist(),
                "convention": "RAS, voxel grid centred at the isocenter (0, 0, 0)",
            },
            "vertebrae": vertebra_statistics(labels, affine),
            "reprojection_consistency": views,
            "reliable": bool(views) and all(v["reliable"] for v in views.values()),
        }
        if ct_key in d:
            ct = d[ct_key]
            report["ct_hu_range"] = [float(ct.min()), float(ct.max())]
        save_json(report, self.output_dir / case_id / self.filename)
        d["report"] = report
        return d

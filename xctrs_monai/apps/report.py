# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Per-case inference report: inputs, output geometry, vertebra volumes and centroids, quality control."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
from monai.config import KeysCollection, NdarrayOrTensor, PathLike
from monai.transforms import MapTransform
from scipy import ndimage

from xctrs_monai.apps.qc import (
    cross_view_consistency,
    gradient_correlation,
    normalized_cross_correlation,
    psnr,
    qc_verdict,
    vertebra_plausibility,
)
from xctrs_monai.apps.writers import staging_dir
from xctrs_monai.constants import VERTEBRAE
from xctrs_monai.data.io import save_json

__all__ = ["vertebra_statistics", "reprojection_consistency", "WriteReportd"]


def vertebra_statistics(labels: NdarrayOrTensor, affine: NdarrayOrTensor) -> dict[str, dict]:
    """Volume (mm^3) and centroid (mm, in the affine's world frame) of each vertebra C1..C7 of a label map.

    Args:
        labels: ``XYZ`` (or ``1XYZ``) integer label map, 1..7 = ``constants.VERTEBRAE``.
        affine: its ``4 x 4`` voxel-to-world affine.

    Returns:
        ``{name: {"label", "voxels", "volume_mm3", "centroid_mm"}}``; ``centroid_mm`` is ``None`` for an
        absent vertebra (volume 0).
    """
    lab = np.asarray(labels.detach().cpu() if isinstance(labels, torch.Tensor) else labels)
    if lab.ndim == 4 and lab.shape[0] == 1:
        lab = lab[0]
    if lab.ndim != 3:
        raise ValueError(f"labels must be a 3D label map XYZ, got shape {tuple(lab.shape)}.")
    aff = np.asarray(affine.detach().cpu() if isinstance(affine, torch.Tensor) else affine, dtype=np.float64)
    voxel_volume = float(abs(np.linalg.det(aff[:3, :3])))
    ids = list(range(1, len(VERTEBRAE) + 1))
    lab = lab.astype(np.int64, copy=False)
    counts = np.bincount(lab.ravel(), minlength=max(ids) + 1)
    present = [i for i in ids if counts[i] > 0]
    centres = dict(zip(present, ndimage.center_of_mass(np.ones(lab.shape, dtype=np.float32), lab, present)))
    stats = {}
    for i, name in zip(ids, VERTEBRAE):
        centroid = None
        if i in centres:
            centroid = [round(float(v), 3) for v in aff[:3, :3] @ np.asarray(centres[i]) + aff[:3, 3]]
        n = int(counts[i])
        stats[name] = {"label": i, "voxels": n, "volume_mm3": round(n * voxel_volume, 6), "centroid_mm": centroid}
    return stats


def reprojection_consistency(xray: NdarrayOrTensor, drr: NdarrayOrTensor) -> dict:
    """Agreement of a normalised input radiograph with the normalised DRR of the reconstruction in its view.

    Both images must be in the same (canonical) layout and geometry, on the [0, 1] scale of the shared
    ``NormalizeXray``.

    Returns:
        ``{"ncc", "gradient_correlation", "psnr_db"}`` (see :mod:`xctrs_monai.apps.qc`).
    """
    return {
        "ncc": round(normalized_cross_correlation(xray, drr), 4),
        "gradient_correlation": round(gradient_correlation(xray, drr), 4),
        "psnr_db": round(psnr(xray, drr), 3),
    }


def _input_summary(image: object) -> dict:
    meta = getattr(image, "meta", {})
    spacing = [float(v) for v in meta.get("pixel_spacing", ())]
    return {
        "file": str(meta.get("filename_or_obj", "")),
        "modality": str(meta.get("modality", "")),
        "view_position": str(meta.get("view_position", "")),
        "pixel_spacing_mm": spacing if any(spacing) else None,
        "pixel_spacing_source": str(meta.get("pixel_spacing_source", "none")),
        "resampling": str(meta.get("resampling", "")),
        "detector_spacing_mm": float(meta.get("detector_spacing", 0.0)),
        "reoriented_by_patient_orientation": str(meta.get("reoriented", "")),
        "flip_lr": bool(meta.get("flip_lr", False)),
        "flip_ud": bool(meta.get("flip_ud", False)),
    }


class WriteReportd(MapTransform):
    """Write ``report.json`` of one inference result into the case's staging folder (atomically).

    The report holds the case id and inputs (file, header fields, spacing, resampling, flips, whether the
    pair was exchanged by ``allow_swap``), the output geometry (shape, spacing, RAS affine, centred at the
    isocenter), the CT intensity range, per-vertebra volume and centroid (:func:`vertebra_statistics`), per
    view the re-projection consistency of each input with the DRR of the reconstruction **in its own view**
    (:func:`reprojection_consistency`), the cross-view consistency of the two inputs, the anatomy checks of the
    label map, and the quality-control verdict ``reliable`` with its ``reasons``
    (:func:`xctrs_monai.apps.qc.qc_verdict`). ``d["report"]`` gets the same dict.

    Args:
        keys: ``(label_key, ct_key)``, e.g. ``("pred_label", "pred_ct_hu")``; the label map must carry its affine.
        output_dir: the output root (the file goes to :func:`~xctrs_monai.apps.writers.staging_dir`).
        xray_keys: keys of the normalised canonical input radiographs. Defaults to ``("xray_ap", "xray_la")``.
        drr_keys: keys of the DRRs of the reconstruction, in the same order. Defaults to
            ``("pred_drr_ap", "pred_drr_la")``.
        views: the view of each pair of keys. Defaults to ``("ap", "la")``.
        case_key: key of the case id. Defaults to ``"case_id"``.
        qc_thresholds: see :func:`~xctrs_monai.apps.qc.qc_verdict`. Defaults to ``None`` (its defaults).
        filename: report file name. Defaults to ``"report.json"``.
        outputs: the file names of the case's products, listed in the report. Defaults to the bundle's.
        allow_missing_keys: don't raise for missing keys. Defaults to ``False``.
    """

    def __init__(
        self,
        keys: KeysCollection,
        output_dir: PathLike,
        xray_keys: Sequence[str] = ("xray_ap", "xray_la"),
        drr_keys: Sequence[str] = ("pred_drr_ap", "pred_drr_la"),
        views: Sequence[str] = ("ap", "la"),
        case_key: str = "case_id",
        qc_thresholds: Mapping | None = None,
        filename: str = "report.json",
        outputs: Mapping[str, str] | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if len(self.keys) != 2:
            raise ValueError(f"keys must be (label_key, ct_key), got {self.keys}.")
        if not len(xray_keys) == len(drr_keys) == len(views):
            raise ValueError(f"xray_keys {xray_keys}, drr_keys {drr_keys} and views {views} must pair up.")
        self.output_dir = output_dir
        self.xray_keys, self.drr_keys, self.views = tuple(xray_keys), tuple(drr_keys), tuple(views)
        self.case_key = case_key
        self.qc_thresholds = None if qc_thresholds is None else dict(qc_thresholds)
        self.filename = filename
        self.outputs = dict(outputs or {"ct": "ct.nii.gz", "vertebrae": "vertebrae.nii.gz", "preview": "preview.png"})

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:
        d = dict(data)
        label_key, ct_key = self.keys
        if label_key not in d and self.allow_missing_keys:
            return d
        labels = d[label_key]
        affine = np.asarray(labels.affine, dtype=np.float64)
        case_id = str(d[self.case_key])
        consistency = {
            view: reprojection_consistency(d[xk], d[dk])
            for view, xk, dk in zip(self.views, self.xray_keys, self.drr_keys)
            if xk in d and dk in d
        }
        anatomy = vertebra_plausibility(labels, affine)
        inputs = [d[k] for k in self.xray_keys if k in d]
        cross_view = round(cross_view_consistency(*inputs), 4) if len(inputs) == 2 else None
        verdict = qc_verdict(consistency, anatomy, self.qc_thresholds, cross_view)
        first = d.get(self.xray_keys[0])
        report = {
            "case_id": case_id,
            "reliable": verdict["reliable"],
            "qc_reasons": verdict["reasons"],
            "inputs": {view: _input_summary(d.get(xk)) for view, xk in zip(self.views, self.xray_keys)},
            "swapped_inputs": bool(getattr(first, "meta", {}).get("swapped_inputs", False)),
            "outputs": self.outputs,
            "geometry": {
                "shape": [int(s) for s in labels.shape[-3:]],
                "spacing_mm": [float(np.linalg.norm(affine[:3, i])) for i in range(3)],
                "affine_ras_mm": affine.round(6).tolist(),
                "convention": "RAS, voxel grid centred at the isocenter (0, 0, 0)",
            },
            "vertebrae": vertebra_statistics(labels, affine),
            "reprojection_consistency": consistency,
            "cross_view_consistency": cross_view,
            "anatomy": anatomy,
            "qc_checks": verdict["checks"],
        }
        if ct_key in d:
            ct = d[ct_key]
            report["ct_hu_range"] = [float(ct.min()), float(ct.max())]
        save_json(report, staging_dir(self.output_dir, case_id) / self.filename)
        d["report"] = report
        return d

# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Quality control after inference: does the reconstruction explain the radiographs, and is it a spine?

Per-view NCC between an input and the DRR of its reconstruction is high for almost any input: both are
dominated by the bright neck silhouette, which the network reproduces whatever the view. The verdict
therefore combines several signals, each with a threshold calibrated on phantom pairs
(``scripts/calibrate_qc.py``):

- ``ncc`` per view: normalised cross-correlation of input and re-projection (catches noise, inverted
  intensities, gross failures);
- ``gradient_correlation`` per view: the mean NCC of the two Sobel gradient images (Penney et al., IEEE
  TMI 1998, "A comparison of similarity measures for use in 2-D-3-D medical image registration"), which
  weighs bone edges instead of the silhouette (catches swapped, flipped and mismatched views, wrong scale);
- ``cross_view``: the two inputs share the superior-inferior axis (the canonical second image axis of both
  views, at the same magnification), so the profiles along it (the mean over the other axis) of one patient's
  AP and lateral agree; a pair of two patients, or a view upside down, does not (this signal does not use the
  network);
- the label map as anatomy: all seven vertebrae present, in order C1..C7 from superior to inferior, each
  mostly one connected piece.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from monai.config import NdarrayOrTensor
from scipy import ndimage

from xctrs_monai.constants import VERTEBRAE

__all__ = [
    "DEFAULT_QC_THRESHOLDS",
    "normalized_cross_correlation",
    "gradient_correlation",
    "cross_view_consistency",
    "psnr",
    "vertebra_plausibility",
    "qc_verdict",
]

#: Thresholds of :func:`qc_verdict` when none are given; ``None`` switches a check off. Generic, uncalibrated
#: values: a bundle's ``inference.json`` holds the ones ``scripts/calibrate_qc.py`` measured for its model.
DEFAULT_QC_THRESHOLDS: dict[str, float | None] = {
    "ncc": 0.8,
    "gradient_correlation": 0.3,
    "cross_view": 0.5,
    "vertebrae_present": 7,
    "order_inversions": 0,
    "component_fraction": 0.8,
}


def _np(x: NdarrayOrTensor) -> np.ndarray:
    return np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float64)


def normalized_cross_correlation(a: NdarrayOrTensor, b: NdarrayOrTensor) -> float:
    """Zero-mean normalised cross-correlation of two images of equal size, in [-1, 1] (0 if one is constant)."""
    x, y = _np(a).ravel(), _np(b).ravel()
    if x.shape != y.shape:
        raise ValueError(f"images must have the same number of pixels, got {x.size} and {y.size}.")
    x, y = x - x.mean(), y - y.mean()
    denom = float(np.sqrt((x * x).sum() * (y * y).sum()))
    return float((x * y).sum() / denom) if denom > 0 else 0.0


def gradient_correlation(a: NdarrayOrTensor, b: NdarrayOrTensor) -> float:
    """Gradient correlation of two 2D images (``HW`` or ``1HW``): the mean NCC of their Sobel gradients along
    each image axis (Penney et al., IEEE TMI 1998), in [-1, 1]."""
    x, y = np.squeeze(_np(a)), np.squeeze(_np(b))
    if x.ndim != 2 or x.shape != y.shape:
        raise ValueError(f"need two 2D images of the same shape, got {x.shape} and {y.shape}.")
    return float(
        np.mean([normalized_cross_correlation(ndimage.sobel(x, axis=i), ndimage.sobel(y, axis=i)) for i in (0, 1)])
    )


def cross_view_consistency(ap: NdarrayOrTensor, la: NdarrayOrTensor) -> float:
    """NCC of the superior-inferior profiles of a canonical AP ``[1, X, Z]`` and LA ``[1, Y, Z]`` (means over X
    and over Y): the same patient shows the same levels (skull base, vertebrae, shoulders) at the same Z."""
    a, b = np.squeeze(_np(ap)), np.squeeze(_np(la))
    if a.ndim != 2 or b.ndim != 2 or a.shape[-1] != b.shape[-1]:
        raise ValueError(f"need two canonical views [A, Z] with the same Z, got {a.shape} and {b.shape}.")
    return normalized_cross_correlation(a.mean(0), b.mean(0))


def psnr(a: NdarrayOrTensor, b: NdarrayOrTensor, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio (dB) of two images on a common intensity scale (``inf`` if equal)."""
    mse = float(np.mean((_np(a).ravel() - _np(b).ravel()) ** 2))
    return float("inf") if mse == 0 else float(10.0 * np.log10(data_range**2 / mse))


def vertebra_plausibility(labels: NdarrayOrTensor, affine: NdarrayOrTensor) -> dict:
    """Is a label map (0 background, 1..7 C1..C7, RAS) a cervical spine?

    Args:
        labels: ``XYZ`` or ``1XYZ`` label map.
        affine: its ``4 x 4`` voxel-to-world affine (RAS: world Z increases toward superior).

    Returns:
        ``{"vertebrae_present": n of 7, "order_inversions": adjacent present vertebrae whose world Z
        centroids are not superior to inferior (C1 above C2, ...), "component_fraction": the smallest
        fraction, over present vertebrae, of voxels in the vertebra's largest 26-connected piece (0.0 when no
        vertebra is present)}``.
    """
    lab = np.rint(np.squeeze(_np(labels))).astype(np.int64)
    if lab.ndim != 3:
        raise ValueError(f"labels must be a 3D label map XYZ, got shape {lab.shape}.")
    aff = _np(affine)
    ids = range(1, len(VERTEBRAE) + 1)
    present = [i for i in ids if np.any(lab == i)]
    z = [float(aff[2, :3] @ np.argwhere(lab == i).mean(0) + aff[2, 3]) for i in present]
    inversions = int(sum(z1 <= z2 for z1, z2 in zip(z, z[1:])))
    fractions = []
    for i in present:
        pieces, n = ndimage.label(lab == i, structure=np.ones((3, 3, 3)))
        sizes = np.bincount(pieces.ravel())[1:]
        fractions.append(float(sizes.max() / sizes.sum()) if n else 0.0)
    return {
        "vertebrae_present": len(present),
        "order_inversions": inversions,
        "component_fraction": round(min(fractions), 4) if fractions else 0.0,
    }


def qc_verdict(
    views: Mapping[str, Mapping[str, float]],
    anatomy: Mapping[str, float],
    thresholds: Mapping | None = None,
    cross_view: float | None = None,
) -> dict:
    """Combine the signals into a verdict.

    Args:
        views: per view, ``{"ncc", "gradient_correlation"}`` of the input against its own re-projection.
        anatomy: :func:`vertebra_plausibility` of the label map.
        thresholds: ``{"ncc", "gradient_correlation", "cross_view", "component_fraction"}`` lower bounds,
            ``{"vertebrae_present"}`` a lower bound and ``{"order_inversions"}`` an upper bound; a missing or
            ``None`` entry switches the check off. Defaults to :data:`DEFAULT_QC_THRESHOLDS`.
        cross_view: :func:`cross_view_consistency` of the two inputs; ``None`` skips that check. Defaults to ``None``.

    Returns:
        ``{"reliable": bool, "reasons": [what failed, one line each], "checks": [{"name", "value",
        "threshold", "passed"}]}``.
    """
    limits = dict(DEFAULT_QC_THRESHOLDS if thresholds is None else thresholds)
    checks = []
    for view, scores in views.items():
        for name in ("ncc", "gradient_correlation"):
            if limits.get(name) is not None:
                checks.append((f"{view}_{name}", float(scores[name]), float(limits[name]), ">="))
    if cross_view is not None and limits.get("cross_view") is not None:
        checks.append(("cross_view", float(cross_view), float(limits["cross_view"]), ">="))
    for name, op in (("vertebrae_present", ">="), ("order_inversions", "<="), ("component_fraction", ">=")):
        if limits.get(name) is not None:
            checks.append((name, float(anatomy[name]), float(limits[name]), op))
    out, reasons = [], []
    for name, value, limit, op in checks:
        passed = value >= limit if op == ">=" else value <= limit
        out.append({"name": name, "value": round(value, 4), "threshold": limit, "passed": bool(passed)})
        if not passed:
            reasons.append(f"{name} {value:.3g} (needs {op} {limit:g})")
    return {"reliable": not reasons, "reasons": reasons, "checks": out}

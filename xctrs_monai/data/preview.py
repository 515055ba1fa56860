# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""PNG montages of CTs with C1..C7 labels (orthogonal slices and both DRRs, in display orientation):
one case in a row (``spine_montage``), or several cases side by side to show their spread
(``spread_montage``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from xctrs_monai.constants import DEFAULT_SPACING, LABEL_COLOURS, VERTEBRAE

__all__ = ["spine_montage", "spread_montage"]

_PAD = 2


def _grey(img: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.clip((img - lo) / max(hi - lo, 1e-6), 0.0, 1.0)


def _overlay(grey: np.ndarray, labels: np.ndarray, alpha: float) -> np.ndarray:
    rgb = np.repeat(grey[..., None] * 255.0, 3, axis=-1)
    lab = np.rint(labels).astype(np.int64)
    mask = (lab >= 1) & (lab <= len(VERTEBRAE))
    palette = np.asarray(LABEL_COLOURS, dtype=np.float32)
    rgb[mask] = (1.0 - alpha) * rgb[mask] + alpha * palette[lab[mask]]
    return rgb


def _display(img: np.ndarray, view: str) -> np.ndarray:
    from xctrs_monai.transforms.xray import canonical_to_display

    return np.asarray(canonical_to_display(np.ascontiguousarray(img, dtype=np.float32)[None], view)[0])


def _check(ct_hu, labels, zoom: int) -> tuple[np.ndarray, np.ndarray]:
    ct, lab = np.asarray(ct_hu, dtype=np.float32), np.asarray(labels)
    if ct.ndim != 3 or ct.shape != lab.shape:
        raise ValueError(f"ct_hu and labels must be XYZ volumes of one shape, got {ct.shape} and {lab.shape}.")
    if int(zoom) != zoom or zoom < 1:
        raise ValueError(f"zoom must be an integer >= 1, got {zoom}.")
    return ct, lab


def _slices(ct: np.ndarray, lab: np.ndarray, hu_window: Sequence[float], alpha: float) -> dict[str, np.ndarray]:
    """Sagittal, coronal and axial RGB panels with the label overlay.

    Slices pass through the centroid of C4 (sagittal and axial) and through the vertebral bodies
    (coronal: the anterior half of the labelled voxels), or the volume centre without labels.
    """
    ref = np.argwhere(lab == 4) if (lab == 4).any() else np.argwhere(lab > 0)
    if len(ref):
        i, _, k = ref.mean(0).round().astype(int).tolist()
        spine = np.argwhere(lab > 0)[:, 1]
        j = int(round(float(np.mean(spine[spine >= np.median(spine)]))))
    else:
        i, j, k = (np.asarray(ct.shape) // 2).tolist()
    lo, hi = float(hu_window[0]), float(hu_window[1])
    planes = {
        "sagittal": (_display(ct[i], "la"), _display(lab[i], "la")),
        "coronal": (_display(ct[:, j], "ap"), _display(lab[:, j], "ap")),
        "axial": (ct[::-1, ::-1, k].T, lab[::-1, ::-1, k].T),
    }
    return {name: _overlay(_grey(c, lo, hi), m, alpha) for name, (c, m) in planes.items()}


def _drrs(ct: np.ndarray, spacing: tuple[float, float, float]) -> dict[str, np.ndarray]:
    """AP and LA DRR panels (``BiplanarDRR``, cone beam, bright = more attenuation), windowed on the neck."""
    import torch

    from xctrs_monai.transforms.drr import BiplanarDRR

    ap, la = BiplanarDRR()(torch.from_numpy(ct)[None], spacing=spacing)
    out = {}
    for img, view in ((ap, "ap"), (la, "la")):
        d = _display(img[0].numpy(), view)
        body = d[d > 0.2 * float(d.max())]  # window on the neck, not on the air around it
        lo, hi = np.percentile(body if body.size else d, [5.0, 99.8])
        out[f"{view.upper()} DRR"] = np.repeat(_grey(d, lo, hi)[..., None] * 255.0, 3, axis=-1)
    return out


def _canvas(rows: list[list[tuple[np.ndarray, str]]], zoom: int) -> np.ndarray:
    """Paste titled panels in rows (each cell as wide as the widest panel of its column)."""
    from PIL import Image, ImageDraw

    heights = [max(p.shape[0] for p, _ in row) * zoom for row in rows]
    widths = [max(row[c][0].shape[1] for row in rows) * zoom for c in range(len(rows[0]))]
    canvas = Image.new("RGB", (sum(widths) + _PAD * (len(widths) - 1), sum(heights) + _PAD * (len(heights) - 1)))
    draw = ImageDraw.Draw(canvas)
    y0 = 0
    for row, h in zip(rows, heights):
        x0 = 0
        for (panel, title), w in zip(row, widths):
            im = Image.fromarray(np.clip(panel, 0, 255).astype(np.uint8))
            canvas.paste(im.resize((panel.shape[1] * zoom, panel.shape[0] * zoom), Image.NEAREST), (x0, y0))
            draw.text((x0 + 2, y0 + 1), title, fill=(255, 255, 0))
            x0 += w + _PAD
        y0 += h + _PAD
    return np.asarray(canvas)


def spine_montage(
    ct_hu: np.ndarray,
    labels: np.ndarray,
    spacing: float | Sequence[float] = DEFAULT_SPACING,
    hu_window: Sequence[float] = (-400.0, 1400.0),
    alpha: float = 0.45,
    zoom: int = 1,
    drr: bool = True,
) -> np.ndarray:
    """Compose one row: sagittal, coronal and axial CT slices through the spine with the label overlay,
    then the AP and LA DRRs (``BiplanarDRR``, cone beam, bright = more attenuation).

    The coronal slice and the AP DRR share the AP display layout, the sagittal slice and the LA DRR
    the LA layout (both from ``xctrs_monai.transforms.xray.canonical_to_display``: superior at the
    top); the axial slice has anterior at the top and the patient's right on the viewer's left.
    Slices pass through the centroid of C4 (sagittal and axial) and through the vertebral bodies
    (coronal: the anterior half of the labelled vertebra voxels). Labels are coloured with
    ``constants.LABEL_COLOURS``.

    Args:
        ct_hu: ``XYZ`` CT in HU, RAS.
        labels: ``XYZ`` label map (0 background, 1..7 = C1..C7).
        spacing: voxel spacing in mm (one value or three). Defaults to ``DEFAULT_SPACING``.
        hu_window: CT display window in HU. Defaults to ``(-400, 1400)``.
        alpha: overlay opacity. Defaults to 0.45.
        zoom: integer up-scaling of every panel. Defaults to 1.
        drr: append the two DRR panels. Defaults to True.

    Returns:
        an ``HW3`` uint8 RGB image.

    Raises:
        ValueError: when the volumes are not ``XYZ`` of one shape or ``zoom < 1``.
    """
    ct, lab = _check(ct_hu, labels, zoom)
    spacing = tuple(float(s) for s in np.broadcast_to(np.asarray(spacing, dtype=float), (3,)))
    panels = dict(_slices(ct, lab, hu_window, alpha))
    if drr:
        panels.update(_drrs(ct, spacing))
    return _canvas([[(p, title) for title, p in panels.items()]], zoom)


def spread_montage(
    cases: Sequence[tuple[np.ndarray, np.ndarray]],
    spacing: float | Sequence[float] = DEFAULT_SPACING,
    titles: Sequence[str] | None = None,
    hu_window: Sequence[float] = (-400.0, 1400.0),
    alpha: float = 0.45,
    zoom: int = 1,
) -> np.ndarray:
    """Several cases side by side, one column each: the sagittal and coronal slices with labels
    (as in ``spine_montage``), then the LA and AP DRRs, so that their spread in size, curvature,
    pose and position in the field of view can be seen at a glance.

    Args:
        cases: ``(ct_hu, labels)`` pairs of ``XYZ`` volumes on grids of one size.
        spacing: voxel spacing in mm (one value or three) of every case. Defaults to ``DEFAULT_SPACING``.
        titles: one title per case (e.g. its seed). Defaults to ``case 0``, ``case 1``, ...
        hu_window: CT display window in HU. Defaults to ``(-400, 1400)``.
        alpha: overlay opacity. Defaults to 0.45.
        zoom: integer up-scaling of every panel. Defaults to 1.

    Returns:
        an ``HW3`` uint8 RGB image with 4 rows (sagittal, coronal, LA DRR, AP DRR) and one column per case.

    Raises:
        ValueError: when there is no case, a case is not a pair of ``XYZ`` volumes of one shape, the
            titles do not match the cases, or ``zoom < 1``.
    """
    if len(cases) == 0:
        raise ValueError("cases must hold at least one (ct_hu, labels) pair, got none.")
    titles = [f"case {n}" for n in range(len(cases))] if titles is None else [str(t) for t in titles]
    if len(titles) != len(cases):
        raise ValueError(f"titles must give one title per case: {len(titles)} titles for {len(cases)} cases.")
    spacing = tuple(float(s) for s in np.broadcast_to(np.asarray(spacing, dtype=float), (3,)))
    columns = []
    for (ct_hu, labels), title in zip(cases, titles):
        ct, lab = _check(ct_hu, labels, zoom)
        panels = {**_slices(ct, lab, hu_window, alpha), **_drrs(ct, spacing)}
        names = ("sagittal", "coronal", "LA DRR", "AP DRR")
        columns.append([(panels[name], f"{title}: {name}" if name == "sagittal" else name) for name in names])
    return _canvas([list(row) for row in zip(*columns)], zoom)

# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""A PNG montage of a CT with C1..C7 labels: three orthogonal slices and both DRRs, in display orientation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["spine_montage"]

# RGB of labels 1..7 (C1..C7)
_COLOURS = np.array(
    [[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48], [145, 30, 180], [70, 240, 240]],
    dtype=np.float32,
)


def _grey(img: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.clip((img - lo) / max(hi - lo, 1e-6), 0.0, 1.0)


def _overlay(grey: np.ndarray, labels: np.ndarray, alpha: float) -> np.ndarray:
    rgb = np.repeat(grey[..., None] * 255.0, 3, axis=-1)
    lab = np.rint(labels).astype(np.int64)
    mask = (lab >= 1) & (lab <= 7)
    rgb[mask] = (1.0 - alpha) * rgb[mask] + alpha * _COLOURS[lab[mask] - 1]
    return rgb


def spine_montage(
    ct_hu: np.ndarray,
    labels: np.ndarray,
    spacing: float | Sequence[float] = 1.0,
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
    (coronal: the anterior half of the labelled vertebra voxels).

    Args:
        ct_hu: ``XYZ`` CT in HU, RAS.
        labels: ``XYZ`` label map (0 background, 1..7 = C1..C7).
        spacing: voxel spacing in mm (one value or three). Defaults to 1.0.
        hu_window: CT display window in HU. Defaults to ``(-400, 1400)``.
        alpha: overlay opacity. Defaults to 0.45.
        zoom: integer up-scaling of every panel. Defaults to 1.
        drr: append the two DRR panels. Defaults to True.

    Returns:
        an ``HW3`` uint8 RGB image.

    Raises:
        ValueError: when the volumes are not ``XYZ`` of one shape or ``zoom < 1``.
    """
    import torch
    from PIL import Image, ImageDraw

    from xctrs_monai.transforms.xray import canonical_to_display

    ct, lab = np.asarray(ct_hu, dtype=np.float32), np.asarray(labels)
    if ct.ndim != 3 or ct.shape != lab.shape:
        raise ValueError(f"ct_hu and labels must be XYZ volumes of one shape, got {ct.shape} and {lab.shape}.")
    if int(zoom) != zoom or zoom < 1:
        raise ValueError(f"zoom must be an integer >= 1, got {zoom}.")
    spacing = tuple(float(s) for s in np.broadcast_to(np.asarray(spacing, dtype=float), (3,)))

    def display(img: np.ndarray, view: str) -> np.ndarray:
        return np.asarray(canonical_to_display(np.ascontiguousarray(img, dtype=np.float32)[None], view)[0])

    ref = np.argwhere(lab == 4) if (lab == 4).any() else np.argwhere(lab > 0)
    if len(ref):
        i, _, k = ref.mean(0).round().astype(int).tolist()
        spine = np.argwhere(lab > 0)[:, 1]
        j = int(round(float(np.mean(spine[spine >= np.median(spine)]))))
    else:
        i, j, k = (np.asarray(ct.shape) // 2).tolist()
    lo, hi = float(hu_window[0]), float(hu_window[1])
    slices = [
        (display(ct[i], "la"), display(lab[i], "la"), "sagittal"),
        (display(ct[:, j], "ap"), display(lab[:, j], "ap"), "coronal"),
        (ct[::-1, ::-1, k].T, lab[::-1, ::-1, k].T, "axial"),
    ]
    panels = [(_overlay(_grey(c, lo, hi), m, alpha), title) for c, m, title in slices]
    if drr:
        from xctrs_monai.transforms.drr import BiplanarDRR

        ap, la = BiplanarDRR()(torch.from_numpy(ct)[None], spacing=spacing)
        for img, view in ((ap, "ap"), (la, "la")):
            d = display(img[0].numpy(), view)
            body = d[d > 0.2 * float(d.max())]  # window on the neck, not on the air around it
            lo_d, hi_d = np.percentile(body if body.size else d, [5.0, 99.8])
            panels.append((np.repeat(_grey(d, lo_d, hi_d)[..., None] * 255.0, 3, axis=-1), f"{view.upper()} DRR"))
    height = max(p.shape[0] for p, _ in panels) * zoom
    widths = [p.shape[1] * zoom for p, _ in panels]
    pad = 2
    canvas = Image.new("RGB", (sum(widths) + pad * (len(panels) - 1), height), (0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    x0 = 0
    for (panel, title), w in zip(panels, widths):
        im = Image.fromarray(np.clip(panel, 0, 255).astype(np.uint8))
        canvas.paste(im.resize((w, panel.shape[0] * zoom), Image.NEAREST), (x0, 0))
        draw.text((x0 + 2, 1), title, fill=(255, 255, 0))
        x0 += w + pad
    return np.asarray(canvas)

# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""A one-image visual check of an inference result: slices with labels, inputs beside their re-projections."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from monai.config import KeysCollection, NdarrayOrTensor, PathLike
from monai.transforms import MapTransform

from xctrs_monai.apps.qc import normalized_cross_correlation
from xctrs_monai.apps.writers import staging_dir
from xctrs_monai.data.io import save_png
from xctrs_monai.data.preview import spine_montage
from xctrs_monai.transforms.xray import canonical_to_display

__all__ = ["render_preview", "WritePreviewd"]


def _np(x: NdarrayOrTensor) -> np.ndarray:
    return np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float32)


def _radiograph_rgb(canonical: NdarrayOrTensor, view: str) -> np.ndarray:
    """A normalised canonical radiograph ``[1, U, V]`` as a display-layout RGB panel (0..255)."""
    img = torch.as_tensor(_np(canonical))
    img = img[None] if img.ndim == 2 else img
    grey = np.clip(np.asarray(canonical_to_display(img, view)[0]), 0.0, 1.0)
    return np.repeat(grey[..., None] * 255.0, 3, axis=-1)


def render_preview(
    xrays: Sequence[NdarrayOrTensor],
    drrs: Sequence[NdarrayOrTensor],
    ct_hu: NdarrayOrTensor,
    labels: NdarrayOrTensor,
    spacing: float = 1.0,
    views: Sequence[str] = ("ap", "la"),
    min_panel: int = 192,
) -> np.ndarray:
    """Compose the preview image of one case.

    Top row: sagittal, coronal and axial slices of the reconstruction with the label overlay
    (:func:`xctrs_monai.data.preview.spine_montage`). Bottom row, per view: the input radiograph and the
    DRR of the reconstruction in the same geometry, with their normalised cross-correlation. Every
    image is in display orientation (``canonical_to_display``).

    Args:
        xrays: normalised canonical input radiographs ``[1, U, V]``, one per view.
        drrs: normalised canonical DRRs of the reconstruction, same shapes.
        ct_hu: CT ``[1, X, Y, Z]`` (or ``XYZ``) in HU.
        labels: label map ``[1, X, Y, Z]`` (or ``XYZ``), 0..7.
        spacing: voxel spacing in mm. Defaults to 1.0.
        views: view names of ``xrays``. Defaults to ``("ap", "la")``.
        min_panel: panels are enlarged by an integer factor to at least this many pixels. Defaults to 192.

    Returns:
        ``[H, W, 3]`` uint8 RGB image.
    """
    from PIL import Image, ImageDraw

    ct, lab = _np(ct_hu), _np(labels)
    ct, lab = (ct[0], lab[0]) if ct.ndim == 4 else (ct, lab)
    zoom = max(1, int(np.ceil(min_panel / max(ct.shape))))
    slices = spine_montage(ct, np.rint(lab).astype(np.uint8), spacing=spacing, zoom=zoom, drr=False)
    panels, titles = [], []
    for view, x, r in zip(views, xrays, drrs):
        ncc = normalized_cross_correlation(x, r)
        panels += [_radiograph_rgb(x, view), _radiograph_rgb(r, view)]
        titles += [f"{view.upper()} input", f"{view.upper()} DRR of recon, NCC {ncc:.2f}"]
    pad, title_h = 2, 12
    widths = [p.shape[1] * zoom for p in panels]
    row_h = max(p.shape[0] for p in panels) * zoom
    width = max(slices.shape[1], sum(widths) + pad * (len(panels) - 1))
    canvas = Image.new("RGB", (width, slices.shape[0] + pad + title_h + row_h), (0, 0, 0))
    canvas.paste(Image.fromarray(slices), (0, 0))
    draw = ImageDraw.Draw(canvas)
    x0, y0 = 0, slices.shape[0] + pad
    for panel, title, w in zip(panels, titles, widths):
        im = Image.fromarray(np.clip(panel, 0, 255).astype(np.uint8))
        canvas.paste(im.resize((w, panel.shape[0] * zoom), Image.NEAREST), (x0, y0 + title_h))
        draw.text((x0 + 2, y0), title, fill=(255, 255, 0))
        x0 += w + pad
    return np.asarray(canvas)


class WritePreviewd(MapTransform):
    """Write ``preview.png`` (see :func:`render_preview`) into the case's staging folder, atomically.

    Args:
        keys: ``(ct_key, label_key)``, e.g. ``("pred_ct_hu", "pred_label")``; the CT in HU, with its affine.
        output_dir: the output root (the file goes to :func:`~xctrs_monai.apps.writers.staging_dir`).
        xray_keys: keys of the normalised canonical input radiographs. Defaults to ``("xray_ap", "xray_la")``.
        drr_keys: keys of the normalised DRRs of the reconstruction. Defaults to ``("pred_drr_ap", "pred_drr_la")``.
        case_key: key of the case id. Defaults to ``"case_id"``.
        filename: file name. Defaults to ``"preview.png"``.
        min_panel: see :func:`render_preview`. Defaults to 192.
        allow_missing_keys: don't raise for missing keys. Defaults to ``False``.
    """

    def __init__(
        self,
        keys: KeysCollection,
        output_dir: PathLike,
        xray_keys: Sequence[str] = ("xray_ap", "xray_la"),
        drr_keys: Sequence[str] = ("pred_drr_ap", "pred_drr_la"),
        case_key: str = "case_id",
        filename: str = "preview.png",
        min_panel: int = 192,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if len(self.keys) != 2:
            raise ValueError(f"keys must be (ct_key, label_key), got {self.keys}.")
        self.output_dir = Path(output_dir)
        self.xray_keys, self.drr_keys = tuple(xray_keys), tuple(drr_keys)
        self.case_key = case_key
        self.filename = filename
        self.min_panel = int(min_panel)

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:
        d = dict(data)
        ct_key, label_key = self.keys
        if (ct_key not in d or label_key not in d) and self.allow_missing_keys:
            return d
        ct = d[ct_key]
        spacing = (
            float(np.linalg.norm(np.asarray(ct.affine, dtype=np.float64)[:3, 0])) if hasattr(ct, "affine") else 1.0
        )
        image = render_preview(
            [d[k] for k in self.xray_keys],
            [d[k] for k in self.drr_keys],
            ct,
            d[label_key],
            spacing=spacing,
            views=[str(getattr(d[k], "meta", {}).get("view", str(k)[-2:])) for k in self.xray_keys],
            min_panel=self.min_panel,
        )
        save_png(image, staging_dir(self.output_dir, str(d[self.case_key])) / self.filename)
        return d

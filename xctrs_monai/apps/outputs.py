# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Turning the network's ``pred`` into the products of inference: a CT in HU and a vertebra label map."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform

from xctrs_monai.constants import DEFAULT_SPACING, HU_WINDOW, grid_affine
from xctrs_monai.losses.projection import unit_to_hu

__all__ = ["split_prediction", "SplitPredictiond"]


def split_prediction(
    pred: torch.Tensor,
    spacing: float,
    case_id: str = "case",
    hu_window: Sequence[float] = HU_WINDOW,
) -> tuple[MetaTensor, MetaTensor]:
    """Split an X-CTRSNet output into the CT (HU) and the label map, with the output geometry.

    The output grid is the training grid: isotropic ``spacing``, RAS axes (X right, Y anterior,
    Z superior), centred at the isocenter, i.e. voxel ``(i, j, k)`` at
    ``spacing * ((i, j, k) - (N - 1) / 2)`` mm (:func:`xctrs_monai.constants.grid_affine`).

    Args:
        pred: ``[1 + C, N, N, N]``: channel 0 the CT on the [0, 1] scale (clipped to it, as the training targets
            were: a linear head may overshoot), channels 1.. the segmentation logits (background, C1..C7).
        spacing: voxel spacing of the training grid in mm.
        case_id: stored as ``filename_or_obj`` (it names the output folder). Defaults to ``"case"``.
        hu_window: the HU window mapped to [0, 1]. Defaults to ``constants.HU_WINDOW``.

    Returns:
        ``(ct, labels)``: ``[1, N, N, N]`` float32 HU and uint8 0..C-1 MetaTensors with the RAS affine.

    Raises:
        ValueError: when ``pred`` is not ``[1 + C, N, N, N]`` with ``C >= 2`` and a cubic grid.
    """
    if pred.ndim != 4 or pred.shape[0] < 3 or len(set(pred.shape[1:])) != 1:
        raise ValueError(f"pred must be [1 + C, N, N, N] (CT + segmentation logits), got {list(pred.shape)}.")
    values = pred.as_tensor() if isinstance(pred, MetaTensor) else torch.as_tensor(pred)
    size = int(values.shape[-1])
    affine = torch.as_tensor(grid_affine(size, float(spacing)))
    ct = unit_to_hu(values[0:1].float().clamp(0.0, 1.0), hu_window)
    labels = torch.argmax(values[1:], dim=0, keepdim=True).to(torch.uint8)
    out = []
    for array in (ct, labels):
        meta = {
            "filename_or_obj": str(case_id),
            "space": "RAS",
            "spatial_shape": (size,) * 3,
            "original_channel_dim": 0,
        }
        out.append(MetaTensor(array, affine=affine.clone(), meta=meta))
    return out[0], out[1]


class SplitPredictiond(MapTransform):
    """Dictionary wrapper of :func:`split_prediction`: ``d[ct_key], d[label_key] = split_prediction(d[key])``.

    Args:
        keys: the prediction key. Defaults to ``"pred"``.
        spacing: voxel spacing of the training grid in mm. Defaults to ``constants.DEFAULT_SPACING``.
        ct_key: where to write the predicted CT in HU. Defaults to ``"pred_ct_hu"``.
        label_key: where to write the predicted label map. Defaults to ``"pred_label"``.
        case_key: key of the case id. Defaults to ``"case_id"``.
        hu_window: the HU window mapped to [0, 1]. Defaults to ``constants.HU_WINDOW``.
        allow_missing_keys: don't raise for missing keys. Defaults to ``False``.
    """

    def __init__(
        self,
        keys: KeysCollection = "pred",
        spacing: float = DEFAULT_SPACING,
        ct_key: str = "pred_ct_hu",
        label_key: str = "pred_label",
        case_key: str = "case_id",
        hu_window: Sequence[float] = HU_WINDOW,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if float(spacing) <= 0:
            raise ValueError(f"spacing must be > 0 mm, got {spacing}.")
        self.spacing = float(spacing)
        self.ct_key, self.label_key, self.case_key = ct_key, label_key, case_key
        self.hu_window = tuple(float(v) for v in hu_window)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            case_id = str(d.get(self.case_key, "case"))
            d[self.ct_key], d[self.label_key] = split_prediction(d[key], self.spacing, case_id, self.hu_window)
        return d

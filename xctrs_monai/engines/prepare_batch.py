# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Batch preparation for X-CTRSNet: the two radiographs as network input, CT and labels as targets."""

from __future__ import annotations

from typing import Any

import torch

from monai.data import MetaTensor
from monai.engines.utils import PrepareBatch

__all__ = ["XCTRSPrepareBatch"]


class XCTRSPrepareBatch(PrepareBatch):
    """
    Turn a data-dict batch into ``(xray, ct, label)`` for the X-CTRSNet engines.

    ``xray`` stacks the AP and LA radiographs along the channel axis (``B1NN`` + ``B1NN`` -> ``B2NN``), the
    input layout of ``XCTRSNet.forward``; ``ct`` is the ground-truth CT on the [0, 1] scale (``B1NNN``) and
    ``label`` the vertebra labels 0..7 (``B1NNN``). Missing ``ct``/``label`` keys give ``None``. ``MetaTensor``
    s become plain tensors (the metadata stays in ``engine.state.batch``).

    Args:
        ap_key: key of the AP radiograph. Defaults to ``"xray_ap"``.
        la_key: key of the LA radiograph. Defaults to ``"xray_la"``.
        ct_key: key of the ground-truth CT. Defaults to ``"image"``.
        label_key: key of the label map. Defaults to ``"label"``.
    """

    def __init__(
        self, ap_key: str = "xray_ap", la_key: str = "xray_la", ct_key: str = "image", label_key: str = "label"
    ) -> None:
        self.ap_key, self.la_key, self.ct_key, self.label_key = ap_key, la_key, ct_key, label_key

    def __call__(
        self,
        batchdata: dict[str, Any],
        device: str | torch.device | None = None,
        non_blocking: bool = False,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """
        Args:
            batchdata: a collated data dict.
            device: target device.
            non_blocking: see ``torch.Tensor.to``.
            kwargs: further arguments of ``torch.Tensor.to``.

        Returns:
            ``(xray B2NN, ct B1NNN or None, label B1NNN or None)`` on ``device``.

        Raises:
            KeyError: when a radiograph key is missing.
        """

        def _get(key: str, required: bool) -> torch.Tensor | None:
            if key not in batchdata:
                if required:
                    raise KeyError(f"batch has no '{key}'; keys present: {sorted(batchdata)}.")
                return None
            value = batchdata[key]
            value = value.as_tensor() if isinstance(value, MetaTensor) else torch.as_tensor(value)
            return value.to(device=device, non_blocking=non_blocking, **kwargs)

        ap, la = _get(self.ap_key, True), _get(self.la_key, True)
        xray = torch.cat([ap, la], dim=1)  # type: ignore[list-item]
        return xray, _get(self.ct_key, False), _get(self.label_key, False)

# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""X-CTRSNet: SpaDRNet (reconstruction) coupled with MulSISNet (segmentation) (Ge et al., KBS 2021)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import torch
from torch import nn

from xctrs_monai.networks.blocks import _LEAKY
from xctrs_monai.networks.mulsisnet import MulSISNet
from xctrs_monai.networks.spadrnet import SpaDRNet

__all__ = ["XCTRSNet"]


class XCTRSNet(nn.Module):
    """X-CTRSNet: biplanar radiographs -> CT + C1..C7 segmentation (Ge et al., KBS 2021, Fig. 3).

    Holds ``reconstructor`` (:class:`SpaDRNet`) and ``segmenter`` (:class:`MulSISNet`). Coupled
    training (RSC learning, section 2.3) calls them directly: ``net.reconstructor(ap, la)`` and
    ``net.segmenter(ct)``. ``forward`` is the deployable path with one input ``image`` and one output
    ``pred``, as the model-zoo checks expect.

    Args:
        img_size: side ``N`` of the radiographs and of the cubic CT, a power of 2 >= 16. Defaults to 128.
        recon_channels: SpaDRNet 2D widths per step. Defaults to ``(16, 32, 64, 128)``.
        seg_channels: MulSISNet widths per scale. Defaults to ``(24, 32, 80, 160)``.
        recon_volume_channels: SpaDRNet per-view 3D widths per scale. Defaults to ``(4, 12, 32, 224)``.
        recon_fusion_layers: SpaDRNet multi-scale 3D exchanges. Defaults to 1.
        seg_num_layers: MulSISNet steps of the full-resolution path. Defaults to 5.
        seg_out_channels: segmentation classes (background + C1..C7). Defaults to 8.
        recon_norm: SpaDRNet normalisation. Defaults to ``"instance"``.
        seg_norm: MulSISNet normalisation (GroupNorm groups must divide ``seg_channels``).
            Defaults to ``("group", {"num_groups": 8})``.
        act: activation of both networks. Defaults to LeakyReLU(0.2).
        recon_out_act: SpaDRNet head activation, None for linear. Defaults to ``"sigmoid"``.
        checkpointing: activation checkpointing of the 3D parts of both networks while training (less
            memory, about one more forward pass of those parts; same outputs and gradients).
            Defaults to False.

    Raises:
        ValueError: when an argument is out of range (raised by the sub-networks).
    """

    def __init__(
        self,
        img_size: int = 128,
        recon_channels: Sequence[int] = (16, 32, 64, 128),
        seg_channels: Sequence[int] = (24, 32, 80, 160),
        recon_volume_channels: Sequence[int] = (4, 12, 32, 224),
        recon_fusion_layers: int = 1,
        seg_num_layers: int = 5,
        seg_out_channels: int = 8,
        recon_norm: str | tuple | None = "instance",
        seg_norm: str | tuple | None = ("group", {"num_groups": 8}),
        act: str | tuple | None = _LEAKY,
        recon_out_act: str | tuple | None = "sigmoid",
        checkpointing: bool = False,
    ) -> None:
        super().__init__()
        # the constructor arguments travel in the state dict (get_extra_state), so a checkpoint rebuilds its network
        self.network_args = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        self.reconstructor = SpaDRNet(
            img_size=img_size,
            in_channels=1,
            out_channels=1,
            channels=recon_channels,
            volume_channels=recon_volume_channels,
            fusion_layers=recon_fusion_layers,
            norm=recon_norm,
            act=act,
            out_act=recon_out_act,
            checkpointing=checkpointing,
        )
        self.segmenter = MulSISNet(
            in_channels=1,
            out_channels=seg_out_channels,
            channels=seg_channels,
            num_layers=seg_num_layers,
            norm=seg_norm,
            act=act,
            checkpointing=checkpointing,
        )

    def get_extra_state(self) -> torch.Tensor:
        """The constructor arguments as UTF-8 JSON in a ``uint8`` tensor, the state dict's ``_extra_state``.

        A tensor, not a dict, so that every value of the state dict stays a tensor (``torch.load(...,
        weights_only=True)``, MONAI's ``copy_model_state`` and ``ckpt_export`` handle it as a weight). A
        checkpoint rebuilds its network with
        ``XCTRSNet(**json.loads(bytes(state_dict["_extra_state"].tolist())))``.
        """
        return torch.tensor(list(json.dumps(self.network_args, default=repr).encode("utf-8")), dtype=torch.uint8)

    def set_extra_state(self, state: torch.Tensor) -> None:
        """Accept the ``_extra_state`` of a state dict; the weights' shapes are checked by ``load_state_dict``.

        Raises:
            ValueError: when ``state`` is not the JSON tensor that :meth:`get_extra_state` writes.
        """
        try:
            args = json.loads(bytes(torch.as_tensor(state).tolist()))
        except (TypeError, ValueError) as e:
            raise ValueError(f"XCTRSNet extra state must be the JSON of the network arguments: {e}") from None
        if not isinstance(args, dict):
            raise ValueError(f"XCTRSNet extra state must hold a dict of network arguments, got {type(args).__name__}.")

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Reconstruct and segment.

        Args:
            image: ``B2NN``: channel 0 the canonical AP radiograph (axes X, Z), channel 1 the canonical
                LA radiograph (axes Y, Z), see DESIGN.md.

        Returns:
            ``B(1 + seg_out_channels)NNN`` on the ``XYZ`` grid: channel 0 the reconstructed CT (on the
            [0, 1] scale with the default sigmoid head), channels 1.. the segmentation logits of that
            reconstruction (background, C1..C7).

        Raises:
            ValueError: when ``image`` is not ``[B, 2, img_size, img_size]``.
        """
        if not torch.jit.is_tracing() and (image.dim() != 4 or image.shape[1] != 2):
            raise ValueError(f"image must be [B, 2, N, N] (AP, LA), got {list(image.shape)}.")
        ct = self.reconstructor(image[:, 0:1], image[:, 1:2])
        return torch.cat([ct, self.segmenter(ct)], dim=1)

# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""MulSISNet: 3D CT -> C1..C7 segmentation logits (Ge et al., KBS 2021, section 2.2)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.layers import Conv
from monai.networks.layers.factories import split_args
from torch import nn

from xctrs_monai.networks.blocks import (
    MultiPathStep,
    SeqConv,
    _check_channels,
    _check_positive,
    _LEAKY,
)
from xctrs_monai.networks.decoder import CoarseToFineDecoding
from xctrs_monai.networks.memory import checkpoint_call

__all__ = ["MulSISNet"]


def _check_group_norm(norm: str | tuple | None, channels: list[int]) -> None:
    """Raise a ValueError naming the widths that a GroupNorm ``num_groups`` does not divide."""
    if norm is None:
        return
    name, kwargs = split_args(norm)
    if str(name).lower() != "group":
        return
    groups = kwargs.get("num_groups", 1)
    bad = [c for c in channels if c % groups]
    if bad:
        raise ValueError(f"GroupNorm num_groups={groups} must divide every width, got channels {channels}.")


class MulSISNet(CoarseToFineDecoding):
    """Multi-scale Space Interoperability Segmentation Net (Ge et al., KBS 2021, section 2.2).

    Layout (choices the paper leaves open are stated here):

    1. 3D multi-scale paths with dense interoperation (Eq. 12-13, HRNet style). ``num_layers`` time
       steps; path ``s`` (scale ``1/2**s``, width ``channels[s]``) opens at step ``s + 1`` with
       ``SeqConv(DConv(path s-1))`` and afterwards every step is ``SeqConv(own + D(finer) + U(coarser))``.
       With the default ``num_layers=5`` the paths end at layers (1,5), (1/2,4), (1/4,3), (1/8,2), the
       features Eq. 14 joins.
    2. Decoder (Eq. 14), coarse to fine: ``SeqConv(Concat(path_s, UConv(g_{s+1})))`` with
       ``UConv: channels[s+1] -> channels[s]`` and ``SeqConv: 2 channels[s] -> channels[s]``.
    3. Head: 1x1x1 conv ``channels[0] -> out_channels``, no activation (logits).

    Default config: widths (24, 32, 80, 160), 5 steps, GroupNorm with 8 groups (paper 3.1 names
    GroupNorm, not the group count), LeakyReLU(0.2): 4,397,280 parameters and 668.8 GFLOPs for one
    128^3 case (paper Table 3: 4,410,136 and 658.4 GFLOPs; -0.29 % and +1.6 %). The widths are not in
    the paper; they are multiples of 8 (the group count) that fit both of its counts (searched over
    16..32 x 24..64 x 32..128 x 64..256, non-decreasing). 61 % of the FLOPs are the width-24
    convolutions at 128^3; the parameters sit at the coarse scales. The former widths
    ``channels=(16, 40, 80, 160)`` (4.44 M parameters, 479 GFLOPs) remain an argument away. FLOPs count
    2 x multiply-accumulates of the convolutions, as argued in :class:`~xctrs_monai.networks.SpaDRNet`.

    Args:
        in_channels: input channels (the CT on the [0, 1] scale). Defaults to 1.
        out_channels: output channels: background + C1..C7. Defaults to 8.
        channels: width of each scale path, finest first; its length is the number of scales.
            Defaults to ``(24, 32, 80, 160)``.
        num_layers: steps of the full-resolution path, >= number of scales. Defaults to 5.
        norm: normalisation for ``get_norm_layer`` or None. Defaults to GroupNorm with 8 groups.
        act: activation for ``get_act_layer``. Defaults to LeakyReLU(0.2).
        checkpointing: activation checkpointing while training (the stem, each branch of each step,
            each decoder step): less memory for about one more forward pass
            (:func:`~xctrs_monai.networks.memory.checkpoint_call`). Outputs and gradients do not change.
            Defaults to False.

    Raises:
        ValueError: when an argument is out of range (including GroupNorm groups that do not divide
            every width).
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 8,
        channels: Sequence[int] = (24, 32, 80, 160),
        num_layers: int = 5,
        norm: str | tuple | None = ("group", {"num_groups": 8}),
        act: str | tuple | None = _LEAKY,
        checkpointing: bool = False,
    ) -> None:
        super().__init__()
        channels = _check_channels("channels", channels)
        _check_positive("in_channels", in_channels)
        _check_positive("out_channels", out_channels)
        if not isinstance(num_layers, int) or isinstance(num_layers, bool) or num_layers < len(channels):
            raise ValueError(f"num_layers must be an int >= len(channels)={len(channels)}, got {num_layers!r}.")
        _check_group_norm(norm, channels)
        self.in_channels = in_channels
        self.num_scales = len(channels)
        self.checkpointing = bool(checkpointing)
        self.stem = SeqConv(3, in_channels, channels[0], norm=norm, act=act)
        steps = []
        for t in range(1, num_layers):
            m = min(t, len(channels))
            new_path = channels[m] if m < len(channels) else None
            steps.append(
                MultiPathStep(
                    3, channels[:m], channels[:m], new_path, norm=norm, act=act, checkpointing=self.checkpointing
                )
            )
        self.steps = nn.ModuleList(steps)
        self.build_decoder(channels, norm, act)
        self.head = Conv[Conv.CONV, 3](channels[0], out_channels, kernel_size=1)

    def forward(self, ct: torch.Tensor) -> torch.Tensor:
        """Segment a CT volume.

        Args:
            ct: ``B1XYZ`` CT on the [0, 1] scale; every side divisible by ``2**(len(channels) - 1)``.

        Returns:
            ``B(out_channels)XYZ`` logits (channel 0 background, 1..7 = C1..C7).

        Raises:
            ValueError: when the input is not 5D with ``in_channels`` channels and divisible sides.
        """
        factor = 1 << (self.num_scales - 1)
        if not torch.jit.is_tracing() and (
            ct.dim() != 5
            or ct.shape[1] != self.in_channels
            or ct.shape[2] % factor != 0
            or ct.shape[3] % factor != 0
            or ct.shape[4] % factor != 0
        ):
            raise ValueError(
                f"ct must be [B, {self.in_channels}, X, Y, Z] with sides divisible by {factor}, got {list(ct.shape)}."
            )
        if self.checkpointing and not torch.jit.is_scripting():
            xs = [checkpoint_call(self.stem, ct)]
        else:
            xs = [self.stem(ct)]
        for step in self.steps:
            xs = step(xs)
        return self.head(self.decode(xs))

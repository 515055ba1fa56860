# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""SpaDRNet: biplanar radiographs -> 3D CT (Ge et al., KBS 2021, section 2.1)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.layers import Conv
from torch import nn

from xctrs_monai.networks.blocks import (
    MultiPathStep,
    MultiScaleExchange,
    SeqConv,
    _act_or_identity,
    _check_channels,
    _check_positive,
    _LEAKY,
    _norm_or_identity,
)
from xctrs_monai.networks.decoder import CoarseToFineDecoding
from xctrs_monai.networks.memory import checkpoint_call
from xctrs_monai.networks.view_alignment import align_views

__all__ = ["SpaDRNet"]


def _check_img_size(img_size: int, num_scales: int) -> None:
    if not isinstance(img_size, int) or isinstance(img_size, bool) or img_size < 16 or img_size & (img_size - 1):
        raise ValueError(f"img_size must be a power of 2 >= 16, got {img_size!r}.")
    if img_size >> (num_scales - 1) < 2:
        raise ValueError(f"img_size {img_size} is too small for {num_scales} scales (coarsest side must be >= 2).")


class _ToVolume(nn.Module):
    """2D conv + channel->depth reshape (the paper's PS, Eq. 4): ``B c H W -> B C H W D``.

    The conv outputs ``C * D`` channels; channel ``k = c * D + d`` becomes channel ``c`` at depth ``d``.
    A 3D normalisation + activation follows (statistics over the whole 3D feature).
    """

    def __init__(
        self, in_channels: int, out_channels: int, depth: int, norm: str | tuple | None, act: str | tuple | None
    ) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.depth = depth
        self.conv = Conv[Conv.CONV, 2](in_channels, out_channels * depth, kernel_size=3, padding=1)
        self.norm = _norm_or_identity(norm, 3, out_channels)
        self.act = _act_or_identity(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        b, _, h, w = y.shape
        y = y.reshape(b, self.out_channels, self.depth, h, w).permute(0, 1, 3, 4, 2)
        return self.act(self.norm(y))


class _ViewEncoder(nn.Module):
    """Progressive 2D-to-3D conversion of one radiograph: ``B in N N -> [B C_s N_s N_s N_s for each scale s]``."""

    def __init__(
        self,
        img_size: int,
        in_channels: int,
        channels: list[int],
        volume_channels: list[int],
        norm: str | tuple | None,
        act: str | tuple | None,
        checkpointing: bool = False,
    ) -> None:
        super().__init__()
        self.checkpointing = checkpointing
        num_scales = len(volume_channels)
        self.stem = SeqConv(2, in_channels, channels[0], norm=norm, act=act)
        steps = []
        for t in range(1, len(channels)):
            num_paths = min(t, num_scales)
            new_path = channels[t] if num_paths < num_scales else None
            steps.append(
                MultiPathStep(2, [channels[t - 1]] * num_paths, [channels[t]] * num_paths, new_path, norm=norm, act=act)
            )
        self.steps = nn.ModuleList(steps)
        self.to_volume = nn.ModuleList(
            [_ToVolume(channels[-1], c, img_size >> s, norm, act) for s, c in enumerate(volume_channels)]
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        xs = [self.stem(x)]
        for step in self.steps:
            xs = step(xs)
        outs: list[torch.Tensor] = []
        for s, to_volume in enumerate(self.to_volume):
            if self.checkpointing and not torch.jit.is_scripting():
                outs.append(checkpoint_call(to_volume, xs[s]))
            else:
                outs.append(to_volume(xs[s]))
        return outs


class SpaDRNet(CoarseToFineDecoding):
    """Spatial Decomposition-Reconstruction Net: AP + LA radiographs -> 3D CT (Ge et al., KBS 2021, 2.1).

    Layout (every choice the paper leaves open is stated here):

    1. Progressive 2D-to-3D conversion, one encoder per view (AP and LA do not share weights).
       ``len(channels)`` time steps ``t``; path ``s`` (scale ``1/2**s``) opens at step ``s + 1`` with
       ``SeqConv(DConv(path s-1))`` (Eq. 2) and afterwards every step is an HRNet exchange (Eq. 3):
       each path gets ``SeqConv(own + D(finer) + U(coarser))``. All paths use the width of the step,
       ``channels[t]``, so the full-resolution path grows 1 -> 16 -> 32 -> 64 -> 128 as in the paper
       and path ``s`` has ``len(channels) - s`` layers.
    2. Channel->depth reshape per scale (Eq. 4): a 3x3 conv ``channels[-1] -> C_s * N_s`` then
       ``[C_s * N_s, N_s, N_s] -> [C_s, N_s, N_s, N_s]`` (channel ``c * N_s + d`` -> channel ``c``, depth
       ``d``), with ``C_s = volume_channels[s]``, 3D norm + activation. The depth axis is last and its
       index ``d`` is the volume index along the view's beam axis (Y for AP, X for LA; see
       :mod:`xctrs_monai.networks.view_alignment`).
    3. View alignment (Eq. 5-7, :func:`align_views`): ``2 C_s`` channels on the ``XYZ`` grid per scale.
    4. Multi-scale 3D fusion (Eq. 8): ``fusion_layers`` HRNet exchanges over the 3D scales, widths
       ``2 C_s`` kept.
    5. Hierarchical 3D fusion (Eq. 9), coarse to fine: ``SeqConv3D(Concat(f_s, UConv(g_{s+1})))`` with
       ``UConv: 2C_{s+1} -> 2C_s`` and ``SeqConv3D: 4C_s -> 2C_s``.
    6. Head: 1x1x1 conv ``2 C_0 -> out_channels`` + ``out_act``. The default is a sigmoid so the output
       is on the [0, 1] CT scale of DESIGN.md (HU window [-1000, 2000]) by construction, the range the
       segmenter sees for ground-truth CT; pass ``out_act=None`` for a linear head.

    Default config (paper, 128^3): 2D widths (16, 32, 64, 128) (given by the paper), per-view 3D widths
    (4, 12, 32, 224) at scales 1, 1/2, 1/4, 1/8, one 3D exchange, InstanceNorm, LeakyReLU(0.2):
    22,935,017 parameters and 216.4 GFLOPs for one 128^3 case (paper Table 2: 22,992,322 and
    216.8 GFLOPs; -0.25 % and -0.21 %). The per-view 3D widths are not in the paper; they are the
    non-decreasing widths whose larger relative error on the two counts is smallest in a grid search
    (``C_0`` in 2..8, ``C_1`` in 4..32, ``C_2`` in 8..64, ``C_3`` in 128..320). Parameters sit in the
    channel->depth convs (13.6 M) and the 3D layers (7.9 M, most at the 448-channel 1/8 scale); FLOPs
    in the 2D encoders (73 G) and the 3D scales (54 G at 1/8, 33 G at 1/4, 32 G at 1/2, 25 G at full
    resolution): the narrow ``C_0``, ``C_1`` keep the 128^3 and 64^3 volumes cheap, where the former
    widths ``volume_channels=(8, 32, 64, 128)`` (24.5 M parameters, 598 GFLOPs, still an argument
    away) spent most of their compute.

    FLOP convention (the paper does not give one): a multiply-accumulate of a convolution, transposed
    convolution or linear layer counts as two floating-point operations (2 x MACs); normalisation,
    activation, addition, concatenation and nearest-neighbour up-sampling are not counted. This is
    what ``torch.utils.flop_counter.FlopCounterMode`` counts, so the figures can be re-counted with
    PyTorch alone (``scripts/benchmark_networks.py``); the uncounted element-wise work costs about ten
    operations per output element against ``2 * 27 * C_in`` for a 3x3x3 convolution, a few per cent at
    most. Under the other common convention (1 x MACs) every figure here halves.

    Args:
        img_size: side ``N`` of the square radiographs and the cubic output, a power of 2 >= 16.
            Defaults to 128.
        in_channels: channels of each radiograph. Defaults to 1.
        out_channels: output channels. Defaults to 1.
        channels: 2D widths per progression step (length >= number of scales). Defaults to
            ``(16, 32, 64, 128)``.
        volume_channels: per-view 3D widths ``C_s`` per scale, finest first; its length is the number of
            scales. Defaults to ``(4, 12, 32, 224)``.
        fusion_layers: number of multi-scale 3D exchanges (Eq. 8). Defaults to 1.
        norm: normalisation for ``get_norm_layer`` or None. Defaults to ``"instance"`` (paper 3.1).
        act: activation for ``get_act_layer``. Defaults to LeakyReLU(0.2).
        out_act: activation of the head or None (linear). Defaults to ``"sigmoid"``.
        checkpointing: activation checkpointing of the 3D parts (channel->depth reshapes, each branch of
            the 3D exchanges, each hierarchical fusion step) while training: less memory for about one
            more forward pass of those parts (:func:`~xctrs_monai.networks.memory.checkpoint_call`).
            Outputs and gradients do not change. Defaults to False.

    Raises:
        ValueError: when an argument is out of range.
    """

    def __init__(
        self,
        img_size: int = 128,
        in_channels: int = 1,
        out_channels: int = 1,
        channels: Sequence[int] = (16, 32, 64, 128),
        volume_channels: Sequence[int] = (4, 12, 32, 224),
        fusion_layers: int = 1,
        norm: str | tuple | None = "instance",
        act: str | tuple | None = _LEAKY,
        out_act: str | tuple | None = "sigmoid",
        checkpointing: bool = False,
    ) -> None:
        super().__init__()
        channels = _check_channels("channels", channels)
        volume_channels = _check_channels("volume_channels", volume_channels)
        if len(channels) < len(volume_channels):
            raise ValueError(
                f"channels needs at least one step per scale: len(channels)={len(channels)} < "
                f"len(volume_channels)={len(volume_channels)}."
            )
        _check_img_size(img_size, len(volume_channels))
        _check_positive("in_channels", in_channels)
        _check_positive("out_channels", out_channels)
        if not isinstance(fusion_layers, int) or isinstance(fusion_layers, bool) or fusion_layers < 0:
            raise ValueError(f"fusion_layers must be a non-negative int, got {fusion_layers!r}.")
        self.img_size = img_size
        self.in_channels = in_channels
        self.checkpointing = bool(checkpointing)
        encoder_args = (img_size, in_channels, channels, volume_channels, norm, act, self.checkpointing)
        self.ap_encoder = _ViewEncoder(*encoder_args)
        self.la_encoder = _ViewEncoder(*encoder_args)
        widths = [2 * c for c in volume_channels]
        self.fusion = nn.ModuleList(
            [
                MultiScaleExchange(3, widths, widths, norm=norm, act=act, checkpointing=self.checkpointing)
                for _ in range(fusion_layers)
            ]
        )
        self.build_decoder(widths, norm, act)
        self.head = nn.Sequential(
            Conv[Conv.CONV, 3](widths[0], out_channels, kernel_size=1), _act_or_identity(out_act)
        )

    def _check_input(self, name: str, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.in_channels or x.shape[2] != self.img_size or x.shape[3] != self.img_size:
            raise ValueError(
                f"{name} must be [B, {self.in_channels}, {self.img_size}, {self.img_size}], got {list(x.shape)}."
            )

    def forward(self, ap: torch.Tensor, la: torch.Tensor) -> torch.Tensor:
        """Reconstruct a CT volume from the two views.

        Args:
            ap: canonical AP radiograph ``B1NN`` (axes X, Z of DESIGN.md).
            la: canonical LA radiograph ``B1NN`` (axes Y, Z).

        Returns:
            ``B1NNN`` volume ``BCXYZ`` (RAS), on the [0, 1] CT scale when ``out_act`` is a sigmoid.

        Raises:
            ValueError: when an input is not ``[B, in_channels, img_size, img_size]``.
        """
        if not torch.jit.is_tracing():  # shapes are constants in a trace
            self._check_input("ap", ap)
            self._check_input("la", la)
        feats: list[torch.Tensor] = []
        for ap_feat, la_feat in zip(self.ap_encoder(ap), self.la_encoder(la)):
            feats.append(align_views(ap_feat, la_feat))
        for exchange in self.fusion:
            feats = exchange(feats)
        return self.head(self.decode(feats))

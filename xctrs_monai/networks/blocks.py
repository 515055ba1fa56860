# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Building blocks shared by SpaDRNet and MulSISNet, generic over ``spatial_dims`` (2 or 3).

The operators follow the notation of Ge et al., "X-CTRSNet: 3D cervical vertebra CT reconstruction
and segmentation directly from 2D X-ray images", Knowledge-Based Systems 2021 (sections 2.1, 2.2):

- ``SeqConv``: 3x3(x3) convolution + normalisation + activation.
- ``DConv``: 3x3(x3) convolution with stride 2 + normalisation + activation (opens a coarser path).
- ``Up`` (the paper's U): nearest-neighbour up-sampling with a 1x1(x1) convolution.
- ``Down`` (the paper's D): a chain of strided 3x3(x3) convolutions.
- ``MultiScaleExchange``: HRNet-style fusion (Sun et al., CVPR 2019): every branch receives the sum
  of all branches resampled to its scale, followed by a ``SeqConv``.
- ``UConv``: 3x3(x3) transposed convolution with stride 2 + normalisation + activation.
- ``MultiPathStep``: one step of the collateral multi-scale paths: an exchange among the open paths,
  and optionally a new coarser path ``SeqConv(DConv(coarsest path))`` (Eq. 2-3, 12-13).

Convolutions directly followed by a normalisation layer carry no bias (the normalisation removes
or re-learns it); with ``norm=None`` they do.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.layers import Conv, get_act_layer, get_norm_layer
from torch import nn

from xctrs_monai.networks.memory import checkpoint_call

__all__ = ["SeqConv", "DConv", "Up", "Down", "UConv", "MultiScaleExchange", "MultiPathStep", "up_and_join"]

#: The paper's activation (section 3.1), the default of every block and network.
_LEAKY = ("leakyrelu", {"negative_slope": 0.2, "inplace": True})


def _check_spatial_dims(spatial_dims: int) -> None:
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}.")


def _check_positive(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}.")


def _check_conv_args(spatial_dims: int, in_channels: int, out_channels: int) -> None:
    _check_spatial_dims(spatial_dims)
    _check_positive("in_channels", in_channels)
    _check_positive("out_channels", out_channels)


def _check_channels(name: str, channels: Sequence[int], min_len: int = 1) -> list[int]:
    values = list(channels) if isinstance(channels, Sequence) and not isinstance(channels, str) else None
    if values is None or len(values) < min_len or any(
        not isinstance(c, int) or isinstance(c, bool) or c < 1 for c in values
    ):
        raise ValueError(f"{name} must be a sequence of >= {min_len} positive ints, got {channels!r}.")
    return values


def _norm_or_identity(norm: str | tuple | None, spatial_dims: int, channels: int) -> nn.Module:
    return nn.Identity() if norm is None else get_norm_layer(norm, spatial_dims=spatial_dims, channels=channels)


def _act_or_identity(act: str | tuple | None) -> nn.Module:
    return nn.Identity() if act is None else get_act_layer(act)


class SeqConv(nn.Sequential):
    """Convolution + normalisation + activation (the paper's SeqConv, Eq. 2-3, 8-9, 12-14).

    With ``strides=2`` it is the paper's DConv (see :class:`DConv`).

    Args:
        spatial_dims: 2 for image features ``BCHW``, 3 for volume features ``BCXYZ``.
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: odd kernel size; padding keeps the size (up to the stride). Defaults to 3.
        strides: convolution stride. Defaults to 1.
        norm: normalisation name or ``(name, kwargs)`` for ``get_norm_layer``, or None.
            Defaults to ``"instance"``.
        act: activation name or ``(name, kwargs)`` for ``get_act_layer``, or None.
            Defaults to LeakyReLU(0.2).

    Raises:
        ValueError: when ``spatial_dims`` is not 2/3, or a size is not a positive int or the kernel
            size is even.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        strides: int = 1,
        norm: str | tuple | None = "instance",
        act: str | tuple | None = _LEAKY,
    ) -> None:
        _check_conv_args(spatial_dims, in_channels, out_channels)
        _check_positive("strides", strides)
        _check_positive("kernel_size", kernel_size)
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}.")
        conv_type = Conv[Conv.CONV, spatial_dims]
        super().__init__(
            conv_type(
                in_channels,
                out_channels,
                kernel_size=kernel_size,
                stride=strides,
                padding=kernel_size // 2,
                bias=norm is None,
            ),
            _norm_or_identity(norm, spatial_dims, out_channels),
            _act_or_identity(act),
        )


class DConv(SeqConv):
    """Strided 3x3(x3) convolution (stride 2) + normalisation + activation: the paper's DConv (Eq. 2, 13).

    Halves every spatial size (sizes must be even). Arguments as in :class:`SeqConv`.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        norm: str | tuple | None = "instance",
        act: str | tuple | None = _LEAKY,
    ) -> None:
        super().__init__(spatial_dims, in_channels, out_channels, kernel_size=3, strides=2, norm=norm, act=act)


class Up(nn.Sequential):
    """The paper's U (Eq. 3, 8, 12): nearest-neighbour up-sampling with a 1x1(x1) convolution (+ norm).

    The 1x1 convolution and the normalisation run at the coarse scale, before the up-sampling: both
    commute exactly with integer-factor nearest up-sampling (each value is repeated the same number of
    times, so per-channel or per-group statistics do not change), so the result equals
    "upsample then 1x1 conv" at a fraction of the cost. No activation (HRNet fuses before activating).

    Args:
        spatial_dims: 2 or 3.
        in_channels: channels of the coarse input.
        out_channels: channels of the output.
        scale_factor: integer up-sampling factor (a power of 2 between scales). Defaults to 2.
        norm: normalisation for ``get_norm_layer`` or None. Defaults to ``"instance"``.

    Raises:
        ValueError: when an argument is out of range.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        scale_factor: int = 2,
        norm: str | tuple | None = "instance",
    ) -> None:
        _check_conv_args(spatial_dims, in_channels, out_channels)
        _check_positive("scale_factor", scale_factor)
        conv_type = Conv[Conv.CONV, spatial_dims]
        super().__init__(
            conv_type(in_channels, out_channels, kernel_size=1, bias=norm is None),
            _norm_or_identity(norm, spatial_dims, out_channels),
            nn.Upsample(scale_factor=float(scale_factor), mode="nearest"),
        )


class Down(nn.Sequential):
    """The paper's D (Eq. 3, 8, 12): ``num_steps`` consecutive strided 3x3(x3) convolutions.

    As in HRNet, the intermediate convolutions keep ``in_channels`` and are followed by norm +
    activation; the last one maps to ``out_channels`` and is followed by norm only (the caller sums
    before activating).

    Args:
        spatial_dims: 2 or 3.
        in_channels: channels of the fine input.
        out_channels: channels of the output.
        num_steps: number of stride-2 convolutions (downsampling factor ``2**num_steps``). Defaults to 1.
        norm: normalisation for ``get_norm_layer`` or None. Defaults to ``"instance"``.
        act: activation between the steps. Defaults to LeakyReLU(0.2).

    Raises:
        ValueError: when an argument is out of range.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        num_steps: int = 1,
        norm: str | tuple | None = "instance",
        act: str | tuple | None = _LEAKY,
    ) -> None:
        _check_positive("num_steps", num_steps)
        layers: list[nn.Module] = [
            SeqConv(spatial_dims, in_channels, in_channels, strides=2, norm=norm, act=act) for _ in range(num_steps - 1)
        ]
        layers.append(SeqConv(spatial_dims, in_channels, out_channels, strides=2, norm=norm, act=None))
        super().__init__(*layers)


class UConv(nn.Sequential):
    """The paper's UConv (Eq. 9, 14): 3x3(x3) transposed convolution, stride 2, + norm + activation.

    Doubles every spatial size exactly (padding 1, output padding 1).

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels.
        out_channels: output channels.
        norm: normalisation for ``get_norm_layer`` or None. Defaults to ``"instance"``.
        act: activation or None. Defaults to LeakyReLU(0.2).

    Raises:
        ValueError: when an argument is out of range.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        norm: str | tuple | None = "instance",
        act: str | tuple | None = _LEAKY,
    ) -> None:
        _check_conv_args(spatial_dims, in_channels, out_channels)
        conv_type = Conv[Conv.CONVTRANS, spatial_dims]
        super().__init__(
            conv_type(
                in_channels, out_channels, kernel_size=3, stride=2, padding=1, output_padding=1, bias=norm is None
            ),
            _norm_or_identity(norm, spatial_dims, out_channels),
            _act_or_identity(act),
        )


def up_and_join(up: nn.Module, join: nn.Module, finer: torch.Tensor, coarser: torch.Tensor) -> torch.Tensor:
    """One coarse-to-fine decoder step (Eq. 9, 14): ``join(Concat(finer, up(coarser)))``.

    Args:
        up: the up-sampling :class:`UConv` of the coarser features.
        join: the :class:`SeqConv` of the concatenation.
        finer: ``BC_fS...`` features of the finer scale.
        coarser: ``BC_cS/2...`` features of the coarser scale.

    Returns:
        ``join`` of the channel concatenation ``[finer, up(coarser)]``.
    """
    return join(torch.cat([finer, up(coarser)], dim=1))



class _FuseToScale(nn.Module):
    """One target branch of :class:`MultiScaleExchange`: ``SeqConv(x_j + sum_i R_ij(x_i))``."""

    def __init__(self, target: int, sources: list[int], resamplers: list[nn.Module], conv: nn.Module) -> None:
        super().__init__()
        self.target = target
        self.sources = sources
        self.resamplers = nn.ModuleList(resamplers)
        self.conv = conv

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        acc = xs[self.target]
        for k, resample in enumerate(self.resamplers):
            acc = acc + resample(xs[self.sources[k]])
        return self.conv(acc)


class MultiScaleExchange(nn.Module):
    """HRNet-style multi-scale exchange (the paper's Eq. 3, 8, 12; Sun et al., CVPR 2019).

    Branch ``k`` holds features at scale ``1 / 2**k``. Output branch ``j`` is
    ``SeqConv_j(x_j + sum_{i<j} D(x_i) + sum_{i>j} U(x_i))`` where D has ``j - i`` strided steps and
    U up-samples by ``2**(i - j)``; resamplers map channels ``in_channels[i] -> in_channels[j]`` and
    ``SeqConv_j`` maps ``in_channels[j] -> out_channels[j]``. With one branch it is a plain SeqConv.

    Args:
        spatial_dims: 2 or 3.
        in_channels: channels of each input branch, finest first.
        out_channels: channels of each output branch, finest first (same length).
        norm: normalisation for ``get_norm_layer`` or None. Defaults to ``"instance"``.
        act: activation. Defaults to LeakyReLU(0.2).
        checkpointing: recompute each output branch in the backward pass instead of keeping its inner
            activations (:func:`~xctrs_monai.networks.memory.checkpoint_call`). Defaults to False.

    Raises:
        ValueError: when the channel sequences are empty, differ in length or hold non-positive values.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: Sequence[int],
        out_channels: Sequence[int],
        norm: str | tuple | None = "instance",
        act: str | tuple | None = _LEAKY,
        checkpointing: bool = False,
    ) -> None:
        super().__init__()
        _check_spatial_dims(spatial_dims)
        self.checkpointing = bool(checkpointing)
        in_channels, out_channels = list(in_channels), list(out_channels)
        if not in_channels or len(in_channels) != len(out_channels):
            raise ValueError(
                f"in_channels and out_channels must be non-empty and of equal length, got {in_channels} and "
                f"{out_channels}."
            )
        targets = []
        for j, (c_in, c_out) in enumerate(zip(in_channels, out_channels)):
            sources, resamplers = [], []
            for i, c_src in enumerate(in_channels):
                if i < j:
                    resamplers.append(Down(spatial_dims, c_src, c_in, num_steps=j - i, norm=norm, act=act))
                elif i > j:
                    resamplers.append(Up(spatial_dims, c_src, c_in, scale_factor=2 ** (i - j), norm=norm))
                else:
                    continue
                sources.append(i)
            conv = SeqConv(spatial_dims, c_in, c_out, norm=norm, act=act)
            targets.append(_FuseToScale(j, sources, resamplers, conv))
        self.branches = nn.ModuleList(targets)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        """Exchange information among branches.

        Args:
            xs: one tensor per branch, ``BC_kS_k...`` with ``S_k = S_0 / 2**k`` along every spatial axis.

        Returns:
            one tensor per branch with the output channels, same spatial sizes as the input.
        """
        outs: list[torch.Tensor] = []
        for branch in self.branches:
            if self.checkpointing and not torch.jit.is_scripting():
                outs.append(checkpoint_call(branch, xs))
            else:
                outs.append(branch(xs))
        return outs


class MultiPathStep(nn.Module):
    """One step of the collateral multi-scale paths (Eq. 2-3 in 2D, Eq. 12-13 in 3D).

    The open paths (finest first) go through a :class:`MultiScaleExchange`; when ``new_path_channels``
    is given, a coarser path is opened from the coarsest input as ``SeqConv(DConv(x_last))`` with
    ``DConv: in_channels[-1] -> new_path_channels`` and ``SeqConv: new_path_channels -> new_path_channels``.

    Args:
        spatial_dims: 2 or 3.
        in_channels: channels of the open paths, finest first.
        out_channels: channels of the open paths after the step.
        new_path_channels: channels of a path to open, or None. Defaults to None.
        norm: normalisation for ``get_norm_layer`` or None. Defaults to ``"instance"``.
        act: activation. Defaults to LeakyReLU(0.2).
        checkpointing: recompute each branch of the exchange and the new path in the backward pass
            instead of keeping their inner activations. Defaults to False.

    Raises:
        ValueError: when an argument is out of range.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: Sequence[int],
        out_channels: Sequence[int],
        new_path_channels: int | None = None,
        norm: str | tuple | None = "instance",
        act: str | tuple | None = _LEAKY,
        checkpointing: bool = False,
    ) -> None:
        super().__init__()
        self.checkpointing = bool(checkpointing)
        self.exchange = MultiScaleExchange(
            spatial_dims, in_channels, out_channels, norm=norm, act=act, checkpointing=checkpointing
        )
        openers: list[nn.Module] = []
        if new_path_channels is not None:
            _check_positive("new_path_channels", new_path_channels)
            openers.append(
                nn.Sequential(
                    DConv(spatial_dims, list(in_channels)[-1], new_path_channels, norm=norm, act=act),
                    SeqConv(spatial_dims, new_path_channels, new_path_channels, norm=norm, act=act),
                )
            )
        self.new_path = nn.ModuleList(openers)  # 0 or 1 element

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        """Advance the paths by one step.

        Args:
            xs: one tensor per open path, ``BC_kS_k...`` with ``S_k = S_0 / 2**k``.

        Returns:
            the advanced paths, plus the new coarsest one when a path is opened.
        """
        outs = self.exchange(xs)
        for opener in self.new_path:
            if self.checkpointing and not torch.jit.is_scripting():
                outs.append(checkpoint_call(opener, xs[-1]))
            else:
                outs.append(opener(xs[-1]))
        return outs

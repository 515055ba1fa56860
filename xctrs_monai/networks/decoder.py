# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""The coarse-to-fine decoder shared by SpaDRNet (Eq. 9) and MulSISNet (Eq. 14) of Ge et al., KBS 2021."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from xctrs_monai.networks.blocks import SeqConv, UConv, up_and_join
from xctrs_monai.networks.memory import checkpoint_call

__all__ = ["CoarseToFineDecoding"]


class CoarseToFineDecoding(nn.Module):
    """Base of a network whose decoder joins its scales coarse to fine (Eq. 9 of SpaDRNet, Eq. 14 of MulSISNet).

    :meth:`build_decoder` registers ``ups`` (:class:`UConv` ``widths[s+1] -> widths[s]``) and ``joins``
    (:class:`SeqConv` ``2 widths[s] -> widths[s]``), entry ``k`` for scale ``s = len(widths) - 2 - k``;
    :meth:`decode` runs them with :func:`up_and_join`, under activation checkpointing when the subclass
    sets its attribute ``checkpointing`` to True. A base class, not a submodule, so that the weights keep
    their names ``ups.*`` and ``joins.*``; a method, not a function, so that TorchScript can iterate them.
    """

    def build_decoder(self, widths: Sequence[int], norm: str | tuple | None, act: str | tuple | None) -> None:
        """Register ``ups`` and ``joins`` for the 3D feature ``widths``, finest first."""
        ups, joins = [], []
        for s in range(len(widths) - 2, -1, -1):
            ups.append(UConv(3, widths[s + 1], widths[s], norm=norm, act=act))
            joins.append(SeqConv(3, 2 * widths[s], widths[s], norm=norm, act=act))
        self.ups = nn.ModuleList(ups)
        self.joins = nn.ModuleList(joins)

    def decode(self, feats: list[torch.Tensor]) -> torch.Tensor:
        """``BCXYZ`` features of the finest scale, decoded from ``feats`` (one per scale, finest first)."""
        y = feats[-1]
        for k, (up, join) in enumerate(zip(self.ups, self.joins)):
            finer = feats[len(feats) - 2 - k]
            if self.checkpointing and not torch.jit.is_scripting():
                y = checkpoint_call(up_and_join, up, join, finer, y)
            else:  # TorchScript: modules cannot be passed to functions
                y = join(torch.cat([finer, up(y)], dim=1))
        return y

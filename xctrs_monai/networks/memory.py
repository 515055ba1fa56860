# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""How the networks hold their tensors in memory: channels-last layouts and activation checkpointing.

- :func:`to_channels_last` stores convolution weights and feature maps channel-innermost
  (``torch.channels_last`` for ``BCHW``, ``torch.channels_last_3d`` for ``BCXYZ``), the layout that
  oneDNN (CPU) and cuDNN (GPU) convolutions run fastest in, above all with bfloat16/float16 autocast.
  A convolution whose weight is channels-last returns a channels-last output, so converting the network
  is enough for its features to stay channels-last; converting the inputs as well saves one copy.
- :func:`instance_norm_channels_last_backward_ok` checks whether this torch build computes the
  gradient of ``instance_norm`` right when the incoming gradient is channels-last (torch 2.13.0 on
  CPU does not: the gradient is silently wrong), so that training can refuse channels-last where it
  would learn from wrong gradients. Inference is not affected.
- :func:`checkpoint_call` runs a block under ``torch.utils.checkpoint.checkpoint(use_reentrant=False)``
  when gradients are recorded: the block's inner activations are dropped after the
  forward pass and recomputed during the backward pass (less memory for about one more forward).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

__all__ = ["to_channels_last", "checkpoint_call", "instance_norm_channels_last_backward_ok"]

T = TypeVar("T", nn.Module, torch.Tensor)

_FORMATS = {4: torch.channels_last, 5: torch.channels_last_3d}


def to_channels_last(obj: T) -> T:
    """Convert a module's 4D/5D parameters and buffers, or a 4D/5D tensor, to the channels-last layout.

    ``nn.Module.to(memory_format=torch.channels_last)`` gives every 4D and 5D tensor the same format and
    fails on 5D ones, so a network with both 2D and 3D convolutions (SpaDRNet) is converted layer by
    layer: each module with 4D or 5D tensors of its own (a convolution) gets ``torch.channels_last`` for
    4D and ``torch.channels_last_3d`` for 5D; other tensors are left alone. Values do not change, and
    the parameters stay the same ``nn.Parameter`` objects (an optimizer built before still holds them).

    Args:
        obj: a module (converted in place and returned) or a tensor (a channels-last copy is returned
            unless it already is one; tensors of other ranks are returned unchanged).

    Returns:
        ``obj`` in the channels-last layout.

    Raises:
        TypeError: when ``obj`` is neither a module nor a tensor.
        ValueError: when a submodule holds 4D or 5D tensors of its own and has children, or holds both
            4D and 5D tensors (``Module.to`` would give them one format).
    """
    if isinstance(obj, torch.Tensor):
        fmt = _FORMATS.get(obj.dim())
        return obj if fmt is None else obj.contiguous(memory_format=fmt)
    if not isinstance(obj, nn.Module):
        raise TypeError(f"to_channels_last takes an nn.Module or a torch.Tensor, got {type(obj).__name__}.")
    for module in obj.modules():
        own = (*module.parameters(recurse=False), *module.buffers(recurse=False))
        ranks = {t.dim() for t in own} & set(_FORMATS)
        if not ranks:
            continue
        if len(ranks) > 1 or next(module.children(), None) is not None:
            # Module.to gives one format to every 4D/5D tensor of the module and of its children
            raise ValueError(
                f"to_channels_last converts modules whose 4D/5D tensors have one rank and that have no "
                f"children (as convolutions); {type(module).__name__} holds ranks {sorted(ranks)} and "
                f"{len(list(module.children()))} children."
            )
        module.to(memory_format=_FORMATS[ranks.pop()])
    return obj


def instance_norm_channels_last_backward_ok(device: str | torch.device = "cpu") -> bool:
    """Whether ``instance_norm``'s backward on ``device`` is right for a channels-last incoming gradient.

    Compares the input gradient of ``torch.nn.functional.instance_norm`` for the same incoming gradient
    in the contiguous and in the channels-last(-3d) layout, for 2D and 3D features of batch 1 and 2:
    the layouts that a channels-last convolution after an ``InstanceNorm`` sends back. Two values of the
    same maths, so any difference beyond float32 rounding is a defect of the build (torch 2.13.0 on CPU
    gets batch 1 wrong, the batch size of the paper's training).

    Args:
        device: where to check. Defaults to ``"cpu"``.

    Returns:
        True when both layouts give the same gradient.
    """
    generator = torch.Generator().manual_seed(0)
    for (rank, fmt), batch in ((item, b) for item in _FORMATS.items() for b in (1, 2)):
        shape = (batch, 3) + (4,) * (rank - 2)
        x = torch.rand(shape, generator=generator).to(device).requires_grad_()
        grad = torch.rand(shape, generator=generator).to(device)
        with torch.autocast(torch.device(device).type, enabled=False):
            out = torch.nn.functional.instance_norm(x)
            (reference,) = torch.autograd.grad(out, x, grad, retain_graph=True)
            (other,) = torch.autograd.grad(out, x, grad.contiguous(memory_format=fmt))
        if not torch.allclose(other, reference, rtol=1e-4, atol=1e-6):
            return False
    return True


def checkpoint_call(function: Callable, *args):
    """``function(*args)`` under activation checkpointing when gradients are recorded, a plain call otherwise.

    Uses ``torch.utils.checkpoint.checkpoint(..., use_reentrant=False)``, which accepts lists of tensors
    among ``args``, works with inputs that do not require grad and keeps autocast and the random state
    of the forward pass for the recomputation. Without grad mode (evaluation, inference) there is
    nothing to save, so it is a plain call. Not TorchScript-able: networks call it under
    ``if self.checkpointing and not torch.jit.is_scripting():``, a branch TorchScript leaves out.

    Args:
        function: a module or function of ``args``.
        args: its positional arguments.

    Returns:
        ``function(*args)``.
    """
    if torch.is_grad_enabled():
        return checkpoint(function, *args, use_reentrant=False)
    return function(*args)

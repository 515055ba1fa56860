# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Helpers for multi-process (``torchrun``) runs of the bundle."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import torch.distributed as dist

__all__ = ["rank_zero_first"]

T = TypeVar("T")


def rank_zero_first(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """
    Call ``fn`` on rank 0 first and on the other ranks after it finished; a plain call without a process group.

    Meant for idempotent set-up work that every rank needs the result of, such as generating the phantom
    dataset on first use: rank 0 writes the files, the other ranks then find them and only read the
    datalist. In a config: ``"$xctrs_monai.engines.rank_zero_first(xctrs_monai.data.write_phantom_dataset, ...)"``.

    Args:
        fn: the function.
        args: positional arguments of ``fn``.
        kwargs: keyword arguments of ``fn``.

    Returns:
        what ``fn`` returns on this rank.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return fn(*args, **kwargs)
    if dist.get_rank() == 0:
        result = fn(*args, **kwargs)
        dist.barrier()
        return result
    dist.barrier()
    return fn(*args, **kwargs)

# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Benchmark ``make_phantom``: wall time and peak memory of one phantom.

Usage::

    python scripts/benchmark_phantoms.py --size 128 --spacing 1.25 --runs 10 --threads 1

Prints the median and minimum wall time of one phantom over ``runs`` seeds (after one warm-up), its
median CPU time (``time.process_time``, less sensitive than the wall time to other jobs on a shared machine), and
the peak of the memory that numpy and torch allocate on the heap while one phantom is made
(``tracemalloc``, which numpy reports its arrays to), in MiB and in units of one float32 volume.
"""

from __future__ import annotations

import statistics
import time
import tracemalloc

import fire
import torch

from xctrs_monai.constants import DEFAULT_IMG_SIZE, DEFAULT_SPACING
from xctrs_monai.data import make_phantom

__all__ = ["benchmark"]


def benchmark(
    size: int = DEFAULT_IMG_SIZE, spacing: float = DEFAULT_SPACING, runs: int = 10, threads: int = 1
) -> None:
    """Print the time of ``make_phantom(seed, size, spacing)`` for seeds ``1..runs`` and its peak heap memory.

    Args:
        size: grid size in voxels. Defaults to 128.
        spacing: voxel size in mm. Defaults to 1.25.
        runs: timed phantoms. Defaults to 10.
        threads: torch threads (numpy runs on one core). Defaults to 1.
    """
    torch.set_num_threads(int(threads))
    make_phantom(0, size, spacing)  # warm-up
    times, cpu = [], []
    for seed in range(1, int(runs) + 1):
        start, start_cpu = time.perf_counter(), time.process_time()
        make_phantom(seed, size, spacing)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    tracemalloc.start()
    make_phantom(int(runs) + 1, size, spacing)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(
        f"make_phantom {size}^3 x {spacing} mm, {threads} thread(s): median {statistics.median(times):.3f} s, "
        f"min {min(times):.3f} s over {runs} seeds (CPU median {statistics.median(cpu):.3f} s); "
        f"peak heap {peak / 2**20:.0f} MiB "
        f"({peak / (4 * size**3):.1f} float32 volumes)"
    )


if __name__ == "__main__":
    fire.Fire(benchmark)

# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Benchmark the biplanar DRR projector (cone beam, AP + LA pair).

Usage::

    python scripts/benchmark_drr.py --size 128 --threads 2 --runs 50

Prints the median time of one AP + LA pair for a ``size^3`` CT (``size x size`` detectors), forward only and
forward + backward, on the CPU and, when available, on CUDA (synchronised), plus the peak extra host memory
(resident-set growth while projecting, which is what torch's CPU allocator makes visible) or the peak extra
CUDA memory, in units of the volume size.
"""

from __future__ import annotations

import resource
import statistics
import time

import fire
import torch

from xctrs_monai.transforms.drr import BiplanarProjector

__all__ = ["benchmark"]


def _median_ms(fn, runs: int, warmup: int, device: torch.device) -> float:
    times = []
    for i in range(warmup + runs):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def _max_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def benchmark(size: int = 128, threads: int = 2, runs: int = 50, warmup: int = 5, batch: int = 1, cuda: bool = True):
    """Time ``BiplanarProjector`` on a random HU volume.

    Args:
        size: volume edge (voxels); the detectors are ``size x size``. Defaults to 128.
        threads: ``torch.set_num_threads`` for the CPU run. Defaults to 2.
        runs: timed repetitions (the median is reported). Defaults to 50.
        warmup: untimed repetitions first. Defaults to 5.
        batch: volumes per call. Defaults to 1.
        cuda: also run on CUDA when it is available. Defaults to True.
    """
    torch.set_num_threads(threads)
    devices = [torch.device("cpu")]
    if cuda and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    volume_bytes = batch * size**3 * 4
    print(f"torch {torch.__version__}, {threads} CPU thread(s), volume {batch}x1x{size}^3 float32 "
          f"({volume_bytes / 2**20:.1f} MiB), cone beam, AP + LA {size}x{size}")
    for device in devices:
        # the CPU memory baseline is taken before any volume-sized tensor exists
        rss_before = _max_rss_bytes()
        projector = BiplanarProjector((size, size, size), (1.0, 1.0, 1.0), geometry="cone")
        generator = torch.Generator().manual_seed(0)
        volume = (torch.rand(batch, 1, size, size, size, generator=generator) * 2000.0 - 1000.0).to(device)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            cuda_before = torch.cuda.memory_allocated(device)
        rss_input = _max_rss_bytes()

        def forward():
            with torch.no_grad():
                return projector(volume)

        forward_ms = _median_ms(forward, runs, warmup, device)
        rss_forward = _max_rss_bytes()
        if device.type == "cuda":
            cuda_forward = torch.cuda.max_memory_allocated(device) - cuda_before
            torch.cuda.reset_peak_memory_stats(device)
        leaf = volume.clone().requires_grad_(True)

        def forward_backward():
            ap, la = projector(leaf)
            (ap.sum() + la.sum()).backward()
            leaf.grad = None

        backward_ms = _median_ms(forward_backward, runs, warmup, device)
        rss_backward = _max_rss_bytes()
        print(f"[{device.type}] forward (AP + LA): median {forward_ms:.2f} ms over {runs} runs")
        print(f"[{device.type}] forward + backward: median {backward_ms:.2f} ms over {runs} runs")
        if device.type == "cuda":
            cuda_backward = torch.cuda.max_memory_allocated(device) - cuda_before
            print(f"[cuda] peak extra memory: forward {cuda_forward / volume_bytes:.2f} x volume, "
                  f"forward + backward {cuda_backward / volume_bytes:.2f} x volume (incl. the gradient leaf)")
        else:
            print(f"[cpu] peak RSS growth: input volume {(rss_input - rss_before) / volume_bytes:.2f} x volume, "
                  f"then forward +{(rss_forward - rss_input) / volume_bytes:.2f} x volume, "
                  f"forward + backward +{(rss_backward - rss_forward) / volume_bytes:.2f} x volume more "
                  f"(incl. the gradient leaf and its gradient)")


if __name__ == "__main__":
    fire.Fire(benchmark)

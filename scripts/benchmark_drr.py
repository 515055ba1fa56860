# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Benchmark the biplanar DRR projector (cone beam, one AP + LA pair per volume).

Usage::

    python scripts/benchmark_drr.py --size 128 --threads 2 --runs 50

Prints the median (and minimum) time of one AP + LA pair for a ``size^3`` CT on ``size x size`` detectors,
forward only and forward + backward, on the CPU and, when available, on CUDA (synchronised); on the CPU also
the ``BiplanarDRR`` transform on a CT loaded from NIfTI by MONAI's ``LoadImage`` (a ``MetaTensor`` with its
header metadata, as in the bundle's pipeline) and its ratio to the bare projector. Then the peak extra memory
in units of the volume: on CUDA from the allocator's peak; on the CPU from the growth of the
peak resident set in a fresh process whose ``malloc`` returns every large block to the system at once
(``MALLOC_MMAP_THRESHOLD_``), so that the peak reflects the live tensors.
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import tempfile
import time

import fire
import numpy as np
import torch

from monai.transforms import LoadImage
from xctrs_monai.data import save_nifti
from xctrs_monai.networks.layers import BiplanarProjector
from xctrs_monai.transforms import BiplanarDRR

__all__ = ["benchmark"]


def _times_ms(fn, runs: int, warmup: int, device: torch.device) -> tuple[float, float]:
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
    return 1e3 * statistics.median(times), 1e3 * min(times)


def _volume(size: int, batch: int, device: torch.device) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.empty(batch, 1, size, size, size).uniform_(-1000.0, 1000.0, generator=generator).to(device)


def _loaded_ct(volume: torch.Tensor, spacing: float):
    """``volume[0]`` written as NIfTI and read back by ``LoadImage``: a ``[1, X, Y, Z]`` MetaTensor with metadata."""
    with tempfile.TemporaryDirectory() as folder:
        size = volume.shape[-1]
        affine = np.diag([spacing, spacing, spacing, 1.0])
        path = save_nifti(volume[0, 0].numpy(), affine, os.path.join(folder, f"ct_{size}.nii"))
        return LoadImage(image_only=True, ensure_channel_first=True)(str(path))


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field))


def _peak_growth(fn) -> int:
    """Bytes by which the resident set peaks above its level before ``fn`` (Linux: resets VmHWM first)."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")
    base = _rss_kib("VmRSS:")
    fn()
    return (_rss_kib("VmHWM:") - base) * 1024


def _cpu_memory_probe(size: int, batch: int, threads: int, connection) -> None:
    """Runs in a fresh process: peak RSS growth of the first forward, then of a forward + backward."""
    torch.set_num_threads(threads)
    projector = BiplanarProjector((size, size, size), (1.0, 1.0, 1.0))
    volume = _volume(size, batch, torch.device("cpu"))
    leaf = volume.clone().requires_grad_(True)

    def forward():
        with torch.no_grad():
            projector(volume)

    def forward_backward():
        ap, la = projector(leaf)
        (ap.sum() + la.sum()).backward()

    connection.send((_peak_growth(forward), _peak_growth(forward_backward)))


def _cpu_memory(size: int, batch: int, threads: int) -> tuple[int, int]:
    context = multiprocessing.get_context("spawn")
    previous = os.environ.get("MALLOC_MMAP_THRESHOLD_")
    os.environ["MALLOC_MMAP_THRESHOLD_"] = "65536"  # the child inherits it at start-up
    try:
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(target=_cpu_memory_probe, args=(size, batch, threads, sender))
        process.start()
        result = receiver.recv()
        process.join()
    finally:
        if previous is None:
            os.environ.pop("MALLOC_MMAP_THRESHOLD_")
        else:
            os.environ["MALLOC_MMAP_THRESHOLD_"] = previous
    return result


def benchmark(size: int = 128, threads: int = 2, runs: int = 50, warmup: int = 5, batch: int = 1, cuda: bool = True):
    """Time ``BiplanarProjector`` (cone beam, HU input) on a random volume and report its extra memory.

    Args:
        size: volume edge in voxels; the detectors are ``size x size``. Defaults to 128.
        threads: ``torch.set_num_threads`` for the CPU runs. Defaults to 2.
        runs: timed repetitions (the median is reported, with the minimum). Defaults to 50.
        warmup: untimed repetitions first. Defaults to 5.
        batch: volumes per call. Defaults to 1.
        cuda: also run on CUDA when it is available. Defaults to True.
    """
    torch.set_num_threads(threads)
    devices = [torch.device("cpu")]
    if cuda and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    volume_bytes = batch * size**3 * 4
    print(
        f"torch {torch.__version__}, {threads} CPU thread(s), volume {batch}x1x{size}^3 float32 "
        f"({volume_bytes / 2**20:.1f} MiB), cone beam, AP + LA {size}x{size}"
    )
    for device in devices:
        projector = BiplanarProjector((size, size, size), (1.0, 1.0, 1.0))
        volume = _volume(size, batch, device)
        leaf = volume.clone().requires_grad_(True)

        def forward():
            with torch.no_grad():
                return projector(volume)

        def forward_backward():
            ap, la = projector(leaf)
            (ap.sum() + la.sum()).backward()
            leaf.grad = None

        if device.type == "cuda":
            forward()
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            before = torch.cuda.memory_allocated(device)
            forward()
            cuda_forward = torch.cuda.max_memory_allocated(device) - before
            torch.cuda.reset_peak_memory_stats(device)
            forward_backward()
            cuda_backward = torch.cuda.max_memory_allocated(device) - before
        for name, fn in (("forward (AP + LA)", forward), ("forward + backward", forward_backward)):
            median, fastest = _times_ms(fn, runs, warmup, device)
            print(f"[{device.type}] {name}: median {median:.2f} ms, min {fastest:.2f} ms over {runs} runs")
        if device.type == "cpu" and batch == 1:
            ct, drr = _loaded_ct(volume, 1.0), BiplanarDRR()
            # alternate the two calls, so that a busy machine slows both alike and the ratio stays meaningful
            bare, transform = [], []
            for i in range(warmup + runs):
                bare.append(_times_ms(forward, 1, 0, device)[0])
                transform.append(_times_ms(lambda: drr(ct), 1, 0, device)[0])
            bare, transform = statistics.median(bare[warmup:]), statistics.median(transform[warmup:])
            print(
                f"[cpu] BiplanarDRR on a LoadImage MetaTensor (AP + LA with metadata) vs the bare projector, "
                f"alternating: median {transform:.2f} ms vs {bare:.2f} ms over {runs} runs, {transform / bare:.2f} x"
            )
        if device.type == "cuda":
            print(
                f"[cuda] peak extra memory: forward {cuda_forward / volume_bytes:.2f} x volume, "
                f"forward + backward {cuda_backward / volume_bytes:.2f} x volume (incl. the gradient)"
            )
        else:
            forward_rss, backward_rss = _cpu_memory(size, batch, threads)
            print(
                f"[cpu] peak extra memory (RSS growth, fresh process): first forward {forward_rss / volume_bytes:.2f}"
                f" x volume (incl. the reusable per-thread workspace and sparse operators), then forward + "
                f"backward {backward_rss / volume_bytes:.2f} x volume more (incl. the gradient)"
            )


if __name__ == "__main__":
    fire.Fire(benchmark)

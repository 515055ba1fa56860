# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Parameters, FLOPs and forward latency of SpaDRNet, MulSISNet and XCTRSNet, compared with the paper.

Example::

    python scripts/benchmark_networks.py --threads 2                      # 128^3, CPU, fp32/bf16 x layouts
    python scripts/benchmark_networks.py --timed False                    # counts only (a few seconds)
    python scripts/benchmark_networks.py --networks XCTRSNet --precisions bf16 --channels_last on
    python scripts/benchmark_networks.py --device cuda --precisions fp32,bf16,fp16 --runs 20 --warmup 5

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` on the meta device (shapes only, no
arithmetic): a multiply-accumulate of a convolution, transposed convolution or matmul counts as two
operations; normalisation, activations, additions and resampling are not counted (the convention argued
in the SpaDRNet docstring; the paper, Ge et al., KBS 2021, Tables 2-3, does not give one). Latency is the
median of ``runs`` forward passes of one sample under ``torch.inference_mode``, in float32 or under
``torch.autocast`` in bfloat16/float16, with the network and input in the contiguous or the channels-last
layout (:func:`xctrs_monai.networks.to_channels_last`). The paper's latencies are on an RTX 3080 GPU.
"""

from __future__ import annotations

import resource
import statistics
import time

import fire
import torch
from torch.utils.flop_counter import FlopCounterMode

from xctrs_monai.networks import MulSISNet, SpaDRNet, XCTRSNet, to_channels_last

__all__ = ["PAPER", "PRECISIONS", "count", "latency", "main"]

# Ge et al., KBS 2021, Table 2 (SpaDRNet) and Table 3 (MulSISNet); latency on an RTX 3080.
PAPER = {
    "SpaDRNet": {"params": 22_992_322, "flops": 216_830_517_469, "latency_s": 0.182},
    "MulSISNet": {"params": 4_410_136, "flops": 658_383_183_305, "latency_s": 0.410},
    "XCTRSNet": {"params": 22_992_322 + 4_410_136, "flops": 216_830_517_469 + 658_383_183_305, "latency_s": 0.592},
}
NETWORKS = {"SpaDRNet": SpaDRNet, "MulSISNet": MulSISNet, "XCTRSNet": XCTRSNet}
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def _build(name: str, img_size: int) -> torch.nn.Module:
    return MulSISNet() if name == "MulSISNet" else NETWORKS[name](img_size=img_size)


def _inputs(name: str, img_size: int, device: str | torch.device) -> tuple[torch.Tensor, ...]:
    n = img_size
    gen = torch.Generator().manual_seed(0)
    shapes = {"SpaDRNet": [(1, 1, n, n), (1, 1, n, n)], "MulSISNet": [(1, 1, n, n, n)], "XCTRSNet": [(1, 2, n, n)]}
    if torch.device(device).type == "meta":
        return tuple(torch.empty(s, device="meta") for s in shapes[name])
    return tuple(torch.rand(s, generator=gen).to(device) for s in shapes[name])


def count(name: str, img_size: int = 128) -> dict[str, int]:
    """Parameters and FLOPs (2 x MACs) of one network at its default widths, counted on the meta device.

    Args:
        name: ``"SpaDRNet"``, ``"MulSISNet"`` or ``"XCTRSNet"``.
        img_size: radiograph / CT side. Defaults to 128.

    Returns:
        ``{"params", "flops"}``.
    """
    with torch.device("meta"):
        net = _build(name, img_size)
        counter = FlopCounterMode(display=False)
        with counter:
            net(*_inputs(name, img_size, "meta"))
    return {"params": sum(p.numel() for p in net.parameters()), "flops": int(counter.get_total_flops())}


def latency(
    name: str,
    img_size: int = 128,
    device: str = "cpu",
    precision: str = "fp32",
    channels_last: bool = False,
    runs: int = 3,
    warmup: int = 1,
) -> dict[str, float]:
    """Median forward latency of one sample.

    Args:
        name: ``"SpaDRNet"``, ``"MulSISNet"`` or ``"XCTRSNet"``.
        img_size: radiograph / CT side. Defaults to 128.
        device: ``"cpu"`` or ``"cuda"``. Defaults to ``"cpu"``.
        precision: a key of ``PRECISIONS``. Defaults to ``"fp32"``.
        channels_last: network and input in the channels-last layouts. Defaults to False.
        runs: timed passes (median reported). Defaults to 3.
        warmup: untimed passes first. Defaults to 1.

    Returns:
        ``{"latency_s", "cuda_max_allocated_mib"}`` (the latter None on CPU).

    Raises:
        ValueError: for an unknown precision, ``runs < 1`` or ``warmup < 0``.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}.")
    if runs < 1 or warmup < 0:
        raise ValueError(f"runs must be >= 1 and warmup >= 0, got runs={runs}, warmup={warmup}.")
    dev = torch.device(device)
    torch.manual_seed(0)
    net = _build(name, img_size).to(dev).eval()
    inputs = _inputs(name, img_size, dev)
    if channels_last:
        to_channels_last(net)
        inputs = tuple(to_channels_last(x) for x in inputs)
    dtype = PRECISIONS[precision]
    times = []
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    with torch.inference_mode(), torch.autocast(dev.type, dtype=dtype, enabled=dtype is not None):
        for i in range(warmup + runs):
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            start = time.perf_counter()
            net(*inputs)
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            if i >= warmup:
                times.append(time.perf_counter() - start)
    cuda_mib = torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else None
    return {"latency_s": statistics.median(times), "cuda_max_allocated_mib": cuda_mib}


def _names(value: str | tuple | list) -> list[str]:
    return [v.strip() for v in value.split(",")] if isinstance(value, str) else [str(v) for v in value]


def main(
    img_size: int = 128,
    threads: int = 2,
    device: str = "cpu",
    networks: str | tuple = ("SpaDRNet", "MulSISNet", "XCTRSNet"),
    precisions: str | tuple = ("fp32", "bf16"),
    channels_last: str | tuple = ("off", "on"),
    runs: int = 3,
    warmup: int = 1,
    timed: bool = True,
) -> None:
    """Print the params/FLOPs table (paper vs ours) and the latency of every network x precision x layout.

    Args:
        img_size: radiograph / CT side. Defaults to 128.
        threads: ``torch.set_num_threads`` (CPU). Defaults to 2.
        device: ``"cpu"`` or ``"cuda"``. Defaults to ``"cpu"``.
        networks: comma-separated names. Defaults to all three.
        precisions: comma-separated keys of ``PRECISIONS``. Defaults to ``fp32,bf16``.
        channels_last: ``"off"``, ``"on"`` or ``"off,on"``. Defaults to both.
        runs: timed passes per case. Defaults to 3.
        warmup: untimed passes per case. Defaults to 1.
        timed: time the forward passes (``--timed False`` prints the counts only). Defaults to True.

    Raises:
        ValueError: for an unknown network or layout name, or ``--device cuda`` without a GPU.
    """
    names = _names(networks)
    unknown = sorted(set(names) - set(NETWORKS))
    if unknown:
        raise ValueError(f"networks must be names from {sorted(NETWORKS)}, got {unknown}.")
    layouts = {"off": False, "on": True}
    if any(v not in layouts for v in _names(channels_last)):
        raise ValueError(f"channels_last must be off, on or off,on, got {channels_last!r}.")
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda asked for, but torch.cuda.is_available() is False.")
    torch.set_num_threads(threads)
    gpu = torch.cuda.get_device_name(torch.device(device)) if torch.device(device).type == "cuda" else "-"
    print(f"img_size={img_size} batch=1 device={device} ({gpu}) threads={threads} torch={torch.__version__}")
    if img_size != 128:
        print(f"note: the paper's counts are for 128^3; at {img_size}^3 the Diff columns compare unlike sizes")
    print("| Network | Params (paper) | Params (ours) | Diff | GFLOPs (paper) | GFLOPs (ours, 2 x MACs) | Diff |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in names:
        ours, paper = count(name, img_size), PAPER[name]
        print(
            f"| {name} | {paper['params']:,} | {ours['params']:,} | {ours['params'] / paper['params'] - 1:+.1%} | "
            f"{paper['flops'] / 1e9:.1f} | {ours['flops'] / 1e9:.1f} | {ours['flops'] / paper['flops'] - 1:+.1%} |",
            flush=True,
        )
    if not timed:
        return
    print()
    print(f"| Network | Precision | Channels-last | Latency ({device}) | Paper (RTX 3080) | Peak CUDA MiB |")
    print("|---|---|---|---:|---:|---:|")
    for name in names:
        for precision in _names(precisions):
            for layout in _names(channels_last):
                r = latency(name, img_size, device, precision, layouts[layout], runs, warmup)
                cuda = "-" if r["cuda_max_allocated_mib"] is None else f"{r['cuda_max_allocated_mib']:.0f}"
                print(
                    f"| {name} | {precision} | {layout} | {r['latency_s'] * 1e3:.1f} ms | "
                    f"{PAPER[name]['latency_s'] * 1e3:.0f} ms | {cuda} |",
                    flush=True,
                )
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")


if __name__ == "__main__":
    fire.Fire(main)

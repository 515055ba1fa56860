# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Parameters, FLOPs and CPU latency of SpaDRNet, MulSISNet and XCTRSNet, compared with the paper.

Example::

    python scripts/benchmark_networks.py --img_size 128 --threads 2 --runs 3

FLOPs come from ``torch.utils.flop_counter.FlopCounterMode``, which counts matrix multiplies and
convolutions (including transposed ones) as 2 * multiply-accumulates and ignores normalisation,
activations, additions and resampling. The paper (Ge et al., KBS 2021, Tables 2-3) does not say how it
counted; its latencies are on an RTX 3080 GPU, ours on CPU, so only parameters compare directly.
"""

from __future__ import annotations

import resource
import statistics
import time

import fire
import torch
from torch.utils.flop_counter import FlopCounterMode

from xctrs_monai.networks import MulSISNet, SpaDRNet, XCTRSNet

__all__ = ["PAPER", "benchmark", "main"]

# Ge et al., KBS 2021, Table 2 (SpaDRNet) and Table 3 (MulSISNet); latency on an RTX 3080.
PAPER = {
    "SpaDRNet": {"params": 22_992_322, "flops": 216_830_517_469, "latency_s": 0.182},
    "MulSISNet": {"params": 4_410_136, "flops": 658_383_183_305, "latency_s": 0.410},
    "XCTRSNet": {"params": 22_992_322 + 4_410_136, "flops": 216_830_517_469 + 658_383_183_305, "latency_s": 0.592},
}


def _count_flops(net: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> int:
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        net(*inputs)
    return int(counter.get_total_flops())


def _latency(net: torch.nn.Module, inputs: tuple[torch.Tensor, ...], runs: int, warmup: int) -> float:
    times = []
    with torch.inference_mode():
        for i in range(warmup + runs):
            start = time.perf_counter()
            net(*inputs)
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return statistics.median(times)


def benchmark(img_size: int = 128, runs: int = 3, warmup: int = 1, flops: bool = True) -> dict[str, dict[str, float]]:
    """Measure the three networks at their default widths (the paper's config) for one sample.

    Args:
        img_size: radiograph side / CT side. Defaults to 128.
        runs: timed forward passes per network (median reported). Defaults to 3.
        warmup: untimed passes before timing. Defaults to 1.
        flops: also count FLOPs (one extra forward per network). Defaults to True.

    Returns:
        ``{name: {"params", "flops", "latency_s"}}``.

    Raises:
        ValueError: when ``runs`` < 1 or ``warmup`` < 0.
    """
    if runs < 1 or warmup < 0:
        raise ValueError(f"runs must be >= 1 and warmup >= 0, got runs={runs}, warmup={warmup}.")
    ap, la = torch.rand(1, 1, img_size, img_size), torch.rand(1, 1, img_size, img_size)
    cases = {
        "SpaDRNet": (SpaDRNet(img_size=img_size), (ap, la)),
        "MulSISNet": (MulSISNet(), (torch.rand(1, 1, img_size, img_size, img_size),)),
        "XCTRSNet": (XCTRSNet(img_size=img_size), (torch.cat([ap, la], dim=1),)),
    }
    results = {}
    for name, (net, inputs) in cases.items():
        net.eval()
        params = sum(p.numel() for p in net.parameters())
        n_flops = _count_flops(net, inputs) if flops else float("nan")
        latency = _latency(net, inputs, runs, warmup)
        results[name] = {"params": params, "flops": n_flops, "latency_s": latency}
        print(
            f"{name:10s} params {params:>13,}  FLOPs (2*MACs) {n_flops:>19,.0f}  CPU latency {latency:8.3f} s",
            flush=True,
        )
    return results


def main(img_size: int = 128, threads: int = 2, runs: int = 3, warmup: int = 1, flops: bool = True) -> None:
    """Print parameters, FLOPs, median CPU latency, and a paper-vs-ours table.

    Args:
        img_size: radiograph side / CT side. Defaults to 128.
        threads: ``torch.set_num_threads``. Defaults to 2.
        runs: timed forward passes per network. Defaults to 3.
        warmup: untimed passes before timing. Defaults to 1.
        flops: also count FLOPs. Defaults to True.
    """
    torch.set_num_threads(threads)
    print(
        f"img_size={img_size} batch=1 threads={threads} runs={runs} warmup={warmup} torch={torch.__version__}; "
        "FLOPs = 2 * multiply-accumulates of convs/matmuls (torch FlopCounterMode)"
    )
    results = benchmark(img_size=img_size, runs=runs, warmup=warmup, flops=flops)
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")
    print()
    print(
        "| Network | Params (paper) | Params (ours) | Diff | FLOPs (paper) | FLOPs (ours, 2*MACs) "
        "| Latency (paper, RTX 3080) | Latency (ours, CPU) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, ours in results.items():
        paper = PAPER[name]
        diff = ours["params"] / paper["params"] - 1
        print(
            f"| {name} | {paper['params']:,} | {ours['params']:,} | {diff:+.1%} | {paper['flops']:,} | "
            f"{ours['flops']:,.0f} | {paper['latency_s']:.3f} s | {ours['latency_s']:.2f} s |"
        )


if __name__ == "__main__":
    fire.Fire(main)

# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Training-step speed and peak memory of X-CTRSNet for the bundle's paper and quick configurations.

Example::

    python scripts/benchmark_training.py                       # paper (128^3) and quick (32^3), 3 iterations each
    python scripts/benchmark_training.py --configs quick --iterations 10 --threads 2

Each configuration builds ``network``, ``loss`` and ``optimizer`` from ``bundle/configs/train.json`` (plus
``quick.json`` for ``quick``) and runs the real ``XCTRSTrainer`` step (R forward, S on the reconstruction
and on the ground truth, XCTRSLoss, Adam) on random data of the configured size, batch 1; data loading,
DRR computation and validation are not included. Every configuration runs in its own subprocess so that
the peak resident memory (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) belongs to it alone; on a GPU the
peak allocated CUDA memory is reported too.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import fire
import torch

__all__ = ["CONFIGS", "measure", "main"]

BUNDLE_CONFIGS = Path(__file__).resolve().parents[1] / "bundle" / "configs"
CONFIGS = {
    "paper": ["train.json"],
    "quick": ["train.json", "quick.json"],
}


def measure(config: str = "paper", iterations: int = 3, warmup: int = 1, device: str | None = None,
            threads: int | None = None, amp: bool | None = None) -> dict:
    """Time ``iterations`` training steps of one configuration in this process.

    Args:
        config: ``"paper"`` or ``"quick"``.
        iterations: timed iterations. Defaults to 3.
        warmup: untimed iterations first. Defaults to 1.
        device: ``"cpu"``, ``"cuda"``, ... Defaults to ``None``: the bundle's choice (CUDA when available).
        threads: ``torch.set_num_threads`` for CPU runs. Defaults to ``None`` (PyTorch's default).
        amp: mixed precision. Defaults to ``None``: the bundle's choice (on for CUDA).

    Returns:
        a dict with the configuration, device, ``it_per_s``, ``s_per_it``, ``peak_rss_mib`` and
        ``cuda_max_allocated_mib`` (None on CPU).

    Raises:
        ValueError: for an unknown configuration.
    """
    import warnings

    from monai.bundle import ConfigParser
    from monai.data import DataLoader

    from xctrs_monai.engines import XCTRSTrainer

    if config not in CONFIGS:
        raise ValueError(f"config must be one of {sorted(CONFIGS)}, got {config!r}.")
    if threads:
        torch.set_num_threads(int(threads))
    warnings.filterwarnings("ignore", message="VGG16Features has no weights_path")
    parser = ConfigParser()
    parser.read_config([str(BUNDLE_CONFIGS / name) for name in CONFIGS[config]])
    if device is not None:
        parser["device"] = f"$torch.device('{device}')"
    if amp is not None:
        parser["amp"] = bool(amp)
    dev = parser.get_parsed_content("device")
    n = int(parser.get_parsed_content("img_size"))
    gen = torch.Generator().manual_seed(0)
    item = {
        "xray_ap": torch.rand(1, n, n, generator=gen),
        "xray_la": torch.rand(1, n, n, generator=gen),
        "image": torch.rand(1, n, n, n, generator=gen),
        "label": torch.randint(0, 8, (1, n, n, n), generator=gen).float(),
    }
    total = warmup + iterations
    times: list[float] = []
    trainer = XCTRSTrainer(
        device=dev,
        max_epochs=1,
        train_data_loader=DataLoader([item] * total, batch_size=1),
        network=parser.get_parsed_content("network"),
        optimizer=parser.get_parsed_content("optimizer"),
        loss_function=parser.get_parsed_content("loss"),
        amp=bool(parser.get_parsed_content("amp")),
        decollate=False,
    )
    from ignite.engine import Events

    @trainer.on(Events.ITERATION_STARTED)
    def _start(engine):
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        engine.state.t0 = time.perf_counter()

    @trainer.on(Events.ITERATION_COMPLETED)
    def _stop(engine):
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        if engine.state.iteration > warmup:
            times.append(time.perf_counter() - engine.state.t0)

    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    trainer.run()
    s_per_it = sum(times) / len(times)
    return {
        "config": config,
        "img_size": n,
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "amp": bool(trainer.amp),
        "iterations": len(times),
        "s_per_it": s_per_it,
        "it_per_s": 1.0 / s_per_it,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "cuda_max_allocated_mib": torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else None,
    }


def main(configs: str | tuple = ("paper", "quick"), iterations: int = 3, warmup: int = 1, device: str | None = None,
         threads: int | None = None, amp: bool | None = None, isolate: bool = True) -> None:
    """Benchmark several configurations and print a table.

    Args:
        configs: names from ``CONFIGS``, comma-separated or a tuple. Defaults to paper and quick.
        iterations, warmup, device, threads, amp: see :func:`measure`.
        isolate: one subprocess per configuration (separate peak memory). Defaults to True.
    """
    names = [c.strip() for c in configs.split(",")] if isinstance(configs, str) else list(configs)
    kwargs = {"iterations": iterations, "warmup": warmup, "device": device, "threads": threads, "amp": amp}
    results = []
    for name in names:
        if not isolate:
            results.append(measure(name, **kwargs))
            continue
        code = (
            "import json, sys; sys.path.insert(0, %r); import benchmark_training as b; "
            "print('RESULT ' + json.dumps(b.measure(%r, **%r)))" % (str(Path(__file__).parent), name, kwargs)
        )
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ))
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode != 0 or not lines:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            results.append({"config": name, "error": f"exit code {proc.returncode}: " + " | ".join(tail)})
            continue
        results.append(json.loads(lines[-1][len("RESULT "):]))
    header = (
        f"{'config':<7} {'size':>5} {'device':<8} {'thr':>3} {'amp':>5} {'s/it':>8} {'it/s':>8} "
        f"{'peak RSS MiB':>13} {'CUDA max MiB':>13}"
    )
    print(header)
    for r in results:
        if "error" in r:
            print(f"{r['config']:<7} failed: {r['error']}")
            continue
        cuda = f"{r['cuda_max_allocated_mib']:.0f}" if r["cuda_max_allocated_mib"] is not None else "-"
        print(
            f"{r['config']:<7} {r['img_size']:>5} {r['device']:<8} {r['threads']:>3} {str(r['amp']):>5} "
            f"{r['s_per_it']:>8.3f} {r['it_per_s']:>8.3f} {r['peak_rss_mib']:>13.0f} {cuda:>13}"
        )


if __name__ == "__main__":
    fire.Fire(main)

# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Training-step speed and peak memory of X-CTRSNet: bundle configurations x precision x checkpointing.

Example::

    python scripts/benchmark_training.py --configs quick --iterations 10 --threads 2
    python scripts/benchmark_training.py --configs paper --precisions fp32,bf16 --checkpointing on
    python scripts/benchmark_training.py --configs paper --img_size 64 --checkpointing on,off  # 1/8 of the memory
    python scripts/benchmark_training.py --configs paper --device cuda --precisions fp32,bf16 --checkpointing on,off

Each configuration builds ``network``, ``loss`` and ``optimizer`` from ``bundle/configs/train.json`` (plus
``quick.json`` for ``quick``) and runs the real ``XCTRSTrainer`` step (R forward, S on the reconstruction
and on the ground truth, XCTRSLoss with the multi-view VGG loss, Adam) on random data of the configured
size, batch 1; data loading, DRR computation and validation are not included. Precision ``fp32`` trains
in float32, ``bf16``/``fp16`` under ``torch.autocast`` in that dtype (``fp16`` with gradient scaling);
``--checkpointing on`` sets the networks' activation checkpointing, ``--channels_last`` the channels-last
layouts. Every case runs in its own subprocess so that the peak resident memory
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) belongs to it alone; on a GPU the peak allocated CUDA
memory is reported too. Memory note: the paper configuration (128^3) without checkpointing peaks near
19 GiB of host memory on CPU; run it only where that is free.
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

__all__ = ["CONFIGS", "PRECISIONS", "measure", "main"]

BUNDLE_CONFIGS = Path(__file__).resolve().parents[1] / "bundle" / "configs"
CONFIGS = {
    "paper": ["train.json"],
    "quick": ["train.json", "quick.json"],
}
PRECISIONS = {"fp32": None, "bf16": "$torch.bfloat16", "fp16": "$torch.float16"}


def measure(
    config: str = "paper",
    iterations: int = 3,
    warmup: int = 1,
    device: str | None = None,
    threads: int | None = None,
    precision: str | None = None,
    checkpointing: bool | None = None,
    channels_last: bool | None = None,
    img_size: int | None = None,
) -> dict:
    """Time ``iterations`` training steps of one configuration in this process.

    Args:
        config: ``"paper"`` or ``"quick"``.
        iterations: timed iterations. Defaults to 3.
        warmup: untimed iterations first. Defaults to 1.
        device: ``"cpu"``, ``"cuda"``, ... Defaults to ``None``: the bundle's choice (CUDA when available).
        threads: ``torch.set_num_threads`` for CPU runs. Defaults to ``None`` (PyTorch's default).
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"``. Defaults to ``None``: the bundle's ``amp`` and
            ``amp_dtype``.
        checkpointing: activation checkpointing of the networks. Defaults to ``None``: the bundle's choice.
        channels_last: channels-last layouts. Defaults to ``None``: the bundle's choice.
        img_size: override of the configuration's grid size (e.g. 64 to probe the paper widths at 1/8 of
            the memory). Defaults to ``None``.

    Returns:
        a dict with the case, device, ``it_per_s``, ``s_per_it``, ``cpu_s_per_it`` (CPU seconds of this
        process per iteration, all threads: less sensitive to other load than the wall time), ``peak_rss_mib`` and
        ``cuda_max_allocated_mib`` (None on CPU).

    Raises:
        ValueError: for an unknown configuration or precision.
    """
    import warnings

    from monai.bundle import ConfigParser
    from monai.data import DataLoader

    from xctrs_monai.engines import XCTRSTrainer

    if config not in CONFIGS:
        raise ValueError(f"config must be one of {sorted(CONFIGS)}, got {config!r}.")
    if precision is not None and precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}.")
    if threads:
        torch.set_num_threads(int(threads))
    warnings.filterwarnings("ignore", message="VGG16Features has no weights_path")
    parser = ConfigParser()
    parser.read_config([str(BUNDLE_CONFIGS / name) for name in CONFIGS[config]])
    parser["pretrained_vgg"] = False  # random VGG weights: the same time and memory, no download needed
    if device is not None:
        parser["device"] = f"$torch.device('{device}')"
    if precision is not None:
        parser["amp"] = PRECISIONS[precision] is not None
        if PRECISIONS[precision] is not None:
            parser["amp_dtype"] = PRECISIONS[precision]
    if checkpointing is not None:
        parser["checkpointing"] = bool(checkpointing)
    if channels_last is not None:
        parser["channels_last"] = bool(channels_last)
    if img_size is not None:
        parser["img_size"] = int(img_size)
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
    cpu_times: list[float] = []
    trainer = XCTRSTrainer(
        device=dev,
        max_epochs=1,
        train_data_loader=DataLoader([item] * total, batch_size=1),
        network=parser.get_parsed_content("network"),
        optimizer=parser.get_parsed_content("optimizer"),
        loss_function=parser.get_parsed_content("loss"),
        amp=bool(parser.get_parsed_content("amp")),
        amp_kwargs={"dtype": parser.get_parsed_content("amp_dtype")},
        channels_last=bool(parser.get_parsed_content("channels_last")),
        decollate=False,
    )
    from ignite.engine import Events

    @trainer.on(Events.ITERATION_STARTED)
    def _start(engine):
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        engine.state.t0, engine.state.c0 = time.perf_counter(), time.process_time()

    @trainer.on(Events.ITERATION_COMPLETED)
    def _stop(engine):
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        if engine.state.iteration > warmup:
            times.append(time.perf_counter() - engine.state.t0)
            cpu_times.append(time.process_time() - engine.state.c0)

    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    trainer.run()
    s_per_it = sum(times) / len(times)
    return {
        "config": config,
        "img_size": n,
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "precision": {torch.bfloat16: "bf16", torch.float16: "fp16"}[trainer.amp_dtype] if trainer.amp else "fp32",
        "checkpointing": bool(parser.get_parsed_content("checkpointing")),
        "channels_last": trainer.channels_last,
        "iterations": len(times),
        "s_per_it": s_per_it,
        "it_per_s": 1.0 / s_per_it,
        "cpu_s_per_it": sum(cpu_times) / len(cpu_times),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "cuda_max_allocated_mib": torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else None,
    }


def _names(value: str | tuple | list) -> list[str]:
    return [v.strip() for v in value.split(",")] if isinstance(value, str) else [str(v) for v in value]


def _switches(value: str | bool | tuple | None) -> list[bool | None]:
    """``"on,off"`` / ``True`` / ``("on", "off")`` / None -> ``[True, False]`` / ``[True]`` / ... / ``[None]``."""
    if value is None or isinstance(value, bool):
        return [value]
    allowed = {"on": True, "true": True, "off": False, "false": False}
    out = []
    for name in _names(value):
        if name.lower() not in allowed:
            raise ValueError(f"a switch must be on/off/true/false (comma-separated), got {name!r}.")
        out.append(allowed[name.lower()])
    return out


def _run_isolated(kwargs: dict) -> dict:
    code = (
        "import json, sys; sys.path.insert(0, %r); import benchmark_training as b; "
        "print('RESULT ' + json.dumps(b.measure(**%r)))" % (str(Path(__file__).parent), kwargs)
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ))
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"config": kwargs["config"], "error": f"exit code {proc.returncode}: " + " | ".join(tail)}
    return json.loads(lines[-1][len("RESULT "):])


def main(
    configs: str | tuple = ("paper", "quick"),
    iterations: int = 3,
    warmup: int = 1,
    device: str | None = None,
    threads: int | None = None,
    precisions: str | tuple | None = None,
    checkpointing: str | bool | tuple | None = None,
    channels_last: bool | None = None,
    img_size: int | None = None,
    isolate: bool = True,
) -> None:
    """Benchmark every combination of configuration x precision x checkpointing and print a table.

    Args:
        configs: names from ``CONFIGS``, comma-separated or a tuple. Defaults to paper and quick.
        iterations, warmup, device, threads, channels_last, img_size: see :func:`measure`.
        precisions: names from ``PRECISIONS``, comma-separated. Defaults to None: the bundle's choice.
        checkpointing: ``"on"``, ``"off"`` or ``"on,off"``. Defaults to None: the bundle's choice.
        isolate: one subprocess per case (separate peak memory). Defaults to True.
    """
    cases = [
        {"config": c, "precision": p, "checkpointing": k}
        for c in _names(configs)
        for p in (_names(precisions) if precisions is not None else [None])
        for k in _switches(checkpointing)
    ]
    common = {"iterations": iterations, "warmup": warmup, "device": device, "threads": threads,
              "channels_last": channels_last, "img_size": img_size}
    results = []
    for case in cases:
        kwargs = {**case, **common}
        results.append(_run_isolated(kwargs) if isolate else measure(**kwargs))
    print(
        f"{'config':<7} {'size':>5} {'device':<8} {'thr':>3} {'prec':>5} {'ckpt':>5} {'c-last':>6} {'s/it':>8} "
        f"{'it/s':>8} {'CPU s/it':>9} {'peak RSS MiB':>13} {'CUDA max MiB':>13}"
    )
    for r in results:
        if "error" in r:
            print(f"{r['config']:<7} failed: {r['error']}")
            continue
        cuda = f"{r['cuda_max_allocated_mib']:.0f}" if r["cuda_max_allocated_mib"] is not None else "-"
        print(
            f"{r['config']:<7} {r['img_size']:>5} {r['device']:<8} {r['threads']:>3} {r['precision']:>5} "
            f"{str(r['checkpointing']):>5} {str(r['channels_last']):>6} {r['s_per_it']:>8.3f} {r['it_per_s']:>8.3f} "
            f"{r['cpu_s_per_it']:>9.2f} {r['peak_rss_mib']:>13.0f} {cuda:>13}",
            flush=True,
        )


if __name__ == "__main__":
    fire.Fire(main)

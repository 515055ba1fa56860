# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""End-to-end inference time per case (radiograph files in -> all outputs written), beside the paper's 0.592 s.

Example::

    python scripts/benchmark_inference.py --runs 3 --threads 2
    python scripts/benchmark_inference.py --config_file "['bundle/configs/inference.json','bundle/configs/quick.json']"

The network has the paper configuration of ``inference.json`` (img_size 128, default widths) with
*random weights*: the time does not depend on the weights, and no trained checkpoint is needed. The
inputs are DRRs of a synthetic phantom written as 16-bit PNGs of a realistic detector size
(``radiograph_size`` pixels, pixel spacing given as a config override), so reading and resampling
are included. One case is timed from ``XCTRSInference.run_case`` start (read both files) to the last
output written (``ct.nii.gz``, ``vertebrae.nii.gz``, ``preview.png``, ``report.json``), after one
warm-up case. Ge et al. (KBS 2021) report 0.592 s for reconstruction + segmentation on an RTX 3080
(network only, it seems); the figures here include file I/O, the re-projection and the preview.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

import fire
import numpy as np
import torch
from monai.bundle import ConfigParser
from monai.data import MetaTensor
from PIL import Image

from xctrs_monai.apps.infer import XCTRSInference, resolve_config_files
from xctrs_monai.data import make_phantom
from xctrs_monai.transforms.drr import BiplanarDRR
from xctrs_monai.transforms.xray import canonical_to_display

__all__ = ["PAPER_SECONDS", "benchmark", "main"]

#: Ge et al., KBS 2021: reconstruction + segmentation of one case on an RTX 3080 laptop GPU.
PAPER_SECONDS = 0.592


def _write_inputs(folder: Path, img_size: int, spacing: float, radiograph_size: int) -> dict:
    """Phantom DRRs as display-layout 16-bit PNGs of ``radiograph_size`` pixels; returns paths and spacing."""
    ct, _, affine = make_phantom(0, size=img_size, spacing=spacing)
    ap, la = BiplanarDRR()(MetaTensor(torch.as_tensor(ct)[None], affine=torch.as_tensor(affine)))
    item, overrides = {"case_id": "bench"}, {}
    for view, drr in (("ap", ap), ("la", la)):
        display = canonical_to_display(drr.as_tensor(), view)[None]
        big = torch.nn.functional.interpolate(display, size=(radiograph_size,) * 2, mode="bilinear")[0, 0].numpy()
        q = np.round((big - big.min()) / (big.max() - big.min()) * 65535).astype(np.uint16)
        Image.fromarray(q).save(folder / f"{view}.png")
        item[view] = str(folder / f"{view}.png")
        overrides[f"{view}_pixel_spacing"] = drr.meta["pixel_spacing"][0] * img_size / radiograph_size
    return {"item": item, "overrides": overrides}


def benchmark(
    config_file: str | list | None = None,
    devices: str | list | None = None,
    runs: int = 3,
    threads: int | None = None,
    radiograph_size: int = 2048,
) -> dict:
    """Time end-to-end inference per case on CPU and, when present, CUDA.

    Args:
        config_file: inference config(s). Defaults to ``bundle/configs/inference.json`` (paper size).
        devices: ``"cpu"``, ``"cuda"`` or a list; defaults to CPU plus CUDA when available.
        runs: timed cases per device (after one warm-up). Defaults to 3.
        threads: ``torch.set_num_threads``; defaults to ``None`` (torch's default).
        radiograph_size: side of the input PNGs in pixels. Defaults to 2048.

    Returns:
        ``{"img_size", "spacing", "threads", "devices": {device: {"median_s", "mean_s", "runs"}}}``.
    """
    if threads:
        torch.set_num_threads(int(threads))
    if devices is None:
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    devices = [devices] if isinstance(devices, str) else list(devices)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = resolve_config_files(config_file)
        parser = ConfigParser()
        parser.read_config(files)
        img_size, spacing = int(parser.get_parsed_content("img_size")), float(parser.get_parsed_content("spacing"))
        inputs = _write_inputs(root, img_size, spacing, radiograph_size)
        torch.manual_seed(0)
        checkpoint = root / "random_weights.pt"
        torch.save(parser.get_parsed_content("network_def").state_dict(), checkpoint)
        for device in devices:
            app = XCTRSInference(files, checkpoint, root / f"out_{device}", device, **inputs["overrides"])
            app.run_case(inputs["item"])  # warm-up
            times = []
            for _ in range(int(runs)):
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
                start = time.perf_counter()
                app.run_case(inputs["item"])
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - start)
            results[device] = {"median_s": statistics.median(times), "mean_s": statistics.mean(times), "runs": times}
    return {"img_size": img_size, "spacing": spacing, "threads": torch.get_num_threads(), "devices": results}


def main(
    config_file: str | list | None = None,
    devices: str | list | None = None,
    runs: int = 3,
    threads: int | None = None,
    radiograph_size: int = 2048,
) -> None:
    """Print the end-to-end seconds per case beside the paper's figure (arguments: see :func:`benchmark`)."""
    out = benchmark(config_file, devices, runs, threads, radiograph_size)
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    print(f"X-CTRSNet end-to-end inference per case: img_size {out['img_size']}, spacing {out['spacing']} mm, random weights,")
    print(f"  inputs {radiograph_size}x{radiograph_size} 16-bit PNG, torch threads {out['threads']}, GPU {gpu}")
    for device, r in out["devices"].items():
        print(f"  {device:5s}: median {r['median_s']:.3f} s, mean {r['mean_s']:.3f} s over {len(r['runs'])} runs")
    print(f"  paper: {PAPER_SECONDS:.3f} s (RTX 3080, reconstruction + segmentation)")
    print(json.dumps(out))


if __name__ == "__main__":
    fire.Fire(main)

# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""End-to-end inference seconds per case (radiograph files in -> every output written), float32 against the
fast setting, and how far the fast setting's outputs are from float32's.

Examples::

    python scripts/benchmark_inference.py --runs 3 --threads 2                 # paper grid, random weights, CPU
    python scripts/benchmark_inference.py --device cuda                        # the same on a GPU
    python scripts/benchmark_inference.py --checkpoint bundle/models/model.pt  # trained: the agreement means something
    python scripts/benchmark_inference.py --precision bf16 --channels_last False

Each case goes through ``xctrs-infer``'s own path (:class:`xctrs_monai.apps.infer.XCTRSInference`): two
DRRs of a synthetic phantom written as 16-bit PNGs of ``radiograph_size`` pixels (pixel spacing given), so
reading and resampling are included, then the network, the re-projection, the files, the preview and the
report. Without ``--checkpoint`` the network of the config (``inference.json``: the paper's 128^3 grid) has
random weights: the time does not depend on them. One warm-up case, then ``runs`` timed cases per setting.
Ge et al. (KBS 2021) report 0.592 s for reconstruction + segmentation on an RTX 3080. On a CPU shared with
other jobs, use ``--threads 1``: torch's threads waiting for each other on busy cores make times vary 10x.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

import fire
import nibabel as nib
import numpy as np
import torch
from monai.data import MetaTensor
from PIL import Image

from xctrs_monai.apps.workflow import XCTRSInference, default_precision
from xctrs_monai.constants import VERTEBRAE
from xctrs_monai.data import make_phantom
from xctrs_monai.transforms.drr import BiplanarDRR
from xctrs_monai.transforms.xray import canonical_to_display

__all__ = ["PAPER_SECONDS", "benchmark", "main"]

#: Ge et al., KBS 2021: reconstruction + segmentation of one case on an RTX 3080 laptop GPU.
PAPER_SECONDS = 0.592


def _write_inputs(folder: Path, img_size: int, spacing: float, radiograph_size: int, seed: int) -> dict:
    """Phantom DRRs as display-layout 16-bit PNGs of ``radiograph_size`` pixels, with their pixel spacing."""
    ct, _, affine = make_phantom(seed, size=img_size, spacing=spacing)
    ap, la = BiplanarDRR()(MetaTensor(torch.as_tensor(ct)[None], affine=torch.as_tensor(affine)))
    item, overrides = {"case_id": "bench"}, {}
    for view, drr in (("ap", ap), ("la", la)):
        display = canonical_to_display(drr.as_tensor(), view)[None]
        big = torch.nn.functional.interpolate(display, size=(radiograph_size,) * 2, mode="bilinear")[0, 0].numpy()
        q = np.round((big - big.min()) / (big.max() - big.min()) * 65535).astype(np.uint16)
        Image.fromarray(q).save(folder / f"{view}.png")
        item[f"xray_{view}"] = str(folder / f"{view}.png")
        overrides[f"{view}_pixel_spacing"] = float(drr.meta["pixel_spacing"][0]) * img_size / radiograph_size
    return {"item": item, "overrides": overrides}


def _agreement(reference: Path, other: Path) -> dict:
    """CT difference (HU) and label agreement of two outputs of the same case."""
    ct = [nib.load(str(f / "ct.nii.gz")).get_fdata() for f in (reference, other)]
    lab = [np.asarray(nib.load(str(f / "vertebrae.nii.gz")).dataobj) for f in (reference, other)]
    dice = []
    for i in range(1, len(VERTEBRAE) + 1):
        a, b = lab[0] == i, lab[1] == i
        if a.any() or b.any():
            dice.append(2.0 * float((a & b).sum()) / float(a.sum() + b.sum()))
    return {
        "ct_mae_hu": float(np.abs(ct[0] - ct[1]).mean()),
        "ct_max_abs_hu": float(np.abs(ct[0] - ct[1]).max()),
        "label_agreement": float((lab[0] == lab[1]).mean()),
        "vertebra_dice": float(np.mean(dice)) if dice else float("nan"),
    }


def benchmark(
    config_file: str | list | None = None,
    device: str = "cpu",
    precision: str = "auto",
    channels_last: bool | str = "auto",
    checkpoint: str | None = None,
    runs: int = 3,
    threads: int | None = None,
    radiograph_size: int = 2048,
    seed: int = 1000,
) -> dict:
    """Time float32 and the fast setting end to end on one device.

    Args:
        config_file: inference config(s). Defaults to ``bundle/configs/inference.json`` (paper grid).
        device: ``"cpu"`` or ``"cuda"``. Defaults to ``"cpu"``.
        precision: the fast setting's precision (``"auto"``: bf16 where the device has it natively).
            Defaults to ``"auto"``.
        channels_last: the fast setting's memory format (``"auto"``: with bf16 on a CPU). Defaults to ``"auto"``.
        checkpoint: a trained ``model.pt``; defaults to ``None`` (random weights of the config's network).
        runs: timed cases per setting (after one warm-up). Defaults to 3.
        threads: ``torch.set_num_threads``; defaults to ``None`` (torch's default).
        radiograph_size: side of the input PNGs in pixels. Defaults to 2048.
        seed: phantom seed of the inputs (not a training phantom). Defaults to 1000.

    Returns:
        ``{"img_size", "spacing", "threads", "device", "settings": {name: {"precision", "channels_last",
        "median_s", "mean_s", "runs"}}, "agreement": {CT and label differences of the fast setting from fp32}}``.
    """
    if threads:
        torch.set_num_threads(int(threads))
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"benchmark_inference: --device {device} asked for, but CUDA is not available here.")
    fast_precision = default_precision(torch.device(device)) if precision == "auto" else precision
    fast_cl = (
        (torch.device(device).type == "cpu" and fast_precision == "bf16")
        if channels_last == "auto"
        else bool(channels_last)
    )
    settings = {
        "fp32": ("fp32", False),
        f"{fast_precision}{' + channels-last' if fast_cl else ''}": (fast_precision, fast_cl),
    }
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if checkpoint is None:
            from monai.bundle import ConfigParser

            from xctrs_monai.apps.workflow import resolve_config_files

            parser = ConfigParser()
            parser.read_config(resolve_config_files(config_file))
            torch.manual_seed(0)
            checkpoint = str(root / "random_weights.pt")
            torch.save(parser.get_parsed_content("network_def").state_dict(), checkpoint)
        inputs = None
        for name, (prec, cl) in settings.items():
            app = XCTRSInference(config_file, checkpoint, root / name, device, precision=prec, channels_last=cl)
            if inputs is None:
                spacing = float(app.parser.get_parsed_content("spacing"))
                inputs = _write_inputs(root, app.img_size, spacing, int(radiograph_size), int(seed))
                results = {"img_size": app.img_size, "spacing": spacing, "device": str(app.device), "settings": {}}
            app = XCTRSInference(
                config_file, checkpoint, root / name, device, precision=prec, channels_last=cl, **inputs["overrides"]
            )
            app.run_case(inputs["item"])  # warm-up
            times = []
            for _ in range(int(runs)):
                if app.device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
                app.run_case(inputs["item"])
                if app.device.type == "cuda":
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - start)
            results["settings"][name] = {
                "precision": prec,
                "channels_last": cl,
                "median_s": statistics.median(times),
                "mean_s": statistics.mean(times),
                "runs": times,
            }
        names = list(settings)
        if len(names) == 2:
            results["agreement"] = _agreement(root / names[0] / "bench", root / names[1] / "bench")
    results["threads"] = torch.get_num_threads()
    results["trained_checkpoint"] = checkpoint if not str(checkpoint).endswith("random_weights.pt") else None
    return results


def main(
    config_file: str | list | None = None,
    device: str = "cpu",
    precision: str = "auto",
    channels_last: bool | str = "auto",
    checkpoint: str | None = None,
    runs: int = 3,
    threads: int | None = None,
    radiograph_size: int = 2048,
    seed: int = 1000,
) -> None:
    """Print seconds per case for fp32 and the fast setting, and their output differences (see :func:`benchmark`)."""
    out = benchmark(config_file, device, precision, channels_last, checkpoint, runs, threads, radiograph_size, seed)
    gpu = torch.cuda.get_device_name(0) if out["device"].startswith("cuda") else "none"
    weights = "trained " + out["trained_checkpoint"] if out["trained_checkpoint"] else "random weights"
    print(f"X-CTRSNet end-to-end inference per case: {out['img_size']}^3 at {out['spacing']:g} mm, {weights},")
    size = f"{radiograph_size}x{radiograph_size}"
    print(f"  inputs {size} 16-bit PNG, device {out['device']} (GPU {gpu}), torch threads {out['threads']}")
    for name, r in out["settings"].items():
        print(f"  {name:24s}: median {r['median_s']:.3f} s, mean {r['mean_s']:.3f} s over {len(r['runs'])} runs")
    if "agreement" in out:
        a = out["agreement"]
        print(
            f"  fast vs fp32 outputs: CT mean |diff| {a['ct_mae_hu']:.2f} HU (max {a['ct_max_abs_hu']:.1f} HU), "
            f"labels equal in {100 * a['label_agreement']:.2f} % of voxels, "
            f"vertebra Dice {100 * a['vertebra_dice']:.1f} %"
        )
    print(f"  paper: {PAPER_SECONDS:.3f} s (RTX 3080, reconstruction + segmentation)")
    print(json.dumps(out))


if __name__ == "__main__":
    fire.Fire(main)

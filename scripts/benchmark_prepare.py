# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Benchmark dataset preparation on a large synthetic CT: time and peak memory of ``prepare_case``.

Usage::

    python scripts/benchmark_prepare.py --shape "[512, 512, 600]" --voxel "[0.7, 0.7, 0.8]" --threads 1

Writes a synthetic neck CT (int16 ``.nii.gz``: air, an elliptic neck of soft tissue with noise, a bony column)
with C1..C7 labels (uint8) into a temporary folder, in an LPS voxel order so that the reader has to reorient,
then prepares it onto the default grid in a fresh process and prints the wall time and the peak resident set
of that process (``ru_maxrss``: the interpreter with torch and MONAI is a few hundred MB of it).
"""

from __future__ import annotations

import multiprocessing
import resource
import tempfile
import time
from pathlib import Path

import fire
import numpy as np

from xctrs_monai.constants import DEFAULT_SPACING, HU_AIR, VERTEBRAE

__all__ = ["benchmark"]


def _write_case(folder: Path, shape: tuple[int, int, int], voxel: tuple[float, float, float]) -> tuple[Path, Path]:
    import nibabel as nib

    rng = np.random.default_rng(0)
    x = (np.arange(shape[0]) - shape[0] / 2) * voxel[0]
    y = (np.arange(shape[1]) - shape[1] / 2) * voxel[1]
    neck = x[:, None] ** 2 / 70.0**2 + y[None, :] ** 2 / 60.0**2 <= 1.0
    column = x[:, None] ** 2 + (y[None, :] + 20.0) ** 2 <= 12.0**2
    ct = np.empty(shape, dtype=np.int16)
    labels = np.zeros(shape, dtype=np.uint8)
    z_mm = (np.arange(shape[2]) - shape[2] / 2) * voxel[2]
    level = np.floor((z_mm + 63.0) / 18.0).astype(int)  # seven 18 mm levels around the middle, C7 lowest
    for k in range(shape[2]):
        plane = np.full(shape[:2], HU_AIR, dtype=np.int16)
        plane[neck], plane[column] = 40, 700
        ct[:, :, k] = plane + rng.integers(-20, 21, size=shape[:2], dtype=np.int16)
        if 0 <= level[k] < len(VERTEBRAE):
            labels[:, :, k][column] = len(VERTEBRAE) - level[k]
    affine = np.diag([-voxel[0], -voxel[1], voxel[2], 1.0])  # LPS-ordered voxels in the RAS world
    affine[:3, 3] = [shape[0] / 2 * voxel[0], shape[1] / 2 * voxel[1], -shape[2] / 2 * voxel[2]]
    paths = folder / "neck_ct.nii.gz", folder / "neck_seg.nii.gz"
    for array, path in zip((ct, labels), paths):
        nib.save(nib.Nifti1Image(array, affine), str(path))
    return paths


def _prepare(image: str, label: str, threads: int, connection) -> None:
    """Runs in a fresh process: prepare the case and report its time."""
    import torch

    from xctrs_monai.data import SourceCase, prepare_case

    torch.set_num_threads(threads)
    start = time.perf_counter()
    prepared = prepare_case(SourceCase("neck", Path(image), Path(label)), {k: k for k in range(1, 8)})
    seconds = time.perf_counter() - start
    levels = sorted(int(v) for v in np.unique(prepared.labels) if v)
    connection.send((seconds, prepared.ct.shape, levels, prepared.warnings))


def benchmark(shape: tuple = (512, 512, 600), voxel: tuple = (0.7, 0.7, 0.8), threads: int = 1) -> None:
    """Write the synthetic case, prepare it on the default grid, print time and peak memory.

    Args:
        shape: CT voxels ``(X, Y, Z)``. Defaults to ``(512, 512, 600)``.
        voxel: voxel size in mm. Defaults to ``(0.7, 0.7, 0.8)``.
        threads: ``torch.set_num_threads`` in the preparing process. Defaults to 1.
    """
    shape, voxel = tuple(int(s) for s in shape), tuple(float(v) for v in voxel)
    with tempfile.TemporaryDirectory() as folder:
        image, label = _write_case(Path(folder), shape, voxel)
        size_mb = image.stat().st_size / 2**20
        context = multiprocessing.get_context("spawn")
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(target=_prepare, args=(str(image), str(label), threads, sender))
        process.start()
        seconds, out_shape, levels, warnings = receiver.recv()
        process.join()
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / 1e9  # Linux: kB
    print(
        f"CT {shape} int16 at {voxel} mm ({_fov(shape, voxel)} mm, {size_mb:.0f} MB .nii.gz) -> "
        f"{out_shape} at {DEFAULT_SPACING} mm, {threads} thread(s): prepare_case {seconds:.1f} s, "
        f"peak resident set of the preparing process {peak_gb:.2f} GB; labels {levels}, warnings {warnings}"
    )


def _fov(shape: tuple[int, ...], voxel: tuple[float, ...]) -> list[float]:
    """Field of view in mm."""
    return [round(n * v, 1) for n, v in zip(shape, voxel)]


if __name__ == "__main__":
    fire.Fire(benchmark)

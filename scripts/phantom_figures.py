# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Draw the phantom pictures of the README: one phantom in detail and the spread of several.

Usage::

    python scripts/phantom_figures.py --out_dir docs/images

Writes ``phantom_preview.png`` (seed 0: sagittal, coronal and axial slices with labels, AP and LA DRRs)
and ``phantom_spread.png`` (seeds ``0..n-1`` side by side: sagittal and coronal slices with labels,
LA and AP DRRs), both on the default grid.
"""

from __future__ import annotations

from pathlib import Path

import fire
import torch

from xctrs_monai.constants import DEFAULT_IMG_SIZE, DEFAULT_SPACING
from xctrs_monai.data import make_phantom, save_png, spine_montage, spread_montage

__all__ = ["main"]


def main(
    out_dir: str = "docs/images", n: int = 6, size: int = DEFAULT_IMG_SIZE, spacing: float = DEFAULT_SPACING
) -> None:
    """Write ``phantom_preview.png`` and ``phantom_spread.png`` into ``out_dir``.

    Args:
        out_dir: output folder. Defaults to ``docs/images``.
        n: phantoms in the spread picture. Defaults to 6.
        size: grid size in voxels. Defaults to 128.
        spacing: voxel size in mm. Defaults to 1.25.
    """
    torch.set_num_threads(1)
    out = Path(out_dir)
    cases = [make_phantom(seed, size, spacing)[:2] for seed in range(int(n))]
    save_png(spine_montage(*cases[0], spacing=spacing, zoom=2), out / "phantom_preview.png")
    spread = spread_montage(cases, spacing=spacing, titles=[f"seed {s}" for s in range(int(n))])
    save_png(spread, out / "phantom_spread.png")
    for name in ("phantom_preview.png", "phantom_spread.png"):
        print(f"{out / name}: {(out / name).stat().st_size / 1024:.0f} kB")


if __name__ == "__main__":
    fire.Fire(main)

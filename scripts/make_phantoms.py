# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Write synthetic cervical-spine CT phantoms with C1..C7 labels and a decathlon datalist.

Examples::

    python scripts/make_phantoms.py --out data/phantoms --n 40 --preview       # default grid: 128^3 x 1.25 mm
    python scripts/make_phantoms.py --out data/demo --n 40 --size 32 --spacing 5  # the demo grid (quick.json)
"""

from __future__ import annotations

import time

import fire

from xctrs_monai.constants import DEFAULT_IMG_SIZE, DEFAULT_SPACING
from xctrs_monai.data import write_phantom_dataset


def main(
    out: str, n: int = 20, seed: int = 0, size: int = DEFAULT_IMG_SIZE,
    spacing: float = DEFAULT_SPACING, n_folds: int = 10, preview: bool = False,
) -> None:
    """Write ``n`` phantoms into ``out`` (images/, labels/, datalist.json; previews/ with ``--preview``).

    Every grid shows the same 160 mm field of view at a different resolution: the default grid is
    128^3 voxels of 1.25 mm (``xctrs_monai.constants``), the demo grid of ``bundle/configs/quick.json``
    is ``--size 32 --spacing 5``, and ``--size 64 --spacing 2.5`` lies between. Cases that exist
    already are skipped; a folder made with other settings is refused.

    Args:
        out: dataset folder.
        n: number of cases. Defaults to 20.
        seed: dataset seed. Defaults to 0.
        size: grid size in voxels. Defaults to 128.
        spacing: voxel size in mm. Defaults to 1.25.
        n_folds: cross-validation folds. Defaults to 10.
        preview: write a PNG montage per case (slices with labels, AP and LA DRRs). Defaults to False.

    Prints the datalist path and the wall time per case (cases that existed already count as 0 s).
    """
    start = time.perf_counter()
    path = write_phantom_dataset(out, n=n, seed=seed, size=size, spacing=spacing, n_folds=n_folds, preview=preview)
    elapsed = time.perf_counter() - start
    print(f"datalist: {path} ({n} cases in {elapsed:.1f} s, {elapsed / n:.2f} s per case incl. writing)")


if __name__ == "__main__":
    fire.Fire(main)

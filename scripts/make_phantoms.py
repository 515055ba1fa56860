# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Write synthetic cervical-spine CT phantoms with C1..C7 labels and a decathlon datalist.

Example::

    python scripts/make_phantoms.py --out data/phantoms --n 40 --seed 0 --size 128 --spacing 1.0 --preview
"""

from __future__ import annotations

import time

import fire

from xctrs_monai.data import write_phantom_dataset


def main(
    out: str, n: int = 20, seed: int = 0, size: int = 128, spacing: float = 1.0, n_folds: int = 10, preview: bool = False
) -> None:
    """Write ``n`` phantoms into ``out`` (images/, labels/, datalist.json; previews/ with ``--preview``).

    Args:
        out: dataset folder.
        n: number of cases. Defaults to 20.
        seed: dataset seed. Defaults to 0.
        size: grid size in voxels. Defaults to 128.
        spacing: voxel size in mm. Defaults to 1.0.
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

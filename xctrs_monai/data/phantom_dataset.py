# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Write a folder of synthetic phantoms with a decathlon datalist ("generate on first use")."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from xctrs_monai.constants import DEFAULT_IMG_SIZE, DEFAULT_SPACING, VERTEBRAE
from xctrs_monai.data.datalist import assign_folds
from xctrs_monai.data.io import save_json, save_nifti, save_png
from xctrs_monai.data.phantom import PHANTOM_VERSION, make_phantom
from xctrs_monai.data.phantom.make import check_phantom_args

__all__ = ["LABEL_NAMES", "phantom_case_seed", "write_phantom_dataset"]

LABEL_NAMES = {"0": "background", **{str(k): name for k, name in enumerate(VERTEBRAE, start=1)}}
"""Decathlon ``labels`` of a datalist: ``{"0": "background", "1": "C1", ..., "7": "C7"}``."""


def phantom_case_seed(seed: int, index: int) -> int:
    """The phantom seed of case ``index`` of a dataset made with ``seed`` (independent streams)."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])


def write_phantom_dataset(
    out_dir: str | os.PathLike,
    n: int = 20,
    seed: int = 0,
    size: int = DEFAULT_IMG_SIZE,
    spacing: float = DEFAULT_SPACING,
    n_folds: int = 10,
    preview: bool = False,
) -> Path:
    """Write ``n`` phantoms and a decathlon-style ``datalist.json`` with cross-validation folds.

    Layout: ``out_dir/images/case_XXXX.nii.gz`` (int16 HU), ``out_dir/labels/case_XXXX.nii.gz``
    (uint8, 0 background, 1..7 = C1..C7), ``out_dir/datalist.json`` with
    ``{"training": [{"image": "images/case_0000.nii.gz", "label": "labels/case_0000.nii.gz", "fold": k}, ...]}``
    (paths relative to ``out_dir``; ``monai.data.load_decathlon_datalist(path)`` resolves them).
    Folds are balanced (``i``-th case in fold ``assign_folds`` gives it, sizes differ by at most one).
    Files are written atomically and cases whose image and label exist already are skipped, so the
    function can be called every time a config starts ("generate on first use"). The datalist records
    ``{"phantom": {"seed", "size", "spacing", "version"}}``; a folder made with other settings or by
    another ``PHANTOM_VERSION`` of ``make_phantom`` (or holding another kind of datalist) is refused
    rather than silently reused.

    Args:
        out_dir: dataset folder (created when missing).
        n: number of cases. Defaults to 20.
        seed: dataset seed; case ``i`` uses ``phantom_case_seed(seed, i)``. Defaults to 0.
        size: grid size (voxels per axis). Defaults to ``DEFAULT_IMG_SIZE`` (128; the demo grid is 32).
        spacing: isotropic voxel size in mm. Defaults to ``DEFAULT_SPACING`` (1.25; the demo grid's is 5).
        n_folds: number of cross-validation folds. Defaults to 10.
        preview: also write ``out_dir/previews/case_XXXX.png`` montages (slices with label
            overlay and both DRRs). Defaults to False.

    Returns:
        the path of ``datalist.json``.

    Raises:
        ValueError: when an argument is out of range, or ``out_dir`` holds a datalist that is not a
            phantom datalist or was made with another ``seed``, ``size``, ``spacing`` or version.
    """
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n}.")
    if int(n_folds) != n_folds or n_folds < 1:
        raise ValueError(f"n_folds must be a positive integer, got {n_folds}.")
    seed, size, spacing = check_phantom_args(seed, size, spacing)
    from tqdm import tqdm

    out = Path(out_dir)
    datalist_path = out / "datalist.json"
    params = {"seed": seed, "size": size, "spacing": spacing, "version": PHANTOM_VERSION}
    if datalist_path.is_file():
        try:
            old = json.loads(datalist_path.read_text())
        except ValueError:
            old = {"phantom": params}  # an unreadable datalist: rewritten below
        if not isinstance(old, dict) or "phantom" not in old:
            raise ValueError(
                f"{str(datalist_path)!r} is not a phantom datalist (no 'phantom' entry); use another out_dir."
            )
        old = {"version": 1, **old["phantom"]}  # datalists written before versions were recorded are version 1
        clash = {k: (old.get(k), v) for k, v in params.items() if old.get(k) != v}
        if clash:
            raise ValueError(
                f"out_dir {str(out)!r} holds phantoms made with other settings "
                + ", ".join(f"{k}={a} (asked {b})" for k, (a, b) in clash.items())
                + "; use another out_dir."
            )
    folds = assign_folds(list(range(int(n))), n_folds=int(n_folds), seed=seed)
    items = []
    made = 0
    for i in tqdm(range(int(n)), desc=f"phantoms -> {out}", unit="case"):
        case = f"case_{i:04d}"
        image, label = out / "images" / f"{case}.nii.gz", out / "labels" / f"{case}.nii.gz"
        png = out / "previews" / f"{case}.png"
        case_seed = phantom_case_seed(seed, i)
        need_png = preview and not png.is_file()
        if not (image.is_file() and label.is_file()) or need_png:
            ct, labels, affine = make_phantom(case_seed, size=size, spacing=spacing)
            if not (image.is_file() and label.is_file()):
                save_nifti(np.rint(ct).astype(np.int16), affine, image)
                save_nifti(labels, affine, label)
                made += 1
            if need_png:
                from xctrs_monai.data.preview import spine_montage

                save_png(spine_montage(ct, labels, spacing=spacing), png)
        items.append(
            {
                "image": f"images/{case}.nii.gz",
                "label": f"labels/{case}.nii.gz",
                "fold": folds[i],
                "case_id": case,
                "seed": case_seed,
            }
        )
    datalist = {
        "name": "xctrs-phantoms",
        "description": "Synthetic cervical-spine CT phantoms with C1..C7 labels (xctrs_monai.data.make_phantom).",
        "tensorImageSize": "3D",
        "modality": {"0": "CT"},
        "labels": LABEL_NAMES,
        "numTraining": len(items),
        "n_folds": int(n_folds),
        "phantom": params,
        "training": items,
    }
    save_json(datalist, datalist_path)
    return datalist_path

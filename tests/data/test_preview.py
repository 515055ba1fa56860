# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from xctrs_monai.constants import LABEL_COLOURS
from xctrs_monai.data import make_phantom, spine_montage, spread_montage

pytest.importorskip("xctrs_monai.transforms.xray")
pytest.importorskip("xctrs_monai.transforms.drr")

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


SIZE, SPACING = 32, 5.0


def test_montage_shape_and_overlay():
    ct, labels, _ = make_phantom(0, SIZE, SPACING)
    img = spine_montage(ct, labels, spacing=SPACING)
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    assert img.shape[0] == 32 and img.shape[1] == 5 * 32 + 4 * 2
    coloured = np.abs(img[..., 0].astype(int) - img[..., 2].astype(int)) > 40
    assert coloured[:, : 3 * 34].any(), "label overlay missing"
    with pytest.raises(ValueError, match="zoom"):
        spine_montage(ct, labels, zoom=0)
    with pytest.raises(ValueError, match="shape"):
        spine_montage(ct, labels[:-1])


def test_overlay_uses_the_contract_palette():
    """With an opaque overlay every label pixel has its colour of ``constants.LABEL_COLOURS``."""
    ct = np.zeros((SIZE,) * 3, dtype=np.float32)
    labels = np.zeros((SIZE,) * 3, dtype=np.uint8)
    for k in range(1, 8):  # one slab per vertebra, crossing the sagittal, coronal and axial planes
        labels[10:22, 10:22, 4 * k - 2 : 4 * k] = k
    img = spine_montage(ct, labels, spacing=SPACING, alpha=1.0, drr=False)
    colours = {tuple(c) for c in img.reshape(-1, 3).tolist()}
    for k in range(1, 8):
        assert tuple(LABEL_COLOURS[k]) in colours, f"C{k} colour missing"


def test_spread_montage_layout():
    cases = [make_phantom(seed, SIZE, SPACING)[:2] for seed in (0, 1, 2)]
    img = spread_montage(cases, spacing=SPACING, titles=["a", "b", "c"])
    # 4 rows (sagittal, coronal, LA DRR, AP DRR) x 3 cases, 2-pixel gaps
    assert img.shape == (4 * SIZE + 3 * 2, 3 * SIZE + 2 * 2, 3) and img.dtype == np.uint8
    coloured = np.abs(img[..., 0].astype(int) - img[..., 2].astype(int)) > 40
    for c in range(3):  # labels overlaid in the slice rows of every case
        assert coloured[: 2 * SIZE + 2, c * (SIZE + 2) : c * (SIZE + 2) + SIZE].any()
    # the DRR rows differ between cases: the spine moves
    ap = [img[3 * (SIZE + 2) :, c * (SIZE + 2) : c * (SIZE + 2) + SIZE].astype(float) for c in range(3)]
    assert np.abs(ap[0] - ap[1]).mean() > 5.0
    with pytest.raises(ValueError, match="titles"):
        spread_montage(cases, titles=["a"])
    with pytest.raises(ValueError, match="at least one"):
        spread_montage([])


def test_make_phantoms_script_with_preview(tmp_path, capsys):
    main = runpy.run_path(str(SCRIPTS / "make_phantoms.py"))["main"]
    main(out=str(tmp_path), n=2, seed=1, size=SIZE, spacing=SPACING, preview=True)
    assert "s per case" in capsys.readouterr().out
    pngs = sorted((tmp_path / "previews").glob("*.png"))
    assert [p.name for p in pngs] == ["case_0000.png", "case_0001.png"]
    assert Image.open(pngs[0]).size == (5 * 32 + 4 * 2, 32)

# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from xctrs_monai.data import make_phantom, spine_montage

pytest.importorskip("xctrs_monai.transforms.xray")
pytest.importorskip("xctrs_monai.transforms.drr")

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def test_montage_shape_and_overlay():
    ct, labels, _ = make_phantom(0, 32, 4.0)
    img = spine_montage(ct, labels, spacing=4.0)
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    assert img.shape[0] == 32 and img.shape[1] == 5 * 32 + 4 * 2
    coloured = np.abs(img[..., 0].astype(int) - img[..., 2].astype(int)) > 40
    assert coloured[:, : 3 * 34].any(), "label overlay missing"
    with pytest.raises(ValueError, match="zoom"):
        spine_montage(ct, labels, zoom=0)
    with pytest.raises(ValueError, match="shape"):
        spine_montage(ct, labels[:-1])


def test_make_phantoms_script_with_preview(tmp_path, capsys):
    main = runpy.run_path(str(SCRIPTS / "make_phantoms.py"))["main"]
    main(out=str(tmp_path), n=2, seed=1, size=32, spacing=4.0, preview=True)
    assert "s per case" in capsys.readouterr().out
    pngs = sorted((tmp_path / "previews").glob("*.png"))
    assert [p.name for p in pngs] == ["case_0000.png", "case_0001.png"]
    assert Image.open(pngs[0]).size == (5 * 32 + 4 * 2, 32)

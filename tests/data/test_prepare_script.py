# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np
import pytest

from xctrs_monai.data import make_phantom, save_nifti

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def test_prepare_script_summary(tmp_path, capsys):
    ct, labels, affine = make_phantom(2, 32, 4.0)
    save_nifti(np.rint(ct).astype(np.int16), affine, tmp_path / "in" / "images" / "a.nii.gz")
    save_nifti(np.where(labels > 0, 51 - labels, 0).astype(np.uint8), affine, tmp_path / "in" / "labels" / "a_seg.nii.gz")
    (tmp_path / "in" / "images" / "b.nii.gz").write_bytes(b"broken")
    main = runpy.run_path(str(SCRIPTS / "prepare_dataset.py"))["main"]
    main(
        out=str(tmp_path / "out"),
        images_dir=str(tmp_path / "in" / "images"),
        labels_dir=str(tmp_path / "in" / "labels"),
        labels="totalseg_v2",
        spacing=4.0,
        size=32,
        n_folds=2,
    )
    out = capsys.readouterr().out
    assert "written 1, already done 0, skipped 1" in out and "skipped b: no label file" in out
    with pytest.raises(ValueError, match="nowhere"):
        main(out=str(tmp_path / "out"), images_dir=str(tmp_path / "nowhere"), labels_dir=str(tmp_path))

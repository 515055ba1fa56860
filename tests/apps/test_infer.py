# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""End-to-end inference: CLI, batch mode, bundle run, checkpoints, bad inputs, atomic outputs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image

from xctrs_monai.apps.infer import check_checkpoint, infer, main, make_datalist, read_pairs
from xctrs_monai.data.phantom import phantom_affine

OUTPUTS = ("ct.nii.gz", "vertebrae.nii.gz", "preview.png", "report.json")


def _run(tiny_bundle, out_dir, **kwargs):
    args = dict(
        ap=tiny_bundle["ap"],
        la=tiny_bundle["la"],
        out_dir=str(out_dir),
        checkpoint=tiny_bundle["checkpoint"],
        config_file=tiny_bundle["configs"],
        device="cpu",
        progress=False,
    )
    args.update(kwargs)
    return infer(**args)


def _no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.rglob(".*") if p.is_file()]


def test_outputs(tiny_bundle, tmp_path):
    size, spacing = tiny_bundle["img_size"], tiny_bundle["spacing"]
    summary = _run(tiny_bundle, tmp_path, case_id="p1")
    assert summary["succeeded"] == ["p1"] and summary["failed"] == {}
    case = tmp_path / "p1"
    assert sorted(p.name for p in case.iterdir()) == sorted(OUTPUTS) and _no_temp_files(tmp_path)
    affine = phantom_affine(size, spacing)
    ct, labels = nib.load(str(case / "ct.nii.gz")), nib.load(str(case / "vertebrae.nii.gz"))
    assert ct.shape == labels.shape == (size,) * 3
    assert ct.get_data_dtype() == np.float32 and labels.get_data_dtype() == np.uint8
    for img in (ct, labels):
        np.testing.assert_allclose(img.affine, affine, atol=1e-5)
        assert nib.aff2axcodes(img.affine) == ("R", "A", "S")
        np.testing.assert_allclose(img.affine[:3, :3] @ ((np.array([size] * 3) - 1) / 2) + img.affine[:3, 3], 0, atol=1e-5)
    hu = ct.get_fdata()
    assert -1000.0 <= hu.min() and hu.max() <= 2000.0
    lab = np.asarray(labels.dataobj)
    assert lab.min() >= 0 and lab.max() <= 7
    report = json.loads((case / "report.json").read_text())
    assert report["case_id"] == "p1" and report["geometry"]["shape"] == [size] * 3
    np.testing.assert_allclose(report["geometry"]["affine_ras_mm"], affine)
    for name, stats in report["vertebrae"].items():
        count = int((lab == stats["label"]).sum())
        assert name == f"C{stats['label']}" and stats["voxels"] == count
        assert stats["volume_mm3"] == pytest.approx(count * spacing**3)
        if count:
            centroid = affine[:3, :3] @ np.argwhere(lab == stats["label"]).mean(0) + affine[:3, 3]
            np.testing.assert_allclose(stats["centroid_mm"], centroid, atol=1e-2)
    for view in ("ap", "la"):
        score = report["reprojection_consistency"][view]
        assert -1.0 <= score["ncc"] <= 1.0 and np.isfinite(score["psnr_db"]) and isinstance(score["reliable"], bool)
        assert report["inputs"][view]["resampling"] == "detector_geometry"
    preview = np.asarray(Image.open(case / "preview.png"))
    assert preview.ndim == 3 and preview.shape[2] == 3 and preview.shape[0] > 2 * size


def test_torchscript_checkpoint_gives_the_same_ct(tiny_bundle, tmp_path, build_network):
    network = build_network(tiny_bundle["configs"])
    network.load_state_dict(torch.load(tiny_bundle["checkpoint"], weights_only=True))
    torch.jit.save(torch.jit.script(network.eval()), str(tmp_path / "model.ts"))
    _run(tiny_bundle, tmp_path / "pt", case_id="c")
    _run(tiny_bundle, tmp_path / "ts", case_id="c", checkpoint=str(tmp_path / "model.ts"))
    a, b = (nib.load(str(tmp_path / d / "c" / "ct.nii.gz")).get_fdata() for d in ("pt", "ts"))
    np.testing.assert_allclose(a, b, atol=1e-3)


def test_bundle_run_matches_cli(tiny_bundle, tmp_path):
    from monai.bundle import run

    run(
        config_file=tiny_bundle["configs"],
        ap_image=tiny_bundle["ap"],
        la_image=tiny_bundle["la"],
        case_id="b1",
        ckpt_path=tiny_bundle["checkpoint"],
        output_dir=str(tmp_path / "bundle"),
    )
    _run(tiny_bundle, tmp_path / "cli", case_id="b1")
    for name in ("ct.nii.gz", "vertebrae.nii.gz"):
        a, b = (nib.load(str(tmp_path / d / "b1" / name)).get_fdata() for d in ("bundle", "cli"))
        np.testing.assert_allclose(a, b, atol=1e-3)
    assert all((tmp_path / "bundle" / "b1" / f).is_file() for f in OUTPUTS)


def test_cli_bad_input_subprocess(tiny_bundle, tmp_path):
    constant = tmp_path / "constant.png"
    Image.fromarray(np.full((20, 20), 9, dtype=np.uint8)).save(constant)
    cmd = [sys.executable, "-m", "xctrs_monai.apps.infer", "--ap", str(constant), "--la", tiny_bundle["la"]]
    cmd += ["--out_dir", str(tmp_path / "out"), "--checkpoint", tiny_bundle["checkpoint"], "--device", "cpu"]
    cmd += ["--config_file", json.dumps(tiny_bundle["configs"])]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert proc.returncode == 1, proc.stderr
    assert f"Radiograph '{constant}' is all-constant" in proc.stderr
    assert not (tmp_path / "out" / "constant" / "report.json").exists()


def test_batch_mode_skips_bad_cases(tiny_bundle, tmp_path, capsys):
    nan = tmp_path / "nan.nii.gz"
    values = np.random.rand(8, 8).astype(np.float32)
    values[1, 1] = np.nan
    nib.save(nib.Nifti1Image(values, np.eye(4)), str(nan))
    csv = tmp_path / "pairs.csv"
    rows = [
        f"{tiny_bundle['ap']},{tiny_bundle['la']},good",
        f"{nan},{tiny_bundle['la']},nan_ap",
        f"{tiny_bundle['ap']},,no_la",
        f"{tiny_bundle['ap_png']},{tiny_bundle['la_png']},png",
    ]
    csv.write_text("ap,la,case_id\n" + "\n".join(rows) + "\n")
    argv = ["--pairs", str(csv), "--out_dir", str(tmp_path / "out"), "--checkpoint", tiny_bundle["checkpoint"]]
    argv += ["--config_file", json.dumps(tiny_bundle["configs"]), "--progress", "False"]
    # PNGs carry no spacing: pass it as config overrides (detector pixel spacing of the training DRRs)
    pixel = tiny_bundle["spacing"] * 1000.0 / 900.0
    argv += ["--ap_pixel_spacing", str(pixel), "--la_pixel_spacing", str(pixel)]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert f"case 'nan_ap' failed" in err and str(nan) in err and "NaN" in err
    assert "case 'no_la' failed" in err and "Missing view" in err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["succeeded"] == ["good", "png"] and sorted(summary["failed"]) == ["nan_ap", "no_la"]
    for case in ("good", "png"):
        assert all((tmp_path / "out" / case / f).is_file() for f in OUTPUTS)
    assert not (tmp_path / "out" / "nan_ap").exists() and not (tmp_path / "out" / "no_la").exists()


def test_missing_view_and_missing_checkpoint(tiny_bundle, tmp_path, capsys):
    base = ["--out_dir", str(tmp_path), "--config_file", json.dumps(tiny_bundle["configs"])]
    with pytest.raises(SystemExit) as exit_info:
        main(["--ap", tiny_bundle["ap"], "--checkpoint", tiny_bundle["checkpoint"], *base])
    assert exit_info.value.code == 1
    assert "Missing view" in capsys.readouterr().err
    missing = tmp_path / "nowhere" / "model.pt"
    with pytest.raises(SystemExit) as exit_info:
        main(["--ap", tiny_bundle["ap"], "--la", tiny_bundle["la"], "--checkpoint", str(missing), *base])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert f"No checkpoint at '{missing}'" in err and "random weights" in err
    assert not any(tmp_path.glob("*/report.json"))


def test_mismatched_checkpoint_names_keys_and_suggests_config(tiny_bundle, tmp_path, build_network):
    configs = tmp_path / "configs"
    configs.mkdir()
    shutil.copy(tiny_bundle["inference"], configs / "inference.json")
    shutil.copy(tiny_bundle["override"], configs / "tiny.json")
    with pytest.raises(ValueError) as err:
        _run(tiny_bundle, tmp_path / "out", config_file=str(configs / "inference.json"))
    message = str(err.value)
    assert "does not match the network" in message and "shape mismatches" in message
    assert "tiny.json" in message
    with pytest.raises(ValueError, match="unexpected keys: extra"):
        state = torch.load(tiny_bundle["checkpoint"], weights_only=True)
        check_checkpoint(build_network(tiny_bundle["configs"]), {**state, "extra": torch.zeros(1)})


def test_interrupted_write_leaves_no_partial_file(tiny_bundle, tmp_path, monkeypatch):
    real_save = nib.save

    def failing_save(img, filename, *args, **kwargs):
        if "vertebrae" in str(filename):
            Path(filename).write_bytes(b"partial")
            raise OSError("disk full (simulated)")
        return real_save(img, filename, *args, **kwargs)

    monkeypatch.setattr(nib, "save", failing_save)
    summary = _run(tiny_bundle, tmp_path, case_id="x")
    assert "x" in summary["failed"] and "disk full" in summary["failed"]["x"]
    case = tmp_path / "x"
    assert (case / "ct.nii.gz").is_file() and not (case / "vertebrae.nii.gz").exists()
    assert not (case / "report.json").exists() and _no_temp_files(tmp_path)


def test_datalist_helpers(tmp_path):
    assert make_datalist("a/ap_01.dcm", "a/la_01.dcm") == [{"ap": "a/ap_01.dcm", "la": "a/la_01.dcm", "case_id": "ap_01"}]
    with pytest.raises(ValueError, match="Missing view"):
        make_datalist(la_image="la.dcm")
    with pytest.raises(ValueError, match="No input"):
        make_datalist()
    with pytest.raises(ValueError, match="case_id must be a plain folder name"):
        make_datalist("ap.dcm", "la.dcm", case_id="../up")
    csv = tmp_path / "p.csv"
    csv.write_text("ap,la\nx/a.png,x/b.png\n\nc.nii.gz,/abs/d.png\n")
    items = read_pairs(csv)
    assert items == [
        {"ap": str(tmp_path / "x/a.png"), "la": str(tmp_path / "x/b.png"), "case_id": "a"},
        {"ap": str(tmp_path / "c.nii.gz"), "la": "/abs/d.png", "case_id": "c"},
    ]
    csv.write_text("ap,la,case_id\na.png,b.png,k\nc.png,d.png,k\n")
    with pytest.raises(ValueError, match="repeats case_id 'k'"):
        read_pairs(csv)
    csv.write_text("front,side\na.png,b.png\n")
    with pytest.raises(ValueError, match="needs the columns ap,la"):
        read_pairs(csv)

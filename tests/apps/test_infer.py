# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""End-to-end inference through the CLI: outputs, checkpoints with and without their network arguments, the
bundle run, batch mode, each case written as one unit, swaps, unreliable cases, precision."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser

from xctrs_monai.apps.infer import infer, main
from xctrs_monai.constants import grid_affine

OUTPUTS = ("ct.nii.gz", "vertebrae.nii.gz", "preview.png", "report.json")


def _run(tiny_bundle, out_dir, **kwargs) -> dict:
    args = dict(
        ap=tiny_bundle["ap"],
        la=tiny_bundle["la"],
        out_dir=str(out_dir),
        checkpoint=tiny_bundle["checkpoint"],
        config_file=tiny_bundle["configs"],
        device="cpu",
        progress=False,
        precision="fp32",
    )
    args.update(kwargs)
    return infer(**args)


def _cli(capsys, *argv) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in argv])
    return exit_info.value.code, capsys.readouterr().err


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob(".*")]


def test_outputs(tiny_bundle, tmp_path):
    size, spacing = tiny_bundle["img_size"], tiny_bundle["spacing"]
    summary = _run(tiny_bundle, tmp_path, case_id="p1")
    assert summary["failed"] == {} and list(summary["unreliable"]) + summary["succeeded"] == ["p1"]
    case = tmp_path / "p1"
    assert sorted(p.name for p in case.iterdir()) == sorted(OUTPUTS) and not _leftovers(tmp_path)
    affine = grid_affine(size, spacing)
    ct, labels = nib.load(str(case / "ct.nii.gz")), nib.load(str(case / "vertebrae.nii.gz"))
    assert ct.shape == labels.shape == (size,) * 3
    assert ct.get_data_dtype() == np.float32 and labels.get_data_dtype() == np.uint8
    for img in (ct, labels):
        np.testing.assert_allclose(img.affine, affine, atol=1e-5)
        assert nib.aff2axcodes(img.affine) == ("R", "A", "S")
    hu = ct.get_fdata()
    assert -1000.0 <= hu.min() and hu.max() <= 2000.0
    lab = np.asarray(labels.dataobj)
    report = json.loads((case / "report.json").read_text())
    assert report["case_id"] == "p1" and report["geometry"]["shape"] == [size] * 3
    np.testing.assert_allclose(report["geometry"]["affine_ras_mm"], affine)
    for name, stats in report["vertebrae"].items():
        count = int((lab == stats["label"]).sum())
        assert name == f"C{stats['label']}" and stats["voxels"] == count
        assert stats["volume_mm3"] == pytest.approx(count * spacing**3)
    for view in ("ap", "la"):
        assert set(report["reprojection_consistency"][view]) == {"ncc", "gradient_correlation", "psnr_db"}
        assert report["inputs"][view]["resampling"] == "detector_geometry"
        assert report["inputs"][view]["file"] == tiny_bundle[view]
    assert report["inputs"]["la"]["view_position"] == "LL" and report["swapped_inputs"] is False
    assert isinstance(report["reliable"], bool) and {c["name"] for c in report["qc_checks"]} >= {
        "ap_ncc",
        "la_gradient_correlation",
    }
    assert json.loads((tmp_path / "summary.json").read_text())["precision"] == "fp32"


def test_checkpoint_builds_its_network_without_the_training_config(tiny_bundle, tmp_path, monkeypatch):
    """Only inference.json (128^3 by default): the 16^3 network comes from the checkpoint, on a grid that
    keeps the config's field of view (img_size * spacing)."""
    parser = ConfigParser()
    parser.read_config(tiny_bundle["inference"])
    fov = float(parser.get_parsed_content("img_size")) * float(parser.get_parsed_content("spacing"))
    monkeypatch.chdir(Path(tiny_bundle["inference"]).parents[2])  # the repository root: default config found
    summary = _run(tiny_bundle, tmp_path, config_file=None, case_id="c")
    assert summary["config_files"] == ["bundle/configs/inference.json"] and not summary["failed"]
    ct = nib.load(str(tmp_path / "c" / "ct.nii.gz"))
    assert ct.shape == (16,) * 3
    np.testing.assert_allclose(np.diag(ct.affine)[:3], fov / 16)  # float rounding of the affine only


def test_old_checkpoint_works_with_its_config_only(tiny_bundle, tmp_path, capsys):
    new = _run(tiny_bundle, tmp_path / "new", case_id="c")
    old = _run(tiny_bundle, tmp_path / "old", case_id="c", checkpoint=tiny_bundle["old_checkpoint"])
    assert not new["failed"] and not old["failed"]
    a, b = (nib.load(str(tmp_path / d / "c" / "ct.nii.gz")).get_fdata() for d in ("new", "old"))
    np.testing.assert_array_equal(a, b)  # the same weights
    code, err = _cli(
        capsys,
        "--ap",
        tiny_bundle["ap"],
        "--la",
        tiny_bundle["la"],
        "--checkpoint",
        tiny_bundle["old_checkpoint"],
        "--config_file",
        tiny_bundle["inference"],
        "--out_dir",
        tmp_path / "x",
        "--device",
        "cpu",
    )
    assert code == 1 and f"Checkpoint '{tiny_bundle['old_checkpoint']}' does not fit the network of the config" in err
    assert "shape mismatches" in err and "quick.json" in err and "Traceback" not in err


def test_torchscript_only_when_asked(tiny_bundle, tmp_path, build_network, capsys):
    network = build_network(tiny_bundle["configs"])
    network.load_state_dict(torch.load(tiny_bundle["checkpoint"], weights_only=True))
    scripted = tmp_path / "model.ts"
    torch.jit.save(torch.jit.script(network.eval()), str(scripted))
    code, err = _cli(
        capsys,
        "--ap",
        tiny_bundle["ap"],
        "--la",
        tiny_bundle["la"],
        "--checkpoint",
        scripted,
        "--out_dir",
        tmp_path / "x",
    )
    assert code == 1 and f"Checkpoint '{scripted}' is a TorchScript archive; add --torchscript" in err
    _run(tiny_bundle, tmp_path / "pt", case_id="c")
    _run(tiny_bundle, tmp_path / "ts", case_id="c", checkpoint=str(scripted), torchscript=True)
    a, b = (nib.load(str(tmp_path / d / "c" / "ct.nii.gz")).get_fdata() for d in ("pt", "ts"))
    np.testing.assert_allclose(a, b, atol=1e-2)  # HU; float32 network, scripted kernels may sum in another order


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
        np.testing.assert_allclose(a, b, atol=1e-3)  # same network, same inputs, same float32 path
    assert sorted(p.name for p in (tmp_path / "bundle" / "b1").iterdir()) == sorted(OUTPUTS)


def test_batch_mode_bad_rows_fail_alone(tiny_bundle, tmp_path, capsys):
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
        f"{tiny_bundle['ap']},{tiny_bundle['la']},good",
        f"{tiny_bundle['ap']},{tiny_bundle['la']},../escape",
    ]
    csv.write_text("ap,la,case_id\n" + "\n".join(rows) + "\n")
    pixel = str(tiny_bundle["pixel"])  # PNGs carry no spacing: the detector pixel of the training DRRs
    code, err = _cli(
        capsys,
        "--pairs",
        csv,
        "--out_dir",
        tmp_path / "out",
        "--checkpoint",
        tiny_bundle["checkpoint"],
        "--progress",
        "False",
        "--config_file",
        json.dumps(tiny_bundle["configs"]),
        "--ap_pixel_spacing",
        pixel,
        "--la_pixel_spacing",
        pixel,
        "--allow_unreliable",
        "--precision",
        "fp32",
    )
    assert code == 1 and "Traceback" not in err
    assert f"case 'nan_ap' failed and was not written: AP radiograph: Cannot use '{nan}'" in err and "NaN" in err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    written = summary["succeeded"] + list(summary["unreliable"])
    assert sorted(written) == ["good", "png"]
    failed = summary["failed"]
    assert set(failed) == {"nan_ap", "no_la (line 4)", "good (line 6)", "../escape (line 7)"}
    assert (
        "Missing view: no LA radiograph" in failed["no_la (line 4)"]
        and "repeats case_id 'good'" in failed["good (line 6)"]
    )
    assert "plain folder name" in failed["../escape (line 7)"]
    for case in ("good", "png"):
        assert sorted(p.name for p in (tmp_path / "out" / case).iterdir()) == sorted(OUTPUTS)
    assert not (tmp_path / "out" / "nan_ap").exists() and not _leftovers(tmp_path / "out")
    assert "2 case(s) written" in err and "4 failed" in err


def test_failing_rerun_leaves_the_previous_case_intact(tiny_bundle, tmp_path, monkeypatch):
    _run(tiny_bundle, tmp_path, case_id="x")
    before = {p.name: p.read_bytes() for p in (tmp_path / "x").iterdir()}
    real_save = nib.save

    def failing_save(img, filename, *args, **kwargs):
        if "vertebrae" in str(filename):
            Path(filename).write_bytes(b"partial")
            raise OSError(28, "No space left on device (simulated)")
        return real_save(img, filename, *args, **kwargs)

    monkeypatch.setattr(nib, "save", failing_save)
    summary = _run(tiny_bundle, tmp_path, case_id="x", precision="bf16")  # another precision: other bytes if written
    assert "No space left on device" in summary["failed"]["x"]
    after = {p.name: p.read_bytes() for p in (tmp_path / "x").iterdir()}
    assert after == before and not _leftovers(tmp_path)


def test_rerun_replaces_a_case_only_when_complete(tiny_bundle, tmp_path):
    _run(tiny_bundle, tmp_path, case_id="x", precision="fp32")
    first = json.loads((tmp_path / "x" / "report.json").read_text())
    (tmp_path / "x" / "stale_extra_file.txt").write_text("from an older run")
    _run(tiny_bundle, tmp_path, case_id="x", la_flip_lr=True)
    second = json.loads((tmp_path / "x" / "report.json").read_text())
    assert second["inputs"]["la"]["flip_lr"] and not first["inputs"]["la"]["flip_lr"]
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == sorted(OUTPUTS)  # the folder was replaced whole


def test_kill_leftovers_are_cleaned(tiny_bundle, tmp_path):
    """What kill -9 leaves: a staging folder of a dead run, and a previous case moved aside just before the
    kill (between the two renames of the commit); a live run's staging folder is left alone."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)  # that process has exited
    (tmp_path / f".a.partial-{dead_pid}").mkdir()
    (tmp_path / f".a.partial-{dead_pid}" / "ct.nii.gz").write_bytes(b"half")
    (tmp_path / f".b.old-{dead_pid}").mkdir()
    (tmp_path / f".b.old-{dead_pid}" / "report.json").write_text("{}")
    live = tmp_path / f".c.partial-{os.getppid()}"
    live.mkdir()
    _run(tiny_bundle, tmp_path, case_id="new")
    assert not (tmp_path / f".a.partial-{dead_pid}").exists()
    assert (tmp_path / "b" / "report.json").read_text() == "{}" and live.is_dir()


def test_swapped_headers_refused_or_exchanged(tiny_bundle, tmp_path, capsys):
    base = [
        "--checkpoint",
        tiny_bundle["checkpoint"],
        "--config_file",
        json.dumps(tiny_bundle["configs"]),
        "--precision",
        "fp32",
    ]
    code, err = _cli(capsys, "--ap", tiny_bundle["la"], "--la", tiny_bundle["ap"], "--out_dir", tmp_path / "a", *base)
    assert code == 1 and f"The views look swapped: the AP input '{tiny_bundle['la']}' has ViewPosition LL" in err
    code, err = _cli(
        capsys,
        "--ap",
        tiny_bundle["la"],
        "--la",
        tiny_bundle["ap"],
        "--out_dir",
        tmp_path / "b",
        "--case_id",
        "s",
        "--allow_swap",
        "--allow_unreliable",
        *base,
    )
    assert code == 0 and "case 's': AP and LA exchanged" in err
    report = json.loads((tmp_path / "b" / "s" / "report.json").read_text())
    assert report["swapped_inputs"] and report["inputs"]["ap"]["file"] == tiny_bundle["ap"]
    assert json.loads((tmp_path / "b" / "summary.json").read_text())["swapped"] == ["s"]
    _run(tiny_bundle, tmp_path / "c", case_id="s")
    a, b = (nib.load(str(tmp_path / d / "s" / "ct.nii.gz")).get_fdata() for d in ("b", "c"))
    np.testing.assert_array_equal(a, b)  # exchanged back: the same network input as the right order


def test_unreliable_case_is_counted_apart_and_sets_the_exit_status(tiny_bundle, tmp_path, capsys):
    """A random-weight network explains nothing: every case is flagged (and still written)."""
    base = [
        "--ap",
        tiny_bundle["ap"],
        "--la",
        tiny_bundle["la"],
        "--checkpoint",
        tiny_bundle["checkpoint"],
        "--case_id",
        "u",
    ]
    base += ["--config_file", json.dumps(tiny_bundle["configs"]), "--precision", "fp32"]
    code, err = _cli(capsys, *base, "--out_dir", tmp_path / "a")
    assert code == 3 and "warning: case 'u' is unreliable (" in err and "(0 reliable, 1 unreliable), 0 failed" in err
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["succeeded"] == [] and list(summary["unreliable"]) == ["u"] and summary["failed"] == {}
    assert (tmp_path / "a" / "u" / "ct.nii.gz").is_file()
    code, _ = _cli(capsys, *base, "--out_dir", tmp_path / "b", "--allow_unreliable")
    assert code == 0


def test_precision_and_channels_last(tiny_bundle, tmp_path):
    _run(tiny_bundle, tmp_path / "fp32", case_id="c", precision="fp32", channels_last=False)
    _run(tiny_bundle, tmp_path / "cl", case_id="c", precision="fp32", channels_last=True)
    summary = _run(tiny_bundle, tmp_path / "bf16", case_id="c", precision="bf16", channels_last=True)
    assert summary["precision"] == "bf16" and summary["channels_last"] is True
    fp32, cl, bf16 = (nib.load(str(tmp_path / d / "c" / "ct.nii.gz")).get_fdata() for d in ("fp32", "cl", "bf16"))
    np.testing.assert_allclose(cl, fp32, atol=1e-2)  # HU; the same float32 arithmetic in another memory order
    # bf16 keeps 8 bits of mantissa (0.4 %): 0.4 % of the 3000 HU window is 12 HU per rounding; 60 HU allows a few
    assert np.abs(bf16 - fp32).mean() < 60.0 and not np.array_equal(bf16, fp32)


def test_console_has_no_traceback_subprocess(tiny_bundle, tmp_path):
    """The real console: a user error is one line on stderr, exit status 1, nothing written."""
    cmd = [
        sys.executable,
        "-m",
        "xctrs_monai.apps.infer",
        "--ap",
        tiny_bundle["ap"],
        "--la",
        str(tmp_path / "missing.dcm"),
    ]
    cmd += ["--out_dir", str(tmp_path / "out"), "--checkpoint", tiny_bundle["checkpoint"], "--device", "cpu"]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONWARNINGS": "ignore"}
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"LA radiograph: Cannot read '{tmp_path / 'missing.dcm'}' as a radiograph: no such file" in proc.stderr
    assert not any((tmp_path / "out").iterdir()) or [p.name for p in (tmp_path / "out").iterdir()] == ["summary.json"]


def test_config_parses_without_checkpoint_or_input(tiny_bundle, tmp_path):
    """MONAI's property check of the inference workflow needs neither a checkpoint nor an input pair."""
    from monai.bundle import ConfigWorkflow

    configs = Path(tiny_bundle["inference"]).parent
    workflow = ConfigWorkflow(
        config_file=tiny_bundle["inference"],
        meta_file=str(configs / "metadata.json"),
        logging_file=str(configs / "logging.conf"),
        workflow_type="infer",
        bundle_root=str(tmp_path),
        dataset_dir=str(tmp_path),
    )
    workflow.initialize()
    assert not workflow.check_properties()
    assert len(workflow.parser.get_parsed_content("dataset")) == 0

# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Cross-validation as one command on a prepared 16^3 dataset: pooled table, prior of each training split, resume."""

from __future__ import annotations

import csv
import json
import math
import runpy
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from xctrs_monai.apps import CrossValidation
from xctrs_monai.apps import crossval as crossval_module
from xctrs_monai.apps.crossval_config import read_status
from xctrs_monai.constants import VERTEBRAE
from xctrs_monai.data import make_phantom, prepare_dataset, save_nifti

pytestmark = pytest.mark.filterwarnings("ignore")

HERE = Path(__file__).resolve().parent
TINY = str(HERE / "tiny_train.json")
SCRIPTS = HERE.parents[1] / "scripts"


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    """The fold subprocesses inherit the environment: one thread each, fast for 16^3 and fair on a shared CPU."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """Five phantoms through ``prepare_dataset`` (as ``scripts/prepare_dataset.py``): 2 folds of unequal size."""
    root = tmp_path_factory.mktemp("prepared")
    for i in range(5):
        ct, labels, affine = make_phantom(i, 16, 8.0)
        save_nifti(np.rint(ct).astype(np.int16), affine, root / "in" / "images" / f"p{i}.nii.gz")
        save_nifti(labels.astype(np.uint8), affine, root / "in" / "labels" / f"p{i}.nii.gz")
    summary = prepare_dataset(
        root / "data",
        images_dir=root / "in" / "images",
        labels_dir=root / "in" / "labels",
        labels="verse",
        spacing=8.0,
        size=16,
        n_folds=2,
    )
    datalist = Path(summary["datalist"])
    folds = [it["fold"] for it in json.loads(datalist.read_text())["training"]]
    assert sorted(folds.count(k) for k in (0, 1)) == [2, 3]  # unequal folds: pooled mean != mean of fold means
    return datalist


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _number(text: str) -> float:
    return math.nan if text == "" else float(text)


def _load(path: Path) -> np.ndarray:
    return np.asarray(nib.load(str(path)).dataobj, dtype=np.float64)


def _check_pooled(out: Path, table: dict) -> None:
    """The pooled summary and the per-fold means, recomputed with numpy from each fold's per-case CSV."""
    per_fold = {k: _rows(out / f"fold_{k}" / "eval" / "metrics.csv") for k in (0, 1)}
    summary = json.loads((out / "crossval.json").read_text())["summary"]
    fold_means = {(r["fold"], r["method"]): r for r in _rows(out / "crossval_folds.csv")}
    for method in ("prior", "model"):
        for column in table["columns"]:
            values = {
                k: np.array([_number(r[column]) for r in rows if r["method"] == method]) for k, rows in per_fold.items()
            }
            pooled = np.concatenate(list(values.values()))
            pooled = pooled[np.isfinite(pooled)]
            expected = summary[method][column]
            assert expected["n"] == pooled.size, column
            if pooled.size:  # the CSV keeps 6 significant digits: 1e-5 relative
                assert expected["mean"] == pytest.approx(pooled.mean(), rel=1e-5, abs=1e-6), column
            if pooled.size > 1:  # each value rounded by <= 5e-6 of the largest: the std moves by about twice that
                tolerance = 1e-5 * np.abs(pooled).max() + 1e-6
                assert expected["std"] == pytest.approx(pooled.std(ddof=1), abs=tolerance), column
            for k, v in values.items():
                mean = v[np.isfinite(v)].mean() if np.isfinite(v).any() else math.nan
                got = _number(fold_means[(str(k), method)][column])
                assert got == pytest.approx(mean, rel=1e-5, abs=1e-6, nan_ok=True), (k, column)
    psnr = "PSNR (Eq. 18, dB)"
    fold_mean = np.mean([_number(fold_means[(str(k), "model")][psnr]) for k in (0, 1)])
    assert abs(summary["model"][psnr]["mean"] - fold_mean) > 1e-3  # pooled over cases, not the mean of fold means


def _volume_vote(labels: list[np.ndarray]) -> np.ndarray:
    """The prior's default vote by hand: as many voxels as the mean spine volume, those most often inside a
    vertebra (ties in voxel order), each labelled by its most frequent vertebra (ties to the lower label)."""
    stack = np.stack([lab.ravel() for lab in labels])
    inside = (stack > 0).sum(axis=0)
    size = min(round(float(np.mean([(lab > 0).sum() for lab in labels]))), int((inside > 0).sum()))
    keep = np.argsort(-inside, kind="stable")[:size]
    counts = np.stack([(stack[:, keep] == c).sum(axis=0) for c in range(1, 8)])
    vote = np.zeros(stack.shape[1], dtype=int)
    vote[keep] = counts.argmax(axis=0) + 1
    return vote.reshape(labels[0].shape)


def _check_prior_of_each_fold(out: Path, datalist: Path) -> None:
    """Each fold's prior row, recomputed with nibabel from that fold's training cases only."""
    root, items = datalist.parent, json.loads(datalist.read_text())["training"]
    for k in (0, 1):
        train = [it for it in items if it["fold"] != k]
        rows = {r["case"]: r for r in _rows(out / f"fold_{k}" / "eval" / "metrics.csv") if r["method"] == "prior"}
        assert sorted(rows) == sorted(it["case_id"] for it in items if it["fold"] == k)
        # the prepared cases are on the evaluation grid (16^3, 8 mm, RAS): the config's transforms keep them as they are
        mean_ct = np.mean([np.clip((_load(root / it["image"]) + 1000) / 3000, 0, 1) for it in train], axis=0)
        vote = _volume_vote([_load(root / it["label"]).astype(int) for it in train])
        for it in items:
            if it["fold"] != k:
                continue
            gt = np.clip((_load(root / it["image"]) + 1000) / 3000, 0, 1)
            label = _load(root / it["label"]).astype(int)
            psnr = 10 * np.log10(gt.max() ** 2 / np.mean((mean_ct - gt) ** 2))
            row = rows[it["case_id"]]
            assert _number(row["PSNR (Eq. 18, dB)"]) == pytest.approx(psnr, rel=1e-4)  # float32 prior, 6 digits
            for c, name in enumerate(VERTEBRAE, start=1):
                p, g = vote == c, label == c
                dice = 2 * np.sum(p & g) / (p.sum() + g.sum()) * 100 if g.any() else math.nan
                assert _number(row[f"Dice {name} (%)"]) == pytest.approx(dice, rel=1e-4, abs=1e-4, nan_ok=True)


@pytest.mark.slow
def test_cross_validation_end_to_end(tmp_path, prepared, monkeypatch):
    out = tmp_path / "cv"
    cv = CrossValidation(out, config_file=TINY, datalist=prepared)
    assert cv.folds == [0, 1] and cv.segmentation
    table = cv.run(quiet=True)
    assert table["display_columns"][:3] == ["SSIM (Eq. 17, global)", "PSNR (Eq. 18, dB)", "Dice C1 (%)"]
    assert len(table["cases"]) == 5 and {c["fold"] for c in table["cases"]} == {0, 1}
    _check_pooled(out, table)
    _check_prior_of_each_fold(out, prepared)
    markdown = (out / "crossval.md").read_text()
    assert "| X-ray-blind prior |" in markdown and "mean ± std of the fold means" in markdown

    fold0 = out / "fold_0"
    commands = (fold0 / "commands.sh").read_text().splitlines()
    assert [line.count("-m monai.bundle run") for line in commands[-2:]] == [1, 1] and "evaluate.json" in commands[-1]
    evaluation = (fold0 / "fold.log").read_text().split("===== evaluation")[1]
    assert "Restored all variables from " + str(fold0 / "models" / "checkpoint_epoch=1.pt") in evaluation  # last epoch

    # a finished fold is skipped: no subprocess, nothing rewritten
    stamps = {k: (out / f"fold_{k}" / "eval" / "metrics.json").stat().st_mtime_ns for k in (0, 1)}
    with monkeypatch.context() as m:
        m.setattr(crossval_module.subprocess, "run", lambda *a, **k: pytest.fail("a finished fold ran again"))
        again = CrossValidation(out, config_file=TINY, datalist=prepared).run(quiet=True)
        assert again["summary"] == table["summary"]
        with pytest.raises(ValueError, match=r"fold 0 in .* other settings \(2 differ: .*epochs: 1 -> 2"):
            CrossValidation(out, config_file=TINY, datalist=prepared, overrides={"epochs": 2}).run()
    assert stamps == {k: (out / f"fold_{k}" / "eval" / "metrics.json").stat().st_mtime_ns for k in (0, 1)}

    # a trained fold whose evaluation is missing is only evaluated again
    checkpoint = fold0 / "models" / "checkpoint_epoch=1.pt"
    stamp = checkpoint.stat().st_mtime_ns
    (fold0 / "eval" / "metrics.json").unlink()
    CrossValidation(out, config_file=TINY, datalist=prepared).run(quiet=True)
    attempt = (fold0 / "fold.log").read_text().split("##### attempt")[-1]
    assert "===== evaluation" in attempt and "===== training" not in attempt
    assert checkpoint.stat().st_mtime_ns == stamp and (fold0 / "eval" / "metrics.json").is_file()

    # an interrupted fold resumes from its last checkpoint through the bundle's resume
    resumed = tmp_path / "resumed" / "fold_1" / "models"  # what a run stopped after epoch 1 of 2 leaves
    shutil.copytree(out / "fold_1" / "models", resumed)
    CrossValidation(tmp_path / "resumed", config_file=TINY, datalist=prepared, folds=1, overrides={"epochs": 2}).run(
        quiet=True
    )
    training = (resumed.parent / "fold.log").read_text().split("===== training")[1].split("===== evaluation")[0]
    assert "Restored all variables from " + str(resumed / "checkpoint_epoch=1.pt") in training
    assert "XCTRSTrainer - INFO - Epoch[2] Complete" in training
    assert "XCTRSTrainer - INFO - Epoch[1] Complete" not in training  # epoch 1 came from the checkpoint
    final = torch.load(resumed / "checkpoint_epoch=2.pt", weights_only=True)
    n_train = sum(it["fold"] != 1 for it in json.loads(prepared.read_text())["training"])
    assert final["trainer"]["iteration"] == 2 * n_train and final["trainer"]["max_epochs"] == 2


@pytest.mark.slow
def test_failed_fold_is_reported_with_its_log(tmp_path, prepared):
    out = tmp_path / "cv"
    cv = CrossValidation(out, config_file=TINY, datalist=prepared, overrides={"recon_channels": [4, 4]})
    with pytest.raises(RuntimeError, match=r"fold 0 \(exit code 1\), log " + str(out / "fold_0" / "fold.log")):
        cv.run(keep_going=False)
    log = (out / "fold_0" / "fold.log").read_text()
    assert "Traceback" in log and "len(channels)=2" in log
    assert read_status(out / "fold_0" / "status.json")["completed"] == []
    assert not (out / "fold_1").exists() and not (out / "crossval.md").exists()  # stopped, no table


def _no_folds(tmp_path: Path) -> str:
    path = tmp_path / "no_folds.json"
    path.write_text(json.dumps({"training": [{"image": "a.nii.gz", "label": "b.nii.gz"}]}))
    return str(path)


ILL_CASES = [
    ({"folds": "0,7"}, r"folds \[7\] are not in the datalist"),
    ({"folds": "zero"}, "folds must be integers"),
    ({"folds": [0, 0]}, "folds must be distinct"),
    ({"checkpoint": "middle"}, "checkpoint must be one of"),
    ({"seed": -1}, "seed must be an integer >= 0"),
    ({"overrides": {"ckpt_dir": "x"}}, r"\['ckpt_dir'\] are set per fold"),
    ({"config_file": "nowhere.json"}, "config file 'nowhere.json' does not exist"),
    ({"datalist": "nowhere.json"}, "datalist 'nowhere.json' does not exist"),
    ({"datalist": _no_folds}, "needs a 'fold' on every item"),
]


@pytest.mark.parametrize("kwargs, message", ILL_CASES)
def test_bad_arguments(tmp_path, prepared, kwargs, message):
    kwargs = {"config_file": TINY, "datalist": prepared, **kwargs}
    kwargs = {k: v(tmp_path) if callable(v) else v for k, v in kwargs.items()}
    with pytest.raises(ValueError, match=message):
        CrossValidation(tmp_path / "cv", **kwargs)


def test_script_reports_bad_arguments(tmp_path, prepared, capsys):
    (tmp_path / "file").write_text("")
    main = runpy.run_path(str(SCRIPTS / "cross_validate.py"))["main"]
    with pytest.raises(SystemExit) as info:
        main(out_dir=str(tmp_path / "file"), config_file=TINY, datalist=str(prepared))
    assert info.value.code == 1
    assert f"cross_validate: out_dir '{tmp_path / 'file'}' exists and is not a folder" in capsys.readouterr().err

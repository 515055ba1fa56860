# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""The Table 1 ablation as one command on 16^3 phantoms: each row's loss switches, no Dice without segmentation,
the statistics over seeds and cases recomputed from the runs' per-case files, the paper's figures beside ours."""

from __future__ import annotations

import csv
import json
import math
import re
import runpy
from pathlib import Path

import numpy as np
import pytest
import torch

from xctrs_monai.apps import ABLATION_ROWS, PAPER_TABLE1, Ablation
from xctrs_monai.constants import VERTEBRAE

pytestmark = pytest.mark.filterwarnings("ignore")

HERE = Path(__file__).resolve().parent
TINY = str(HERE / "tiny_train.json")
SCRIPTS = HERE.parents[1] / "scripts"
SSIM, PSNR = "SSIM (Eq. 17, global)", "PSNR (Eq. 18, dB)"


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    """The fold subprocesses inherit the environment: one thread each, fast for 16^3 and fair on a shared CPU."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def _cases(path: Path, method: str = "model") -> list[dict]:
    with open(path, newline="") as f:
        return [r for r in csv.DictReader(f) if r["method"] == method]


def _number(text: str) -> float:
    return math.nan if text == "" else float(text)


def _finite(values) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    return arr[np.isfinite(arr)]


def _close(got: float, expected: float, scale) -> bool:
    """The CSV keeps 6 significant digits: a mean or std of its values is off by ~1e-5 of their magnitude."""
    return math.isclose(got, expected, abs_tol=1e-5 * float(np.max(np.abs(scale), initial=1.0)) + 1e-6)


def test_paper_table_transcription():
    for row in (3, 4):  # the paper's mean Dice is the mean of its seven vertebrae (rounded to 2 decimals)
        dice = [PAPER_TABLE1[row][v].mean for v in VERTEBRAE]
        assert np.mean(dice) == pytest.approx(PAPER_TABLE1[row]["Mean"].mean, abs=0.005)
    assert (PAPER_TABLE1[4]["SSIM"].mean, PAPER_TABLE1[4]["PSNR"].mean) == (0.749, 24.58)
    # row 1's PSNR: row 2's minus the 0.31 dB of the MV-VGG loss (Sect. 3.2.2)
    assert PAPER_TABLE1[1]["PSNR"].mean == pytest.approx(PAPER_TABLE1[2]["PSNR"].mean - 0.31)
    assert PAPER_TABLE1[1]["PSNR"].source == "derived" and PAPER_TABLE1[3]["PSNR"].source == "not legible"
    # the paper's SSIM gains are relative (Sect. 3.2.3: +13.78 % over the mean of Table 2, +18.7 % over SIT),
    # so row 2's SSIM is row 1's times 1.0211
    assert 0.749 / np.mean([0.631, 0.653, 0.691]) - 1 == pytest.approx(0.1378, abs=1e-4)
    assert 0.749 / 0.631 - 1 == pytest.approx(0.187, abs=5e-4)
    assert PAPER_TABLE1[2]["SSIM"].mean == pytest.approx(0.712 * 1.0211, abs=5e-4)
    assert all(PAPER_TABLE1[r][v].source == "none" for r in (1, 2) for v in (*VERTEBRAE, "Mean"))


def _loss_terms(log: Path) -> set[str]:
    return set(re.findall(r"train_epoch_loss_(\w+):", log.read_text()))


def _check_first_call(out: Path, runs: dict[int, Path]) -> None:
    terms = {n: _loss_terms(d / "fold_0" / "fold.log") for n, d in runs.items()}
    assert terms == {  # each row's switches reached the loss
        1: {"mae"},
        2: {"mae", "mv"},
        3: {"mae", "mv", "seg"},
        4: {"mae", "mv", "seg", "rsc", "rsc_seg", "rsc_div"},
    }
    for n, d in runs.items():  # rows 1-2: no segmentation metric at all; rows 3-4: all of them
        columns = json.loads((d / "fold_0" / "eval" / "metrics.json").read_text())["columns"]
        assert {c.split(" ")[0] for c in columns} & {"Dice", "Mean", "HD95", "ASSD"} == (
            set() if n < 3 else {"Dice", "Mean", "HD95", "ASSD"}
        ), n
    nets = {
        n: torch.load(d / "fold_0" / "models" / "checkpoint_epoch=1.pt", weights_only=True)["network"]
        for n, d in runs.items()
    }

    def same(a: int, b: int, part: str) -> bool:
        return all(torch.equal(v, nets[b][k]) for k, v in nets[a].items() if k.startswith(part))

    # one seed, one initialisation: rows 1-2 leave the segmenter as initialised, row 4 trains it (row 3 as well,
    # once its segmentation weight has warmed up: it is 0 in the first epoch)
    assert same(1, 2, "segmenter.") and not same(1, 2, "reconstructor.") and not same(1, 4, "segmenter.")

    lines = (out / "ablation.md").read_text().splitlines()
    row = {line.split(" | ")[0]: line for line in lines if line.startswith("| (") or line.startswith("| paper")}
    assert row["| (1) SpaDRNet, MAE only"].count(" / ") == 10  # Dice C1..C7, mean, HD95, ASSD
    assert " / " not in row["| (4) + RSC learning (X-CTRSNet)"]
    assert "0.712 ± ?" in row["| paper, row 1"] and "23.54* ± 1.90" in row["| paper, row 1"]
    assert "0.727* ± ?" in row["| paper, row 2"] and "? ± 1.63" in row["| paper, row 3"]
    assert all(f in row["| paper, row 4"] for f in ("0.749 ± 0.043", "24.58 ± 1.56", "80.44 ± 7.27"))
    text = "\n".join(lines)
    assert "random initialisation (the paper's is ImageNet-pretrained" in text and "Only 1 seed(s)" in text


@pytest.mark.slow
def test_ablation_end_to_end(tmp_path):
    out, overrides = tmp_path / "ablation", {"dataset_dir": str(tmp_path / "phantoms")}
    Ablation(out, config_file=TINY, folds=0, seeds=0, overrides=overrides).run()
    runs = {r.number: out / f"row{r.number}_{r.name}" for r in ABLATION_ROWS}
    _check_first_call(out, {n: d / "seed_0" for n, d in runs.items()})

    # two seeds of rows 1 and 3: the finished seed-0 runs are skipped, the seed-1 runs are made
    stamps = [(runs[n] / "seed_0" / "fold_0" / "eval" / "metrics.json").stat().st_mtime_ns for n in (1, 3)]
    result = Ablation(out, config_file=TINY, folds="0", seeds="0,1", rows="3,1", overrides=overrides).run()
    assert stamps == [(runs[n] / "seed_0" / "fold_0" / "eval" / "metrics.json").stat().st_mtime_ns for n in (1, 3)]
    assert [r["row"] for r in result["rows"]] == [1, 3]  # the paper's order

    cases = {(n, s): _cases(runs[n] / f"seed_{s}" / "fold_0" / "eval" / "metrics.csv") for n in (1, 3) for s in (0, 1)}
    assert [c["case"] for c in cases[(1, 0)]] == [c["case"] for c in cases[(1, 1)]]  # same held-out cases
    assert cases[(1, 0)][0][PSNR] != cases[(1, 1)][0][PSNR]  # another seed, another network
    means = {k: {c: _finite([_number(r[c]) for r in v]).mean() for c in v[0] if " (" in c} for k, v in cases.items()}
    for row in result["rows"]:
        n = row["row"]
        for column, stats in row["seeds"].items():
            per_seed = [means[(n, s)][column] for s in (0, 1)]
            assert _close(stats["mean"], np.mean(per_seed), per_seed), (n, column)
            assert _close(stats["std"], np.std(per_seed, ddof=1), per_seed), (n, column)
            pooled = _finite([_number(r[column]) for s in (0, 1) for r in cases[(n, s)]])
            assert _close(row["cases"][column]["mean"], pooled.mean(), pooled), (n, column)
            assert _close(row["cases"][column]["std"], pooled.std(ddof=1), pooled), (n, column)
    step = result["steps"][0]
    assert (step["from"], step["to"]) == (1, 3) and set(step["changes"]) == {SSIM, PSNR}  # row 1 has no Dice
    diffs = [means[(3, s)][SSIM] - means[(1, s)][SSIM] for s in (0, 1)]
    assert _close(step["changes"][SSIM]["ours"]["mean"], np.mean(diffs), diffs)
    assert step["changes"][SSIM]["paper"] == pytest.approx(0.736 - 0.712)
    prior = _finite([_number(r[PSNR]) for r in _cases(runs[3] / "seed_1" / "fold_0" / "eval" / "metrics.csv", "prior")])
    assert _close(result["prior"]["cases"][PSNR]["mean"], prior.mean(), prior)
    runs_csv = (out / "ablation_runs.csv").read_text().splitlines()
    assert [line.split(",")[:2] for line in runs_csv[1:]] == [["1", "0"], ["1", "1"], ["3", "0"], ["3", "1"]]


ILL_CASES = [
    ({"rows": "1,5"}, r"rows must be among \[1, 2, 3, 4\]"),
    ({"seeds": ""}, "seeds must be distinct integers"),
    ({"seeds": "0,0"}, "seeds must be distinct integers"),
    ({"overrides": {"loss#use_rsc": False}}, r"\['loss#use_rsc'\] are set per row"),
    ({"vgg_weights": "nowhere.pth"}, "vgg_weights 'nowhere.pth' does not exist"),
    ({"checkpoint": "first"}, "checkpoint must be one of"),
]


@pytest.mark.parametrize("kwargs, message", ILL_CASES)
def test_bad_arguments(tmp_path, kwargs, message):
    kwargs = {**kwargs, "overrides": {"dataset_dir": str(tmp_path), **kwargs.get("overrides", {})}}
    with pytest.raises(ValueError, match=message):
        Ablation(tmp_path / "ablation", config_file=TINY, **kwargs)


def test_script_reports_bad_arguments(tmp_path, capsys):
    main = runpy.run_path(str(SCRIPTS / "ablation.py"))["main"]
    with pytest.raises(SystemExit) as info:
        main(out_dir=str(tmp_path / "ablation"), config_file=TINY, rows="0")
    assert info.value.code == 1 and "ablation: rows must be among" in capsys.readouterr().err

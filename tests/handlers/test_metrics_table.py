# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0

from __future__ import annotations

import csv
import json
import math
import os

import numpy as np
import pytest
import torch
from ignite.engine import Engine, Events

from xctrs_monai.handlers import (
    VERTEBRAE,
    MetricsTableHandler,
    build_metrics_table,
    format_metrics_table,
    write_metrics_table,
)

PSNR = torch.tensor([[20.0], [22.0], [24.0]])
SSIM = torch.tensor([[0.6], [0.7], [0.8]])
DICE = torch.tensor(
    [
        [0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8],
        [0.6, 0.6, 0.6, 0.6, 0.6, 0.6, float("nan")],
        [0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.4],
    ]
)
COLUMNS = ["SSIM", "PSNR", *VERTEBRAE, "Mean Dice"]


def test_build_metrics_table():
    table = build_metrics_table(PSNR, SSIM, DICE, case_ids=["a", "b", "c"])
    assert table["columns"] == COLUMNS
    s = table["summary"]
    assert s["PSNR"]["mean"] == pytest.approx(22.0) and s["PSNR"]["std"] == pytest.approx(2.0)
    assert s["SSIM"]["mean"] == pytest.approx(0.7) and s["SSIM"]["n"] == 3
    assert s["C1"]["mean"] == pytest.approx(70.0)  # percent
    assert s["C7"]["mean"] == pytest.approx(60.0) and s["C7"]["n"] == 2  # NaN (absent class) left out
    per_case_mean = [80.0, 60.0, (6 * 70.0 + 40.0) / 7]
    assert [c["Mean Dice"] for c in table["cases"]] == pytest.approx(per_case_mean)
    assert s["Mean Dice"]["mean"] == pytest.approx(np.mean(per_case_mean))
    assert [c["case"] for c in table["cases"]] == ["a", "b", "c"]


def test_single_case_and_fraction():
    table = build_metrics_table([25.0], [0.75], DICE[:1], dice_percent=False)
    assert table["summary"]["C1"]["mean"] == pytest.approx(0.8) and table["summary"]["C1"]["std"] == 0.0
    assert table["cases"][0]["case"] == "0"


@pytest.mark.parametrize(
    "psnr,ssim,dice", [(PSNR[:2], SSIM, DICE), (PSNR, SSIM, DICE[:, :6])]
)
def test_ill_shapes(psnr, ssim, dice):
    with pytest.raises(ValueError):
        build_metrics_table(psnr, ssim, dice)


def test_write_and_format(tmp_path):
    table = build_metrics_table(PSNR, SSIM, DICE)
    csv_path, json_path = write_metrics_table(table, str(tmp_path / "out"), "table")
    assert os.path.basename(csv_path) == "table.csv" and os.path.basename(json_path) == "table.json"
    assert not [f for f in os.listdir(tmp_path / "out") if f.endswith(".tmp")]  # temp files renamed away
    with open(csv_path) as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["case", *COLUMNS]
    assert [r[0] for r in rows[1:]] == ["0", "1", "2", "mean", "std"]
    assert rows[2][COLUMNS.index("C7") + 1] == "nan"
    loaded = json.loads(open(json_path).read())
    assert loaded["summary"]["PSNR"]["mean"] == pytest.approx(22.0)
    assert loaded["cases"][1]["C7"] is None  # NaN written as null (valid JSON)
    text = format_metrics_table(table, title="run")
    assert text.splitlines()[0].split()[:3] == ["SSIM", "PSNR", "(dB)"]
    assert "22.00 ± 2.00" in text and "0.700 ± 0.100" in text and "70.00 ± 10.00" in text


def test_handler_reads_metric_details(tmp_path, capsys):
    names = ["case_a", "case_b", "case_c"]

    def step(engine, i):
        engine.state.batch = [{"case_id": names[i]}]

    engine = Engine(step)
    engine.state.metric_details = {}

    @engine.on(Events.EPOCH_STARTED)
    def fill(e):  # what MONAI metric handlers with save_details=True leave at EPOCH_COMPLETED
        e.state.metric_details.update({"val_psnr": PSNR, "val_ssim": SSIM, "val_dice": DICE})

    handler = MetricsTableHandler(output_dir=str(tmp_path), filename="metrics")
    handler.attach(engine)
    engine.run(range(3), max_epochs=1)
    assert [c["case"] for c in handler.table["cases"]] == names
    assert (tmp_path / "metrics.csv").is_file() and (tmp_path / "metrics.json").is_file()
    assert "Mean Dice (%)" in capsys.readouterr().out
    assert math.isclose(handler.table["summary"]["PSNR"]["mean"], 22.0, rel_tol=1e-6)


def test_handler_missing_details(tmp_path):
    engine = Engine(lambda e, b: None)
    MetricsTableHandler(output_dir=str(tmp_path)).attach(engine)
    with pytest.raises(KeyError, match="save_details"):
        engine.run(range(1), max_epochs=1)

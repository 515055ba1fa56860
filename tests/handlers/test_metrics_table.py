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

from xctrs_monai.constants import VERTEBRAE
from xctrs_monai.handlers import (
    DEFAULT_COLUMNS,
    MetricsTableHandler,
    TableColumn,
    build_metrics_table,
    format_markdown,
    format_metrics_table,
    write_metrics_table,
)

NAN = float("nan")
MODEL = {
    "val_psnr_eq18": torch.tensor([[20.0], [22.0], [24.0]]),
    "val_ssim_eq17": torch.tensor([[0.6], [0.7], [0.8]]),
    "val_mae_hu": torch.tensor([[100.0], [80.0], [60.0]]),
    "val_dice": torch.tensor(
        [
            [0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8],
            [0.6, 0.6, 0.6, 0.6, 0.6, 0.6, NAN],  # C7 absent from case 1's ground truth
            [0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.4],
        ]
    ),
    "val_hd95": torch.tensor([[2.0] * 7, [4.0] * 7, [6.0] * 7]),
}
PRIOR = {
    "val_psnr_eq18": torch.tensor([[18.0], [18.0], [21.0]]),
    "val_ssim_eq17": torch.tensor([[0.5], [0.5], [0.5]]),
    "val_mae_hu": torch.tensor([[150.0], [150.0], [120.0]]),
    "val_dice": torch.full((3, 7), 0.5),
    "val_hd95": torch.full((3, 7), 10.0),
}
DICE_COLUMNS = [f"Dice {c} (%)" for c in VERTEBRAE]
HD_COLUMNS = [f"HD95 {c} (mm)" for c in VERTEBRAE]


def test_model_and_prior_rows_and_gain():
    table = build_metrics_table(MODEL, PRIOR, case_ids=["a", "b", "c"], folds=[0, 0, 1])
    assert table["rows"] == ["prior", "model", "gain"]  # the prior first
    assert table["columns"] == [
        "PSNR (Eq. 18, dB)",
        "SSIM (Eq. 17, global)",
        "MAE (HU)",
        *DICE_COLUMNS,
        "Mean Dice (%)",
        *HD_COLUMNS,
        "HD95 (mm)",
    ]  # columns of metrics that were not given (MONAI PSNR/SSIM, ASSD) are left out
    assert table["display_columns"][-2:] == ["Mean Dice (%)", "HD95 (mm)"]  # per-vertebra HD95 not shown
    s, p = table["summary"]["model"], table["summary"]["prior"]
    assert s["PSNR (Eq. 18, dB)"]["mean"] == pytest.approx(22.0) and s["PSNR (Eq. 18, dB)"]["std"] == pytest.approx(2.0)
    assert p["PSNR (Eq. 18, dB)"]["mean"] == pytest.approx(19.0)
    assert table["gain"]["PSNR (Eq. 18, dB)"] == pytest.approx(3.0)  # 22 - 19
    assert table["gain"]["MAE (HU)"] == pytest.approx(80.0 - 140.0)  # an error: negative gain is better
    assert s["Dice C7 (%)"]["mean"] == pytest.approx(60.0) and s["Dice C7 (%)"]["n"] == 2  # NaN left out, percent
    per_case_mean = [80.0, 60.0, (6 * 70.0 + 40.0) / 7]  # the per-case mean leaves the absent C7 out
    assert [c["model"]["Mean Dice (%)"] for c in table["cases"]] == pytest.approx(per_case_mean)
    assert table["gain"]["Mean Dice (%)"] == pytest.approx(np.mean(per_case_mean) - 50.0)
    assert table["gain"]["HD95 (mm)"] == pytest.approx(4.0 - 10.0)
    assert [(c["case"], c["fold"]) for c in table["cases"]] == [("a", 0), ("b", 0), ("c", 1)]
    assert table["cases"][2]["prior"]["PSNR (Eq. 18, dB)"] == pytest.approx(21.0)  # per case, same order
    assert "MAE (HU)" in table["lower_is_better"] and "Mean Dice (%)" not in table["lower_is_better"]


def test_model_only_and_fractions():
    columns = [TableColumn("val_dice", "Dice {}", mean_name="Mean Dice")]
    table = build_metrics_table({"val_dice": MODEL["val_dice"][:1]}, columns=columns)
    assert table["rows"] == ["model"] and "gain" not in table
    assert table["summary"]["model"]["Dice C1"]["mean"] == pytest.approx(0.8) and table["cases"][0]["case"] == "0"


@pytest.mark.parametrize(
    "details,prior,match",
    [
        ({"other": torch.zeros(3, 1)}, None, "none of the table's metrics"),
        ({"val_dice": torch.zeros(3, 6)}, None, "6 classes"),
        ({"val_psnr_eq18": torch.zeros(2, 1), "val_dice": torch.zeros(3, 7)}, None, "case counts"),
        (MODEL, {k: v for k, v in PRIOR.items() if k != "val_mae_hu"}, "the prior has no"),
        (MODEL, {k: v[:2] for k, v in PRIOR.items()}, "must share the cases"),
    ],
)
def test_ill_inputs(details, prior, match):
    with pytest.raises(ValueError, match=match):
        build_metrics_table(details, prior)


def test_files_and_text(tmp_path):
    table = build_metrics_table(MODEL, PRIOR, case_ids=["a", "b", "c"], folds=[0, 0, 1])
    paths = write_metrics_table(table, str(tmp_path / "out"), "table")
    assert sorted(os.path.basename(p) for p in paths.values()) == [
        "table.csv",
        "table.json",
        "table.md",
        "table_summary.csv",
    ]
    assert not [f for f in os.listdir(tmp_path / "out") if f.endswith(".tmp")]  # temp files renamed away
    with open(paths["csv"]) as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["case", "fold", "method", *table["columns"]]
    assert [r[:3] for r in rows[1:]] == [
        ["a", "0", "prior"],
        ["a", "0", "model"],
        ["b", "0", "prior"],
        ["b", "0", "model"],
        ["c", "1", "prior"],
        ["c", "1", "model"],
    ]
    assert rows[4][3 + table["columns"].index("Dice C7 (%)")] == "nan"
    with open(paths["summary_csv"]) as f:
        summary = list(csv.reader(f))
    assert [r[:2] for r in summary[1:]] == [
        ["prior", "mean"],
        ["prior", "std"],
        ["prior", "n"],
        ["model", "mean"],
        ["model", "std"],
        ["model", "n"],
        ["gain", "mean"],
    ]
    assert float(summary[-1][2]) == pytest.approx(3.0)  # PSNR gain
    loaded = json.loads(open(paths["json"]).read())
    assert loaded["cases"][1]["model"]["Dice C7 (%)"] is None  # NaN written as null (valid JSON)
    assert loaded["gain"]["PSNR (Eq. 18, dB)"] == pytest.approx(3.0)

    markdown = open(paths["markdown"]).read()
    assert markdown == format_markdown(table)
    lines = markdown.splitlines()
    assert lines[0].startswith("| | PSNR (Eq. 18, dB) | SSIM (Eq. 17, global) | MAE (HU) | Dice C1 (%)")
    assert lines[2].startswith("| X-ray-blind prior | 19.00 ± 1.73 | 0.500 ± 0.000 | 140.0 ± 17.3 |")
    assert lines[3].startswith("| X-CTRSNet | 22.00 ± 2.00 | 0.700 ± 0.100 | 80.0 ± 20.0 |")
    assert lines[4].startswith("| gain (X-CTRSNet - prior) | +3.00 | +0.200 | -60.0 |")
    assert sum("DiceMetric" in line for line in lines) == 1  # one definition per metric

    text = format_metrics_table(table, max_width=80)
    assert max(len(line) for line in text.splitlines()[:-1]) <= 80
    labels = [line.split("  ")[0].strip() for line in text.splitlines()[1:4]]
    assert labels == ["X-ray-blind prior", "X-CTRSNet", "gain (X-CTRSNet - prior)"]
    assert "22.00 ± 2.00" in text and "+3.00" in text and "lower is better for MAE (HU), HD95 (mm)" in text


def _engine(names: list[str], details: dict) -> Engine:
    def step(engine, i):
        engine.state.batch = [{"case_id": names[i], "fold": torch.tensor(i % 2)}]

    engine = Engine(step)
    engine.state.metric_details = {}

    @engine.on(Events.EPOCH_STARTED)
    def fill(e):  # what MONAI metric handlers (save_details=True) and XrayBlindPriorHandler leave in the state
        e.state.metric_details.update(details)

    return engine


def test_handler_reads_model_and_prior_details(tmp_path, capsys):
    names = ["case_a", "case_b", "case_c"]
    details = {**MODEL, **{f"prior_{k}": v for k, v in PRIOR.items()}, "prior_val_mean_dice": torch.zeros(3, 1)}
    handler = MetricsTableHandler(output_dir=str(tmp_path), filename="metrics")
    engine = _engine(names, details)
    handler.attach(engine)
    engine.run(range(3), max_epochs=1)
    assert [(c["case"], c["fold"]) for c in handler.table["cases"]] == [("case_a", 0), ("case_b", 1), ("case_c", 0)]
    assert handler.table["rows"][0] == "prior"
    assert all(os.path.isfile(p) for p in handler.paths.values())
    out = capsys.readouterr().out
    assert out.index("X-ray-blind prior") < out.index("X-CTRSNet  ")
    assert math.isclose(handler.table["gain"]["PSNR (Eq. 18, dB)"], 3.0, rel_tol=1e-6)

    model_only = MetricsTableHandler(output_dir=str(tmp_path / "m"), columns=[{"metric": "val_mae_hu", "name": "MAE"}])
    engine = _engine(names, MODEL)
    model_only.attach(engine)
    engine.run(range(3), max_epochs=1)
    assert model_only.table["rows"] == ["model"] and model_only.table["columns"] == ["MAE"]


def test_handler_missing_details(tmp_path):
    engine = Engine(lambda e, b: None)
    MetricsTableHandler(output_dir=str(tmp_path)).attach(engine)
    with pytest.raises(KeyError, match="save_details"):
        engine.run(range(1), max_epochs=1)


def test_default_columns_name_their_definition():
    names = [c.name for c in DEFAULT_COLUMNS]
    assert names[:5] == [
        "PSNR (Eq. 18, dB)",
        "PSNR (MONAI, range 1, dB)",
        "SSIM (Eq. 17, global)",
        "SSIM (3D windowed, MONAI)",
        "MAE (HU)",
    ]
    assert all(c.definition for c in DEFAULT_COLUMNS)

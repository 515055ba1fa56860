# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""scripts/calibrate_qc.py on the tiny bundle: every pair type runs, thresholds pass the calibration good pairs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from xctrs_monai.apps.qc import qc_verdict

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "calibrate_qc.py"


@pytest.mark.slow
def test_calibration_table(tiny_bundle, tmp_path):
    spec = importlib.util.spec_from_file_location("calibrate_qc", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = module.calibrate(
        tiny_bundle["checkpoint"], tiny_bundle["configs"], n=2, out_dir=str(tmp_path), precision="fp32"
    )
    assert set(out["test"]["flagged"]) == set(module.PAIR_TYPES)
    assert len(out["cases"]) == 2 * len(module.PAIR_TYPES)
    for rates in (out["test"], out["calibration"], out["old_rule_ncc_0.8_test"]):
        assert 0.0 <= rates["true_positive_rate"] <= 1.0 and 0.0 <= rates["false_positive_rate"] <= 1.0
    # the thresholds are the loosest values every calibration good pair passes
    good = [c for c in out["cases"] if c["type"] == "good" and c["phantom"] < 1]
    assert all(qc_verdict(c["views"], c["anatomy"], out["thresholds"], c["cross_view"])["reliable"] for c in good)
    assert set(out["thresholds"]) == {
        "ncc",
        "gradient_correlation",
        "cross_view",
        "component_fraction",
        "vertebrae_present",
        "order_inversions",
    }
    assert out["calibration"]["false_positive_rate"] == 0.0
    # a perfect reconstruction (the phantom's own labels) passes the anatomy checks
    truth = out["truth_anatomy"][:1]
    assert out["thresholds"]["component_fraction"] <= min(t["component_fraction"] for t in truth)
    assert out["thresholds"]["order_inversions"] >= max(t["order_inversions"] for t in truth)
    saved = json.loads((tmp_path / "qc_calibration.json").read_text())
    assert saved["thresholds"] == out["thresholds"]
    table = (tmp_path / "qc_calibration.md").read_text()
    assert all(f"| {t} |" in table for t in module.PAIR_TYPES) and "false-positive rate" in table

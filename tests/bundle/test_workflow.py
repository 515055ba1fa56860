# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""End-to-end bundle runs on 16^3 phantoms: training with checkpoints, evaluation table (resume: test_resume.py)."""

from __future__ import annotations

import csv
import json
import os
import runpy
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image

from monai.bundle import ConfigParser
from xctrs_monai.data import save_nifti

pytestmark = pytest.mark.filterwarnings("ignore")

CONFIGS = Path(__file__).resolve().parents[2] / "bundle" / "configs"
TRAIN = str(CONFIGS / "train.json")
EVALUATE = str(CONFIGS / "evaluate.json")


def test_train_then_evaluate(tmp_path, tiny_config, run_workflow):
    override = tiny_config()
    train = run_workflow([TRAIN, override], run_id="training")
    trainer = train.parser.get_parsed_content("train#trainer")
    assert trainer.state.epoch == 1 and trainer.state.iteration == 2
    ckpt_dir = tmp_path / "bundle" / "models"
    assert sorted(os.listdir(ckpt_dir)) == ["checkpoint_epoch=1.pt", "model.pt"]

    # model.pt is the plain XCTRSNet state dict the inference config loads
    net = train.parser.get_parsed_content("network_def", instantiate=True)
    net.load_state_dict(torch.load(ckpt_dir / "model.pt", weights_only=True))
    resumable = torch.load(ckpt_dir / "checkpoint_epoch=1.pt", weights_only=True)
    assert set(resumable) == {"network", "optimizer", "trainer", "scaler", "model_saver", "checkpointer"}
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(tmp_path / "bundle" / "runs"))
    metrics = train.parser.get_parsed_content("validate#evaluator").state.metrics
    for key in ("val_psnr", "val_ssim", "val_mean_dice", *[f"val_dice_C{i}" for i in range(1, 8)]):
        assert key in metrics, key
    assert "train_epoch_loss_rsc_div" in trainer.state.metrics

    run_workflow([TRAIN, EVALUATE, override])
    out_dir = tmp_path / "bundle" / "eval"
    with open(out_dir / "metrics.csv") as f:
        rows = list(csv.reader(f))
    table = json.loads((out_dir / "metrics.json").read_text())
    assert rows[0] == ["case", "fold", "method", *table["columns"]]
    assert [r[2] for r in rows[1:]] == ["prior", "model"] * 2  # 2 validation cases, the prior first
    assert table["rows"] == ["prior", "model", "gain"]
    assert table["columns"][:5] == [
        "PSNR (Eq. 18, dB)", "PSNR (MONAI, range 1, dB)", "SSIM (Eq. 17, global)", "SSIM (3D windowed, MONAI)",
        "MAE (HU)",
    ]
    assert {"Mean Dice (%)", "HD95 (mm)", "ASSD (mm)", "HD95 C7 (mm)"} <= set(table["columns"])
    model = table["summary"]["model"]
    assert model["PSNR (MONAI, range 1, dB)"]["mean"] == pytest.approx(metrics["val_psnr"], rel=1e-4)
    assert (out_dir / "metrics.md").read_text().splitlines()[2].startswith("| X-ray-blind prior |")
    _check_prior_row(table, json.loads(Path(override).read_text())["dataset_dir"])
    _check_learning_curve(tmp_path / "bundle" / "runs", metrics, tmp_path / "curve.png")


# --- the X-ray-blind prior in the bundle (issue 12) ---


def _load(path: Path) -> np.ndarray:
    return np.asarray(nib.load(str(path)).dataobj, dtype=np.float64)


def _check_prior_row(table: dict, dataset_dir: str) -> None:
    """The table's prior row, recomputed with nibabel and numpy from the training fold's files only."""
    root = Path(dataset_dir)
    items = json.loads((root / "datalist.json").read_text())["training"]
    train = [it for it in items if it["fold"] != 0]  # train.json evaluates fold 0
    val = [it for it in items if it["fold"] == 0]
    # the phantoms are written on the evaluation grid (16^3, 8 mm, RAS): the transforms leave them as they are
    cts = [np.clip((_load(root / it["image"]) + 1000.0) / 3000.0, 0.0, 1.0) for it in train]
    labels = [_load(root / it["label"]).astype(int) for it in train]
    votes = sum(np.eye(8)[lab] for lab in labels)
    # the volume vote: the mean spine volume's worth of voxels most often inside a vertebra (stable order),
    # each labelled by its most frequent vertebra (argmax: a tie goes to the lower label)
    inside = (len(train) - votes[..., 0]).ravel()
    size = min(round(np.mean([(lab > 0).sum() for lab in labels])), int((inside > 0).sum()))
    keep = np.argsort(-inside, kind="stable")[:size]
    vote = np.zeros(inside.size, dtype=int)
    vote[keep] = np.argmax(votes[..., 1:].reshape(-1, 7)[keep], axis=-1) + 1
    vote = vote.reshape(votes.shape[:-1])
    mean_ct = np.mean(cts, axis=0)
    cases = {c["case"]: c["prior"] for c in table["cases"]}
    assert sorted(cases) == sorted(it["case_id"] for it in val)
    for it in val:
        gt = np.clip((_load(root / it["image"]) + 1000.0) / 3000.0, 0.0, 1.0)
        label = _load(root / it["label"]).astype(int)
        psnr = 10 * np.log10(gt.max() ** 2 / np.mean((mean_ct - gt) ** 2))
        # the prior is float32 on disk and in the metrics: 1e-4 relative
        assert cases[it["case_id"]]["PSNR (Eq. 18, dB)"] == pytest.approx(psnr, rel=1e-4)
        assert cases[it["case_id"]]["MAE (HU)"] == pytest.approx(np.mean(np.abs(mean_ct - gt)) * 3000.0, rel=1e-4)
        for k, name in enumerate(("C1", "C2", "C3", "C4", "C5", "C6", "C7"), start=1):
            p, g = vote == k, label == k
            dice = 2 * np.sum(p & g) / (p.sum() + g.sum()) * 100 if g.any() else None
            value = cases[it["case_id"]][f"Dice {name} (%)"]
            assert value == (None if dice is None else pytest.approx(dice, rel=1e-4)), name


def _check_learning_curve(log_dir: Path, metrics: dict, png: Path) -> None:
    script = runpy.run_path(str(Path(__file__).resolve().parents[2] / "scripts" / "plot_learning_curve.py"))
    tags = {"dice": "val_mean_dice", "psnr": "val_psnr_eq18", "ssim": "val_ssim_eq17"}
    curves = script["read_curves"](str(log_dir), tags)
    for panel, tag in tags.items():
        assert curves[panel]["epochs"] == [1]
        assert curves[panel]["values"] == [pytest.approx(metrics[tag], rel=1e-5)]  # float32 in the event file
        assert curves[panel]["prior"] == pytest.approx(metrics["prior_" + tag], rel=1e-5)
    script["main"](log_dir=str(log_dir), out=str(png))
    image = np.asarray(Image.open(png).convert("RGB"))
    assert (np.abs(image - np.array(script["PRIOR_COLOUR"])).sum(-1) == 0).sum() > 100  # the prior's line is drawn
    with pytest.raises(ValueError, match="no scalar 'nothing'"):
        script["read_curves"](str(log_dir), {"x": "nothing"})


def _prior_of(config_files: list[str]) -> torch.nn.Module:
    parser = ConfigParser()
    parser.read_config(config_files)
    return parser.get_parsed_content("validate#prior#network")


def test_prior_comes_from_the_training_split(tmp_path, tiny_config, phantom_dir):
    data = tmp_path / "data"
    base = _prior_of([TRAIN, tiny_config(dataset_dir=phantom_dir)])  # makes the phantoms when needed
    shutil.copytree(phantom_dir, data, ignore=shutil.ignore_patterns("xray_blind_prior_*"))
    items = json.loads((data / "datalist.json").read_text())["training"]
    held_out = next(it for it in items if it["fold"] == 0)
    trained_on = next(it for it in items if it["fold"] != 0)
    affine = nib.load(str(data / held_out["image"])).affine
    save_nifti(np.full((16, 16, 16), 1500, np.int16), affine, data / held_out["image"])  # another held-out case
    save_nifti(np.full((16, 16, 16), 3, np.uint8), affine, data / held_out["label"])
    same = _prior_of([TRAIN, tiny_config(dataset_dir=str(data))])
    assert torch.equal(same.mean_ct, base.mean_ct) and torch.equal(same.labels, base.labels)
    assert len(list(data.glob("xray_blind_prior_*.npz"))) == 1  # cached next to the dataset

    save_nifti(np.full((16, 16, 16), 1500, np.int16), affine, data / trained_on["image"])  # a training case changes
    moved = _prior_of([TRAIN, tiny_config(dataset_dir=str(data))])
    assert not torch.equal(moved.mean_ct, base.mean_ct)
    assert len(list(data.glob("xray_blind_prior_*.npz"))) == 2  # its cache key changed with the file

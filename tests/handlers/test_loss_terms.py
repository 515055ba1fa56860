# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0

from __future__ import annotations

import glob

import pytest
import torch
from ignite.engine import Engine
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from monai.handlers import StatsHandler, TensorBoardStatsHandler
from xctrs_monai.handlers import LossTermsHandler, from_loss_terms

TERMS = ("loss", "loss_mae", "loss_mv", "loss_seg", "loss_rsc_seg", "loss_rsc_div", "loss_rsc")


def _output(step: int, decollated: bool) -> dict | list:
    item = {name: torch.tensor(float(step + k)) for k, name in enumerate(TERMS)}
    item["pred_ct"] = torch.zeros(1, 4, 4, 4)
    return [item, dict(item)] if decollated else item


@pytest.mark.parametrize("decollated", [True, False])
def test_from_loss_terms(decollated):
    values = from_loss_terms(prefix="train_")(_output(1, decollated))
    assert values == {f"train_{name}": pytest.approx(1.0 + k) for k, name in enumerate(TERMS)}
    assert from_loss_terms(keys=["loss_mae"])(_output(1, decollated)) == {"loss_mae": pytest.approx(2.0)}
    assert from_loss_terms()(None) == {}


def _tags(log_dir: str) -> set[str]:
    tags: set[str] = set()
    for path in glob.glob(f"{log_dir}/events.out.tfevents.*"):
        acc = EventAccumulator(path)
        acc.Reload()
        tags |= set(acc.Tags()["scalars"])
    return tags


def test_iteration_and_epoch_logging_to_tensorboard(tmp_path, capsys):
    engine = Engine(lambda e, b: _output(e.state.iteration, decollated=True))
    terms = LossTermsHandler(prefix="train_epoch_")
    terms.attach(engine)  # before the stats handlers, so the epoch means are in state.metrics for them
    StatsHandler(name="test_loss_terms", output_transform=from_loss_terms(prefix="train_")).attach(engine)
    tb = TensorBoardStatsHandler(log_dir=str(tmp_path), output_transform=from_loss_terms(prefix="train_"))
    tb.attach(engine)
    engine.run(range(3), max_epochs=2)
    tb.close()

    # epoch 2 saw iterations 4, 5, 6: mean 5 for "loss" (offset 0), 6 for "loss_mae" (offset 1)
    assert engine.state.metrics["train_epoch_loss"] == pytest.approx(5.0)
    assert engine.state.metrics["train_epoch_loss_mae"] == pytest.approx(6.0)
    assert terms.compute()["train_epoch_loss_rsc"] == pytest.approx(11.0)

    tags = _tags(str(tmp_path))
    for name in TERMS:
        assert f"train_{name}" in tags  # iteration level
        assert f"train_epoch_{name}" in tags  # epoch level
    console = "".join(capsys.readouterr())  # StatsHandler's own stream handler
    assert "train_loss_rsc_div" in console and "train_epoch_loss_rsc_seg" in console

# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0

from __future__ import annotations

import pytest
from ignite.engine import Engine

from xctrs_monai.handlers import LossWeightScheduler, linear_warmup
from xctrs_monai.losses import XCTRSLoss

TEST_CASES_LINEAR = [
    # step, start, end, warmup, delay, expected
    (0, 0.0, 1.0, 4, 0, 0.0),
    (1, 0.0, 1.0, 4, 0, 0.25),
    (2, 0.0, 1.0, 4, 0, 0.5),
    (4, 0.0, 1.0, 4, 0, 1.0),
    (10, 0.0, 1.0, 4, 0, 1.0),
    (1, 0.0, 1.0, 4, 2, 0.0),
    (3, 0.0, 1.0, 4, 2, 0.25),
    (2, 0.5, 1.0, 2, 0, 1.0),
    (1, 0.5, 1.0, 2, 0, 0.75),
    (0, 0.2, 1.0, 0, 0, 1.0),
    (0, 0.2, 1.0, 0, 1, 0.2),
]


@pytest.mark.parametrize("step,start,end,warmup,delay,expected", TEST_CASES_LINEAR)
def test_linear_warmup(step, start, end, warmup, delay, expected):
    assert linear_warmup(step, start, end, warmup, delay) == pytest.approx(expected)


def _run(handler: LossWeightScheduler, epochs: int, epoch_length: int) -> list[dict]:
    """Run a dummy engine; record the weights each iteration saw."""
    seen: list[dict] = []
    engine = Engine(lambda e, b: seen.append(dict(handler.loss.weights)))
    handler.attach(engine)
    engine.run(range(epoch_length), max_epochs=epochs)
    return seen


def test_epoch_level_values_and_restore():
    loss = XCTRSLoss(weights={"seg": 2.0, "rsc_div": 0.5}, use_mv_perceptual=False)
    handler = LossWeightScheduler(loss, names=["seg", "rsc_div"], warmup=2, epoch_level=True)
    seen = _run(handler, epochs=4, epoch_length=3)
    per_epoch = [seen[i * 3] for i in range(4)]
    assert [w["seg"] for w in per_epoch] == pytest.approx([0.0, 1.0, 2.0, 2.0])
    assert [w["rsc_div"] for w in per_epoch] == pytest.approx([0.0, 0.25, 0.5, 0.5])
    assert all(w["mae"] == 1.0 and w["rsc_seg"] == 1.0 for w in seen)  # unscheduled weights untouched
    assert seen[1] == seen[0] and seen[2] == seen[0]  # constant within an epoch
    assert loss.weights["seg"] == 2.0 and loss.weights["rsc_div"] == 0.5  # targets back after COMPLETED


def test_iteration_level_values():
    loss = XCTRSLoss(use_mv_perceptual=False)
    handler = LossWeightScheduler(loss, weights={"rsc_div": 1.0}, warmup=4, start=0.5, delay=1, epoch_level=False)
    seen = _run(handler, epochs=2, epoch_length=4)
    assert [w["rsc_div"] for w in seen] == pytest.approx([0.5, 0.5, 0.625, 0.75, 0.875, 1.0, 1.0, 1.0])


def test_resume_continues_schedule():
    loss = XCTRSLoss(use_mv_perceptual=False)
    handler = LossWeightScheduler(loss, names=["seg"], warmup=4)
    engine = Engine(lambda e, b: None)
    handler.attach(engine)
    engine.state.epoch = 2  # as after loading a checkpoint of epoch 2
    handler(engine)  # EPOCH_STARTED fires after the epoch counter moved on: epoch 3 -> 2 completed
    engine.state.epoch = 3
    handler(engine)
    assert loss.weights["seg"] == pytest.approx(0.5)
    assert engine.state.loss_weights == {"seg": pytest.approx(0.5)}


def test_attribute_weights():
    class AttrLoss:
        seg_weight = 4.0

    loss = AttrLoss()
    handler = LossWeightScheduler(loss, names=["seg_weight"], warmup=2)
    seen: list[float] = []
    engine = Engine(lambda e, b: seen.append(loss.seg_weight))
    handler.attach(engine)
    engine.run(range(1), max_epochs=3)
    assert seen == pytest.approx([0.0, 2.0, 4.0])


ILL_CASES = [
    {"names": ["nope"]},
    {},
    {"weights": {}},
    {"names": ["seg"], "warmup": -1},
    {"names": ["seg"], "delay": -1},
]


@pytest.mark.parametrize("kwargs", ILL_CASES)
def test_ill_arguments(kwargs):
    loss = XCTRSLoss(use_mv_perceptual=False)
    with pytest.raises(ValueError):
        LossWeightScheduler(loss, **kwargs)

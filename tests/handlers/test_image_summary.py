# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0

from __future__ import annotations

import glob

import pytest
import torch
from ignite.engine import Engine
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from xctrs_monai import constants
from xctrs_monai.handlers import LABEL_COLOURS, ReconstructionImageHandler, colour_labels, volume_planes

N = 8


def test_volume_planes_display_orientation():
    vol = torch.zeros(1, N, N, N)
    c = N // 2
    vol[0, 6, c, 6] = 1.0  # coronal slice y = c: patient's right (high X), superior (high Z)
    vol[0, c, 6, 5] = 2.0  # sagittal slice x = c: anterior (high Y)
    vol[0, 6, 6, c] = 3.0  # axial slice z = c: right and anterior
    planes = volume_planes(vol)
    assert {k: tuple(v.shape) for k, v in planes.items()} == {"axial": (N, N), "coronal": (N, N), "sagittal": (N, N)}
    # superior at the top; the patient's right on the viewer's left; anterior on the left (LA) / top (axial)
    assert planes["coronal"][N - 1 - 6, N - 1 - 6] == 1.0
    assert planes["sagittal"][N - 1 - 5, N - 1 - 6] == 2.0
    assert planes["axial"][N - 1 - 6, N - 1 - 6] == 3.0


def test_colour_labels():
    rgb = colour_labels(torch.tensor([[0, 1], [7, 9]]))
    assert rgb.shape == (3, 2, 2)
    assert torch.allclose(rgb[:, 0, 1] * 255, torch.tensor(LABEL_COLOURS[1], dtype=torch.float32))
    assert torch.allclose(rgb[:, 1, 1], rgb[:, 0, 1])  # 9 wraps to 1
    assert LABEL_COLOURS is constants.LABEL_COLOURS and len(LABEL_COLOURS) == constants.NUM_SEG_CLASSES
    # C7 (label 7) by hand: (70, 240, 240) / 255
    assert torch.allclose(rgb[:, 1, 0], torch.tensor([70.0, 240.0, 240.0]) / 255.0)


def _item() -> dict:
    label = torch.randint(0, 8, (1, N, N, N)).float()
    return {
        "xray": torch.rand(2, N, N),
        "ct": torch.rand(1, N, N, N),
        "pred_ct": torch.rand(1, N, N, N),
        "label": torch.nn.functional.one_hot(label[0].long(), 8).permute(3, 0, 1, 2).float(),
        "pred_seg": torch.randn(8, N, N, N),
    }


@pytest.mark.parametrize("decollated", [True, False])
def test_handler_writes_first_case_once_per_run(tmp_path, decollated):
    def step(engine, _):
        item = _item()
        return [item, _item()] if decollated else {k: torch.stack([v, v]) for k, v in item.items()}

    handler = ReconstructionImageHandler(log_dir=str(tmp_path), tag_prefix="val_", interval=2)
    calls: list[int] = []
    write = handler.write
    handler.write = lambda item, step: (calls.append(step), write(item, step))  # type: ignore[method-assign]
    engine = Engine(step)
    handler.attach(engine)
    engine.run(range(3), max_epochs=4)  # 3 iterations per epoch: writes at epochs 2 and 4, first iteration only
    handler.close()
    assert calls == [2, 4]
    tags: set[str] = set()
    for path in glob.glob(f"{tmp_path}/events.out.tfevents.*"):
        acc = EventAccumulator(path)
        acc.Reload()
        tags |= set(acc.Tags()["images"])
    expected = {"val_xray"} | {f"val_{k}_{p}" for k in ("ct", "label") for p in ("axial", "coronal", "sagittal")}
    assert tags == expected


def test_ill_interval():
    with pytest.raises(ValueError):
        ReconstructionImageHandler(interval=0)

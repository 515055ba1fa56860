# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pytest
import torch

from xctrs_monai.handlers import AtomicDiskSaver, latest_checkpoint


def _save(path: Path, value: float) -> None:
    torch.save({"network": {"w": torch.full((3,), value)}}, path)


def test_latest_checkpoint_names(tmp_path):
    assert latest_checkpoint(str(tmp_path / "missing")) is None
    assert latest_checkpoint(str(tmp_path)) is None
    for name in ("checkpoint_epoch=9.pt", "checkpoint_epoch=10.pt", "checkpoint_iteration=99.pt", "model.pt"):
        _save(tmp_path / name, 0.0)
    (tmp_path / "checkpoint_epoch=x.pt").write_bytes(b"")
    # 10 > 9 numerically although "10" < "9" as text
    assert latest_checkpoint(str(tmp_path)) == str(tmp_path / "checkpoint_epoch=10.pt")
    assert latest_checkpoint(str(tmp_path), score_name="iteration") == str(tmp_path / "checkpoint_iteration=99.pt")


def test_corrupt_latest_falls_back_with_warning(tmp_path):
    _save(tmp_path / "checkpoint_epoch=1.pt", 1.0)
    _save(tmp_path / "checkpoint_epoch=2.pt", 2.0)
    good = (tmp_path / "checkpoint_epoch=2.pt").read_bytes()
    (tmp_path / "checkpoint_epoch=3.pt").write_bytes(good[: len(good) // 2])  # truncated, as by a full disk
    (tmp_path / "checkpoint_epoch=4.pt").write_bytes(b"")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert latest_checkpoint(str(tmp_path)) == str(tmp_path / "checkpoint_epoch=2.pt")
    assert [str(w.message).split("'")[1] for w in record] == [
        str(tmp_path / "checkpoint_epoch=4.pt"),
        str(tmp_path / "checkpoint_epoch=3.pt"),
    ]
    # without the check the newest name is returned as is
    assert latest_checkpoint(str(tmp_path), check=False) == str(tmp_path / "checkpoint_epoch=4.pt")


def test_no_loadable_checkpoint_is_an_error(tmp_path):
    (tmp_path / "checkpoint_epoch=1.pt").write_bytes(b"not a zip")
    with pytest.warns(UserWarning), pytest.raises(ValueError, match=r"checkpoint_epoch=1.pt.*--resume false"):
        latest_checkpoint(str(tmp_path))


def _checkpoint(tmp_path: Path, saver_cls, n_saved: int, pattern: str | None):
    from ignite.engine import Engine
    from ignite.handlers import Checkpoint

    net = torch.nn.Linear(2, 1)
    engine = Engine(lambda e, b: None)
    saver = Checkpoint({"model": net}, saver_cls(tmp_path, require_empty=False), n_saved=n_saved,
                       filename_pattern=pattern, score_function=lambda e: e.state.epoch, score_name="epoch")
    return net, engine, saver


@pytest.mark.parametrize("n_saved,pattern", [(1, "model.pt"), (1, None), (2, None)])
def test_atomic_saver_keeps_files_and_removes_superseded(tmp_path, n_saved, pattern):
    net, engine, saver = _checkpoint(tmp_path, AtomicDiskSaver, n_saved, pattern)
    for epoch in (1, 2, 3):
        engine.state.epoch = epoch
        torch.nn.init.constant_(net.weight, float(epoch))
        saver(engine)
    expected = ["model.pt"] if pattern else [f"model_epoch={k}.pt" for k in range(4 - n_saved, 4)]
    assert sorted(os.listdir(tmp_path)) == expected
    last = torch.load(tmp_path / expected[-1], weights_only=True)
    assert torch.equal(last["weight"], torch.full((1, 2), 3.0))


def test_atomic_saver_removes_orphans_of_killed_writes(tmp_path):
    (tmp_path / "tmpab_cd123").write_bytes(b"partial")  # tempfile.NamedTemporaryFile's name pattern
    (tmp_path / "tmp_notes.txt").write_text("keep")
    (tmp_path / "model.pt").write_bytes(b"keep")
    with pytest.warns(UserWarning, match="tmpab_cd123"):
        AtomicDiskSaver(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["model.pt", "tmp_notes.txt"]


KILLED_WRITE = textwrap.dedent(
    """
    import sys, time, torch
    from ignite.engine import Engine
    from ignite.handlers import Checkpoint, DiskSaver
    from xctrs_monai.handlers import AtomicDiskSaver

    folder, marker, saver_name = sys.argv[1:4]

    class Hang:  # pickled inside torch.save: signals, then blocks until the test kills the process
        def __reduce__(self):
            open(marker, "w").close()
            time.sleep(600)
            return (int, (0,))

    class Model:
        def __init__(self):
            self.epoch = 0

        def state_dict(self):
            state = {"w": torch.full((2,), float(self.epoch))}
            return {**state, "hang": Hang()} if self.epoch == 2 else state

        def load_state_dict(self, state):
            pass

    saver_cls = {"AtomicDiskSaver": AtomicDiskSaver, "DiskSaver": DiskSaver}[saver_name]
    model, engine = Model(), Engine(lambda e, b: None)
    saver = Checkpoint({"model": model}, saver_cls(folder, require_empty=False), filename_pattern="model.pt",
                       score_function=lambda e: e.state.epoch, score_name="epoch")
    for epoch in (1, 2):
        engine.state.epoch = model.epoch = epoch
        saver(engine)
    """
)


@pytest.mark.parametrize("saver_name,survives", [("AtomicDiskSaver", True), ("DiskSaver", False)])
def test_kill_during_write_keeps_previous_checkpoint(tmp_path, saver_name, survives):
    """SIGKILL while ``model.pt`` of epoch 2 is being written: the epoch-1 file must still load.

    ignite's own DiskSaver (the control) deletes ``model.pt`` before writing its replacement, so the
    same kill leaves nothing; that is the failure this saver exists to prevent.
    """
    marker = tmp_path / "writing"
    folder = tmp_path / "ckpt"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITE, str(folder), str(marker), saver_name])
    deadline = time.monotonic() + 600  # generous: the import alone can take a minute on a loaded machine
    while not marker.exists():
        assert proc.poll() is None, "the writer exited before the write started"
        assert time.monotonic() < deadline, "the writer never reached the write"
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert (folder / "model.pt").exists() is survives
    if survives:
        assert torch.equal(torch.load(folder / "model.pt", weights_only=True)["w"], torch.full((2,), 1.0))
        orphans = [f for f in os.listdir(folder) if f != "model.pt"]
        assert len(orphans) == 1 and orphans[0].startswith("tmp")  # the killed write's temporary file
        with pytest.warns(UserWarning, match=orphans[0]):
            AtomicDiskSaver(folder)  # a restarted run cleans it up
        assert os.listdir(folder) == ["model.pt"]

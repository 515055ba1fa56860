# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0

from __future__ import annotations

from xctrs_monai.handlers import latest_checkpoint


def test_latest_checkpoint(tmp_path):
    assert latest_checkpoint(str(tmp_path / "missing")) is None
    assert latest_checkpoint(str(tmp_path)) is None
    for name in ("checkpoint_epoch=9.pt", "checkpoint_epoch=10.pt", "checkpoint_iteration=99.pt", "model.pt"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "checkpoint_epoch=x.pt").write_bytes(b"")
    assert latest_checkpoint(str(tmp_path)) == str(tmp_path / "checkpoint_epoch=10.pt")
    assert latest_checkpoint(str(tmp_path), score_name="iteration") == str(tmp_path / "checkpoint_iteration=99.pt")

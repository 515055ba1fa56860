# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""The MONAI Label app's pairing rule, legend and server arguments (no MONAI Label needed)."""

from __future__ import annotations

import pytest

from xctrs_monai.apps.label import (
    APP_DIR,
    DEFAULT_HOST,
    label_colours,
    label_names,
    lateral_id,
    resolve_lateral,
    start_server_args,
)
from xctrs_monai.constants import LABEL_COLOURS, VERTEBRAE


@pytest.mark.parametrize(
    "image_id, partner",
    [("case1_ap", "case1_la"), ("p_07_AP", "p_07_LA"), ("a_ap_ap", "a_ap_la"), ("x_Ap", "x_la")],
)
def test_lateral_id(image_id, partner):
    assert lateral_id(image_id) == partner


@pytest.mark.parametrize(
    "image_id, message",
    [
        ("case1_la", "is a lateral view"),
        ("case1", "does not follow"),
        ("_ap", "does not follow"),
        ("ap", "does not follow"),
    ],
)
def test_lateral_id_refuses(image_id, message):
    with pytest.raises(ValueError, match=message) as err:
        lateral_id(image_id)
    assert f"'{image_id}'" in str(err.value)  # the message names the image


def test_resolve_lateral(tmp_path):
    store = {"case1_ap": str(tmp_path / "case1_ap.dcm"), "case1_la": str(tmp_path / "case1_la.dcm")}
    on_disk = tmp_path / "other.png"
    on_disk.write_bytes(b"")
    lookup = lambda i: store.get(i, "")  # noqa: E731
    # the naming rule, from the AP file as MONAI Label resolves the request's image to it
    assert resolve_lateral(store["case1_ap"], None, lookup) == store["case1_la"]
    # la_image: a datastore id first, then a file on the server
    assert resolve_lateral(store["case1_ap"], "case1_la", lookup) == store["case1_la"]
    assert resolve_lateral(store["case1_ap"], str(on_disk), lookup) == str(on_disk)
    with pytest.raises(ValueError, match="no image 'lonely_la'") as err:
        resolve_lateral(str(tmp_path / "lonely_ap.nii.gz"), "", lookup)
    assert "lonely_ap.nii.gz" in str(err.value)  # names the AP file
    with pytest.raises(ValueError, match="la_image 'nope' is neither"):
        resolve_lateral(store["case1_ap"], "nope", lookup)
    with pytest.raises(ValueError, match="names no image"):
        resolve_lateral("", None, lookup)


def test_legend_from_constants():
    names = label_names()
    assert list(names) == list(VERTEBRAE) and list(names.values()) == list(range(1, len(VERTEBRAE) + 1))
    assert names["C1"] == 1 and names["C7"] == 7  # 0 is the background, not a vertebra
    colours = label_colours()
    assert colours["C1"] == list(LABEL_COLOURS[1]) and colours["C7"] == list(LABEL_COLOURS[7])


def test_start_server_args_default_to_loopback_and_the_app():
    args = start_server_args(["--studies", "/data", "--port", "8123"])
    assert args[0] == "start_server"
    assert args[args.index("--host") + 1] == DEFAULT_HOST == "127.0.0.1"
    assert args[args.index("--app") + 1] == str(APP_DIR) and (APP_DIR / "main.py").is_file()
    # what the user gives wins, in either spelling, and start_server is not repeated
    given = start_server_args(["start_server", "-i", "0.0.0.0", "--app=/my/app", "-s", "/data"])
    assert given == ["start_server", "-i", "0.0.0.0", "--app=/my/app", "-s", "/data"]

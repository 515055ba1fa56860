# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Bad inputs through the real command line (in process): each gets its exit status and one line on stderr
that names the file, the view or the option, and never a traceback."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image

from xctrs_monai.apps.infer import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "transforms"))
from xray_files import write_dicom  # noqa: E402


class _Payload:
    def __reduce__(self):
        import os

        return (os.system, ("echo payload-ran",))


@pytest.fixture(scope="module")
def bad(tiny_bundle, tmp_path_factory):
    """Bad files next to the good tiny bundle; ``{name: path}``."""
    root = tmp_path_factory.mktemp("bad_inputs")
    image = np.random.default_rng(0).random((18, 16))
    pixel = tiny_bundle["pixel"]
    f = {}

    def put(name: str, data: bytes) -> None:
        f[name] = root / name
        f[name].write_bytes(data)

    put("empty.dcm", b"")
    put("garbage.dcm", b"\x00\x01not a dicom" * 20)
    put("truncated.dcm", Path(tiny_bundle["la"]).read_bytes()[:-100])
    put("text.png", b"hello, not a png")
    put("text.pt", b"not a checkpoint")
    put("empty.pt", b"")
    put("truncated.pt", Path(tiny_bundle["checkpoint"]).read_bytes()[:500])
    f["nopixels.dcm"] = write_dicom(root / "nopixels.dcm", image, pixel)
    import pydicom

    ds = pydicom.dcmread(f["nopixels.dcm"])
    del ds.PixelData
    ds.save_as(f["nopixels.dcm"])
    f["ct.dcm"] = write_dicom(root / "ct.dcm", image, pixel, modality="CT")
    f["mr.dcm"] = write_dicom(root / "mr.dcm", image, pixel, modality="MR", view_position="LL")
    f["multi.dcm"] = write_dicom(root / "multi.dcm", image, pixel, frames=2)
    f["oblique.dcm"] = write_dicom(root / "oblique.dcm", image, pixel, view_position="RAO")
    f["zero_spacing.dcm"] = write_dicom(root / "zero_spacing.dcm", image, 0.0)
    f["negative_spacing.dcm"] = write_dicom(root / "negative_spacing.dcm", image, -0.5)
    f["tenfold_spacing.dcm"] = write_dicom(root / "tenfold_spacing.dcm", image, pixel * 10)
    f["strip.dcm"] = write_dicom(root / "strip.dcm", np.random.default_rng(1).random((5, 400)), pixel)
    f["volume.nii.gz"] = root / "volume.nii.gz"
    nib.save(nib.Nifti1Image(np.random.rand(8, 8, 8).astype(np.float32), np.eye(4)), str(f["volume.nii.gz"]))
    f["nan.nii.gz"] = root / "nan.nii.gz"
    values = image.astype(np.float32)
    values[3, 3] = np.nan
    nib.save(nib.Nifti1Image(values, np.eye(4)), str(f["nan.nii.gz"]))
    f["constant.png"] = root / "constant.png"
    Image.fromarray(np.full((20, 20), 9, dtype=np.uint8)).save(f["constant.png"])
    state = torch.load(tiny_bundle["checkpoint"], weights_only=True)
    f["nan.pt"] = root / "nan.pt"
    torch.save(
        {**state, "segmenter.head.bias": torch.full_like(state["segmenter.head.bias"], float("nan"))}, f["nan.pt"]
    )
    f["notweights.pt"] = root / "notweights.pt"
    torch.save({"epoch": 3, "note": "no weights"}, f["notweights.pt"])
    f["payload.pt"] = root / "payload.pt"
    torch.save({"model": state, "x": _Payload()}, f["payload.pt"])
    f["a_file"] = root / "a_file"
    f["a_file"].write_text("I am a file")
    f["bad.json"] = root / "bad.json"
    f["bad.json"].write_text('{"img_size": 16,,}')
    f["nocols.csv"] = root / "nocols.csv"
    f["nocols.csv"].write_text("front,side\na.png,b.png\n")
    f["root"] = root
    return f


def _bad(name: str):
    """The bad file ``name`` of the ``bad`` fixture."""
    return lambda t, b: b[name]


def _good(view: str):
    """The good radiograph of ``view`` in the tiny bundle."""
    return lambda t, b: t[view]


def _says(template: str):
    """Expected text, formatted with the tiny bundle ``t`` and the bad files ``b`` (e.g. ``'{b[ct.dcm]}'``)."""
    return lambda t, b: template.format(t=t, b=b)


# (id, argv changes: {option: value or a callable(tiny_bundle, bad) -> value; None removes}, exit status,
#  substrings of stderr, each a callable(tiny_bundle, bad) -> str or a str)
CASES = [
    # options
    ("unknown_option", {"outdir": "x"}, 2, ["unknown option(s) --outdir", "--out_dir"]),
    ("misspelled_config_key", {"la_flip_rl": True}, 2, ["unknown option(s) --la_flip_rl", "--la_flip_lr"]),
    ("bad_precision", {"precision": "fp8"}, 2, ["--precision 'fp8'", "auto, fp32, bf16, fp16"]),
    ("bad_channels_last", {"channels_last": "maybe"}, 2, ["--channels_last 'maybe'"]),
    ("no_cuda", {"device": "cuda"}, 2, ["--device cuda: CUDA is not available"]),
    ("missing_la", {"la": None}, 2, ["missing view: give --la"]),
    ("missing_both", {"la": None, "ap": None}, 2, ["no input: give --ap AP --la LA, or --pairs"]),
    ("pairs_and_pair", {"pairs": _bad("nocols.csv")}, 2, ["either --ap/--la or --pairs"]),
    ("flag_without_path", {"ap": True}, 2, ["--ap needs a file path"]),
    ("network_option_vs_checkpoint", {"img_size": 32}, 2, ["--img_size cannot be set", _good("checkpoint")]),
    ("zero_pixel_spacing_option", {"ap_pixel_spacing": 0}, 2, ["--ap_pixel_spacing 0", "AP view must be > 0 mm"]),
    ("negative_pixel_spacing_option", {"la_pixel_spacing": -1}, 2, ["--la_pixel_spacing -1", "LA view must be > 0 mm"]),
    ("reserved_case_id", {"case_id": "summary.json"}, 2, ["--case_id", "reserved for the run summary"]),
    ("path_case_id", {"case_id": "../up"}, 2, ["--case_id", "plain folder name"]),
    # checkpoint
    (
        "checkpoint_missing",
        {"checkpoint": _says("{b[root]}/none.pt")},
        1,
        [_says("Checkpoint '{b[root]}/none.pt' does not exist"), "random weights"],
    ),
    ("checkpoint_folder", {"checkpoint": _bad("root")}, 1, [_says("Checkpoint '{b[root]}' is a folder")]),
    (
        "checkpoint_text",
        {"checkpoint": _bad("text.pt")},
        1,
        [_says("Checkpoint '{b[text.pt]}' is not a complete PyTorch file")],
    ),
    (
        "checkpoint_empty",
        {"checkpoint": _bad("empty.pt")},
        1,
        [_says("Checkpoint '{b[empty.pt]}' is not a complete PyTorch file")],
    ),
    (
        "checkpoint_truncated",
        {"checkpoint": _bad("truncated.pt")},
        1,
        [_says("Checkpoint '{b[truncated.pt]}' is not a complete")],
    ),
    ("checkpoint_nan", {"checkpoint": _bad("nan.pt")}, 1, [_says("Checkpoint '{b[nan.pt]}' has"), "NaN or infinite"]),
    (
        "checkpoint_not_weights",
        {"checkpoint": _bad("notweights.pt")},
        1,
        [_says("Checkpoint '{b[notweights.pt]}' holds no state dict")],
    ),
    (
        "checkpoint_pickle_payload",
        {"checkpoint": _bad("payload.pt")},
        1,
        [_says("Checkpoint '{b[payload.pt]}' cannot be read"), "weights_only"],
    ),
    (
        "torchscript_flag_on_state_dict",
        {"torchscript": True},
        1,
        [_says("Checkpoint '{t[checkpoint]}' is not a TorchScript archive")],
    ),
    # output folder, config, pairs
    (
        "out_dir_is_a_file",
        {"out_dir": _bad("a_file")},
        1,
        [_says("Output folder '{b[a_file]}' exists and is not a folder")],
    ),
    (
        "out_dir_under_a_file",
        {"out_dir": _says("{b[a_file]}/sub")},
        1,
        [_says("Output folder '{b[a_file]}/sub' cannot be written")],
    ),
    (
        "config_missing",
        {"config_file": _says("{b[root]}/none.json")},
        1,
        [_says("Config file '{b[root]}/none.json' does not exist")],
    ),
    (
        "config_invalid_json",
        {"config_file": lambda t, b: json.dumps([t["inference"], str(b["bad.json"])])},
        1,
        [_says("Config file '{b[bad.json]}' cannot be read")],
    ),
    (
        "pairs_missing",
        {"ap": None, "la": None, "pairs": _says("{b[root]}/none.csv")},
        1,
        [_says("Pairs CSV '{b[root]}/none.csv' does not exist")],
    ),
    (
        "pairs_without_columns",
        {"ap": None, "la": None, "pairs": _bad("nocols.csv")},
        1,
        [_says("Pairs CSV '{b[nocols.csv]}' needs the columns ap,la")],
    ),
    # radiographs (the case fails, nothing is written)
    (
        "ap_missing_file",
        {"ap": _says("{b[root]}/none.dcm")},
        1,
        [_says("AP radiograph: Cannot read '{b[root]}/none.dcm' as a radiograph: no such file")],
    ),
    ("la_empty_dicom", {"la": _bad("empty.dcm")}, 1, [_says("LA radiograph: Cannot read '{b[empty.dcm]}'")]),
    ("la_garbage", {"la": _bad("garbage.dcm")}, 1, [_says("LA radiograph: Cannot read '{b[garbage.dcm]}'")]),
    (
        "ap_truncated_dicom",
        {"ap": _bad("truncated.dcm")},
        1,
        [_says("AP radiograph: Cannot read '{b[truncated.dcm]}'")],
    ),
    (
        "ap_no_pixel_data",
        {"ap": _bad("nopixels.dcm")},
        1,
        [_says("AP radiograph: Cannot read '{b[nopixels.dcm]}'"), "no pixel data"],
    ),
    ("ap_text_png", {"ap": _bad("text.png")}, 1, [_says("AP radiograph: Cannot read '{b[text.png]}'")]),
    (
        "la_volume",
        {"la": _bad("volume.nii.gz")},
        1,
        [_says("LA radiograph: Cannot read '{b[volume.nii.gz]}'"), "not a 2D radiograph"],
    ),
    ("ap_nan", {"ap": _bad("nan.nii.gz")}, 1, [_says("AP radiograph: Cannot use '{b[nan.nii.gz]}'"), "NaN"]),
    (
        "la_constant",
        {"la": _bad("constant.png")},
        1,
        [_says("LA radiograph: Cannot use '{b[constant.png]}'"), "all-constant"],
    ),
    (
        "ap_multiframe",
        {"ap": _bad("multi.dcm")},
        1,
        [_says("AP radiograph: Cannot read '{b[multi.dcm]}'"), "multi-frame"],
    ),
    (
        "ap_ct_slice",
        {"ap": _bad("ct.dcm")},
        1,
        [_says("AP radiograph '{b[ct.dcm]}': Modality CT is not a projection radiograph")],
    ),
    ("la_mr_slice", {"la": _bad("mr.dcm")}, 1, [_says("LA radiograph '{b[mr.dcm]}': Modality MR")]),
    ("swapped_views", {"ap": _good("la"), "la": _good("ap")}, 1, [_says("the AP input '{t[la]}' has ViewPosition LL")]),
    ("same_image_twice", {"la": _good("ap")}, 1, ["same image", _good("ap")]),
    ("ap_oblique", {"ap": _bad("oblique.dcm")}, 1, [_says("AP radiograph '{b[oblique.dcm]}' is an oblique view")]),
    ("ap_strip", {"ap": _bad("strip.dcm")}, 1, [_says("AP radiograph '{b[strip.dcm]}' is 5 x 400 pixels")]),
    (
        "ap_zero_spacing",
        {"ap": _bad("zero_spacing.dcm")},
        1,
        [_says("AP radiograph '{b[zero_spacing.dcm]}': its ImagerPixelSpacing 0\\0 is not a positive")],
    ),
    (
        "la_negative_spacing",
        {"la": _bad("negative_spacing.dcm")},
        1,
        [_says("LA radiograph '{b[negative_spacing.dcm]}'"), "not a positive pixel spacing"],
    ),
    (
        "ap_tenfold_spacing",
        {"ap": _bad("tenfold_spacing.dcm")},
        1,
        [_says("AP radiograph '{b[tenfold_spacing.dcm]}'"), "the pixel spacing looks wrong"],
    ),
]


def _value(x, tiny_bundle, bad):
    return x(tiny_bundle, bad) if callable(x) else x


@pytest.mark.parametrize("name, changes, status, expected", CASES, ids=[c[0] for c in CASES])
def test_bad_input(tiny_bundle, bad, tmp_path, capfd, name, changes, status, expected):
    options = {"ap": tiny_bundle["ap"], "la": tiny_bundle["la"], "checkpoint": tiny_bundle["checkpoint"]}
    options |= {"out_dir": tmp_path / "out", "device": "cpu", "precision": "fp32", "progress": False}
    for key, value in changes.items():
        if value is None:
            options.pop(key, None)
        else:
            options[key] = _value(value, tiny_bundle, bad)
    argv = []
    for key, value in options.items():
        argv += [f"--{key}", str(value)]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out, err = capfd.readouterr()
    assert exit_info.value.code == status, err
    assert "Traceback" not in err and "payload-ran" not in out
    lines = [
        line
        for line in err.splitlines()
        if line.startswith("xctrs-infer: error:") or " failed and was not written: " in line
    ]
    assert len(lines) == 1, err  # one line says what went wrong
    for text in expected:
        assert str(_value(text, tiny_bundle, bad)) in lines[0], lines[0]
    written = [p.name for p in (tmp_path / "out").iterdir()] if (tmp_path / "out").is_dir() else []
    assert set(written) <= {"summary.json"}  # no case folder, no staging leftovers

# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""A tiny inference bundle for the app tests: phantom radiographs, a small config override, checkpoints."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from monai.bundle import ConfigParser
from monai.data import MetaTensor

from xctrs_monai.data import make_phantom
from xctrs_monai.transforms.drr import BiplanarDRR
from xctrs_monai.transforms.xray import canonical_to_display

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "transforms"))
from xray_files import write_dicom, write_png  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
INFERENCE = str(REPO / "bundle" / "configs" / "inference.json")
IMG_SIZE, SPACING = 16, 8.0
TINY = {
    "img_size": IMG_SIZE,
    "spacing": SPACING,
    "recon_channels": [4, 4, 4, 4],
    "seg_channels": [8, 8, 8, 8],
    "network_def#recon_volume_channels": [4, 4, 4, 4],
    "device": "$torch.device('cpu')",
}


def _build_network(config_files):
    parser = ConfigParser()
    parser.read_config(config_files)
    return parser.get_parsed_content("network_def")


@pytest.fixture(scope="session")
def build_network():
    """``build_network(config_files) -> nn.Module``: the ``network_def`` of layered configs."""
    return _build_network


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory):
    """A 16^3 / 8 mm case: ``ap``/``la`` DICOMs (DX, ViewPosition AP / LL, MONOCHROME2 / MONOCHROME1),
    16-bit PNGs ``ap_png``/``la_png`` (no spacing: ``pixel`` is the detector pixel spacing to give), the
    ``override`` json and layered ``configs``, a random-weight ``checkpoint`` (state dict with the network
    arguments), the same weights as an ``old_checkpoint`` (no arguments), and ``img_size``/``spacing``."""
    root = tmp_path_factory.mktemp("tiny_bundle")
    override = root / "tiny.json"
    override.write_text(json.dumps(TINY))
    ct, _, affine = make_phantom(5, size=IMG_SIZE, spacing=SPACING)
    ap, la = BiplanarDRR()(MetaTensor(torch.as_tensor(ct)[None], affine=torch.as_tensor(affine)))
    files = {"root": root, "override": str(override), "configs": [INFERENCE, str(override)], "inference": INFERENCE}
    files |= {"img_size": IMG_SIZE, "spacing": SPACING, "pixel": float(ap.meta["pixel_spacing"][0])}
    for view, drr, photometric, position, orientation in (
        ("ap", ap, "MONOCHROME2", "AP", ("L", "F")),
        ("la", la, "MONOCHROME1", "LL", ("P", "F")),
    ):
        display = canonical_to_display(drr.as_tensor(), view)[0].numpy()
        pixel = float(drr.meta["pixel_spacing"][0])
        path = write_dicom(
            root / f"{view}.dcm", display, pixel, photometric, view_position=position, orientation=orientation
        )
        files[view] = str(path)
        files[f"{view}_png"] = str(write_png(root / f"{view}.png", display, 16))
    torch.manual_seed(0)
    network = _build_network(files["configs"])
    files["checkpoint"] = str(root / "model.pt")
    torch.save(network.state_dict(), files["checkpoint"])
    files["old_checkpoint"] = str(root / "old_model.pt")
    torch.save({k: v for k, v in network.state_dict().items() if k != "_extra_state"}, files["old_checkpoint"])
    return files

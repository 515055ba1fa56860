# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Layout of the bundle configs (model-zoo conventions) and the zoo's network checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from monai.bundle import ConfigParser, ckpt_export, verify_net_in_out

pytestmark = pytest.mark.filterwarnings("ignore")

BUNDLE = Path(__file__).resolve().parents[2] / "bundle"
CONFIGS = BUNDLE / "configs"

TRAIN_ORDER = [
    "imports", "bundle_root", "ckpt_dir", "output_dir", "dataset_dir", "device", "img_size", "spacing",
    "recon_channels", "seg_channels", "network_def", "network", "loss", "optimizer", "train", "validate",
    "initialize", "run", "training",
]
QUICK_META = {
    "_meta_#network_data_format#inputs#image#spatial_shape": [32, 32],
    "_meta_#network_data_format#outputs#pred#spatial_shape": [32, 32, 32],
}


def _load(name: str) -> dict:
    return json.loads((CONFIGS / name).read_text())


def test_train_key_order_and_run_lists():
    train = _load("train.json")
    keys = list(train)
    assert [k for k in keys if k in TRAIN_ORDER] == TRAIN_ORDER
    assert train["training"] == train["run"]
    assert train["network_def"]["_target_"] == "xctrs_monai.networks.XCTRSNet"
    assert {train["network_def"][k] for k in ("img_size", "recon_channels", "seg_channels")} == {
        "@img_size", "@recon_channels", "@seg_channels"
    }
    assert train["optimizer"]["_target_"] == "torch.optim.Adam" and train["optimizer"]["lr"] == 1e-3


@pytest.mark.parametrize("name", ["evaluate.json", "multi_gpu_train.json"])
def test_overrides_are_flat(name):
    override = _load(name)
    train = _load("train.json")
    for key in override:
        head = key.split("#")[0]
        assert head in train or key == "finalize", key
        if head not in train:
            continue
        # a nested section is only ever overridden item by item (a#b#c), never copied whole
        assert "#" in key or not isinstance(train[head], dict) or "_target_" in train[head], key


def test_quick_layers_on_train_and_inference():
    quick = _load("quick.json")
    assert all("#" not in k or k.startswith("network_def#") for k in quick)
    nets = []
    for base in ("train.json", "inference.json"):
        if not (CONFIGS / base).is_file():
            pytest.skip(f"{base} not present")
        parser = ConfigParser()
        parser.read_config([str(CONFIGS / base), str(CONFIGS / "quick.json")])
        nets.append(parser.get_parsed_content("network_def"))
    shapes = [{k: tuple(v.shape) for k, v in net.state_dict().items()} for net in nets]
    assert shapes[0] == shapes[1]  # a model.pt trained with quick.json loads in inference with quick.json
    assert nets[0].reconstructor.img_size == quick["img_size"]


def test_metadata():
    meta = _load("metadata.json")
    for key in ("schema", "version", "changelog", "monai_version", "pytorch_version", "numpy_version",
                "required_packages_version", "task", "description", "authors", "references"):
        assert key in meta, key
    assert meta["version"] in meta["changelog"]
    image = meta["network_data_format"]["inputs"]["image"]
    pred = meta["network_data_format"]["outputs"]["pred"]
    assert (image["num_channels"], image["spatial_shape"]) == (2, [128, 128])
    assert image["channel_def"] == {"0": "AP", "1": "LA"}
    assert (pred["num_channels"], pred["spatial_shape"]) == (9, [128, 128, 128])
    assert [pred["channel_def"][str(i)] for i in range(9)] == ["CT", "background", *[f"C{i}" for i in range(1, 8)]]
    assert (BUNDLE / "LICENSE").is_file() and (CONFIGS / "logging.conf").is_file()
    readme = (BUNDLE / "docs" / "README.md").read_text()
    for section in ("Model Overview", "Data", "Training configuration", "Input/Output", "Performance",
                    "MONAI Bundle Commands", "References", "License"):
        assert f"## {section}" in readme, section


def test_verify_net_in_out_and_export(tmp_path):
    configs = [str(CONFIGS / "train.json"), str(CONFIGS / "quick.json")]
    verify_net_in_out(net_id="network_def", meta_file=str(CONFIGS / "metadata.json"), config_file=configs,
                      device="cpu", **QUICK_META)
    parser = ConfigParser()
    parser.read_config(configs)
    torch.save(parser.get_parsed_content("network_def").state_dict(), tmp_path / "model.pt")
    ckpt_export(net_id="network_def", filepath=str(tmp_path / "model.ts"), ckpt_file=str(tmp_path / "model.pt"),
                meta_file=str(CONFIGS / "metadata.json"), config_file=configs, **QUICK_META)
    scripted = torch.jit.load(str(tmp_path / "model.ts"))
    assert scripted(torch.rand(1, 2, 32, 32)).shape == (1, 9, 32, 32, 32)

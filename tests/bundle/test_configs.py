# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Layout of the bundle configs (model-zoo conventions)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from monai.bundle import ConfigParser

pytestmark = pytest.mark.filterwarnings("ignore")

BUNDLE = Path(__file__).resolve().parents[2] / "bundle"
CONFIGS = BUNDLE / "configs"

TRAIN_ORDER = [
    "imports", "bundle_root", "ckpt_dir", "output_dir", "dataset_dir", "device", "img_size", "spacing",
    "recon_channels", "seg_channels", "network_def", "network", "loss", "optimizer", "train", "validate",
    "initialize", "run", "training",
]


def _load(name: str) -> dict:
    return json.loads((CONFIGS / name).read_text())


def test_train_key_order_and_run_lists():
    train = _load("train.json")
    keys = list(train)
    assert [k for k in keys if k in TRAIN_ORDER] == TRAIN_ORDER
    assert train["training"] == "@run"  # a reference, not a copy
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
                    "MONAI Bundle Commands", "System Configuration", "Limitations", "References", "License"):
        assert f"\n## {section}\n" in readme, section
    for section in ("Authors", "Tags", "TensorRT"):  # the zoo template's bold h3/h4 headings
        assert f"# **{section}**" in readme, section


def test_train_uses_imagenet_vgg_from_the_bundle(tmp_path, small_vgg_file):
    """train.json takes the VGG16 weights that large_files.yml names, under bundle_root; quick.json a random VGG."""
    root = tmp_path / "bundle"
    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "train.json"))
    parser["bundle_root"] = str(root)
    with pytest.raises(Exception) as missing:
        parser.get_parsed_content("loss")
    chain = []
    error = missing.value
    while error is not None:
        chain.append(str(error))
        error = error.__cause__
    assert any(f"python -m xctrs_monai.large_files --bundle_root {root}" in m for m in chain), chain
    weights = small_vgg_file(root / "models" / "vgg16-397923af.pth")
    parser.ref_resolver.reset()
    loss = parser.get_parsed_content("loss")
    conv = loss.perceptual.vgg.features[0].weight
    assert torch.equal(conv, torch.load(weights, weights_only=True)["features.0.weight"])

    quick = ConfigParser()
    quick.read_config([str(CONFIGS / "train.json"), str(CONFIGS / "quick.json")])
    quick["bundle_root"] = str(root)
    assert quick.get_parsed_content("vgg_weights") is None


def test_readme_commands_name_existing_files():
    """Every config or file a bundle command of the docs names exists, from inside bundle/ or from the root."""
    readme = (BUNDLE / "docs" / "README.md").read_text()
    commands = [c for c in re.findall(r"(?m)^(?:python|torchrun) .*(?:\n    .*)*", readme) if "monai.bundle" in c]
    assert len(commands) >= 8
    for command in commands:
        root = BUNDLE.parent if "--bundle_root bundle" in command else BUNDLE
        names = re.findall(r"(configs/[\w.]+\.json|configs/[\w.]+\.conf)", command)
        assert names, command
        for name in names:
            path = root / ("bundle/" + name if root == BUNDLE.parent else name)
            assert path.is_file(), (command, path)


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.json")), ids=lambda p: p.name)
def test_config_is_zoo_formatted(path):
    """As the zoo's pre-commit ``pretty-format-json --no-sort-keys --indent=4`` writes it; fix with
    ``python scripts/format_configs.py``."""
    text = path.read_text(encoding="utf-8")
    assert text == json.dumps(json.loads(text), indent=4) + "\n"

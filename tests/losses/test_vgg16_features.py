# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0

from __future__ import annotations

import warnings

import pytest
import torch

import xctrs_monai.losses.vgg16 as vgg16_module
from xctrs_monai.losses import VGG16_LAYERS, VGG16Features

pytestmark = pytest.mark.filterwarnings("ignore:VGG16Features has no weights_path")

CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
CONV_CHANNELS = (64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512)


def torchvision_vgg16_state_dict(features_prefix: str = "features.", classifier: bool = True) -> dict:
    """A random state dict with the key names and shapes of torchvision's ``vgg16()``.

    The classifier entries are ignored by the loader; they are stored as expanded views of a single
    element, so that they keep torchvision's shapes without writing ~0.5 GB to disk.
    """
    gen = torch.Generator().manual_seed(1)
    state: dict[str, torch.Tensor] = {}
    in_ch = 3
    for index, out_ch in zip(CONV_INDICES, CONV_CHANNELS):
        state[f"{features_prefix}{index}.weight"] = torch.randn(out_ch, in_ch, 3, 3, generator=gen) * 0.05
        state[f"{features_prefix}{index}.bias"] = torch.randn(out_ch, generator=gen) * 0.05
        in_ch = out_ch
    if classifier:
        for index, (out_f, in_f) in {0: (4096, 25088), 3: (4096, 4096), 6: (1000, 4096)}.items():
            state[f"classifier.{index}.weight"] = torch.zeros(1).expand(out_f, in_f)
            state[f"classifier.{index}.bias"] = torch.zeros(out_f)
    return state


@pytest.fixture
def fresh_warning(monkeypatch):
    monkeypatch.setattr(vgg16_module, "_warned_random_weights", False)


def test_layer_names_match_torchvision_indices():
    convs_per_block = (2, 2, 3, 3, 3)
    names = [f"conv{b}_{c}" for b, n in enumerate(convs_per_block, start=1) for c in range(1, n + 1)]
    assert [VGG16_LAYERS[name] for name in names] == list(CONV_INDICES)
    assert (VGG16_LAYERS["relu1_2"], VGG16_LAYERS["relu2_2"], VGG16_LAYERS["relu3_3"], VGG16_LAYERS["pool5"]) == (
        3,
        8,
        15,
        30,
    )


@pytest.mark.parametrize(
    "layers, channels, scale",
    [
        ("relu1_2", [64], [1]),
        (("relu1_2", "relu2_2", "relu3_3"), [64, 128, 256], [1, 2, 4]),
        ((8, "conv1_1"), [128, 64], [2, 1]),
        (4, [64], [2]),
    ],
)
def test_shapes_and_state_dict_keys(layers, channels, scale):
    vgg = VGG16Features(layers=layers)
    feats = vgg(torch.rand(2, 1, 16, 16))
    assert [f.shape for f in feats] == [torch.Size((2, c, 16 // s, 16 // s)) for c, s in zip(channels, scale)]
    keys = list(vgg.state_dict())
    assert all(k.startswith("features.") for k in keys)
    expected = {f"features.{i}.{p}" for i in CONV_INDICES if i <= max(vgg.layer_indices) for p in ("weight", "bias")}
    assert set(keys) == expected


def test_frozen_eval_and_input_gradient():
    vgg = VGG16Features(layers="relu2_2")
    vgg.train()
    assert not vgg.training
    assert all(not p.requires_grad for p in vgg.parameters())
    x = torch.rand(1, 1, 16, 16, requires_grad=True)
    vgg(x)[0].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in vgg.parameters())


def test_grey_input_equals_repeated_rgb_and_seeded_init():
    vgg_a, vgg_b = VGG16Features(layers="relu1_2"), VGG16Features(layers="relu1_2")
    for pa, pb in zip(vgg_a.parameters(), vgg_b.parameters()):
        assert torch.equal(pa, pb)
    x = torch.rand(2, 1, 16, 16)
    torch.testing.assert_close(vgg_a(x)[0], vgg_a(x.repeat(1, 3, 1, 1))[0])
    assert not torch.equal(VGG16Features(layers="relu1_2", seed=1).features[0].weight, vgg_a.features[0].weight)


def test_random_weights_warning_fires_once(fresh_warning):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        VGG16Features(layers="relu1_2")
        VGG16Features(layers="relu2_2")
    messages = [str(w.message) for w in caught if "VGG16Features has no weights_path" in str(w.message)]
    assert len(messages) == 1
    assert "NOT the paper's" in messages[0]


def test_imagenet_normalisation_against_hand_computed_values(channel_picking_vgg):
    vgg = VGG16Features(layers="conv1_1", weights_path=channel_picking_vgg)
    rgb = torch.tensor([0.2, 0.5, 0.9]).view(1, 3, 1, 1).expand(1, 3, 6, 6)
    # (x - mean) / std with ImageNet's mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225), by hand
    expected = torch.tensor([-1.244541484716157, 0.19642857142857134, 2.1955555555555555])
    torch.testing.assert_close(vgg(rgb)[0][0, :3, 3, 3], expected)  # float32 of values ~1: default tolerance
    grey = torch.full((1, 1, 6, 6), 0.5)  # a grey image is repeated to the three channels, then normalised
    expected = torch.tensor([0.06550218340611362, 0.19642857142857134, 0.41777777777777775])
    torch.testing.assert_close(vgg(grey)[0][0, :3, 3, 3], expected)


def test_full_torchvision_state_dict_round_trip(tmp_path, fresh_warning):
    state = torchvision_vgg16_state_dict()
    path = tmp_path / "vgg16_torchvision.pth"
    torch.save(state, path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        vgg = VGG16Features(layers=("relu1_2", "relu5_3"), weights_path=path)
    assert not [w for w in caught if "no weights_path" in str(w.message)]
    for index in CONV_INDICES:
        assert torch.equal(vgg.features[index].weight, state[f"features.{index}.weight"])
        assert torch.equal(vgg.features[index].bias, state[f"features.{index}.bias"])
    assert all(not p.requires_grad for p in vgg.parameters())
    feats = vgg(torch.rand(1, 1, 32, 32))
    assert feats[1].shape == (1, 512, 2, 2)


def test_features_only_state_dict_round_trip(tmp_path):
    state = torchvision_vgg16_state_dict(features_prefix="", classifier=False)
    path = tmp_path / "vgg16_features.pth"
    torch.save(state, path)
    vgg = VGG16Features(layers="relu1_2", weights_path=path)
    assert torch.equal(vgg.features[2].weight, state["2.weight"])


def test_wrong_shape_names_the_file(tmp_path):
    state = torchvision_vgg16_state_dict(classifier=False)
    state["features.2.weight"] = torch.zeros(64, 32, 3, 3)
    path = tmp_path / "broken_vgg.pth"
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"broken_vgg\.pth.*features\.2\.weight.*\(64, 32, 3, 3\)"):
        VGG16Features(layers="relu1_2", weights_path=path)


def test_missing_keys_and_non_state_dict(tmp_path):
    path = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, path)
    with pytest.raises(ValueError, match=r"resnet\.pth.*features\.0\.weight"):
        VGG16Features(layers="relu1_2", weights_path=path)
    path = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), path)
    with pytest.raises(ValueError, match=r"tensor\.pth.*state dict"):
        VGG16Features(layers="relu1_2", weights_path=path)
    with pytest.raises(FileNotFoundError, match="no_such"):
        VGG16Features(layers="relu1_2", weights_path=tmp_path / "no_such.pth")


ILL_CASES = [
    {"layers": "relu9_9"},
    {"layers": 31},
    {"layers": -1},
    {"layers": ()},
    {"layers": ("relu1_2", 3)},
    {"layers": (1.5,)},
]


@pytest.mark.parametrize("kwargs", ILL_CASES)
def test_ill_arguments(kwargs):
    with pytest.raises(ValueError):
        VGG16Features(**kwargs)


@pytest.mark.parametrize("shape", [(1, 2, 16, 16), (1, 16, 16), (1, 1, 4, 16, 16)])
def test_ill_input(shape):
    with pytest.raises(ValueError, match="B1HW or B3HW"):
        VGG16Features(layers="relu1_2")(torch.rand(shape))

# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""A frozen VGG16 feature extractor built from plain torch layers, loadable from torchvision-format weights."""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Mapping, Sequence

import torch
import torch.nn as nn

__all__ = ["VGG16_LAYERS", "VGG16Features"]

# Layer configuration "D" of Simonyan & Zisserman (2014); "M" is a 2x2 max pooling.
_CFG_D: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


def _layer_names() -> dict[str, int]:
    """Map names such as ``"conv1_2"``, ``"relu1_2"``, ``"pool1"`` to their index in ``vgg16().features``."""
    names: dict[str, int] = {}
    index, block, conv = 0, 1, 1
    for v in _CFG_D:
        if v == "M":
            names[f"pool{block}"] = index
            index, block, conv = index + 1, block + 1, 1
        else:
            names[f"conv{block}_{conv}"] = index
            names[f"relu{block}_{conv}"] = index + 1
            index, conv = index + 2, conv + 1
    return names


VGG16_LAYERS: dict[str, int] = _layer_names()
"""Layer name -> index into torchvision's ``vgg16().features`` (e.g. relu1_2 -> 3, relu2_2 -> 8, relu3_3 -> 15)."""

_NUM_FEATURE_LAYERS = max(VGG16_LAYERS.values()) + 1  # 31
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_FEATURE_KEY = re.compile(r"^(?:features\.)?(\d+)\.(weight|bias)$")

# One warning per process about random weights (see ``VGG16Features``).
_warned_random_weights = False


class VGG16Features(nn.Module):
    """Frozen VGG16 convolutional trunk (Simonyan & Zisserman, 2014) returning intermediate feature maps.

    Used by the multi-view VGG loss of X-CTRSNet (Ge et al., 2021, Sec. 2.1.3, Eq. 10). The layers are
    plain ``torch.nn`` modules held in ``self.features`` with the indices of torchvision's
    ``vgg16().features``, so the parameter keys are ``features.0.weight``, ``features.0.bias``,
    ``features.2.weight``, ... (convolutions at indices 0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28).
    Only the layers up to the deepest requested one are built; their keys are the matching prefix of
    torchvision's. No torchvision import is needed.

    Input images are expected on the [0, 1] scale, ``B1HW`` (repeated to three channels) or ``B3HW``;
    ImageNet mean/std normalisation is applied inside. The module is frozen: parameters have
    ``requires_grad=False`` and it stays in eval mode even when a parent module calls ``train()``.
    Gradients still flow to the input.

    Without ``weights_path`` the weights are random (He-normal init as torchvision, drawn from a
    private generator seeded with ``seed``, so every instance is identical and the global RNG is
    untouched), and a ``UserWarning`` is emitted once per process: a perceptual loss built on them is
    *not* the paper's ImageNet-VGG loss.

    Args:
        layers: the feature maps to return, in this order: layer names from ``VGG16_LAYERS``
            (``"relu2_2"``, ``"conv3_3"``, ``"pool4"``, ...), indices into ``vgg16().features``
            (0..30, output taken after that module), or one such value.
            Defaults to ``("relu1_2", "relu2_2", "relu3_3")``.
        weights_path: a ``torch.save``-d state dict in torchvision format: either a full ``vgg16``
            state dict (keys ``features.N.*``; ``classifier.*`` and other keys are ignored) or a
            features-only one (keys ``N.*`` as from ``vgg16().features.state_dict()``, or ``features.N.*``).
            Defaults to None (random weights, see above).
        seed: seed of the random initialisation used when ``weights_path`` is None. Defaults to 0.

    Raises:
        ValueError: for an unknown or repeated layer, or a weights file lacking a needed key, holding a
            tensor of the wrong shape, or not holding a state dict (the message names the file).
        FileNotFoundError: when ``weights_path`` does not exist.

    Example::

        vgg = VGG16Features(layers="relu2_2", weights_path="vgg16-397923af.pth")
        (feat,) = vgg(torch.rand(4, 1, 64, 64))  # feat: 4 x 128 x 32 x 32
    """

    def __init__(
        self,
        layers: str | int | Sequence[str | int] = ("relu1_2", "relu2_2", "relu3_3"),
        weights_path: str | os.PathLike | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.layer_indices: tuple[int, ...] = self._parse_layers(layers)
        last = max(self.layer_indices)

        modules: list[nn.Module] = []
        in_channels = 3
        for v in _CFG_D:
            if len(modules) > last:
                break
            if v == "M":
                modules.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                modules.append(nn.Conv2d(in_channels, int(v), kernel_size=3, padding=1))
                # not in-place, so that a requested conv output is not overwritten by the next ReLU
                modules.append(nn.ReLU(inplace=False))
                in_channels = int(v)
        self.features = nn.Sequential(*modules[: last + 1])

        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

        self.weights_path = None if weights_path is None else os.fspath(weights_path)
        if self.weights_path is None:
            self._init_random(seed)
            _warn_random_weights_once()
        else:
            self.load_weights(self.weights_path)

        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    @staticmethod
    def _parse_layers(layers: str | int | Sequence[str | int]) -> tuple[int, ...]:
        items = [layers] if isinstance(layers, (str, int)) else list(layers)
        if not items:
            raise ValueError("layers must name at least one VGG16 layer, got an empty sequence.")
        indices: list[int] = []
        for item in items:
            if isinstance(item, bool) or not isinstance(item, (str, int)):
                raise ValueError(f"layers must be names from VGG16_LAYERS or indices 0..30, got {item!r}.")
            if isinstance(item, str):
                if item not in VGG16_LAYERS:
                    raise ValueError(f"unknown VGG16 layer {item!r}; allowed names: {sorted(VGG16_LAYERS)}.")
                index = VGG16_LAYERS[item]
            else:
                if not 0 <= item < _NUM_FEATURE_LAYERS:
                    raise ValueError(f"VGG16 layer index must be in 0..{_NUM_FEATURE_LAYERS - 1}, got {item}.")
                index = item
            if index in indices:
                raise ValueError(f"VGG16 layer {item!r} (index {index}) is requested twice in layers={layers!r}.")
            indices.append(index)
        return tuple(indices)

    def _init_random(self, seed: int) -> None:
        generator = torch.Generator().manual_seed(int(seed))
        for m in self.features:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu", generator=generator)
                nn.init.zeros_(m.bias)

    def load_weights(self, path: str | os.PathLike) -> None:
        """Load torchvision-format VGG16 weights (see the class docstring for the accepted key layouts).

        Args:
            path: file written by ``torch.save`` holding the state dict.

        Raises:
            ValueError: when the file holds no state dict, lacks a needed ``features`` key, or a tensor
                has the wrong shape; the message names the file.
        """
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"VGG16 weights file not found: {path!r}.")
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, Mapping):
            raise ValueError(f"VGG16 weights file {path!r} must hold a state dict, got {type(state).__name__}.")
        found: dict[str, torch.Tensor] = {}
        for key, value in state.items():
            match = _FEATURE_KEY.match(str(key))
            if match is not None and isinstance(value, torch.Tensor):
                found[f"{match.group(1)}.{match.group(2)}"] = value
        expected = self.features.state_dict()
        missing = [f"features.{k}" for k in expected if k not in found]
        if missing:
            raise ValueError(
                f"VGG16 weights file {path!r} lacks {missing}; expected a torchvision vgg16 state dict "
                "(keys 'features.N.weight'/'features.N.bias') or a vgg16().features state dict (keys 'N.weight')."
            )
        for key, ref in expected.items():
            if found[key].shape != ref.shape:
                raise ValueError(
                    f"VGG16 weights file {path!r}: 'features.{key}' has shape {tuple(found[key].shape)}, "
                    f"expected {tuple(ref.shape)} (torchvision vgg16 layout)."
                )
        self.features.load_state_dict({k: found[k].to(ref.dtype) for k, ref in expected.items()}, strict=True)

    def train(self, mode: bool = True) -> VGG16Features:
        """Keep the extractor in eval mode whatever ``mode`` is (it is a frozen feature extractor)."""
        return super().train(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Compute the requested feature maps.

        Args:
            x: images on the [0, 1] scale, ``B1HW`` or ``B3HW``.

        Returns:
            one ``BC'H'W'`` tensor per requested layer, in the order of ``layers``.

        Raises:
            ValueError: when ``x`` is not ``B1HW`` or ``B3HW``.
        """
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"VGG16Features expects B1HW or B3HW images, got shape {tuple(x.shape)}.")
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        wanted = set(self.layer_indices)
        outputs: dict[int, torch.Tensor] = {}
        for index, module in enumerate(self.features):
            x = module(x)
            if index in wanted:
                outputs[index] = x
        return [outputs[i] for i in self.layer_indices]


def _warn_random_weights_once() -> None:
    global _warned_random_weights
    if _warned_random_weights:
        return
    _warned_random_weights = True
    warnings.warn(
        "VGG16Features has no weights_path and uses randomly initialised weights: the multi-view perceptual "
        "loss is then NOT the paper's ImageNet-VGG loss (Ge et al., 2021, Eq. 10). Pass weights_path to a "
        "torchvision-format vgg16 state dict (e.g. vgg16-397923af.pth) for the paper's setting.",
        UserWarning,
        stacklevel=3,
    )

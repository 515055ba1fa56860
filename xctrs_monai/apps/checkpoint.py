# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Reading a checkpoint once for inference, and building the network it fits.

Accepted: a state dict (``model.pt`` from the bundle's ``CheckpointSaver``), the trainer's own
checkpoints (``checkpoint_epoch=N.pt``, weights under ``network``), ``{"model": ...}`` or
``{"state_dict": ...}`` wrappers, and ``module.`` (``DistributedDataParallel``) or ``_orig_mod.``
(``torch.compile``) key prefixes. Everything is read with ``torch.load(weights_only=True)``: a checkpoint
cannot run code. A TorchScript archive is loaded only when asked for (``torchscript=True``). Non-finite
weights are refused. An ``XCTRSNet`` state dict carries the network's constructor arguments
(``_extra_state``, see :meth:`xctrs_monai.networks.XCTRSNet.get_extra_state`), so the right network is
built without the training config; an older checkpoint without them uses the config's ``network_def``.
"""

from __future__ import annotations

import json
import pickle
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from monai.config import PathLike

from xctrs_monai.networks.memory import to_channels_last

__all__ = [
    "RUNTIME_ARGS",
    "Checkpoint",
    "read_checkpoint",
    "unwrap_state_dict",
    "state_dict_problems",
    "load_network",
    "NetworkCheckpointLoader",
]

_WRAPPER_KEYS = ("network", "model", "state_dict")
_PREFIXES = ("module.", "_orig_mod.")
_EXTRA_STATE = "_extra_state"
#: Network arguments that change how it runs, not its weights (activation checkpointing while training).
RUNTIME_ARGS = ("checkpointing",)


@dataclass
class Checkpoint:
    """A checkpoint as read from disk: its ``path``, the unwrapped ``state_dict`` (or a TorchScript ``module``),
    and the ``network_args`` it carries (``{}`` for an older checkpoint or TorchScript)."""

    path: str
    state_dict: dict[str, torch.Tensor] = field(default_factory=dict)
    network_args: dict = field(default_factory=dict)
    module: torch.jit.ScriptModule | None = None


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.endswith("constants.pkl") or n.endswith("/code/__torch__.py") for n in z.namelist())


def unwrap_state_dict(obj: object, name: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The network weights inside a loaded checkpoint object.

    Wrappers ``network`` (the trainer's checkpoints), ``model`` and ``state_dict`` are opened, and a
    ``module.``/``_orig_mod.`` prefix shared by every key is removed.

    Args:
        obj: what ``torch.load`` returned.
        name: how to call the checkpoint in messages (its path). Defaults to ``"checkpoint"``.

    Returns:
        the state dict, every value a tensor.

    Raises:
        ValueError: naming ``name``, when no state dict of tensors is found or a weight is NaN/infinite.
    """
    for _ in range(len(_WRAPPER_KEYS)):
        if not isinstance(obj, Mapping):
            break
        inner = next((obj[k] for k in _WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        found = sorted(map(str, obj))[:8] if isinstance(obj, Mapping) else type(obj).__name__
        raise ValueError(
            f"Checkpoint '{name}' holds no state dict of network weights (found {found}); give a model.pt "
            "written by training (or --torchscript for a TorchScript archive)."
        )
    state = dict(obj)
    for prefix in _PREFIXES:
        if all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    for key, value in state.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            bad = int((~torch.isfinite(value)).sum())
            raise ValueError(f"Checkpoint '{name}' has {bad} NaN or infinite values in '{key}'; it cannot be used.")
    return state


def read_checkpoint(path: PathLike, torchscript: bool = False, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Read a checkpoint file once (see the module docstring for what is accepted).

    Args:
        path: the checkpoint file.
        torchscript: load a TorchScript archive (``torch.jit.load``) instead of a state dict. Defaults to ``False``.
        map_location: where to load the tensors. Defaults to ``"cpu"``.

    Returns:
        a :class:`Checkpoint`.

    Raises:
        ValueError: naming the file, when it is missing, unreadable, not what was asked for, or holds no usable weights.
    """
    path = Path(path)
    if not path.is_file():
        kind = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise ValueError(
            f"Checkpoint '{path}' {kind}. Train one (python -m monai.bundle run training --config_file "
            "bundle/configs/train.json) or give --checkpoint PATH. Refusing to run with random weights."
        )
    if torchscript:
        try:
            module = torch.jit.load(str(path), map_location=map_location)
        except Exception as e:
            raise ValueError(
                f"Checkpoint '{path}' is not a TorchScript archive: {type(e).__name__}: {e}".strip()
            ) from None
        return Checkpoint(str(path), module=module.eval())
    if _is_torchscript(path):
        raise ValueError(f"Checkpoint '{path}' is a TorchScript archive; add --torchscript to use it.")
    with open(path, "rb") as f:
        legacy_pickle = f.read(1) == b"\x80"  # torch.save's format before 1.6 is a bare pickle
    if not zipfile.is_zipfile(path) and not legacy_pickle:
        raise ValueError(
            f"Checkpoint '{path}' is not a complete PyTorch file (not a torch.save archive: empty, truncated or "
            "another format)."
        )
    try:
        obj = torch.load(str(path), map_location=map_location, weights_only=True)
    except Exception as e:
        if isinstance(e, pickle.UnpicklingError) and "Weights only load failed" in str(e):
            reason = (
                "it holds objects other than tensors and plain containers, which are not loaded (weights_only=True)"
            )
        else:
            reason = f"{type(e).__name__}: {' '.join(str(e).split()).split('. ')[0] or 'no detail'}"
        raise ValueError(f"Checkpoint '{path}' cannot be read as a PyTorch state dict: {reason}.") from None
    state = unwrap_state_dict(obj, str(path))
    args: dict = {}
    if _EXTRA_STATE in state:
        try:  # the JSON of XCTRSNet.get_extra_state
            args = json.loads(bytes(state[_EXTRA_STATE].to(torch.uint8).tolist()).decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise ValueError(f"Checkpoint '{path}' has an unreadable '_extra_state' (network arguments).") from None
    return Checkpoint(str(path), state_dict=state, network_args=args if isinstance(args, dict) else {})


def _as_json(value: object) -> object:
    """``value`` as it reads back from JSON (tuples become lists), to compare with a checkpoint's arguments."""
    return json.loads(json.dumps(value, default=repr))


def state_dict_problems(expected: Mapping[str, torch.Tensor], given: Mapping[str, torch.Tensor]) -> list[str]:
    """What keeps ``given`` from loading strictly into a network whose state dict is ``expected``."""
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    shapes = [
        f"{k}: checkpoint {tuple(given[k].shape)} vs network {tuple(expected[k].shape)}"
        for k in expected
        if k in given and k != _EXTRA_STATE and tuple(given[k].shape) != tuple(expected[k].shape)
    ]
    problems = []
    for title, entries in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes)):
        if entries:
            more = f" (+{len(entries) - 5} more)" if len(entries) > 5 else ""
            problems.append(f"{len(entries)} {title}: " + "; ".join(entries[:5]) + more)
    return problems


def load_network(
    checkpoint: Checkpoint,
    network_def: torch.nn.Module,
    device: str | torch.device = "cpu",
    channels_last: bool = False,
) -> torch.nn.Module:
    """The network of a checkpoint, weights loaded, in eval mode on ``device``.

    Args:
        checkpoint: from :func:`read_checkpoint`.
        network_def: the config's network; used for an older checkpoint without network arguments, and
            refused when a checkpoint's arguments describe another network (it is then built by
            ``xctrs-infer``, or give the training config to ``monai.bundle run``).
        device: where to put it. Defaults to ``"cpu"``.
        channels_last: :func:`xctrs_monai.networks.to_channels_last` (the 3D convolutions run channels-last).
            Defaults to ``False``.

    Raises:
        ValueError: naming the checkpoint, when its weights do not fit the network.
    """
    if checkpoint.module is not None:
        network = checkpoint.module
    else:
        network = network_def
        own = _as_json(getattr(network, "network_args", None))
        theirs = checkpoint.network_args
        differ = []
        if theirs and isinstance(own, dict):  # a network that says its arguments (XCTRSNet)
            keys = (set(own) | set(theirs)) - set(RUNTIME_ARGS)
            differ = sorted(k for k in keys if own.get(k) != theirs.get(k))
        if differ:
            shown = ", ".join(f"{k}={checkpoint.network_args.get(k)!r} (config: {own.get(k)!r})" for k in differ)
            raise ValueError(
                f"Checkpoint '{checkpoint.path}' was trained with another network: {shown}. xctrs-infer builds it from "
                "the checkpoint; with monai.bundle run, add the training config (e.g. bundle/configs/quick.json)."
            )
        problems = state_dict_problems(network.state_dict(), checkpoint.state_dict)
        if problems == [f"1 missing keys: {_EXTRA_STATE}"]:  # an older checkpoint, from before the arguments
            problems = []
            network.load_state_dict(checkpoint.state_dict, strict=False)
        elif problems:
            raise ValueError(
                f"Checkpoint '{checkpoint.path}' does not fit the network of the config: "
                + " | ".join(problems)
                + ". Use the config it was trained with (the same img_size, recon_channels and seg_channels), e.g. "
                "add bundle/configs/quick.json."
            )
        else:
            network.load_state_dict(checkpoint.state_dict, strict=True)
    network = network.to(device).eval()
    return to_channels_last(network) if channels_last else network


class NetworkCheckpointLoader:
    """Event handler: when the engine first starts, put the checkpoint's weights into ``engine.network``.

    The bundle's ``inference.json`` uses it in place of MONAI's ``CheckpointLoader`` so that the checkpoint is
    read once, with the unwrapping and refusals of :func:`read_checkpoint` and the network check of
    :func:`load_network`; parsing the config does not need the file (MONAI's ``check_properties``,
    ``verify_net_in_out``). A TorchScript checkpoint replaces ``engine.network``.

    Args:
        checkpoint: a checkpoint path, or a :class:`Checkpoint` already read (``xctrs-infer`` reads it first to
            build the network it fits).
        channels_last: see :func:`load_network`. Defaults to ``False``.
        torchscript: the path is a TorchScript archive. Defaults to ``False``.
    """

    def __init__(
        self, checkpoint: PathLike | Checkpoint, channels_last: bool = False, torchscript: bool = False
    ) -> None:
        self.checkpoint = checkpoint
        self.channels_last = bool(channels_last)
        self.torchscript = bool(torchscript)
        self.loaded = False

    def attach(self, engine) -> None:
        from ignite.engine import Events

        engine.add_event_handler(Events.STARTED, self)

    def __call__(self, engine) -> None:
        if self.loaded:
            return
        device = engine.state.device
        checkpoint = self.checkpoint
        if not isinstance(checkpoint, Checkpoint):
            checkpoint = read_checkpoint(checkpoint, torchscript=self.torchscript, map_location=device)
        engine.network = load_network(checkpoint, engine.network, device, self.channels_last)
        self.loaded = True

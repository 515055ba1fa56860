# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Inference app: AP + lateral radiographs -> CT (HU), C1..C7 label map, preview and report per case.

Everything is defined by the bundle's ``inference.json`` (network, ``preprocessing``,
``postprocessing``, ``inferer``); this module adds what a command line needs around it: building
the datalist (one pair or a CSV of pairs), loading and checking the checkpoint (a ``state_dict`` or a
TorchScript ``model.ts``; never random weights), running case by case so that a bad case is reported
and skipped, and exit codes. ``python -m monai.bundle run --config_file bundle/configs/inference.json``
runs the same transforms through MONAI's ``SupervisedEvaluator``.

Command line (``xctrs-infer`` or ``python scripts/infer.py``)::

    xctrs-infer --ap ap.dcm --la la.dcm --out_dir out [--checkpoint bundle/models/model.pt]
                [--config_file "['bundle/configs/inference.json','bundle/configs/quick.json']"]
                [--device cpu|cuda] [--case_id name] [--<config key> value ...]
    xctrs-infer --pairs pairs.csv --out_dir out        # columns ap,la[,case_id]

Outputs in ``out_dir/<case_id>/``: ``ct.nii.gz``, ``vertebrae.nii.gz``, ``preview.png`` and, written
last, ``report.json``. Exit code 0 when every case succeeded, 1 otherwise.
"""

from __future__ import annotations

import csv
import sys
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import torch
from monai.bundle import ConfigParser
from monai.config import PathLike

from xctrs_monai.data.io import save_json

__all__ = [
    "DEFAULT_CONFIG",
    "resolve_config_files",
    "case_id_from_path",
    "read_pairs",
    "make_datalist",
    "read_checkpoint",
    "check_checkpoint",
    "load_network",
    "XCTRSInference",
    "infer",
    "main",
]

#: The bundle's inference config, relative to the repository (or working) directory.
DEFAULT_CONFIG = "bundle/configs/inference.json"
_REPO_ROOT = Path(__file__).resolve().parents[2]
_NETWORK_KEYS = ("img_size", "recon_channels", "seg_channels")
_SUFFIXES = (".nii.gz", ".nii", ".dcm", ".dicom", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def resolve_config_files(config_file: PathLike | Sequence[PathLike] | None = None) -> list[str]:
    """Config file paths, defaulting to :data:`DEFAULT_CONFIG`; relative paths missing from the working
    directory are looked up in the repository of this package (editable install).

    Raises:
        ValueError: naming a config file that does not exist.
    """
    files = [DEFAULT_CONFIG] if config_file is None else config_file
    files = [files] if isinstance(files, (str, Path)) else list(files)
    resolved = []
    for f in files:
        path = Path(f)
        if not path.is_file() and not path.is_absolute() and (_REPO_ROOT / path).is_file():
            path = _REPO_ROOT / path
        if not path.is_file():
            raise ValueError(f"Config file '{f}' does not exist.")
        resolved.append(str(path))
    return resolved


def case_id_from_path(path: PathLike) -> str:
    """A case id from a radiograph path: its file name without the image suffix (``ap_01.dcm`` -> ``ap_01``)."""
    name = Path(path).name
    for suffix in _SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)] or name
    return name


def _check_case_id(case_id: str, where: str = "") -> str:
    case_id = str(case_id).strip()
    if not case_id or Path(case_id).name != case_id or case_id in (".", ".."):
        raise ValueError(f"case_id must be a plain folder name, got {case_id!r}{where}.")
    return case_id


def read_pairs(csv_path: PathLike) -> list[dict]:
    """Read a CSV of radiograph pairs with a header ``ap,la[,case_id]``.

    Relative paths are taken relative to the CSV's folder. A row with an empty ``ap`` or ``la`` is kept
    (the case then fails with a "missing view" message and is skipped); the case id defaults to the AP
    file name without its suffix.

    Args:
        csv_path: the CSV file.

    Returns:
        ``[{"ap": path, "la": path, "case_id": id}, ...]`` in file order.

    Raises:
        ValueError: naming the file, when it is missing, has no ``ap``/``la`` columns, or repeats or has an
            invalid (path-like) case id.
    """
    path = Path(csv_path)
    if not path.is_file():
        raise ValueError(f"Pairs CSV '{path}' does not exist.")
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        columns = [c.strip().lower() for c in (reader.fieldnames or [])]
        if "ap" not in columns or "la" not in columns:
            raise ValueError(f"Pairs CSV '{path}' needs the columns ap,la[,case_id]; got {reader.fieldnames}.")
        rows = [{str(k).strip().lower(): (v or "").strip() for k, v in row.items() if k} for row in reader]
    items, seen = [], set()
    for n, row in enumerate(rows, start=2):
        if not any(row.values()):
            continue
        item = {}
        for view in ("ap", "la"):
            value = row.get(view, "")
            item[view] = str(path.parent / value) if value and not Path(value).is_absolute() else value
        ref = row.get("ap") or row.get("la") or f"row{n}"
        item["case_id"] = _check_case_id(row.get("case_id") or case_id_from_path(ref), f" in '{path}' line {n}")
        if item["case_id"] in seen:
            raise ValueError(f"Pairs CSV '{path}' repeats case_id '{item['case_id']}' (line {n}); give unique case_id values.")
        seen.add(item["case_id"])
        items.append(item)
    return items


def make_datalist(
    ap_image: PathLike | None = None,
    la_image: PathLike | None = None,
    case_id: str | None = None,
    pairs_csv: PathLike | None = None,
) -> list[dict]:
    """The inference datalist: one pair (``ap_image`` + ``la_image``) or the rows of ``pairs_csv``.

    Args:
        ap_image: the AP radiograph.
        la_image: the lateral radiograph.
        case_id: the case id of the pair; defaults to ``None`` (the AP file name without suffix).
        pairs_csv: a CSV of pairs (see :func:`read_pairs`); used when no pair is given.

    Returns:
        ``[{"ap", "la", "case_id"}, ...]``.

    Raises:
        ValueError: when one view of the pair is missing, neither a pair nor a CSV is given, or a case id is
            not a plain folder name.
    """
    ap_image = str(ap_image or "").strip()
    la_image = str(la_image or "").strip()
    if ap_image or la_image:
        if not la_image:
            raise ValueError(f"Missing view: an AP radiograph ('{ap_image}') was given but no lateral (la) one.")
        if not ap_image:
            raise ValueError(f"Missing view: a lateral radiograph ('{la_image}') was given but no AP one.")
        return [{"ap": ap_image, "la": la_image, "case_id": _check_case_id(case_id or case_id_from_path(ap_image))}]
    if pairs_csv:
        return read_pairs(pairs_csv)
    raise ValueError("No input: give an AP and a lateral radiograph (ap_image/la_image, --ap/--la) or a pairs CSV.")


def read_checkpoint(path: PathLike, map_location: str | torch.device = "cpu") -> dict | torch.jit.ScriptModule:
    """Read a checkpoint: a TorchScript archive (``model.ts``) or a ``state_dict`` (``model.pt``).

    A ``state_dict`` saved by MONAI's ``CheckpointSaver`` under the key ``model`` is unwrapped, and a
    ``module.`` prefix (``DistributedDataParallel``) is removed.

    Raises:
        ValueError: naming the file, when it is missing or is neither a TorchScript archive nor a state dict.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(
            f"No checkpoint at '{path}'. Train one (python -m monai.bundle run training --config_file "
            "bundle/configs/train.json) or pass --checkpoint PATH (a model.pt state dict or a TorchScript "
            "model.ts). Refusing to run with random weights."
        )
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            if any(n.endswith("constants.pkl") for n in z.namelist()):
                try:
                    return torch.jit.load(str(path), map_location=map_location)
                except Exception as e:
                    raise ValueError(f"Cannot load TorchScript checkpoint '{path}': {e}") from e
    try:
        state = torch.load(str(path), map_location=map_location, weights_only=True)
    except Exception as e:
        raise ValueError(f"Cannot read checkpoint '{path}' as a state dict or TorchScript archive: {e}") from e
    if isinstance(state, Mapping) and isinstance(state.get("model"), Mapping):
        state = state["model"]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"Checkpoint '{path}' is not a state dict of tensors (got {type(state).__name__}).")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return dict(state)


def _state_dict_diff(expected: Mapping[str, torch.Tensor], given: Mapping[str, torch.Tensor]) -> list[str]:
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    shapes = [
        f"{k}: checkpoint {tuple(given[k].shape)} vs network {tuple(expected[k].shape)}"
        for k in expected
        if k in given and tuple(given[k].shape) != tuple(expected[k].shape)
    ]
    problems = []
    for title, entries in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes)):
        if entries:
            more = f" (+{len(entries) - 5} more)" if len(entries) > 5 else ""
            problems.append(f"{len(entries)} {title}: " + "; ".join(entries[:5]) + more)
    return problems


def _matching_configs(state: Mapping[str, torch.Tensor], config_files: Sequence[str]) -> list[str] | None:
    """Config file lists near ``config_files`` whose ``network_def`` fits ``state``, to suggest to the user."""
    base = config_files[0]
    folder = Path(base).parent
    overrides = []
    for f in sorted(folder.glob("*.json")):
        if str(f) in config_files or f.name == Path(base).name:
            continue
        try:
            content = ConfigParser.load_config_file(str(f))
        except Exception:
            continue
        if isinstance(content, Mapping) and any(k in content for k in _NETWORK_KEYS) and "network_def" not in content:
            overrides.append(str(f))
    candidates = [[base]] + [[*config_files, o] for o in overrides] + [[base, o] for o in overrides]
    for files in candidates:
        if files == list(config_files):
            continue
        try:
            parser = ConfigParser()
            parser.read_config(files)
            network = parser.get_parsed_content("network_def", instantiate=True)
        except Exception:
            continue
        if not _state_dict_diff(network.state_dict(), state):
            return files
    return None


def check_checkpoint(
    network: torch.nn.Module,
    state: Mapping[str, torch.Tensor] | PathLike,
    config_files: Sequence[str] | None = None,
    name: str | None = None,
) -> None:
    """Check that a state dict fits ``network`` exactly; otherwise say what differs and which config fits.

    Args:
        network: the network built from the config.
        state: a state dict or a checkpoint path (read with :func:`read_checkpoint`).
        config_files: the config files the network was built from; when given, the other override files
            in their folder (e.g. ``quick.json``) are tried and a matching combination is suggested.
        name: how to call the checkpoint in messages; defaults to ``None`` (its path when ``state`` is one).

    Raises:
        ValueError: when the checkpoint is missing or does not match, with the keys/shapes that differ.
    """
    name = name if name is not None else ("" if isinstance(state, Mapping) else str(state))
    source = f" '{name}'" if name else ""
    if not isinstance(state, Mapping):
        state = read_checkpoint(state)
        if isinstance(state, torch.jit.ScriptModule):
            return
    problems = _state_dict_diff(network.state_dict(), state)
    if not problems:
        return
    hint = (
        "Build the network with the config it was trained with (the same img_size, recon_channels and "
        "seg_channels), e.g. add the override used for training: "
        "--config_file \"['bundle/configs/inference.json','bundle/configs/quick.json']\"."
    )
    if config_files:
        match = _matching_configs(state, list(config_files))
        if match:
            listed = ",".join(f"'{f}'" for f in match)
            hint = f"It matches the network of --config_file \"[{listed}]\"; use that."
    raise ValueError(
        f"Checkpoint{source} does not match the network built from the config: " + " | ".join(problems) + ". " + hint
    )


def load_network(
    network_def: torch.nn.Module,
    checkpoint: PathLike,
    device: str | torch.device = "cpu",
    config_files: Sequence[str] | None = None,
) -> torch.nn.Module:
    """Load a checkpoint for inference: a TorchScript model as is, or a state dict into ``network_def``.

    Args:
        network_def: the network built from the config (used for a state dict).
        checkpoint: ``model.pt`` (state dict) or ``model.ts`` (TorchScript).
        device: where to put the network. Defaults to ``"cpu"``.
        config_files: see :func:`check_checkpoint`.

    Returns:
        the network in eval mode on ``device``.

    Raises:
        ValueError: for a missing, unreadable or mismatched checkpoint (never falls back to random weights).
    """
    state = read_checkpoint(checkpoint, map_location=device)
    if isinstance(state, torch.jit.ScriptModule):
        return state.to(device).eval()
    check_checkpoint(network_def, state, config_files, name=str(checkpoint))
    network_def.load_state_dict(state, strict=True)
    return network_def.to(device).eval()


def _root_message(exc: BaseException) -> str:
    """The most specific message of an exception chain (MONAI wraps transform errors in RuntimeError)."""
    messages = []
    while exc is not None:
        messages.append(f"{exc}" if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}")
        exc = exc.__cause__
    return messages[-1]


class XCTRSInference:
    """Run the bundle's inference transforms case by case with a checked checkpoint.

    Args:
        config_file: the inference config, or a list of configs layered in order (e.g. with
            ``quick.json``). Defaults to ``None``: ``bundle/configs/inference.json``.
        checkpoint: a ``model.pt`` state dict or a TorchScript ``model.ts``. Defaults to ``None``: the
            config's ``ckpt_path``.
        out_dir: output root; overrides the config's ``output_dir``. Defaults to ``None`` (the config's).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; defaults to ``None`` (the config's ``device``).
        overrides: any other config overrides, e.g. ``la_flip_lr=True``.

    Raises:
        ValueError: for a missing config, an unavailable device or a missing/mismatched checkpoint.
    """

    def __init__(
        self,
        config_file: PathLike | Sequence[PathLike] | None = None,
        checkpoint: PathLike | None = None,
        out_dir: PathLike | None = None,
        device: str | torch.device | None = None,
        **overrides,
    ) -> None:
        self.config_files = resolve_config_files(config_file)
        parser = ConfigParser()
        parser.read_config(self.config_files)
        if out_dir is not None:
            overrides["output_dir"] = str(out_dir)
        if device is not None:
            if str(device).startswith("cuda") and not torch.cuda.is_available():
                raise ValueError(f"device {device!r} was asked for but CUDA is not available; use --device cpu.")
            overrides["device"] = f"$torch.device('{device}')"
        parser.update(overrides)
        self.parser = parser
        self.device = parser.get_parsed_content("device")
        self.output_dir = Path(parser.get_parsed_content("output_dir"))
        self.img_size = int(parser.get_parsed_content("img_size"))
        self.checkpoint = str(checkpoint) if checkpoint is not None else str(parser.get_parsed_content("ckpt_path"))
        self.network = load_network(
            parser.get_parsed_content("network_def"), self.checkpoint, self.device, self.config_files
        )
        self.preprocessing = parser.get_parsed_content("preprocessing")
        self.inferer = parser.get_parsed_content("inferer")
        self.postprocessing = parser.get_parsed_content("postprocessing")

    def predict(self, image: torch.Tensor) -> torch.Tensor:
        """Network output ``[9, N, N, N]`` for one preprocessed ``[2, N, N]`` input.

        Raises:
            ValueError: when the model's output does not fit the configured ``img_size``.
        """
        with torch.no_grad():
            pred = self.inferer(image[None].to(self.device), self.network)
        n = self.img_size
        if pred.ndim != 5 or tuple(pred.shape[2:]) != (n, n, n) or pred.shape[1] < 3:
            raise ValueError(
                f"The model from '{self.checkpoint}' returned shape {list(pred.shape)}, expected [1, 9, {n}, {n}, {n}] "
                "for the configured img_size; use the config it was trained/exported with."
            )
        return pred[0]

    def run_case(self, item: Mapping) -> dict:
        """Preprocess, predict and write the outputs of one case; return its report."""
        data = self.preprocessing(dict(item))
        data["pred"] = self.predict(data["image"])
        data = self.postprocessing(data)
        return data["report"]

    def run(self, items: Iterable[Mapping], progress: bool = True) -> dict:
        """Run every case; a failing case is reported (stderr and the summary) and skipped.

        Returns:
            ``{"succeeded": [case ids], "failed": {case id: message}}``, also written to
            ``output_dir/summary.json``.
        """
        from tqdm import tqdm

        items = list(items)
        summary: dict = {"checkpoint": self.checkpoint, "config_files": self.config_files, "succeeded": [], "failed": {}}
        bar = tqdm(items, desc="xctrs-infer", unit="case", disable=not progress or len(items) < 2, file=sys.stderr)
        for item in bar:
            case_id = str(item.get("case_id", "case"))
            try:
                self.run_case(item)
            except Exception as e:  # one bad case must not stop the others
                message = _root_message(e)
                summary["failed"][case_id] = message
                tqdm.write(f"xctrs-infer: case '{case_id}' failed and was skipped: {message}", file=sys.stderr)
            else:
                summary["succeeded"].append(case_id)
        save_json(summary, self.output_dir / "summary.json")
        return summary


def infer(
    ap: PathLike | None = None,
    la: PathLike | None = None,
    out_dir: PathLike = "output",
    checkpoint: PathLike | None = None,
    config_file: PathLike | Sequence[PathLike] | None = None,
    device: str | None = None,
    pairs: PathLike | None = None,
    case_id: str | None = None,
    progress: bool = True,
    **overrides,
) -> dict:
    """Reconstruct CT + C1..C7 labels from an AP and a lateral radiograph (or a CSV of pairs).

    Args:
        ap: the AP radiograph (DICOM, PNG/JPEG or 2D NIfTI).
        la: the lateral radiograph.
        out_dir: output root; each case goes to ``out_dir/<case_id>/``. Defaults to ``"output"``.
        checkpoint: ``model.pt`` (state dict) or ``model.ts`` (TorchScript). Defaults to the config's
            ``ckpt_path`` (``bundle/models/model.pt``).
        config_file: inference config or a list of configs (e.g. adding ``bundle/configs/quick.json``).
            Defaults to ``bundle/configs/inference.json``.
        device: ``"cpu"`` or ``"cuda"``. Defaults to the config's (CUDA when available).
        pairs: CSV with columns ``ap,la[,case_id]`` for batch mode.
        case_id: case id of a single pair. Defaults to the AP file name without suffix.
        progress: show a progress bar in batch mode. Defaults to ``True``.
        overrides: other config overrides, e.g. ``la_flip_lr=True``, ``ap_pixel_spacing=0.15``.

    Returns:
        the run summary (see :meth:`XCTRSInference.run`).

    Raises:
        ValueError: for missing inputs, configs or checkpoint, or a mismatched checkpoint.
    """
    items = make_datalist(ap, la, case_id, pairs)
    app = XCTRSInference(config_file, checkpoint, out_dir, device, **overrides)
    return app.run(items, progress=progress)


def _cli(
    ap: str | None = None,
    la: str | None = None,
    out_dir: str = "output",
    checkpoint: str | None = None,
    config_file: str | list | None = None,
    device: str | None = None,
    pairs: str | None = None,
    case_id: str | None = None,
    progress: bool = True,
    **overrides,
) -> None:
    """xctrs-infer: AP + lateral radiographs -> CT (HU), C1..C7 labels, preview and report per case.

    Args:
        ap: AP radiograph (DICOM, PNG/JPEG, 2D NIfTI).
        la: lateral radiograph.
        out_dir: output root; one folder per case.
        checkpoint: model.pt (state dict) or model.ts (TorchScript); defaults to bundle/models/model.pt.
        config_file: inference config or list, e.g. "['bundle/configs/inference.json','bundle/configs/quick.json']".
        device: cpu or cuda (default: cuda when available).
        pairs: CSV with columns ap,la[,case_id] (batch mode).
        case_id: output folder name of a single pair (default: the AP file name; quote digits: --case_id '"007"').
        progress: progress bar in batch mode.
        overrides: any other --key value is a config override (e.g. --la_flip_lr True).
    """
    try:
        summary = infer(ap, la, out_dir, checkpoint, config_file, device, pairs, case_id, progress, **overrides)
    except ValueError as e:
        print(f"xctrs-infer: error: {_root_message(e)}", file=sys.stderr)
        raise SystemExit(1) from None
    ok, failed = summary["succeeded"], summary["failed"]
    print(f"xctrs-infer: {len(ok)} case(s) written to '{out_dir}', {len(failed)} failed.", file=sys.stderr)
    if failed:
        raise SystemExit(1)


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point ``xctrs-infer`` (a ``fire`` CLI over :func:`infer`); exits 1 on any failure."""
    import fire

    args = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in args) and "--" not in args:  # **overrides would swallow --help
        args = ["--", "--help"]
    fire.Fire(_cli, command=args, name="xctrs-infer")


if __name__ == "__main__":
    main()

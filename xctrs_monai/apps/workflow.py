# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""The bundle's ``inference.json`` workflow run case by case, with its output folder and checkpoint checked.

:class:`XCTRSInference` reads the config(s), validates the overrides against the config's keys, checks the
output folder before the model loads, reads the checkpoint once and builds the network it carries
(:mod:`xctrs_monai.apps.checkpoint`), chooses the precision, and runs the config's ``evaluator``
(``XCTRSEvaluator`` with the config's preprocessing and postprocessing) on one case at a time, so that a
bad case fails alone. ``xctrs-infer`` (:mod:`xctrs_monai.apps.infer`) is its command line.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterable, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import torch
from monai.bundle import ConfigParser
from monai.config import PathLike
from monai.data import DataLoader, Dataset

from xctrs_monai.apps.checkpoint import RUNTIME_ARGS, NetworkCheckpointLoader, read_checkpoint
from xctrs_monai.apps.datalist import check_case_id
from xctrs_monai.apps.writers import clean_stale_cases, discard_case
from xctrs_monai.data.io import save_json

__all__ = [
    "DEFAULT_CONFIGS",
    "PRECISIONS",
    "UsageError",
    "resolve_config_files",
    "check_output_dir",
    "default_precision",
    "error_message",
    "XCTRSInference",
]

#: Where the inference config is looked for, relative to the working directory (repository root, or inside
#: the bundle folder); otherwise give ``--config_file``.
DEFAULT_CONFIGS = ("bundle/configs/inference.json", "configs/inference.json")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_DTYPES = {"bf16": "$torch.bfloat16", "fp16": "$torch.float16"}
# config keys that the command line sets itself (or that are structure, not settings)
_NOT_OPTIONS = {
    "imports",
    "network_def",
    "network",
    "checkpoint",
    "preprocessing",
    "postprocessing",
    "dataset",
    "dataloader",
    "inferer",
    "handlers",
    "evaluator",
    "initialize",
    "run",
    "finalize",
    "datalist",
    "ap_image",
    "la_image",
    "case_id",
    "pairs_csv",
    "output_dir",
    "ckpt_path",
    "device",
    "amp",
    "amp_dtype",
    "channels_last",
    "allow_swap",
    "dataset_dir",
}
_NETWORK_OPTIONS = ("img_size", "recon_channels", "seg_channels")


class UsageError(ValueError):
    """A bad command-line option or option value (exit status 2)."""


def resolve_config_files(config_file: PathLike | Sequence[PathLike] | None = None) -> list[str]:
    """The config files to layer: ``config_file`` (one or a list), or the first of :data:`DEFAULT_CONFIGS`
    that exists in the working directory.

    Raises:
        ValueError: naming a config file that does not exist, or saying where the default was looked for.
    """
    if config_file is None:
        for candidate in DEFAULT_CONFIGS:
            if Path(candidate).is_file():
                return [candidate]
        raise ValueError(
            f"No inference config: none of {', '.join(DEFAULT_CONFIGS)} exists in '{os.getcwd()}'; run from the "
            "repository root or the bundle folder, or give --config_file PATH."
        )
    files = [config_file] if isinstance(config_file, (str, Path)) else list(config_file)
    for f in files:
        if not Path(f).is_file():
            raise ValueError(f"Config file '{f}' does not exist or is not a file.")
    return [str(f) for f in files]


def check_output_dir(out_dir: PathLike) -> Path:
    """Create ``out_dir`` if needed, check that files can be written in it, and clean stale staging folders.

    Raises:
        ValueError: naming the folder, when it is a file, cannot be created or is not writable.
    """
    path = Path(out_dir)
    if path.exists() and not path.is_dir():
        raise ValueError(f"Output folder '{path}' exists and is not a folder.")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise ValueError(f"Output folder '{path}' cannot be written: {e.strerror or e}.") from None
    clean_stale_cases(path)
    return path


def default_precision(device: torch.device) -> str:
    """``"bf16"`` where the device computes bfloat16 natively (a CUDA GPU that supports it, a CPU with the
    ``avx512_bf16`` or ``amx_bf16`` instructions), else ``"fp32"``."""
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return "fp32"
    return "bf16" if {"avx512_bf16", "amx_bf16"} & set(flags) else "fp32"


def error_message(exc: BaseException) -> str:
    """One line: the innermost exception of the chain (the transforms raise the message that names the file)."""
    while True:
        inner = exc.__cause__ if exc.__cause__ is not None else (None if exc.__suppress_context__ else exc.__context__)
        if inner is None:
            break
        exc = inner
    text = " ".join(str(exc).split())
    return text if isinstance(exc, (ValueError, OSError)) and text else f"{type(exc).__name__}: {text}"


def _blames(option: str, message: str) -> bool:
    """Whether an error message is about a config option (``ap_pixel_spacing``: "pixel_spacing of the AP view...")."""
    if option in message:
        return True
    view, _, rest = option.partition("_")
    if view in ("ap", "la"):
        return bool(rest) and rest in message and f"{view.upper()} view" in message
    return option in message


@contextmanager
def _quiet():
    """Keep MONAI's config security notice and ignite's "run is terminating" log lines off the console."""
    logger = logging.getLogger("ignite")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*config.*eval", category=UserWarning)
            yield
    finally:
        logger.setLevel(level)


class XCTRSInference:
    """The ``inference.json`` workflow with a checked output folder and checkpoint, run case by case.

    Args:
        config_file: the inference config, or a list layered in order. Defaults to ``None``
            (:func:`resolve_config_files`).
        checkpoint: ``model.pt`` (or a trainer checkpoint). Defaults to ``None`` (the config's ``ckpt_path``).
        out_dir: output root; overrides the config's ``output_dir``. Defaults to ``None`` (the config's).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; defaults to ``None`` (the config's ``device``).
        torchscript: the checkpoint is a TorchScript archive (the network comes from it; the grid from the
            config). Defaults to ``False``.
        precision: ``"fp32"``, ``"bf16"``, ``"fp16"`` (autocast) or ``"auto"`` (:func:`default_precision`).
            Defaults to ``"auto"``.
        channels_last: run the network in the channels-last memory format; ``"auto"`` = with bf16 on a CPU.
            Defaults to ``"auto"``.
        allow_swap: exchange a pair whose DICOM headers say AP and LA are swapped. Defaults to ``False``.
        overrides: other top-level config keys, e.g. ``la_flip_lr=True``, ``ap_pixel_spacing=0.15``.

    Raises:
        UsageError: for an unknown override or a bad option value.
        ValueError: for a missing config, an unusable output folder or checkpoint.
    """

    def __init__(
        self,
        config_file: PathLike | Sequence[PathLike] | None = None,
        checkpoint: PathLike | None = None,
        out_dir: PathLike | None = None,
        device: str | None = None,
        torchscript: bool = False,
        precision: str = "auto",
        channels_last: bool | str = "auto",
        allow_swap: bool = False,
        **overrides,
    ) -> None:
        self.config_files = resolve_config_files(config_file)
        for f in self.config_files:
            try:
                ConfigParser.load_config_file(f)
            except ValueError as e:
                raise ValueError(f"Config file '{f}' cannot be read: {error_message(e)}") from None
        parser = ConfigParser()
        parser.read_config(self.config_files)
        valid = sorted(k for k in parser.get() if k not in _NOT_OPTIONS and not k.startswith("_"))
        unknown = sorted(set(overrides) - set(valid))
        if unknown:
            raise UsageError(
                f"unknown option(s) {', '.join('--' + k for k in unknown)}; the config keys you can set are "
                f"{', '.join('--' + k for k in valid)}."
            )
        user_options = dict(overrides)
        if device is not None:
            if str(device).startswith("cuda") and not torch.cuda.is_available():
                raise UsageError(f"--device {device}: CUDA is not available on this machine; use --device cpu.")
            overrides["device"] = f"$torch.device('{device}')"
        if "bundle_root" not in overrides:  # the bundle the (first) config belongs to: <bundle>/configs/x.json
            overrides["bundle_root"] = str(Path(self.config_files[0]).resolve().parent.parent)
        parser.update(overrides)
        self.output_dir = check_output_dir(out_dir if out_dir is not None else parser.get_parsed_content("output_dir"))
        self.device = torch.device(parser.get_parsed_content("device"))
        self.precision, self.channels_last = self._choose_precision(precision, channels_last)
        path = checkpoint if checkpoint is not None else parser.get_parsed_content("ckpt_path")
        self.checkpoint = read_checkpoint(path, torchscript=bool(torchscript), map_location=self.device)
        settings = {
            "output_dir": str(self.output_dir),
            "checkpoint": self.checkpoint,
            "amp": self.precision != "fp32",
            "amp_dtype": _DTYPES.get(self.precision, "$torch.bfloat16"),
            "channels_last": self.channels_last,
            "allow_swap": bool(allow_swap),
            "datalist": [],
            "evaluator#epoch_length": 1,
        }
        settings.update(self._network_settings(parser, overrides))
        parser.update(settings)
        self.parser = parser
        self._user_options = user_options
        self._build(lazy=True)

    def _build(self, lazy: bool) -> None:
        """Parse (``lazy=False``: again, for a fresh evaluator) the preprocessing and the evaluator."""
        try:
            self.img_size = int(self.parser.get_parsed_content("img_size"))
            self.preprocessing = self.parser.get_parsed_content("preprocessing", lazy=lazy)
            self.evaluator = self.parser.get_parsed_content("evaluator")
        except Exception as e:  # a config value that a transform or the network refuses: name the option
            message = error_message(e)
            blamed = [k for k in self._user_options if _blames(k, message)]
            if blamed:
                raise UsageError(f"--{blamed[0]} {self._user_options[blamed[0]]!r}: {message}") from None
            raise ValueError(f"the config {self.config_files} cannot be built: {message}") from None
        for handler in self.parser.get_parsed_content("handlers"):
            if isinstance(handler, NetworkCheckpointLoader):
                handler(self.evaluator)  # now, not at the first run: a checkpoint that does not fit stops the start

    def _choose_precision(self, precision: str, channels_last: bool | str) -> tuple[str, bool]:
        if precision not in PRECISIONS:
            raise UsageError(f"--precision {precision!r}: use one of {', '.join(PRECISIONS)}.")
        if channels_last not in ("auto", True, False):
            raise UsageError(f"--channels_last {channels_last!r}: use True, False or auto.")
        chosen = default_precision(self.device) if precision == "auto" else precision
        if chosen == "fp16" and self.device.type == "cpu":
            warnings.warn("fp16 autocast on a CPU is slow and less accurate than bf16; consider --precision bf16.")
        if channels_last == "auto":
            channels_last = self.device.type == "cpu" and chosen == "bf16"
        return chosen, bool(channels_last)

    def _network_settings(self, parser: ConfigParser, overrides: Mapping) -> dict:
        """The checkpoint's own network (its arguments) on the checkpoint's grid, with the config's field of view."""
        args = dict(self.checkpoint.network_args)
        if not args:
            return {}
        args.update({k: False for k in RUNTIME_ARGS if k in args})  # e.g. activation checkpointing: training only
        given = [k for k in _NETWORK_OPTIONS if k in overrides]
        if given:
            raise UsageError(
                f"--{given[0]} cannot be set: the network comes from the checkpoint '{self.checkpoint.path}'."
            )
        config_size = int(parser.get_parsed_content("img_size"))
        settings = {
            "network_def": {"_target_": "xctrs_monai.networks.XCTRSNet", **args},
            "img_size": int(args["img_size"]),
        }
        if "spacing" not in overrides:
            settings["spacing"] = float(parser.get_parsed_content("spacing")) * config_size / int(args["img_size"])
        return settings

    def run_case(self, item: Mapping) -> dict:
        """Run the evaluator on one case (``{"xray_ap", "xray_la", "case_id"}``) and return its report.

        On failure the case's staging folder is removed (a previous complete case stays) and the error raised.
        """
        case_id = check_case_id(item.get("case_id"))
        self.evaluator.data_loader = DataLoader(
            Dataset([dict(item)], transform=self.preprocessing), batch_size=1, num_workers=0
        )
        try:
            with torch.inference_mode():
                self.evaluator.run()
        except BaseException:
            discard_case(self.output_dir, case_id)
            # ignite keeps the generator of a run that raised, and would end the next run at once: start afresh
            self._build(lazy=False)
            raise
        ran = self.evaluator.state.batch[0].get("case_id")
        if ran != case_id:
            raise RuntimeError(f"the evaluator ran case {ran!r} instead of case {case_id!r}.")
        return self.evaluator.state.output[0]["report"]

    def run(self, items: Iterable[Mapping], failures: Mapping[str, str] | None = None, progress: bool = True) -> dict:
        """Run every case; a failing case is reported (stderr and the summary) and the others go on.

        Args:
            items: the cases.
            failures: cases that already failed their checks (``{case: message}``), listed in the summary.
            progress: show a progress bar (for more than one case). Defaults to ``True``.

        Returns:
            ``{"succeeded": [reliable case ids], "unreliable": {case id: reasons}, "failed": {case: message},
            "swapped": [case ids], ...}``, also written to ``output_dir/summary.json``.
        """
        from tqdm import tqdm

        items = list(items)
        summary: dict = {
            "checkpoint": self.checkpoint.path,
            "config_files": self.config_files,
            "device": str(self.device),
            "precision": self.precision,
            "channels_last": self.channels_last,
            "succeeded": [],
            "unreliable": {},
            "failed": dict(failures or {}),
            "swapped": [],
        }
        bar = tqdm(items, desc="xctrs-infer", unit="case", disable=not progress or len(items) < 2, file=sys.stderr)
        for item in bar:
            case_id = str(item.get("case_id", "case"))
            try:
                with _quiet():
                    report = self.run_case(item)
            except Exception as e:  # one bad case must not stop the others
                summary["failed"][case_id] = error_message(e)
                tqdm.write(
                    f"xctrs-infer: case '{case_id}' failed and was not written: {summary['failed'][case_id]}",
                    file=sys.stderr,
                )
                continue
            if report.get("swapped_inputs"):
                summary["swapped"].append(case_id)
                tqdm.write(
                    f"xctrs-infer: case '{case_id}': AP and LA exchanged, as their headers say (--allow_swap).",
                    file=sys.stderr,
                )
            if report["reliable"]:
                summary["succeeded"].append(case_id)
            else:
                summary["unreliable"][case_id] = report["qc_reasons"]
                reasons = "; ".join(report["qc_reasons"])
                tqdm.write(
                    f"xctrs-infer: warning: case '{case_id}' is unreliable ({reasons}); check its preview.png.",
                    file=sys.stderr,
                )
        save_json(summary, self.output_dir / "summary.json")
        return summary

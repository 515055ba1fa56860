# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""``xctrs-infer``: a command line over the bundle's ``inference.json`` workflow.

Everything that touches data is the config's: preprocessing (reader, pair checks, detector geometry,
normalisation), the evaluator (``XCTRSEvaluator``), and postprocessing (CT in HU and labels written with
``SaveImaged``, preview, report with the quality-control verdict, each case committed as one folder).
This module only does what a command line adds around it: it checks the options and the output folder,
reads the checkpoint once and builds the network it fits (the checkpoint carries its network arguments),
runs the evaluator case by case so that a bad case fails alone, and reports with exit codes::

    xctrs-infer --ap ap.dcm --la la.dcm --out_dir out [--checkpoint bundle/models/model.pt]
    xctrs-infer --pairs pairs.csv --out_dir out              # columns ap,la[,case_id]

Exit status: 0 every case written and reliable; 1 a case failed or the run could not start (a bad file,
checkpoint, config or output folder); 2 a bad option; 3 every case written but some judged unreliable
(0 with ``--allow_unreliable``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from monai.config import PathLike

from xctrs_monai.apps.datalist import case_id_from_path, check_case_id, read_pairs
from xctrs_monai.apps.workflow import UsageError, XCTRSInference, error_message

__all__ = ["CLI_OPTIONS", "infer", "main"]

#: The command line's own options (the other ``--key value`` are config keys).
CLI_OPTIONS = (
    "ap",
    "la",
    "out_dir",
    "checkpoint",
    "config_file",
    "device",
    "pairs",
    "case_id",
    "torchscript",
    "precision",
    "channels_last",
    "allow_swap",
    "allow_unreliable",
    "progress",
)


def _as_path(name: str, value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float, os.PathLike)):
        raise UsageError(f"--{name} needs a file path, got {value!r}.")
    return str(value)


def infer(
    ap: PathLike | None = None,
    la: PathLike | None = None,
    out_dir: PathLike = "output",
    checkpoint: PathLike | None = None,
    config_file: PathLike | Sequence[PathLike] | None = None,
    device: str | None = None,
    pairs: PathLike | None = None,
    case_id: str | None = None,
    torchscript: bool = False,
    precision: str = "auto",
    channels_last: bool | str = "auto",
    allow_swap: bool = False,
    progress: bool = True,
    **overrides,
) -> dict:
    """Reconstruct CT + C1..C7 labels from an AP and a lateral radiograph (or a CSV of pairs).

    Args:
        ap: the AP radiograph (DICOM, PNG/JPEG/TIFF or 2D NIfTI).
        la: the lateral radiograph.
        out_dir: output root; each case goes to ``out_dir/<case_id>/``. Defaults to ``"output"``.
        checkpoint: ``model.pt``; defaults to the config's ``ckpt_path`` (``<bundle>/models/model.pt``).
        config_file: inference config or a list; defaults to :data:`DEFAULT_CONFIGS`.
        device: ``"cpu"`` or ``"cuda"``; defaults to the config's (CUDA when available).
        pairs: CSV with columns ``ap,la[,case_id]`` for batch mode.
        case_id: case id of a single pair; defaults to the AP file name without suffix.
        torchscript, precision, channels_last: see :class:`XCTRSInference`.
        allow_swap: exchange a pair whose DICOM headers say AP and LA are swapped. Defaults to ``False``.
        progress: show a progress bar in batch mode. Defaults to ``True``.
        overrides: other config keys, e.g. ``la_flip_lr=True``, ``ap_pixel_spacing=0.15``.

    Returns:
        the run summary (:meth:`XCTRSInference.run`).

    Raises:
        UsageError: for a bad option; ValueError: for missing inputs, config, checkpoint or output folder.
    """
    ap, la, pairs = _as_path("ap", ap), _as_path("la", la), _as_path("pairs", pairs)
    if ap or la:
        if pairs:
            raise UsageError("give either --ap/--la or --pairs, not both.")
        missing = [n for n, v in (("--la", la), ("--ap", ap)) if not v]
        if missing:
            raise UsageError(f"missing view: give {missing[0]} as well (an AP and a lateral radiograph).")
        try:
            name = check_case_id(case_id if case_id is not None else case_id_from_path(ap))
        except ValueError as e:
            raise UsageError(f"--case_id: {e}" if case_id is not None else str(e)) from None
        items, failures = [{"xray_ap": ap, "xray_la": la, "case_id": name}], {}
    elif pairs:
        if case_id is not None:
            raise UsageError("--case_id is for a single pair; give case ids in the CSV's case_id column.")
        items, failures = read_pairs(pairs)
    else:
        raise UsageError("no input: give --ap AP --la LA, or --pairs PAIRS.csv.")
    out_dir = _as_path("out_dir", out_dir)
    app = XCTRSInference(
        config_file,
        _as_path("checkpoint", checkpoint),
        out_dir,
        device,
        torchscript,
        precision,
        channels_last,
        bool(allow_swap),
        **overrides,
    )
    return app.run(items, failures, progress=progress)


def _cli(
    ap: str | None = None,
    la: str | None = None,
    out_dir: str = "output",
    checkpoint: str | None = None,
    config_file: str | list | None = None,
    device: str | None = None,
    pairs: str | None = None,
    case_id: str | None = None,
    torchscript: bool = False,
    precision: str = "auto",
    channels_last: bool | str = "auto",
    allow_swap: bool = False,
    allow_unreliable: bool = False,
    progress: bool = True,
    **overrides,
) -> None:
    """xctrs-infer: AP + lateral radiographs -> CT (HU), C1..C7 labels, preview and report per case.

    Args:
        ap: AP radiograph (DICOM, PNG/JPEG/TIFF, 2D NIfTI).
        la: lateral radiograph.
        out_dir: output root; one folder per case, written as a unit.
        checkpoint: model.pt; defaults to <bundle>/models/model.pt of the config.
        config_file: inference config or list; defaults to bundle/configs/inference.json or configs/inference.json.
        device: cpu or cuda (default: cuda when available).
        pairs: CSV with columns ap,la[,case_id] (batch mode; a bad row fails alone).
        case_id: output folder name of a single pair (default: the AP file name; quote digits: --case_id '"007"').
        torchscript: the checkpoint is a TorchScript archive.
        precision: auto, fp32, bf16 or fp16 (auto: bf16 where the device has it natively, else fp32).
        channels_last: True, False or auto (auto: with bf16 on a CPU).
        allow_swap: exchange AP and LA when their DICOM headers say they are swapped (and say so).
        allow_unreliable: exit 0 even when quality control flags a case (it is written either way).
        progress: progress bar in batch mode.
        overrides: other config keys, e.g. --la_flip_lr True, --ap_pixel_spacing 0.15 (unknown keys are an error).
    """
    options = dict(overrides)
    try:
        summary = infer(
            ap,
            la,
            out_dir,
            checkpoint,
            config_file,
            device,
            pairs,
            case_id,
            torchscript,
            precision,
            channels_last,
            allow_swap,
            progress,
            **options,
        )
    except UsageError as e:
        message = error_message(e)
        if message.startswith("unknown option"):
            message += f" The command line's own options are {', '.join('--' + k for k in CLI_OPTIONS)}."
        print(f"xctrs-infer: error: {message} (see xctrs-infer --help)", file=sys.stderr)
        raise SystemExit(2) from None
    except (ValueError, OSError, RuntimeError, KeyError) as e:
        print(f"xctrs-infer: error: {error_message(e)}", file=sys.stderr)
        raise SystemExit(1) from None
    ok, unreliable, failed = summary["succeeded"], summary["unreliable"], summary["failed"]
    written = len(ok) + len(unreliable)
    print(
        f"xctrs-infer: {written} case(s) written to '{out_dir}' ({len(ok)} reliable, {len(unreliable)} unreliable), "
        f"{len(failed)} failed.",
        file=sys.stderr,
    )
    if failed:
        raise SystemExit(1)
    if unreliable and not allow_unreliable:
        raise SystemExit(3)


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point ``xctrs-infer`` (a ``fire`` CLI); exits with the status of the module docstring."""
    import fire

    args = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in args) and "--" not in args:  # **overrides would swallow --help
        args = ["--", "--help"]
    fire.Fire(_cli, command=args, name="xctrs-infer")
    raise SystemExit(0)


if __name__ == "__main__":
    main()

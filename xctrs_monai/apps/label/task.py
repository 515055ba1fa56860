# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""The MONAI Label infer task of X-CTRSNet: an AP radiograph (the request's image) and its lateral partner in,
the C1..C7 label map (or the reconstructed CT) out, through the bundle's own inference workflow.

Imports MONAI Label (``monailabel``) and FastAPI: use it in the MONAI Label environment
(``scripts/setup_app_env.sh label``); the app folder ``integrations/monailabel/`` registers it.

It subclasses MONAI Label's abstract ``InferTask``, not ``BasicInferTask``: ``BasicInferTask`` runs one image
through its own pre-transforms, network and writer, while this task hands the pair to
:class:`~xctrs_monai.apps.workflow.XCTRSInference` (the ``inference.json`` workflow of ``xctrs-infer``), so
that the server reads, checks, reconstructs and reports exactly as the command line does.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from fastapi import HTTPException
from monai.config import PathLike
from monailabel.interfaces.tasks.infer_v2 import InferTask, InferType

from xctrs_monai.apps.label.pairing import label_colours, label_names, resolve_lateral
from xctrs_monai.apps.workflow import XCTRSInference, error_message

__all__ = ["BAD_REQUEST_STATUS", "XCTRSInferTask"]

#: HTTP status of a request whose inputs cannot be used (a view missing, a 3D file, a non-radiograph DICOM).
BAD_REQUEST_STATUS = 422
_TRUE = ("1", "true", "yes", "on")


def _as_bool(value: object) -> bool:
    return value is True or str(value).strip().lower() in _TRUE


def _file_key(path: str) -> tuple:
    stat = os.stat(path)
    return os.path.realpath(path), stat.st_mtime_ns, stat.st_size


class XCTRSInferTask(InferTask):
    """CT reconstruction and C1..C7 segmentation of a radiograph pair, as a MONAI Label infer task.

    Request parameters (MONAI Label's ``params``): ``la_image`` (the lateral radiograph: a datastore id or a
    file on the server; default: the datastore image ``<case>_la`` of the AP image ``<case>_ap``) and
    ``return_ct`` (``true``: return the reconstructed CT in HU instead of the label map; it is not saved as a
    label). The result file is NIfTI on the RAS grid of the reconstruction in mm; the result parameters hold
    ``label_names``, ``label_colors``, the quality-control verdict (``reliable``, ``qc_reasons``) and the
    case ``report``. The last case is kept, so that asking for the CT after the labels does not run the
    network again. A request whose inputs cannot be used gets HTTP :data:`BAD_REQUEST_STATUS` with the
    message of the check that refused it (naming the file); the server keeps serving.

    Args:
        checkpoint: ``model.pt`` (or a TorchScript archive with ``torchscript=True``).
        config_files: the inference config(s), layered in order. Defaults to ``None`` (``inference.json`` of
            the working directory's bundle, :func:`~xctrs_monai.apps.workflow.resolve_config_files`).
        device: ``"cpu"``, ``"cuda"``...; defaults to ``None`` (the config's: CUDA when available).
        lookup: the datastore's ``get_image_uri`` (an image id to its file, ``""`` when absent). Defaults to
            ``None`` (no datastore: ``la_image`` must be a file).
        torchscript: the checkpoint is a TorchScript archive. Defaults to ``False``.
        allow_swap: exchange a pair whose DICOM headers say AP and LA are swapped. Defaults to ``False``.
        description: shown by MONAI Label clients. Defaults to a one-line summary.

    Raises:
        ValueError: for an empty ``checkpoint``.
    """

    def __init__(
        self,
        checkpoint: PathLike,
        config_files: PathLike | Sequence[PathLike] | None = None,
        device: str | None = None,
        lookup: Callable[[str], str] | None = None,
        torchscript: bool = False,
        allow_swap: bool = False,
        description: str = "X-CTRSNet: CT and C1..C7 vertebrae from an AP (this image) and a lateral radiograph",
    ) -> None:
        if not str(checkpoint or ""):
            raise ValueError("checkpoint must be a model file path, got an empty value.")
        super().__init__(
            type=InferType.SEGMENTATION,
            labels=label_names(),
            dimension=3,
            description=description,
            config={"la_image": "", "return_ct": False},
        )
        self.checkpoint = str(checkpoint)
        self.config_files = config_files
        self.device = device
        self.lookup = lookup if lookup is not None else (lambda _id: "")
        self.torchscript = bool(torchscript)
        self.allow_swap = bool(allow_swap)
        self._workflow: XCTRSInference | None = None
        self._lock = threading.Lock()
        self._work_dir = Path(tempfile.mkdtemp(prefix="xctrs-label-"))
        atexit.register(shutil.rmtree, self._work_dir, True)
        self._last: tuple[tuple, str, dict] | None = None  # (inputs key, case folder, report)

    def is_valid(self) -> bool:
        return Path(self.checkpoint).is_file()

    def info(self) -> dict:
        return {**super().info(), "label_colors": label_colours()}

    def _run(self, ap: str, la: str) -> tuple[str, dict]:
        """The case folder and report of the pair, from the last request when it had the same files."""
        key = (_file_key(ap), _file_key(la))
        if self._last is not None and self._last[0] == key:
            return self._last[1], self._last[2]
        if self._workflow is None:
            self._workflow = XCTRSInference(
                self.config_files, self.checkpoint, self._work_dir, self.device, self.torchscript, "auto", "auto",
                self.allow_swap,
            )  # fmt: skip
        case_id = f"case-{uuid.uuid4().hex[:12]}"
        summary = self._workflow.run([{"xray_ap": ap, "xray_la": la, "case_id": case_id}], progress=False)
        if case_id in summary["failed"]:
            raise ValueError(summary["failed"][case_id])
        case_dir = str(self._work_dir / case_id)
        report = json.loads(Path(case_dir, "report.json").read_text())
        if self._last is not None:
            shutil.rmtree(self._last[1], ignore_errors=True)
        self._last = (key, case_dir, report)
        return case_dir, report

    def __call__(self, request: Mapping) -> tuple[str, dict]:
        """Run one request: ``{"image": AP file, "la_image": ..., "return_ct": ...}`` (MONAI Label's request).

        Returns:
            ``(result file, result parameters)``; MONAI Label deletes the file once it is sent.

        Raises:
            HTTPException: status :data:`BAD_REQUEST_STATUS`, with a message naming the file, for unusable inputs.
        """
        return_ct = _as_bool(request.get("return_ct", False))
        try:
            ap = str(request.get("image") or "")
            la = resolve_lateral(ap, request.get("la_image") or None, self.lookup)
            with self._lock:
                case_dir, report = self._run(ap, la)
                name = report["outputs"]["ct" if return_ct else "vertebrae"]
                handle, result = tempfile.mkstemp(suffix=".nii.gz", prefix="xctrs-result-")
                os.close(handle)
                shutil.copyfile(Path(case_dir, name), result)
        except (ValueError, OSError) as e:
            raise HTTPException(status_code=BAD_REQUEST_STATUS, detail=error_message(e)) from None
        if return_ct and isinstance(request, dict):
            request["save_label"] = False  # MONAILabelApp.infer reads this after the task: a CT is not a label
        params = {
            "label_names": label_names(),
            "label_colors": label_colours(),
            "result": "ct_hu" if return_ct else "labels",
            "ap_image": ap,
            "la_image": la,
            "reliable": report["reliable"],
            "qc_reasons": report["qc_reasons"],
            "swapped_inputs": report["swapped_inputs"],
            "report": report,
        }
        return result, params

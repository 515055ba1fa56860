# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""MONAI Deploy operators of the X-CTRSNet app (imports the MONAI Deploy App SDK: use the Deploy environment,
``scripts/setup_app_env.sh deploy``).

The graph (``integrations/deploy/app.py``)::

    DICOMDataLoaderOperator --dicom_study_list--> XrayPairSelectorOperator --xray_pair-->
    XCTRSInferenceOperator --case--> VertebraeDICOMWriterOperator

The inference operator runs the project's own ``inference.json`` workflow
(:class:`~xctrs_monai.apps.workflow.XCTRSInference`) on the exported TorchScript model, so that the app reads,
checks, reconstructs, scores and writes a case exactly as ``xctrs-infer`` does (``ct.nii.gz`` in HU,
``vertebrae.nii.gz``, ``report.json``, ``preview.png``): the SDK's image outputs are cast to uint8, which HU
cannot be. The writer adds the CT as a DICOM CT series and the vertebrae as a DICOM SEG
(:mod:`xctrs_monai.apps.deploy.dicom_out`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from monai.deploy.core import Fragment, Operator, OperatorSpec

from xctrs_monai.apps.deploy.pairing import select_xray_pair

__all__ = ["XrayPairSelectorOperator", "XCTRSInferenceOperator", "VertebraeDICOMWriterOperator"]

logger = logging.getLogger(__name__)


class XrayPairSelectorOperator(Operator):
    """The AP and lateral radiograph among the loaded studies (:func:`~.pairing.select_xray_pair`).

    Input ``dicom_study_list`` (``DICOMDataLoaderOperator``'s); output ``xray_pair``:
    ``{"xray_ap": file, "xray_la": file, "case_id": ..., "reference": the AP dataset}``.

    Args:
        fragment: the application.
        input_folder: named in the error messages. Defaults to ``"the input folder"``.
    """

    def __init__(self, fragment: Fragment, *args, input_folder: str = "the input folder", **kwargs) -> None:
        self.input_folder = str(input_folder)
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: OperatorSpec) -> None:
        spec.input("dicom_study_list")
        spec.output("xray_pair")

    def compute(self, op_input, op_output, context) -> None:
        studies = op_input.receive("dicom_study_list") or []
        datasets = [
            instance.get_native_sop_instance()
            for study in studies
            for series in study.get_all_series()
            for instance in series.get_sop_instances()
        ]
        ap, la = select_xray_pair(datasets, f"'{self.input_folder}'")
        case_id = str(ap.get("AccessionNumber", "") or ap.get("StudyID", "") or "case").strip() or "case"
        logger.info(f"X-CTRSNet pair: AP '{ap.filename}', lateral '{la.filename}', case '{case_id}'")
        op_output.emit(
            {"xray_ap": str(ap.filename), "xray_la": str(la.filename), "case_id": case_id, "reference": ap}, "xray_pair"
        )


class XCTRSInferenceOperator(Operator):
    """The bundle's inference workflow on one pair, with the exported TorchScript model; writes the case folder.

    Input ``xray_pair``; output ``case``: ``{"case_dir", "report", "reference"}``.

    Args:
        fragment: the application.
        model_path: the TorchScript archive (``python -m monai.bundle ckpt_export``).
        output_folder: the case folder is ``output_folder/<case_id>``.
        config_files: the inference config(s), layered (the grid of the exported model must be theirs).
        device: ``"cpu"``, ``"cuda"``; defaults to ``None`` (the config's: CUDA when available).
    """

    def __init__(
        self,
        fragment: Fragment,
        *args,
        model_path: Path,
        output_folder: Path,
        config_files: Sequence[str],
        device: str | None = None,
        **kwargs,
    ) -> None:
        self.model_path, self.output_folder = Path(model_path), Path(output_folder)
        self.config_files, self.device = list(config_files), device
        self._workflow = None
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: OperatorSpec) -> None:
        spec.input("xray_pair")
        spec.output("case")

    def compute(self, op_input, op_output, context) -> None:
        from xctrs_monai.apps.workflow import XCTRSInference

        pair = op_input.receive("xray_pair")
        if self._workflow is None:
            self._workflow = XCTRSInference(
                self.config_files, self.model_path, self.output_folder, self.device, torchscript=True
            )
        item = {k: pair[k] for k in ("xray_ap", "xray_la", "case_id")}
        report = self._workflow.run_case(item)  # raises, naming the file, for a pair it cannot use
        case_dir = self.output_folder / pair["case_id"]
        if not report["reliable"]:
            logger.warning(f"X-CTRSNet case '{pair['case_id']}' is unreliable: {'; '.join(report['qc_reasons'])}")
        op_output.emit({"case_dir": str(case_dir), "report": report, "reference": pair["reference"]}, "case")


class VertebraeDICOMWriterOperator(Operator):
    """The case's CT as a DICOM CT series (HU) and its vertebrae as a DICOM SEG, next to its NIfTI files.

    Input ``case``; writes ``<case_dir>/dicom/ct/<n>.dcm`` and ``<case_dir>/dicom/vertebrae_seg.dcm``.
    """

    def setup(self, spec: OperatorSpec) -> None:
        spec.input("case")

    def compute(self, op_input, op_output, context) -> None:
        import nibabel as nib
        import numpy as np

        from xctrs_monai.apps.deploy.dicom_out import ct_series, vertebrae_seg

        case = op_input.receive("case")
        case_dir = Path(case["case_dir"])
        outputs = case["report"]["outputs"]
        ct_img = nib.load(case_dir / outputs["ct"])
        labels = np.asarray(nib.load(case_dir / outputs["vertebrae"]).dataobj)
        slices = ct_series(np.asarray(ct_img.dataobj, dtype=np.float64), ct_img.affine, case["reference"])
        seg = vertebrae_seg(labels, slices)
        folder = case_dir / "dicom"
        (folder / "ct").mkdir(parents=True, exist_ok=True)
        for ds in slices:
            ds.save_as(folder / "ct" / f"{ds.InstanceNumber:04d}.dcm", enforce_file_format=True)
        partial = folder / ".vertebrae_seg.dcm.partial"
        seg.save_as(partial)
        partial.replace(folder / "vertebrae_seg.dcm")
        logger.info(f"X-CTRSNet: wrote {len(slices)} CT slices and a DICOM SEG under '{folder}'")

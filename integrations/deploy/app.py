# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""The MONAI Deploy app of X-CTRSNet: a folder of DICOM radiographs in, the CT and C1..C7 vertebrae out.

    python integrations/deploy/app.py -i INPUT_FOLDER -o OUTPUT_FOLDER -m model.ts

(or ``monai-deploy exec``, or the ``HOLOSCAN_INPUT_PATH`` / ``HOLOSCAN_OUTPUT_PATH`` / ``HOLOSCAN_MODEL_PATH``
environment variables), in the environment of ``scripts/setup_app_env.sh deploy``. The model is the bundle's
network exported to TorchScript (``python -m monai.bundle ckpt_export``); the inference config(s) are
``XCTRS_CONFIG_FILES`` (comma-separated, layered; default: ``inference.json`` next to this file, else the
repository's ``bundle/configs/inference.json``), and must give the grid the model was trained on. ``XCTRS_DEVICE``
(``cpu``, ``cuda``) overrides the config's device. Writes ``OUTPUT_FOLDER/<case>/``: ``ct.nii.gz`` (HU),
``vertebrae.nii.gz``, ``report.json``, ``preview.png``, ``dicom/ct/*.dcm`` (CT series, HU) and
``dicom/vertebrae_seg.dcm`` (DICOM SEG, segments C1..C7). A folder without exactly one AP and one lateral
radiograph of one patient stops the app with a message listing what the folder holds.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from monai.deploy.conditions import CountCondition
from monai.deploy.core import Application
from monai.deploy.operators.dicom_data_loader_operator import DICOMDataLoaderOperator

from xctrs_monai.apps.deploy.operators import (
    VertebraeDICOMWriterOperator,
    XCTRSInferenceOperator,
    XrayPairSelectorOperator,
)

HERE = Path(__file__).resolve().parent


def config_files() -> list[str]:
    """``XCTRS_CONFIG_FILES``, else ``inference.json`` beside the app (a package), else the repository's."""
    given = [c.strip() for c in os.environ.get("XCTRS_CONFIG_FILES", "").split(",") if c.strip()]
    if given:
        return given
    for candidate in (HERE / "inference.json", HERE.parents[1] / "bundle" / "configs" / "inference.json"):
        if candidate.is_file():
            return [str(candidate)]
    raise ValueError(f"No inference config: set XCTRS_CONFIG_FILES or put inference.json beside '{__file__}'.")


class XCTRSDeployApp(Application):
    """Radiograph pair selection, X-CTRSNet inference (the bundle's workflow), NIfTI + DICOM CT and SEG outputs."""

    name = "xctrs-monai"
    description = "X-CTRSNet: cervical-spine CT and C1..C7 vertebrae from an AP and a lateral DICOM radiograph"
    version = "0.1.0"

    def compose(self) -> None:
        context = Application.init_app_context(self.argv)
        input_folder, output_folder = Path(context.input_path), Path(context.output_path)
        model_path = Path(context.model_path)
        if model_path.is_dir():  # -m may name the model folder, as the SDK's examples do
            found = sorted(model_path.glob("*.ts")) + sorted(model_path.glob("*.pt"))
            if len(found) != 1:
                raise ValueError(f"Model folder '{model_path}' must hold one .ts file (TorchScript), found {found}.")
            model_path = found[0]
        loader = DICOMDataLoaderOperator(self, CountCondition(self, 1), input_folder=input_folder, name="dicom_loader")
        selector = XrayPairSelectorOperator(self, input_folder=str(input_folder), name="xray_pair_selector")
        inference = XCTRSInferenceOperator(
            self, model_path=model_path, output_folder=output_folder, config_files=config_files(),
            device=os.environ.get("XCTRS_DEVICE") or None, name="xctrs_inference",
        )  # fmt: skip
        writer = VertebraeDICOMWriterOperator(self, name="dicom_writer")
        self.add_flow(loader, selector, {("dicom_study_list", "dicom_study_list")})
        self.add_flow(selector, inference, {("xray_pair", "xray_pair")})
        self.add_flow(inference, writer, {("case", "case")})


if __name__ == "__main__":
    logging.info(f"Begin {__name__}")
    XCTRSDeployApp().run()
    logging.info(f"End {__name__}")

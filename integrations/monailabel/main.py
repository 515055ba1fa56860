# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""The MONAI Label app of X-CTRSNet (``monailabel start_server --app integrations/monailabel ...``).

Start it with ``python -m xctrs_monai.apps.label.server --studies DATASTORE`` (binds 127.0.0.1:8000 by default)
in the environment of ``scripts/setup_app_env.sh label``. Its one model, ``xctrs``, takes the AP radiograph
``<case>_ap`` of the datastore as the image and finds ``<case>_la`` (or the ``la_image`` parameter); see
:class:`xctrs_monai.apps.label.task.XCTRSInferTask`.

Options (``--conf KEY VALUE``): ``checkpoint`` (default ``<app>/model/model.pt``), ``torchscript``
(``true`` for a TorchScript archive), ``config_file`` (default the repository's
``bundle/configs/inference.json``), ``config_overlays`` (more configs layered on it, comma-separated, e.g. the
``quick.json`` of a quick-demo model), ``device`` (default: CUDA when available) and ``allow_swap``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from monailabel.config import settings
from monailabel.datastore.local import LocalDatastore
from monailabel.interfaces.app import MONAILabelApp

from xctrs_monai.apps.label.pairing import label_names
from xctrs_monai.apps.label.task import XCTRSInferTask

logger = logging.getLogger(__name__)

_TRUE = ("1", "true", "yes", "on")
_REPO = Path(__file__).resolve().parents[2]


class XCTRSLabelApp(MONAILabelApp):
    """X-CTRSNet served to MONAI Label clients: a local datastore of radiograph pairs, one infer task."""

    def __init__(self, app_dir: str, studies: str, conf: dict) -> None:
        self.model_dir = os.path.join(app_dir, "model")
        super().__init__(
            app_dir=app_dir,
            studies=studies,
            conf=conf,
            name="xctrs-monai",
            description="X-CTRSNet: cervical-spine CT and C1..C7 vertebrae from an AP and a lateral radiograph",
            version="0.1.0",
            labels=label_names(),
        )

    def init_datastore(self) -> LocalDatastore:
        if self.studies.startswith(("http://", "https://")):
            raise ValueError(
                f"studies '{self.studies}': this app serves a local folder of radiographs (<case>_ap, <case>_la); "
                "a DICOMweb, XNAT or DSA datastore is not supported."
            )
        extensions = list(dict.fromkeys([*settings.MONAI_LABEL_DATASTORE_FILE_EXT, "*.dcm"]))
        return LocalDatastore(
            self.studies,
            extensions=extensions,
            auto_reload=settings.MONAI_LABEL_DATASTORE_AUTO_RELOAD,
            read_only=settings.MONAI_LABEL_DATASTORE_READ_ONLY,
        )

    def init_infers(self) -> dict:
        config_file = self.conf.get("config_file", str(_REPO / "bundle" / "configs" / "inference.json"))
        overlays = [c.strip() for c in self.conf.get("config_overlays", "").split(",") if c.strip()]
        task = XCTRSInferTask(
            checkpoint=self.conf.get("checkpoint", os.path.join(self.model_dir, "model.pt")),
            config_files=[config_file, *overlays],
            device=self.conf.get("device") or None,
            lookup=self.datastore().get_image_uri,
            torchscript=self.conf.get("torchscript", "false").lower() in _TRUE,
            allow_swap=self.conf.get("allow_swap", "false").lower() in _TRUE,
        )
        if not task.is_valid():
            logger.warning(f"xctrs: no model at '{task.checkpoint}'; give --conf checkpoint PATH (model.pt).")
        return {"xctrs": task}

    def init_strategies(self) -> dict:
        return {}

# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""MONAI Label integration: the pairing rule and legend (:mod:`.pairing`, no MONAI Label needed), the infer
task (:mod:`.task`) and the server launcher (:mod:`.server`), which import MONAI Label when used. The app
folder MONAI Label loads is the repository's ``integrations/monailabel/``."""

from __future__ import annotations

from .pairing import AP_SUFFIX, LA_SUFFIX, label_colours, label_names, lateral_id, resolve_lateral
from .server import APP_DIR, DEFAULT_HOST, start_server_args

__all__ = [
    "AP_SUFFIX",
    "LA_SUFFIX",
    "APP_DIR",
    "DEFAULT_HOST",
    "label_colours",
    "label_names",
    "lateral_id",
    "resolve_lateral",
    "start_server_args",
]

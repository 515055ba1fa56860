# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""MONAI Deploy integration: the choice of the AP and lateral DICOM radiographs (:mod:`.pairing`, pydicom only),
the DICOM CT series and SEG outputs (:mod:`.dicom_out`, highdicom for the SEG) and the operators
(:mod:`.operators`, which import the MONAI Deploy App SDK when used). The app entry is the repository's
``integrations/deploy/app.py``."""

from __future__ import annotations

from .dicom_out import ct_series, segment_codes, slice_geometry, vertebrae_seg
from .pairing import describe_instance, header_fields, select_xray_pair

__all__ = [
    "ct_series",
    "segment_codes",
    "slice_geometry",
    "vertebrae_seg",
    "describe_instance",
    "header_fields",
    "select_xray_pair",
]

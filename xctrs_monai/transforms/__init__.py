# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0

from __future__ import annotations

from .drr import (
    BiplanarDRR,
    BiplanarDRRd,
    BiplanarProjector,
    get_projector,
    hu_to_mu,
    project_biplanar,
    spacing_from_affine,
)
from .load_xray import DEFAULT_GEOMETRY, LoadXray, LoadXrayd, centre_square_resize, read_radiograph, resample_to_detector
from .scanner_grid import ResetAffine, ResetAffined
from .xray import NormalizeXray, NormalizeXrayd, canonical_to_display, display_to_canonical, write_xray_preview
from .xray_appearance import RandXrayAppearance, RandXrayAppearanced, gaussian_blur_2d

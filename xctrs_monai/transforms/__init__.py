# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0

from __future__ import annotations

# the projector layer, re-exported here for compatibility (it lives in xctrs_monai.networks.layers)
from xctrs_monai.networks.layers import BiplanarProjector, get_projector, hu_to_mu, project_biplanar

from .drr import BiplanarDRR, BiplanarDRRd, spacing_from_affine
from .load_xray import DISPLAY_ORIENTATION, LoadXrayd, XrayToDetector, XrayToDetectord, orient_to_display, view_of_key
from .scanner_grid import ResetAffine, ResetAffined
from .xray import NormalizeXray, NormalizeXrayd, canonical_to_display, display_to_canonical, write_xray_preview
from .xray_checks import CheckXrayPair, CheckXrayPaird, view_from_header
from .xray_appearance import RandXrayAppearance, RandXrayAppearanced, gaussian_blur_2d

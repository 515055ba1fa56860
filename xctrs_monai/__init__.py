# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""X-CTRSNet for MONAI: biplanar radiographs -> 3D cervical-spine CT + C1..C7 labels (Ge et al., 2021)."""

from __future__ import annotations

__version__ = "0.1.0"

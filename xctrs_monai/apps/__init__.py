# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Applications: inference from radiograph files (``xctrs-infer``), its outputs, report and preview; cross-validation
as a command."""

from __future__ import annotations

from .crossval import CrossValidation, FoldError

__all__ = ["CrossValidation", "FoldError"]

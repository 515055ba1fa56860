# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Applications: inference from radiograph files (``xctrs-infer``), its outputs, report and preview; cross-validation
and the Table 1 ablation as commands."""

from __future__ import annotations

from .ablation import ABLATION_ROWS, PAPER_TABLE1, Ablation, AblationRow, PaperFigure, summarize_ablation
from .crossval import CrossValidation, FoldError

__all__ = [
    "ABLATION_ROWS",
    "PAPER_TABLE1",
    "Ablation",
    "AblationRow",
    "CrossValidation",
    "FoldError",
    "PaperFigure",
    "summarize_ablation",
]

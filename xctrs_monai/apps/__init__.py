# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Applications: inference from radiograph files (``xctrs-infer``) with its checkpoint handling, outputs, report,
quality control and preview; cross-validation and the Table 1 ablation as commands."""

from __future__ import annotations

from . import checkpoint, datalist, outputs, preview, qc, report, workflow, writers
from .ablation import ABLATION_ROWS, PAPER_TABLE1, Ablation, AblationRow, PaperFigure, summarize_ablation
from .checkpoint import Checkpoint, NetworkCheckpointLoader, load_network, read_checkpoint
from .crossval import CrossValidation, FoldError
from .datalist import case_id_from_path, make_datalist, read_pairs
from .outputs import SplitPredictiond, split_prediction
from .preview import WritePreviewd, render_preview
from .qc import DEFAULT_QC_THRESHOLDS, cross_view_consistency, gradient_correlation, qc_verdict, vertebra_plausibility
from .report import WriteReportd, reprojection_consistency, vertebra_statistics
from .workflow import UsageError, XCTRSInference
from .writers import AtomicNibabelWriter, CaseFolderLayout, CommitCased, clean_stale_cases, commit_case, staging_dir

__all__ = [
    "ABLATION_ROWS",
    "PAPER_TABLE1",
    "Ablation",
    "AblationRow",
    "AtomicNibabelWriter",
    "CaseFolderLayout",
    "Checkpoint",
    "CommitCased",
    "CrossValidation",
    "FoldError",
    "NetworkCheckpointLoader",
    "PaperFigure",
    "SplitPredictiond",
    "UsageError",
    "WritePreviewd",
    "WriteReportd",
    "XCTRSInference",
    "DEFAULT_QC_THRESHOLDS",
    "case_id_from_path",
    "clean_stale_cases",
    "commit_case",
    "cross_view_consistency",
    "gradient_correlation",
    "load_network",
    "make_datalist",
    "qc_verdict",
    "read_checkpoint",
    "read_pairs",
    "render_preview",
    "reprojection_consistency",
    "split_prediction",
    "staging_dir",
    "summarize_ablation",
    "vertebra_plausibility",
    "vertebra_statistics",
]

# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Applications: inference from radiograph files (``xctrs-infer``), its checkpoint handling, outputs, report,
quality control and preview."""

from __future__ import annotations

from . import checkpoint, datalist, outputs, preview, qc, report, workflow, writers
from .checkpoint import Checkpoint, NetworkCheckpointLoader, load_network, read_checkpoint, to_channels_last, unwrap_state_dict
from .datalist import case_id_from_path, make_datalist, read_pairs
from .outputs import SplitPredictiond, split_prediction
from .preview import WritePreviewd, render_preview
from .qc import DEFAULT_QC_THRESHOLDS, gradient_correlation, qc_verdict, vertebra_plausibility
from .report import WriteReportd, reprojection_consistency, vertebra_statistics
from .writers import AtomicNibabelWriter, CaseFolderLayout, CommitCased, clean_stale_cases, commit_case, staging_dir
from .workflow import UsageError, XCTRSInference

# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Layers: the differentiable biplanar projector (autograd function + module), as MONAI keeps its spatial
autograd operators in ``monai.networks.layers``."""

from __future__ import annotations

from xctrs_monai.networks.layers.projector import (
    GEOMETRIES,
    OUTPUTS,
    UNITS,
    BiplanarProjector,
    get_projector,
    hu_to_mu,
    project_biplanar,
    projector_options,
)
from xctrs_monai.networks.layers.sparse_projection import ProjectionFunction, ViewOperator, Workspace

__all__ = [
    "GEOMETRIES",
    "OUTPUTS",
    "UNITS",
    "BiplanarProjector",
    "ProjectionFunction",
    "ViewOperator",
    "Workspace",
    "get_projector",
    "hu_to_mu",
    "project_biplanar",
    "projector_options",
]

# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Default configs against the parameter counts of Ge et al., KBS 2021, Tables 2 and 3 (within 10%)."""

from __future__ import annotations

import pytest

from xctrs_monai.networks import MulSISNet, SpaDRNet, XCTRSNet

TEST_CASES_PAPER = [
    [SpaDRNet, 22_992_322],  # Table 2
    [MulSISNet, 4_410_136],  # Table 3
    [XCTRSNet, 22_992_322 + 4_410_136],
]


@pytest.mark.parametrize("net_type, paper", TEST_CASES_PAPER)
def test_default_parameter_count_matches_paper(net_type, paper):
    count = sum(p.numel() for p in net_type().parameters())
    assert abs(count / paper - 1) <= 0.10, f"{net_type.__name__}: {count:,} vs paper {paper:,}"

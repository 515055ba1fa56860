# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
from __future__ import annotations

import numpy as np
import pytest

from xctrs_monai import constants


@pytest.mark.parametrize("size, spacing", [(128, 1.25), (64, 2.5), (33, 0.5)])
def test_grid_is_centred_on_the_world_origin(size, spacing):
    affine = constants.grid_affine(size, spacing)
    centre = affine @ np.array([(size - 1) / 2.0] * 3 + [1.0])
    np.testing.assert_allclose(centre[:3], 0.0, atol=1e-12)  # exact up to float64 rounding
    np.testing.assert_allclose(np.diag(affine)[:3], spacing)
    assert constants.grid_origin(size, spacing) == affine[0, 3]


def test_default_grids_share_the_field_of_view():
    assert constants.DEFAULT_FOV == pytest.approx(160.0)
    assert constants.DEFAULT_GEOMETRY["ap"] == (constants.AP_SDD, constants.AP_SAD)
    assert len(constants.LABEL_COLOURS) == constants.NUM_SEG_CLASSES == 8

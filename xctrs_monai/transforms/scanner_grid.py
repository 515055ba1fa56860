# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Put an augmented volume back on an axis-aligned RAS scanner grid.

MONAI's spatial augmentations (``RandAffined``, ``RandFlipd``, ...) resample the array *and* record the
motion in the affine, so that ``Invertd`` can undo them. For DRR training pairs the motion must instead
be seen by the projector: the moved anatomy lies on the scanner grid, which :class:`BiplanarDRR` requires
to be RAS-aligned. :class:`ResetAffine` states exactly that by replacing the affine with the axis-aligned
one of the grid, keeping the world position of the volume centre.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import torch

from monai.config import KeysCollection
from monai.data.meta_tensor import MetaTensor
from monai.transforms.transform import MapTransform, Transform

from xctrs_monai.constants import grid_origin

__all__ = ["ResetAffine", "ResetAffined"]


class ResetAffine(Transform):
    """Replace a volume's affine with the axis-aligned RAS affine of its grid.

    The array is left untouched; the new affine is ``diag(spacing)`` with the translation that keeps the
    volume centre at the same world position.

    Args:
        spacing: voxel size in mm, one number or one per spatial axis. Defaults to ``None``: the column
            norms of the current affine (the voxel size after a flip, or a rotation of isotropic voxels).

    Raises:
        ValueError: for a non-positive spacing, a non-MetaTensor input or a non-3D volume.
    """

    def __init__(self, spacing: float | Sequence[float] | None = None) -> None:
        if spacing is not None:
            values = [float(spacing)] * 3 if isinstance(spacing, (int, float)) else [float(s) for s in spacing]
            if len(values) != 3 or min(values) <= 0:
                raise ValueError(f"spacing must be one or three positive values in mm, got {spacing}.")
            spacing = values
        self.spacing = spacing

    def __call__(self, img: torch.Tensor) -> MetaTensor:
        """
        Args:
            img: ``CXYZ`` MetaTensor.

        Returns:
            the same data with the axis-aligned affine.
        """
        if not isinstance(img, MetaTensor):
            raise ValueError(f"ResetAffine needs a MetaTensor with an affine, got {type(img).__name__}.")
        if img.ndim != 4:
            raise ValueError(f"ResetAffine expects a CXYZ volume, got shape {tuple(img.shape)}.")
        affine = img.affine.to(torch.float64)
        spacing = torch.linalg.norm(affine[:3, :3], dim=0) if self.spacing is None else torch.tensor(self.spacing)
        spacing = spacing.to(torch.float64).tolist()
        # the grid convention of xctrs_monai.constants: voxel k of n at grid_origin(n, s) + k * s around the centre
        shape = img.shape[1:]
        centre_index = torch.tensor([-grid_origin(n, 1.0) for n in shape] + [1.0], dtype=torch.float64)
        new_affine = torch.diag(torch.tensor(spacing + [1.0], dtype=torch.float64))
        origin = torch.tensor([grid_origin(n, s) for n, s in zip(shape, spacing)], dtype=torch.float64)
        new_affine[:3, 3] = (affine @ centre_index)[:3] + origin
        img.affine = new_affine
        return img


class ResetAffined(MapTransform):
    """Dictionary wrapper of :class:`ResetAffine`.

    Args:
        keys: keys of the volumes (e.g. ``["image", "label"]``).
        spacing: see :class:`ResetAffine`. Defaults to ``None``.
        allow_missing_keys: don't raise for missing keys. Defaults to ``False``.
    """

    def __init__(
        self,
        keys: KeysCollection,
        spacing: float | Sequence[float] | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.reset = ResetAffine(spacing)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.reset(d[key])
        return d

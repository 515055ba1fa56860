# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Sampled CT intensities (HU) of the phantom's tissues, its soft-tissue texture and image noise.

The ranges are our choice around typical CT values: muscle 25-55 HU, fat -115 to -85 HU, brain
28-40 HU, disc 80-100 HU, cortical bone 900-1400 HU, cancellous bone 180-350 HU (each bone +-25 HU
SD), lung -880 to -820 HU, cortical shell 1.2-1.8 mm, noise SD 5-18 HU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["NUM_BONE_OBJECTS", "TissueValues", "sample_tissues"]

NUM_BONE_OBJECTS = 14
"""Bone objects: C1..C7 (1..7), T1, T2, skull base, mandible, hyoid and the two clavicles (8..14)."""


@dataclass(frozen=True)
class TissueValues:
    """CT values of one phantom.

    Args:
        soft, fat, brain, disc, cortical, lung: HU of muscle/soft tissue, fat, brain, disc, cortical bone, lung.
        cancellous: HU of the cancellous bone of each object (index 0 unused, 1..``NUM_BONE_OBJECTS``).
        cortex: cortical shell thickness (mm).
        noise_sd: SD (HU) of the white image noise.
        texture: ``6x6x6`` standard normal field, interpolated over the volume as a soft-tissue texture.
    """

    soft: float
    fat: float
    brain: float
    disc: float
    cortical: float
    cancellous: np.ndarray
    lung: float
    cortex: float
    noise_sd: float
    texture: np.ndarray

    def texture_volume(self, size: int) -> np.ndarray:
        """``texture`` trilinearly interpolated onto a ``size^3`` grid whose corners meet its corners.

        The same values as ``torch.nn.functional.interpolate(..., mode="trilinear", align_corners=True)``
        (and ``scipy.ndimage.zoom(order=1)``), written as three small matrix products because those are
        5-30 times slower for this 6^3 -> 128^3 up-sampling on one core.
        """
        n = self.texture.shape[0]
        pos = np.linspace(0.0, n - 1.0, size)
        i0 = np.minimum(np.floor(pos).astype(int), n - 2)
        weights = np.zeros((size, n), dtype=np.float32)
        weights[np.arange(size), i0] = 1.0 - (pos - i0)
        weights[np.arange(size), i0 + 1] += pos - i0
        out = np.tensordot(weights, self.texture, axes=(1, 0))  # X, 6, 6
        out = np.einsum("bj,ajk->abk", weights, out)  # X, Y, 6
        return out @ weights.T


def sample_tissues(rng: np.random.Generator) -> TissueValues:
    """Draw the tissue values of one phantom."""
    soft = float(rng.uniform(25.0, 55.0))
    fat = float(rng.uniform(-115.0, -85.0))
    brain = float(rng.uniform(28.0, 40.0))
    disc = float(rng.uniform(80.0, 100.0))
    cortical = float(rng.uniform(900.0, 1400.0))
    cancellous = np.full(NUM_BONE_OBJECTS + 1, rng.uniform(180.0, 350.0), dtype=np.float32)
    cancellous[1:] += rng.normal(0.0, 25.0, size=NUM_BONE_OBJECTS).astype(np.float32)
    return TissueValues(
        soft=soft,
        fat=fat,
        brain=brain,
        disc=disc,
        cortical=cortical,
        cancellous=cancellous,
        lung=float(rng.uniform(-880.0, -820.0)),
        cortex=float(rng.uniform(1.2, 1.8)),
        noise_sd=float(rng.uniform(5.0, 18.0)),
        texture=rng.standard_normal((6, 6, 6)).astype(np.float32),
    )

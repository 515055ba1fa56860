# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Biplanar digitally reconstructed radiographs (DRRs) as MONAI transforms over the projector layer.

:class:`BiplanarDRR` / :class:`BiplanarDRRd` read the voxel spacing from a ``MetaTensor``'s affine (checking
that the volume is RAS-aligned), project it with the cached
:class:`~xctrs_monai.networks.layers.BiplanarProjector` and wrap the two images as ``MetaTensor`` s with
their detector metadata. The geometry is Eq. 5 of Ge et al., Knowledge-Based Systems 2021 (``DESIGN.md``).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch

from monai.config import KeysCollection
from monai.config.type_definitions import NdarrayOrTensor
from monai.data.meta_tensor import MetaTensor
from monai.data.utils import orientation_ras_lps
from monai.transforms.transform import MapTransform, Transform
from monai.utils import ensure_tuple_rep
from monai.utils.enums import MetaKeys, SpaceKeys

from xctrs_monai.constants import grid_origin
from xctrs_monai.networks.layers.projector import get_projector, projector_options

__all__ = ["spacing_from_affine", "BiplanarDRR", "BiplanarDRRd"]


def spacing_from_affine(affine: NdarrayOrTensor, space: str | None = None) -> tuple[float, float, float]:
    """Voxel spacing of a volume whose array axes are RAS-aligned, checking that they are.

    Args:
        affine: the ``4x4`` voxel-to-world affine of a ``[C, X, Y, Z]`` volume (MONAI's RAS world by default).
        space: the world convention of ``affine``, ``"RAS"`` (MONAI's default) or ``"LPS"``. Defaults to ``None``
            (RAS).

    Returns:
        spacing ``(sx, sy, sz)`` in mm.

    Raises:
        ValueError: when the affine is not ``4x4`` and finite, or when the array axes are not X->Right,
            Y->Anterior, Z->Superior (e.g. an LPS-ordered or oblique volume).
    """
    aff = np.asarray(affine.detach().cpu() if isinstance(affine, torch.Tensor) else affine, dtype=np.float64)
    if aff.shape != (4, 4) or not np.all(np.isfinite(aff)):
        raise ValueError(f"the volume affine must be a finite 4x4 matrix, got shape {aff.shape}.")
    if space is not None and str(space).upper() == SpaceKeys.LPS.value:
        aff = orientation_ras_lps(aff)
    rot = aff[:3, :3]
    diag = np.diag(rot).copy()
    off_diag = np.abs(rot - np.diag(diag)).max()
    if np.any(diag <= 0) or off_diag > 1e-4 * np.abs(rot).max():
        raise ValueError(
            "the projector needs a volume whose array axes are RAS-aligned (X->Right, Y->Anterior, Z->Superior), "
            f"got an affine with direction/spacing matrix {np.round(rot, 4).tolist()}; apply "
            "Orientationd(axcodes='RAS') first (and Spacingd(..., diagonal=True) for an oblique affine)."
        )
    return float(diag[0]), float(diag[1]), float(diag[2])


def _detector_affine(shape: Sequence[int], pixel: Sequence[float]) -> torch.Tensor:
    """The ``3x3`` pixel-to-detector (mm) affine: ``pixel`` spacing, origin at the detector centre."""
    affine = torch.eye(3, dtype=torch.float64)
    for axis in range(2):
        affine[axis, axis] = pixel[axis]
        affine[axis, 2] = grid_origin(shape[axis], pixel[axis])
    return affine


class BiplanarDRR(Transform):
    """AP + lateral DRRs of a CT volume in HU (X-CTRSNet training pairs; Ge et al., 2021, Sec. 3.1).

    A DRR pixel is the line integral of ``mu = mu_water * (1 + HU / 1000)`` (clipped at 0) along its ray,
    computed with :class:`~xctrs_monai.networks.layers.BiplanarProjector` (built once per volume shape and
    spacing, then cached). The canonical AP image is ``[C, X, Z]``, the LA image ``[C, Y, Z]`` (see
    :func:`xctrs_monai.transforms.canonical_to_display` for viewing).

    Args:
        kwargs: the projector options ``geometry`` (``"cone"`` or ``"parallel"``), ``ap_sdd``, ``ap_sad``,
            ``la_sdd``, ``la_sad`` (mm), ``detector_shape``, ``detector_spacing``, ``mu_water`` and ``output``
            (``"line_integral"`` or ``"intensity"``), as :class:`~xctrs_monai.networks.layers.BiplanarProjector`
            takes them. Defaults to the cone beam of ``xctrs_monai.constants`` (``AP_SDD``, ``AP_SAD``, ``LA_SDD``,
            ``LA_SAD``), one pixel per voxel at the isocenter, line integrals.

    Raises:
        ValueError: for an unknown or bad option, or ``units`` (the volume is always in HU).
    """

    backend = [torch.Tensor.__name__]

    def __init__(self, **kwargs) -> None:
        if "units" in kwargs:
            raise ValueError(f"BiplanarDRR projects CT in HU and takes no units option, got units={kwargs['units']!r}.")
        self.kwargs = projector_options(**kwargs)

    def __call__(
        self, img: NdarrayOrTensor, spacing: Sequence[float] | None = None
    ) -> tuple[NdarrayOrTensor, NdarrayOrTensor]:
        """
        Args:
            img: CT ``[C, X, Y, Z]`` in HU (normally ``C = 1``), RAS-aligned. A ``MetaTensor`` gives its spacing
                through its affine; a plain tensor or array needs ``spacing``.
            spacing: voxel spacing ``(sx, sy, sz)`` in mm; overrides the affine's spacing. Defaults to ``None``.

        Returns:
            ``(ap [C, U, V], la [C, U, V])``; ``MetaTensor`` s with a 2D affine (pixel spacing at the detector,
            origin at the detector centre) and ``view``/``geometry``/``pixel_spacing`` metadata when
            ``img`` is a ``MetaTensor``, otherwise tensors.

        Raises:
            ValueError: for a non-``[C, X, Y, Z]`` image, a missing or non-positive spacing, a non-RAS affine,
                or non-finite DRR values (a NaN or Inf in the volume on some ray).
        """
        if isinstance(img, np.ndarray):
            img = torch.as_tensor(img)
        if not isinstance(img, torch.Tensor) or img.ndim != 4:
            shape = tuple(getattr(img, "shape", ()))
            raise ValueError(f"BiplanarDRR expects a channel-first 3D volume [C, X, Y, Z], got shape {shape}.")
        if isinstance(img, MetaTensor):  # checks the orientation even when `spacing` is given
            affine_spacing = spacing_from_affine(img.affine, img.meta.get(MetaKeys.SPACE))
            spacing = affine_spacing if spacing is None else spacing
        if spacing is None:
            raise ValueError("BiplanarDRR needs the voxel spacing: pass a MetaTensor with an affine or `spacing`.")
        spacing = tuple(float(s) for s in spacing)
        if len(spacing) != 3 or not all(math.isfinite(s) and s > 0 for s in spacing):
            raise ValueError(f"spacing must be three finite positive values in mm, got {spacing}.")
        projector = get_projector(tuple(img.shape[1:]), spacing, **self.kwargs)
        # project the plain tensor: MetaTensor bookkeeping on the volume costs more than the projection
        ap, la = projector(img.as_subclass(torch.Tensor)[None])
        ap, la = ap[0], la[0]
        # a NaN or Inf voxel reaches every pixel whose ray crosses it: checking the two images is exact for what
        # the DRRs show and costs nothing next to a pass over the volume
        if not bool(torch.isfinite(ap).all() & torch.isfinite(la).all()):
            raise ValueError("BiplanarDRR got non-finite DRR values: the volume holds NaN or Inf on some ray.")
        if not isinstance(img, MetaTensor):
            return ap, la
        outputs = []
        for view, image, pixel in (("ap", ap, projector.ap_pixel_spacing), ("la", la, projector.la_pixel_spacing)):
            meta = {
                "view": view,
                "geometry": self.kwargs["geometry"],
                "output": self.kwargs["output"],
                "pixel_spacing": tuple(pixel),
                MetaKeys.SPATIAL_SHAPE: tuple(image.shape[1:]),
                MetaKeys.SPACE: SpaceKeys.RAS.value,
            }
            if "filename_or_obj" in img.meta:
                meta["filename_or_obj"] = img.meta["filename_or_obj"]
            outputs.append(MetaTensor(image, affine=_detector_affine(image.shape[1:], pixel), meta=meta))
        return outputs[0], outputs[1]


class BiplanarDRRd(MapTransform):
    """Dictionary-based wrapper of :class:`BiplanarDRR`: ``d[ap_key], d[la_key] = BiplanarDRR(d[key])``.

    Args:
        keys: the CT keys. Defaults to ``"image"``.
        ap_key: where to write the AP DRR (one per key). Defaults to ``"xray_ap"``.
        la_key: where to write the LA DRR (one per key). Defaults to ``"xray_la"``.
        allow_missing_keys: don't raise an exception when a key is missing. Defaults to False.
        kwargs: the projector options of :class:`BiplanarDRR` (``geometry``, ``ap_sdd``, ``ap_sad``, ``la_sdd``,
            ``la_sad``, ``detector_shape``, ``detector_spacing``, ``mu_water``, ``output``).
    """

    backend = BiplanarDRR.backend

    def __init__(
        self,
        keys: KeysCollection = "image",
        ap_key: str | Sequence[str] = "xray_ap",
        la_key: str | Sequence[str] = "xray_la",
        allow_missing_keys: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.ap_keys = ensure_tuple_rep(ap_key, len(self.keys))
        self.la_keys = ensure_tuple_rep(la_key, len(self.keys))
        self.drr = BiplanarDRR(**kwargs)

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key, ap_key, la_key in self.key_iterator(d, self.ap_keys, self.la_keys):
            d[ap_key], d[la_key] = self.drr(d[key])
        return d

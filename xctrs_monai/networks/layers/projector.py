# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""The differentiable biplanar projector: AP + lateral digitally reconstructed radiographs (DRRs) of a CT.

The geometry is the one of ``DESIGN.md``: a CT ``[C, X, Y, Z]`` in RAS orientation, the isocenter at the
volume centre, an AP view whose beam runs along Y (source anterior, detector posterior) giving a canonical
image ``[C, X, Z]``, and a lateral (LA) view whose beam runs along X (source on the patient's right,
detector on the left) giving a canonical image ``[C, Y, Z]``. This is Eq. 5 of Ge et al., "X-CTRSNet: 3D
cervical vertebra CT reconstruction and segmentation directly from 2D X-ray images", Knowledge-Based
Systems 2021. The method (slice-based sparse interpolation) is described in ``sparse_projection.py``.
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
from collections.abc import Sequence

import torch

from xctrs_monai.constants import AP_SAD, AP_SDD, HU_AIR, LA_SAD, LA_SDD, MU_WATER
from xctrs_monai.networks.layers.sparse_projection import ProjectionFunction, ViewOperator, Workspace

__all__ = [
    "GEOMETRIES",
    "OUTPUTS",
    "UNITS",
    "BiplanarProjector",
    "get_projector",
    "hu_to_mu",
    "project_biplanar",
    "projector_options",
]

GEOMETRIES = ("cone", "parallel")
OUTPUTS = ("line_integral", "intensity")
UNITS = ("hu", "mu")


def hu_to_mu(volume: torch.Tensor, mu_water: float = MU_WATER) -> torch.Tensor:
    """Linear attenuation coefficient from Hounsfield units: ``mu = mu_water * (1 + HU / 1000)``, clipped at 0.

    Args:
        volume: CT intensities in HU, any shape.
        mu_water: attenuation of water in 1/mm. Defaults to ``constants.MU_WATER``.

    Returns:
        mu in 1/mm, same shape and dtype as ``volume``.
    """
    return torch.clamp(volume * (mu_water / 1000.0) + mu_water, min=0.0)


def _check_positive(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite positive number, got {value}.")
    return value


def _per_view(value, name: str, cast) -> tuple[tuple | None, tuple | None]:
    """``None``, a scalar, a pair (both views), or a pair of pairs ``((ap_u, ap_v), (la_u, la_v))``."""
    if value is None:
        return None, None
    if isinstance(value, numbers.Real):
        return (cast(value), cast(value)), (cast(value), cast(value))
    value = tuple(value)
    if len(value) == 2 and all(isinstance(v, numbers.Real) for v in value):
        pair = (cast(value[0]), cast(value[1]))
        return pair, pair
    if len(value) == 2 and all(isinstance(v, Sequence) and len(v) == 2 for v in value):
        return (cast(value[0][0]), cast(value[0][1])), (cast(value[1][0]), cast(value[1][1]))
    raise ValueError(
        f"{name} must be None, a number, a pair (both views) or a pair of pairs ((ap), (la)), got {value}."
    )


def _check_options(
    geometry, ap_sdd, ap_sad, la_sdd, la_sad, detector_shape, detector_spacing, mu_water, units, output
) -> None:
    """Check the :class:`BiplanarProjector` options that do not depend on the volume.

    Raises:
        ValueError: naming the first bad option and what is allowed.
    """
    if geometry not in GEOMETRIES:
        raise ValueError(f"geometry must be one of {GEOMETRIES}, got {geometry!r}.")
    if units not in UNITS:
        raise ValueError(f"units must be one of {UNITS}, got {units!r}.")
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}.")
    _check_positive("mu_water", mu_water)
    for view, sdd, sad in (("ap", ap_sdd, ap_sad), ("la", la_sdd, la_sad)):
        sdd, sad = _check_positive(f"{view}_sdd", sdd), _check_positive(f"{view}_sad", sad)
        if geometry == "cone" and sad >= sdd:
            raise ValueError(f"{view}_sad must be smaller than {view}_sdd, got sad={sad} and sdd={sdd}.")
    for pair in _per_view(detector_shape, "detector_shape", int):
        if pair is not None and min(pair) < 1:
            raise ValueError(f"detector_shape must be positive, got {detector_shape}.")
    for pair in _per_view(detector_spacing, "detector_spacing", float):
        for p in pair or ():
            _check_positive("detector_spacing", p)


class BiplanarProjector(torch.nn.Module):
    """Differentiable AP + lateral DRR projector for a fixed volume shape and spacing (Joseph's method).

    The sparse interpolation operators are built once in ``__init__`` (and cast once per device and
    dtype), so calling the module each training iteration costs two sparse products per view. The
    geometry is the one of ``DESIGN.md`` (Ge et al., Knowledge-Based Systems 2021, Eq. 5); the defaults
    are those of ``xctrs_monai.constants``.

    Args:
        volume_shape: ``(X, Y, Z)`` of the volumes to project.
        spacing: voxel spacing ``(sx, sy, sz)`` in mm.
        geometry: ``"cone"`` (point source) or ``"parallel"``. Defaults to ``"cone"``.
        ap_sdd: AP source-to-detector distance in mm. Defaults to ``constants.AP_SDD``.
        ap_sad: AP source-to-isocenter distance in mm. Defaults to ``constants.AP_SAD``.
        la_sdd: LA source-to-detector distance in mm. Defaults to ``constants.LA_SDD``.
        la_sad: LA source-to-isocenter distance in mm. Defaults to ``constants.LA_SAD``.
        detector_shape: pixels ``(U, V)``; a number, one pair for both views or ``((ap), (la))``.
            Defaults to ``None``: ``(X, Z)`` for AP and ``(Y, Z)`` for LA.
        detector_spacing: pixel spacing in mm at the detector, same forms as ``detector_shape``.
            Defaults to ``None``: voxel spacing x sdd / sad (cone) or the voxel spacing (parallel), so that
            one pixel at the isocenter is one voxel.
        mu_water: attenuation of water in 1/mm, used when ``units="hu"``. Defaults to ``constants.MU_WATER``.
        units: ``"hu"`` (the volume is CT in HU, converted by :func:`hu_to_mu`) or ``"mu"`` (already 1/mm).
            Defaults to ``"hu"``.
        output: ``"line_integral"`` (dimensionless, not normalised) or ``"intensity"`` (``exp(-integral)``).
            Defaults to ``"line_integral"``.

    Raises:
        ValueError: for a bad shape, a non-positive spacing or distance, ``sad >= sdd``, a source inside the
            volume, or an unknown option.
    """

    def __init__(
        self,
        volume_shape: Sequence[int],
        spacing: Sequence[float],
        geometry: str = "cone",
        ap_sdd: float = AP_SDD,
        ap_sad: float = AP_SAD,
        la_sdd: float = LA_SDD,
        la_sad: float = LA_SAD,
        detector_shape: int | Sequence[int] | Sequence[Sequence[int]] | None = None,
        detector_spacing: float | Sequence[float] | Sequence[Sequence[float]] | None = None,
        mu_water: float = MU_WATER,
        units: str = "hu",
        output: str = "line_integral",
    ) -> None:
        super().__init__()
        shape = tuple(int(s) for s in volume_shape)
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"volume_shape must be three positive sizes (X, Y, Z), got {tuple(volume_shape)}.")
        spacing = tuple(float(s) for s in spacing)
        if len(spacing) != 3 or not all(math.isfinite(s) and s > 0 for s in spacing):
            raise ValueError(f"spacing must be three finite positive values in mm, got {spacing}.")
        _check_options(
            geometry, ap_sdd, ap_sad, la_sdd, la_sad, detector_shape, detector_spacing, mu_water, units, output
        )
        self.mu_water = float(mu_water)
        cone = geometry == "cone"
        dists = {"ap": (float(ap_sdd), float(ap_sad)), "la": (float(la_sdd), float(la_sad))}
        for view, depth_axis in (("ap", 1), ("la", 0)):
            half_depth = shape[depth_axis] * spacing[depth_axis] / 2.0
            if cone and dists[view][1] <= half_depth:
                raise ValueError(
                    f"{view}_sad={dists[view][1]} mm puts the source inside the volume (half depth {half_depth} mm); "
                    "increase it or crop the volume."
                )
        ap_shape, la_shape = _per_view(detector_shape, "detector_shape", int)
        ap_pix, la_pix = _per_view(detector_spacing, "detector_spacing", float)
        mag = {view: (dists[view][0] / dists[view][1] if cone else 1.0) for view in dists}
        ap_shape = ap_shape or (shape[0], shape[2])
        la_shape = la_shape or (shape[1], shape[2])
        ap_pix = ap_pix or (spacing[0] * mag["ap"], spacing[2] * mag["ap"])
        la_pix = la_pix or (spacing[1] * mag["la"], spacing[2] * mag["la"])

        self.volume_shape, self.spacing, self.geometry = shape, spacing, geometry
        self.units, self.output = units, output
        self.ap_distances, self.la_distances = dists["ap"], dists["la"]
        self.ap_detector_shape, self.la_detector_shape = ap_shape, la_shape
        self.ap_pixel_spacing, self.la_pixel_spacing = ap_pix, la_pix
        self._ap = ViewOperator(shape, spacing, 1, ap_shape, ap_pix, *dists["ap"], cone)
        self._la = ViewOperator(shape, spacing, 0, la_shape, la_pix, *dists["la"], cone)
        self._workspace = Workspace()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("_workspace", None)  # per-thread scratch memory is neither copied nor pickled
        return state

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self._workspace = Workspace()

    def forward(self, volume: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Project a batch of volumes.

        Args:
            volume: ``BCXYZ`` (normally ``B1XYZ``) in HU or 1/mm (see ``units``), RAS-aligned. A ``MetaTensor``
                is projected as a plain tensor (its metadata is the transform's business).

        Returns:
            ``(ap, la)``: ``BCUV`` plain tensors, AP ``U`` along X and ``V`` along Z, LA ``U`` along Y and ``V``
            along Z. float64 input stays float64; any other dtype is computed in float32.

        Raises:
            ValueError: when ``volume`` is not ``BCXYZ`` of the shape given at construction.
        """
        if volume.ndim != 5 or tuple(volume.shape[2:]) != self.volume_shape:
            raise ValueError(
                f"volume must be BCXYZ with spatial shape {self.volume_shape}, got shape {tuple(volume.shape)}."
            )
        volume = volume.as_subclass(torch.Tensor)  # MetaTensor -> tensor, no copy: no metadata per operation
        if volume.dtype != torch.float64:
            volume = volume.float()
        b, c = volume.shape[:2]
        # mu = mu_water / 1000 * (max(HU, HU_AIR) - HU_AIR) with HU_AIR = -1000 (mu = 0): project the clipped HU,
        # add the constant afterwards through the projection of a volume of ones
        clamp_min = HU_AIR if self.units == "hu" else None
        views = (self._ap, self._la)
        raw = ProjectionFunction.apply(volume.reshape(b * c, *self.volume_shape), views, clamp_min, self._workspace)
        images = []
        for operator, image in zip(views, raw):
            if self.units == "hu":
                image = (image - HU_AIR * operator.ones(image.device, image.dtype)) * (self.mu_water / 1000.0)
            image = image.reshape(b, c, operator.n_u, operator.n_v)
            images.append(torch.exp(-image) if self.output == "intensity" else image)
        return images[0], images[1]

    def extra_repr(self) -> str:
        return (
            f"volume_shape={self.volume_shape}, spacing={self.spacing}, geometry={self.geometry!r}, "
            f"ap(sdd, sad)={self.ap_distances}, la(sdd, sad)={self.la_distances}, "
            f"ap_detector={self.ap_detector_shape}@{self.ap_pixel_spacing}, "
            f"la_detector={self.la_detector_shape}@{self.la_pixel_spacing}, units={self.units!r}, "
            f"output={self.output!r}"
        )


def _hashable(value):
    if isinstance(value, (list, tuple)):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return value


_OPTIONS = tuple(inspect.signature(BiplanarProjector).parameters.values())[2:]  # all but volume_shape, spacing


def projector_options(**kwargs) -> dict:
    """The complete, checked options of a :class:`BiplanarProjector` (all but ``volume_shape`` and ``spacing``).

    Args:
        kwargs: any of ``geometry``, ``ap_sdd``, ``ap_sad``, ``la_sdd``, ``la_sad``, ``detector_shape``,
            ``detector_spacing``, ``mu_water``, ``units``, ``output``; the others take their defaults.

    Returns:
        every option by name, in the signature's order, sequences as tuples (hashable).

    Raises:
        ValueError: for an unknown name or a bad value, naming it and what is allowed.
    """
    unknown = sorted(set(kwargs) - {p.name for p in _OPTIONS})
    if unknown:
        raise ValueError(f"unknown projector options {unknown}; allowed: {[p.name for p in _OPTIONS]}.")
    options = {p.name: _hashable(kwargs.get(p.name, p.default)) for p in _OPTIONS}
    _check_options(**options)
    return options


@functools.lru_cache(maxsize=8)
def _cached_projector(*args) -> BiplanarProjector:
    return BiplanarProjector(*args)


def get_projector(volume_shape: Sequence[int], spacing: Sequence[float], **kwargs) -> BiplanarProjector:
    """A :class:`BiplanarProjector` for these arguments, shared through a small cache (the last 8 geometries).

    Args:
        volume_shape: ``(X, Y, Z)`` of the volumes to project.
        spacing: voxel spacing ``(sx, sy, sz)`` in mm.
        kwargs: the other options of :class:`BiplanarProjector` (see :func:`projector_options`).

    Returns:
        the (possibly cached) projector; treat it as read-only.

    Raises:
        ValueError: see :class:`BiplanarProjector`.
    """
    options = projector_options(**kwargs)
    return _cached_projector(_hashable(volume_shape), _hashable(spacing), *options.values())


def project_biplanar(volume: torch.Tensor, spacing: Sequence[float], **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """Functional form of :class:`BiplanarProjector`; the projector of the last few geometries is cached.

    Args:
        volume: ``BCXYZ`` in HU or 1/mm (see ``units``), RAS-aligned, on any device.
        spacing: voxel spacing ``(sx, sy, sz)`` in mm.
        kwargs: the other options of :class:`BiplanarProjector` (see :func:`projector_options`).

    Returns:
        ``(ap, la)``, each ``BCUV``.

    Raises:
        ValueError: see :class:`BiplanarProjector`.
    """
    if volume.ndim != 5:
        raise ValueError(f"volume must be BCXYZ (5 dimensions), got shape {tuple(volume.shape)}.")
    return get_projector(tuple(volume.shape[2:]), spacing, **kwargs)(volume)

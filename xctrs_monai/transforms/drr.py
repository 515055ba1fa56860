# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Biplanar digitally reconstructed radiographs (DRRs): a fast, differentiable slice-based projector.

The projector follows the geometry of ``DESIGN.md``: a CT ``[C, X, Y, Z]`` in RAS orientation, the
isocenter at the volume centre, an AP view whose beam runs along Y (source anterior, detector
posterior) giving a canonical image ``[C, X, Z]``, and a lateral (LA) view whose beam runs along X
(source on the patient's right, detector on the left) giving a canonical image ``[C, Y, Z]``. This is
Eq. 5 of Ge et al., "X-CTRSNet: 3D cervical vertebra CT reconstruction and segmentation directly from
2D X-ray images", Knowledge-Based Systems 2021.

Every ray is sampled once per volume slice perpendicular to the beam (Joseph's method). With a flat
detector perpendicular to the beam through the isocenter axis, the in-slice sample position of a ray is
separable: its lateral coordinate depends only on the detector column and the slice, its cranio-caudal
coordinate only on the detector row and the slice. The bilinear in-slice interpolation is therefore
two 1D linear interpolations, each a sparse matrix with two entries per row, applied to the volume
with a transpose in between; the sum over slices is folded into the second sparse product. The
sparse operators are built once per geometry and volume shape (:class:`BiplanarProjector`), so the
work per call is two sparse products and one blockwise transpose per view, and the memory is a few
volume-sized buffers (never rays x samples x coordinates).
"""

from __future__ import annotations

import functools
import math
import numbers
import threading
import warnings
from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
from torch.autograd.function import once_differentiable

from monai.config import KeysCollection
from monai.config.type_definitions import NdarrayOrTensor
from monai.data.meta_tensor import MetaTensor
from monai.data.utils import orientation_ras_lps
from monai.transforms.transform import MapTransform, Transform
from monai.utils import ensure_tuple_rep
from monai.utils.enums import MetaKeys, SpaceKeys

__all__ = [
    "GEOMETRIES",
    "OUTPUTS",
    "UNITS",
    "BiplanarProjector",
    "get_projector",
    "project_biplanar",
    "hu_to_mu",
    "spacing_from_affine",
    "BiplanarDRR",
    "BiplanarDRRd",
]

GEOMETRIES = ("cone", "parallel")
OUTPUTS = ("line_integral", "intensity")
UNITS = ("hu", "mu")


def hu_to_mu(volume: torch.Tensor, mu_water: float = 0.02) -> torch.Tensor:
    """Linear attenuation coefficient from Hounsfield units: ``mu = mu_water * (1 + HU / 1000)``, clipped at 0.

    Args:
        volume: CT intensities in HU, any shape.
        mu_water: attenuation of water in 1/mm. Defaults to 0.02.

    Returns:
        mu in 1/mm, same shape and dtype as ``volume``.
    """
    return torch.clamp(volume * (mu_water / 1000.0) + mu_water, min=0.0)


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
    """Check the projector options that do not depend on the volume."""
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


def _csr(rows: torch.Tensor, cols: torch.Tensor, vals: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "sparse CSR support is in beta" / invariant-check notices
        csr = torch.sparse_coo_tensor(torch.stack([rows, cols]), vals, shape, check_invariants=False)
        csr = csr.coalesce().to_sparse_csr()
        # 32-bit indices: what the CPU (MKL) and CUDA (cuSPARSE) kernels use, no conversion per call
        return torch.sparse_csr_tensor(
            csr.crow_indices().int(), csr.col_indices().int(), csr.values(), shape, check_invariants=False
        )


def _linear_weights(pos: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Indices, weights and validity of the two linear-interpolation neighbours of ``pos`` (zero outside)."""
    lower = torch.floor(pos)
    frac = pos - lower
    idx = torch.stack([lower, lower + 1]).long()
    wts = torch.stack([1.0 - frac, frac])
    valid = (idx >= 0) & (idx < size) & (wts > 0)
    return idx, wts, valid


class _ViewOperator:
    """The two sparse factors of one view, stored in float64 on the CPU, cast lazily per device/dtype."""

    def __init__(self, shape, spacing, depth_axis, detector_shape, pixel_spacing, sdd, sad, cone):
        n_x, n_y, n_z = shape
        lateral_axis = 1 - depth_axis  # AP: depth Y, lateral X; LA: depth X, lateral Y
        n_d, n_l = shape[depth_axis], shape[lateral_axis]
        s_d, s_l, s_z = spacing[depth_axis], spacing[lateral_axis], spacing[2]
        n_u, n_v = detector_shape
        p_u, p_v = pixel_spacing
        f64 = torch.float64
        depth = (torch.arange(n_d, dtype=f64) - (n_d - 1) / 2.0) * s_d
        det_u = (torch.arange(n_u, dtype=f64) - (n_u - 1) / 2.0) * p_u
        det_v = (torch.arange(n_v, dtype=f64) - (n_v - 1) / 2.0) * p_v
        # fraction of the source-detector distance travelled at each slice (1 for a parallel beam)
        scale = (sad - depth) / sdd if cone else torch.ones_like(depth)

        # factor 1: lateral interpolation, rows (slice d, column u) <- volume rows (x, y) of length Z
        idx, wts, valid = _linear_weights(det_u[None, :] * scale[:, None] / s_l + (n_l - 1) / 2.0, n_l)
        d_idx = torch.arange(n_d)[:, None].expand(n_d, n_u)
        rows = (d_idx * n_u + torch.arange(n_u)[None, :]).expand_as(idx)
        cols = idx * n_y + d_idx if depth_axis == 1 else d_idx * n_y + idx
        self.lateral = (rows[valid], cols[valid], wts[valid], (n_d * n_u, n_x * n_y))

        # factor 2: cranio-caudal interpolation and the sum over slices, rows v <- (slice d, z)
        idx, wts, valid = _linear_weights(det_v[None, :] * scale[:, None] / s_z + (n_z - 1) / 2.0, n_z)
        d_idx = torch.arange(n_d)[:, None].expand(n_d, n_v)
        rows = torch.arange(n_v)[None, :].expand(n_d, n_v).expand_as(idx)
        cols = d_idx * n_z + idx
        self.axial = (rows[valid], cols[valid], wts[valid] * s_d, (n_v, n_d * n_z))

        # path length per unit depth of the ray through pixel (u, v)
        if cone:
            path = torch.sqrt(1.0 + (det_u[:, None] ** 2 + det_v[None, :] ** 2) / sdd**2)
        else:
            path = torch.ones(n_u, n_v, dtype=f64)
        self.path = path
        # projection of a volume of ones (the ray length inside the volume box), for affine intensity maps
        lat_rows, _, lat_vals, _ = self.lateral
        axial_rows, axial_cols, axial_vals, _ = self.axial
        lat_sum = torch.zeros(n_d * n_u, dtype=f64).index_add_(0, lat_rows, lat_vals).view(n_d, n_u)
        axial_sum = torch.zeros(n_v * n_d, dtype=f64).index_add_(0, axial_rows * n_d + axial_cols // n_z, axial_vals)
        self.ones_image = (lat_sum.T @ axial_sum.view(n_v, n_d).T) * path
        self.n_d, self.n_u, self.n_v, self.n_z = n_d, n_u, n_v, n_z
        self._cache: dict = {}

    def operators(self, device: torch.device, dtype: torch.dtype):
        key = (str(device), dtype)
        if key not in self._cache:
            mats = []
            for rows, cols, vals, shape in (self.lateral, self.axial):
                mats.append(_csr(rows, cols, vals, shape).to(device=device, dtype=dtype))
                mats.append(_csr(cols, rows, vals, shape[::-1]).to(device=device, dtype=dtype))
            images = (self.path.to(device=device, dtype=dtype), self.ones_image.to(device=device, dtype=dtype))
            self._cache[key] = (*mats, *images)
        return self._cache[key]

    def ones(self, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """The ``[u, v]`` projection of a volume of ones."""
        return self.operators(device, dtype)[-1]

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_cache": {}}  # sparse CSR tensors neither pickle nor deep-copy; rebuilt lazily


class _Workspace(threading.local):
    """Per-thread scratch buffers reused across calls on the CPU, where fresh volume-sized allocations cost
    page faults; other devices get fresh zeroed buffers (their caching allocators already reuse memory)."""

    def __init__(self) -> None:
        self.buffers: dict = {}

    def get(self, name: str, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        if like.device.type != "cpu":
            return like.new_zeros(shape)
        numel = math.prod(shape)
        key = (name, like.dtype)
        buffer = self.buffers.get(key)
        if buffer is None or buffer.numel() < numel:
            buffer = self.buffers[key] = like.new_empty(numel)
        return buffer[:numel].view(shape)


class _Projection(torch.autograd.Function):
    """Both views of ``[B, X, Y, Z]`` volumes (optionally clamped below), with a hand-written backward.

    Every step is linear except the clamp, so the backward only needs the input (for the clamp mask). The
    volume-sized intermediates live in the workspace and are not kept for autograd; the sparse products
    write in place (``addmm_`` with ``beta=0`` ignores the buffer's old contents).
    """

    @staticmethod
    def forward(ctx, volume, views, clamp_min, workspace):
        b, n_x, n_y, n_z = volume.shape
        if clamp_min is None and b == 1:
            columns = volume.reshape(n_x * n_y, n_z)
        else:  # rows (x, y), columns (batch, z)
            columns = workspace.get("columns", (n_x * n_y, b * n_z), volume)
            source = volume.permute(1, 2, 0, 3)
            if clamp_min is None:
                columns.view(n_x, n_y, b, n_z).copy_(source)
            else:
                torch.clamp(source, min=clamp_min, out=columns.view(n_x, n_y, b, n_z))
        images = []
        for view in views:
            lateral, _, axial, _, path, _ = view.operators(volume.device, volume.dtype)
            slab = workspace.get("slab", (view.n_d * view.n_u, b * n_z), volume)  # rows (d, u), columns (b, z)
            slab.addmm_(lateral, columns, beta=0)
            slab_t = workspace.get("slab_t", (view.n_d * n_z, b * view.n_u), volume)  # rows (d, z), (b, u)
            slab_t.view(view.n_d, n_z, b, view.n_u).copy_(slab.view(view.n_d, view.n_u, b, n_z).permute(0, 3, 2, 1))
            image = volume.new_empty(view.n_v, b * view.n_u).addmm_(axial, slab_t, beta=0)  # [v, (b, u)]
            images.append(image.view(view.n_v, b, view.n_u).permute(1, 2, 0) * path)
        ctx.views, ctx.clamp_min, ctx.workspace, ctx.volume_shape = views, clamp_min, workspace, volume.shape
        ctx.save_for_backward(volume if clamp_min is not None else None)
        return tuple(images)

    @staticmethod
    @once_differentiable
    def backward(ctx, *grads):
        (volume,) = ctx.saved_tensors
        views, workspace = ctx.views, ctx.workspace
        b, n_x, n_y, n_z = ctx.volume_shape
        grad_volume, grad_columns, beta = None, None, 0
        for view, grad in zip(views, grads):
            if grad is None:
                continue
            if grad_columns is None:
                grad_volume = grad.new_empty(b, n_x, n_y, n_z)
                grad_columns = (
                    grad_volume.view(n_x * n_y, n_z)
                    if b == 1
                    else workspace.get("columns", (n_x * n_y, b * n_z), grad)
                )
            _, lateral_t, _, axial_t, path, _ = view.operators(grad.device, grad.dtype)
            grad = (grad * path).permute(2, 0, 1).reshape(view.n_v, b * view.n_u)
            slab_t = workspace.get("slab_t", (view.n_d * n_z, b * view.n_u), grad)
            slab_t.addmm_(axial_t, grad, beta=0)
            slab = workspace.get("slab", (view.n_d * view.n_u, b * n_z), grad)
            slab.view(view.n_d, view.n_u, b, n_z).copy_(slab_t.view(view.n_d, n_z, b, view.n_u).permute(0, 3, 2, 1))
            grad_columns.addmm_(lateral_t, slab, beta=beta)  # rows (x, y), columns (b, z); the second view adds
            beta = 1
        if grad_volume is None:
            return None, None, None, None
        source = grad_columns.view(n_x, n_y, b, n_z).permute(2, 0, 1, 3)
        if ctx.clamp_min is not None:
            # zero where the clamp was active (the kink itself gets 0, as for relu); fused with the B > 1 copy
            torch.ops.aten.threshold_backward.grad_input(source, volume, ctx.clamp_min, grad_input=grad_volume)
        elif b > 1:
            grad_volume.copy_(source)
        return grad_volume, None, None, None


class BiplanarProjector(torch.nn.Module):
    """Differentiable AP + lateral DRR projector for a fixed volume shape and spacing (Joseph's method).

    The sparse interpolation operators are built once in ``__init__`` (and cast once per device and
    dtype), so calling the module each training iteration costs two sparse products per view. The
    geometry is the one of ``DESIGN.md`` (Ge et al., Knowledge-Based Systems 2021, Eq. 5).

    Args:
        volume_shape: ``(X, Y, Z)`` of the volumes to project.
        spacing: voxel spacing ``(sx, sy, sz)`` in mm.
        geometry: ``"cone"`` (point source) or ``"parallel"``. Defaults to ``"cone"``.
        ap_sdd: AP source-to-detector distance in mm. Defaults to 1000.0.
        ap_sad: AP source-to-isocenter distance in mm. Defaults to 900.0.
        la_sdd: LA source-to-detector distance in mm. Defaults to 1500.0.
        la_sad: LA source-to-isocenter distance in mm. Defaults to 1350.0.
        detector_shape: pixels ``(U, V)``; a number, one pair for both views or ``((ap), (la))``.
            Defaults to ``None``: ``(X, Z)`` for AP and ``(Y, Z)`` for LA.
        detector_spacing: pixel spacing in mm at the detector, same forms as ``detector_shape``.
            Defaults to ``None``: voxel spacing x sdd / sad (cone) or the voxel spacing (parallel), so that
            one pixel at the isocenter is one voxel.
        mu_water: attenuation of water in 1/mm, used when ``units="hu"``. Defaults to 0.02.
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
        ap_sdd: float = 1000.0,
        ap_sad: float = 900.0,
        la_sdd: float = 1500.0,
        la_sad: float = 1350.0,
        detector_shape: int | Sequence[int] | Sequence[Sequence[int]] | None = None,
        detector_spacing: float | Sequence[float] | Sequence[Sequence[float]] | None = None,
        mu_water: float = 0.02,
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
        self._ap = _ViewOperator(shape, spacing, 1, ap_shape, ap_pix, *dists["ap"], cone)
        self._la = _ViewOperator(shape, spacing, 0, la_shape, la_pix, *dists["la"], cone)
        self._workspace = _Workspace()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("_workspace", None)  # per-thread scratch memory is neither copied nor pickled
        return state

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self._workspace = _Workspace()

    def forward(self, volume: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Project a batch of volumes.

        Args:
            volume: ``BCXYZ`` (normally ``B1XYZ``) in HU or 1/mm (see ``units``), RAS-aligned.

        Returns:
            ``(ap, la)``: ``BCUV`` images, AP ``U`` along X and ``V`` along Z, LA ``U`` along Y and ``V`` along Z.
            float64 input stays float64; any other dtype is computed in float32.

        Raises:
            ValueError: when ``volume`` is not ``BCXYZ`` of the shape given at construction.
        """
        if volume.ndim != 5 or tuple(volume.shape[2:]) != self.volume_shape:
            raise ValueError(
                f"volume must be BCXYZ with spatial shape {self.volume_shape}, got shape {tuple(volume.shape)}."
            )
        if isinstance(volume, MetaTensor):
            volume = volume.as_tensor()
        if volume.dtype != torch.float64:
            volume = volume.float()
        b, c = volume.shape[:2]
        n_x, n_y, n_z = self.volume_shape
        # mu = mu_water / 1000 * (max(HU, -1000) + 1000): project the clipped HU, add the constant afterwards
        clamp_min = -1000.0 if self.units == "hu" else None
        views = (self._ap, self._la)
        raw = _Projection.apply(volume.reshape(b * c, *self.volume_shape), views, clamp_min, self._workspace)
        images = []
        for operator, image in zip(views, raw):
            if self.units == "hu":
                image = (image + 1000.0 * operator.ones(image.device, image.dtype)) * (self.mu_water / 1000.0)
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


@functools.lru_cache(maxsize=8)
def _cached_projector(*args) -> BiplanarProjector:
    return BiplanarProjector(*args)


def get_projector(
    volume_shape: Sequence[int],
    spacing: Sequence[float],
    geometry: str = "cone",
    ap_sdd: float = 1000.0,
    ap_sad: float = 900.0,
    la_sdd: float = 1500.0,
    la_sad: float = 1350.0,
    detector_shape: int | Sequence[int] | Sequence[Sequence[int]] | None = None,
    detector_spacing: float | Sequence[float] | Sequence[Sequence[float]] | None = None,
    mu_water: float = 0.02,
    units: str = "hu",
    output: str = "line_integral",
) -> BiplanarProjector:
    """A :class:`BiplanarProjector` for these arguments, shared through a small cache (the last 8 geometries).

    Args: see :class:`BiplanarProjector`.

    Returns:
        the (possibly cached) projector; treat it as read-only.
    """
    args = (volume_shape, spacing, geometry, ap_sdd, ap_sad, la_sdd, la_sad)
    args += (detector_shape, detector_spacing, mu_water, units, output)
    return _cached_projector(*(_hashable(a) for a in args))


def project_biplanar(
    volume: torch.Tensor,
    spacing: Sequence[float],
    geometry: str = "cone",
    ap_sdd: float = 1000.0,
    ap_sad: float = 900.0,
    la_sdd: float = 1500.0,
    la_sad: float = 1350.0,
    detector_shape: int | Sequence[int] | Sequence[Sequence[int]] | None = None,
    detector_spacing: float | Sequence[float] | Sequence[Sequence[float]] | None = None,
    mu_water: float = 0.02,
    units: str = "hu",
    output: str = "line_integral",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Functional form of :class:`BiplanarProjector`; the projector of the last few geometries is cached.

    Args:
        volume: ``BCXYZ`` in HU or 1/mm (see ``units``), RAS-aligned, on any device.
        spacing: voxel spacing ``(sx, sy, sz)`` in mm.
        geometry, ap_sdd, ap_sad, la_sdd, la_sad, detector_shape, detector_spacing, mu_water, units, output:
            see :class:`BiplanarProjector`.

    Returns:
        ``(ap, la)``, each ``BCUV``.

    Raises:
        ValueError: see :class:`BiplanarProjector`.
    """
    if volume.ndim != 5:
        raise ValueError(f"volume must be BCXYZ (5 dimensions), got shape {tuple(volume.shape)}.")
    projector = get_projector(
        tuple(volume.shape[2:]),
        spacing,
        geometry,
        ap_sdd,
        ap_sad,
        la_sdd,
        la_sad,
        detector_shape,
        detector_spacing,
        mu_water,
        units,
        output,
    )
    return projector(volume)


class BiplanarDRR(Transform):
    """AP + lateral DRRs of a CT volume in HU (X-CTRSNet training pairs; Ge et al., 2021, Sec. 3.1).

    A DRR pixel is the line integral of ``mu = mu_water * (1 + HU / 1000)`` (clipped at 0) along its ray,
    computed with :class:`BiplanarProjector`. The canonical AP image is ``[C, X, Z]``, the LA image
    ``[C, Y, Z]`` (see :func:`xctrs_monai.transforms.canonical_to_display` for viewing).

    Args:
        geometry: ``"cone"`` or ``"parallel"``. Defaults to ``"cone"``.
        ap_sdd: AP source-to-detector distance in mm. Defaults to 1000.0.
        ap_sad: AP source-to-isocenter distance in mm. Defaults to 900.0.
        la_sdd: LA source-to-detector distance in mm. Defaults to 1500.0.
        la_sad: LA source-to-isocenter distance in mm. Defaults to 1350.0.
        detector_shape: see :class:`BiplanarProjector`. Defaults to ``None`` (one pixel per voxel).
        detector_spacing: see :class:`BiplanarProjector`. Defaults to ``None`` (one pixel per voxel at the
            isocenter).
        mu_water: attenuation of water in 1/mm. Defaults to 0.02.
        output: ``"line_integral"`` or ``"intensity"`` (``exp(-integral)``). Defaults to ``"line_integral"``.
    """

    backend = [torch.Tensor.__name__]

    def __init__(
        self,
        geometry: str = "cone",
        ap_sdd: float = 1000.0,
        ap_sad: float = 900.0,
        la_sdd: float = 1500.0,
        la_sad: float = 1350.0,
        detector_shape: int | Sequence[int] | Sequence[Sequence[int]] | None = None,
        detector_spacing: float | Sequence[float] | Sequence[Sequence[float]] | None = None,
        mu_water: float = 0.02,
        output: str = "line_integral",
    ) -> None:
        self.kwargs = dict(
            geometry=geometry,
            ap_sdd=ap_sdd,
            ap_sad=ap_sad,
            la_sdd=la_sdd,
            la_sad=la_sad,
            detector_shape=_hashable(detector_shape),
            detector_spacing=_hashable(detector_spacing),
            mu_water=mu_water,
            units="hu",
            output=output,
        )
        _check_options(**self.kwargs)

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
            ValueError: for a non-``[C, X, Y, Z]`` or non-finite image, a missing or non-positive spacing, or
                a non-RAS affine.
        """
        if isinstance(img, np.ndarray):
            img = torch.as_tensor(img)
        if not isinstance(img, torch.Tensor) or img.ndim != 4:
            shape = tuple(getattr(img, "shape", ()))
            raise ValueError(f"BiplanarDRR expects a channel-first 3D volume [C, X, Y, Z], got shape {shape}.")
        if isinstance(img, MetaTensor):
            affine_spacing = spacing_from_affine(img.affine, img.meta.get(MetaKeys.SPACE))
            spacing = affine_spacing if spacing is None else spacing
        if spacing is None:
            raise ValueError("BiplanarDRR needs the voxel spacing: pass a MetaTensor with an affine or `spacing`.")
        spacing = tuple(float(s) for s in spacing)
        if len(spacing) != 3 or not all(math.isfinite(s) and s > 0 for s in spacing):
            raise ValueError(f"spacing must be three finite positive values in mm, got {spacing}.")
        if not bool(torch.isfinite(img).all()):
            raise ValueError("BiplanarDRR got a volume with non-finite values (NaN or Inf).")
        volume = img.as_tensor() if isinstance(img, MetaTensor) else img
        projector = get_projector(tuple(volume.shape[1:]), spacing, **self.kwargs)
        ap, la = projector(volume[None])
        if not isinstance(img, MetaTensor):
            return ap[0], la[0]
        outputs = []
        views = (("ap", ap[0], projector.ap_pixel_spacing), ("la", la[0], projector.la_pixel_spacing))
        for view, image, pixel in views:
            n_u, n_v = image.shape[1:]
            affine = torch.tensor(
                [
                    [pixel[0], 0.0, -(n_u - 1) / 2.0 * pixel[0]],
                    [0.0, pixel[1], -(n_v - 1) / 2.0 * pixel[1]],
                    [0.0, 0.0, 1.0],
                ],
                dtype=torch.float64,
            )
            meta = {
                "view": view,
                "geometry": self.kwargs["geometry"],
                "output": self.kwargs["output"],
                "pixel_spacing": tuple(pixel),
                MetaKeys.SPATIAL_SHAPE: (n_u, n_v),
                MetaKeys.SPACE: SpaceKeys.RAS.value,
            }
            if "filename_or_obj" in img.meta:
                meta["filename_or_obj"] = img.meta["filename_or_obj"]
            outputs.append(MetaTensor(image, affine=affine, meta=meta))
        return outputs[0], outputs[1]


class BiplanarDRRd(MapTransform):
    """Dictionary-based wrapper of :class:`BiplanarDRR`: ``d[ap_key], d[la_key] = BiplanarDRR(d[key])``.

    Args:
        keys: the CT keys. Defaults to ``"image"``.
        ap_key: where to write the AP DRR (one per key). Defaults to ``"xray_ap"``.
        la_key: where to write the LA DRR (one per key). Defaults to ``"xray_la"``.
        geometry, ap_sdd, ap_sad, la_sdd, la_sad, detector_shape, detector_spacing, mu_water, output:
            see :class:`BiplanarDRR`.
        allow_missing_keys: don't raise an exception when a key is missing. Defaults to False.
    """

    backend = BiplanarDRR.backend

    def __init__(
        self,
        keys: KeysCollection = "image",
        ap_key: str | Sequence[str] = "xray_ap",
        la_key: str | Sequence[str] = "xray_la",
        geometry: str = "cone",
        ap_sdd: float = 1000.0,
        ap_sad: float = 900.0,
        la_sdd: float = 1500.0,
        la_sad: float = 1350.0,
        detector_shape: int | Sequence[int] | Sequence[Sequence[int]] | None = None,
        detector_spacing: float | Sequence[float] | Sequence[Sequence[float]] | None = None,
        mu_water: float = 0.02,
        output: str = "line_integral",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.ap_keys = ensure_tuple_rep(ap_key, len(self.keys))
        self.la_keys = ensure_tuple_rep(la_key, len(self.keys))
        self.drr = BiplanarDRR(
            geometry, ap_sdd, ap_sad, la_sdd, la_sad, detector_shape, detector_spacing, mu_water, output
        )

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key, ap_key, la_key in self.key_iterator(d, self.ap_keys, self.la_keys):
            d[ap_key], d[la_key] = self.drr(d[key])
        return d

# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""The sparse operators and the autograd function behind :class:`~xctrs_monai.networks.layers.BiplanarProjector`.

Every ray is sampled once per volume slice perpendicular to the beam (Joseph's method). With a flat
detector perpendicular to the beam through the isocenter axis, the in-slice sample position of a ray is
separable: its lateral coordinate depends only on the detector column and the slice, its cranio-caudal
coordinate only on the detector row and the slice. The bilinear in-slice interpolation is therefore two 1D
linear interpolations, each a sparse matrix with two entries per row, applied to the volume with a
transpose in between; the sum over slices is folded into the second sparse product. The operators are
built once per geometry and volume shape (:class:`ViewOperator`), so the work per call is two sparse
products and one blockwise transpose per view, and the memory is a few volume-sized buffers (never
rays x samples x coordinates). As MONAI keeps ``_GridPull`` beside ``AffineTransform``, the autograd
function (:class:`ProjectionFunction`) lives here and the module over it in ``projector.py``.
"""

from __future__ import annotations

import math
import threading
import warnings

import torch
from torch.autograd.function import once_differentiable

from xctrs_monai.constants import grid_origin

__all__ = ["ViewOperator", "Workspace", "ProjectionFunction"]


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


def _centred(n: int, step: float) -> torch.Tensor:
    """Coordinates (mm) of ``n`` samples ``step`` apart, centred on 0 (the grid convention of ``constants``)."""
    return grid_origin(n, step) + step * torch.arange(n, dtype=torch.float64)


class ViewOperator:
    """The two sparse factors of one view, stored in float64 on the CPU, cast lazily per device and dtype.

    Args:
        shape: volume ``(X, Y, Z)``.
        spacing: voxel spacing ``(sx, sy, sz)`` in mm.
        depth_axis: the beam axis, 1 (AP: along Y, lateral X) or 0 (LA: along X, lateral Y).
        detector_shape: pixels ``(U, V)``.
        pixel_spacing: pixel spacing ``(pu, pv)`` at the detector in mm.
        sdd: source-to-detector distance in mm (unused for a parallel beam).
        sad: source-to-isocenter distance in mm (unused for a parallel beam).
        cone: point source (True) or parallel beam (False).
    """

    def __init__(self, shape, spacing, depth_axis, detector_shape, pixel_spacing, sdd, sad, cone):
        n_x, n_y, n_z = shape
        lateral_axis = 1 - depth_axis
        n_d, n_l = shape[depth_axis], shape[lateral_axis]
        s_d, s_l, s_z = spacing[depth_axis], spacing[lateral_axis], spacing[2]
        n_u, n_v = detector_shape
        depth, det_u, det_v = _centred(n_d, s_d), _centred(n_u, pixel_spacing[0]), _centred(n_v, pixel_spacing[1])
        # fraction of the source-detector distance travelled at each slice (1 for a parallel beam)
        scale = (sad - depth) / sdd if cone else torch.ones_like(depth)

        # factor 1: lateral interpolation, rows (slice d, column u) <- volume rows (x, y) of length Z
        idx, wts, valid = _linear_weights((det_u[None, :] * scale[:, None] - grid_origin(n_l, s_l)) / s_l, n_l)
        d_idx = torch.arange(n_d)[:, None].expand(n_d, n_u)
        rows = (d_idx * n_u + torch.arange(n_u)[None, :]).expand_as(idx)
        cols = idx * n_y + d_idx if depth_axis == 1 else d_idx * n_y + idx
        self.lateral = (rows[valid], cols[valid], wts[valid], (n_d * n_u, n_x * n_y))

        # factor 2: cranio-caudal interpolation and the sum over slices, rows v <- (slice d, z)
        idx, wts, valid = _linear_weights((det_v[None, :] * scale[:, None] - grid_origin(n_z, s_z)) / s_z, n_z)
        d_idx = torch.arange(n_d)[:, None].expand(n_d, n_v)
        rows = torch.arange(n_v)[None, :].expand(n_d, n_v).expand_as(idx)
        cols = d_idx * n_z + idx
        self.axial = (rows[valid], cols[valid], wts[valid] * s_d, (n_v, n_d * n_z))

        # path length per unit depth of the ray through pixel (u, v): the obliquity of the ray
        if cone:
            self.path = torch.sqrt(1.0 + (det_u[:, None] ** 2 + det_v[None, :] ** 2) / sdd**2)
        else:
            self.path = torch.ones(n_u, n_v, dtype=torch.float64)
        # projection of a volume of ones (the ray length inside the volume box), for affine intensity maps
        lat_rows, _, lat_vals, _ = self.lateral
        axial_rows, axial_cols, axial_vals, _ = self.axial
        lat_sum = torch.zeros(n_d * n_u, dtype=torch.float64).index_add_(0, lat_rows, lat_vals).view(n_d, n_u)
        axial_sum = torch.zeros(n_v * n_d, dtype=torch.float64)
        axial_sum.index_add_(0, axial_rows * n_d + axial_cols // n_z, axial_vals)
        self.ones_image = (lat_sum.T @ axial_sum.view(n_v, n_d).T) * self.path
        self.n_d, self.n_u, self.n_v, self.n_z = n_d, n_u, n_v, n_z
        self._cache: dict = {}

    def operators(self, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
        """``(lateral, lateral^T, axial, axial^T, path, ones_image)`` on ``device`` in ``dtype`` (cached)."""
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


class Workspace(threading.local):
    """Per-thread scratch buffers reused across calls on the CPU, where fresh volume-sized allocations cost
    page faults; other devices get fresh zeroed buffers (their caching allocators already reuse memory)."""

    def __init__(self) -> None:
        self.buffers: dict = {}

    def get(self, name: str, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        """A ``shape`` buffer of ``like``'s dtype and device; its contents are undefined on the CPU."""
        if like.device.type != "cpu":
            return like.new_zeros(shape)
        numel = math.prod(shape)
        key = (name, like.dtype)
        buffer = self.buffers.get(key)
        if buffer is None or buffer.numel() < numel:
            buffer = self.buffers[key] = like.new_empty(numel)
        return buffer[:numel].view(shape)


class ProjectionFunction(torch.autograd.Function):
    """Both views of ``[B, X, Y, Z]`` volumes (optionally clamped below), with a hand-written backward.

    Every step is linear except the clamp, so the backward only needs the input (for the clamp mask). The
    volume-sized intermediates live in the workspace and are not kept for autograd; the sparse products
    write in place (``addmm_`` with ``beta=0`` ignores the buffer's old contents). Autograd through the
    sparse CSR products themselves would keep every intermediate and cannot differentiate the in-place
    writes, hence the hand-written backward (checked by ``torch.autograd.gradcheck`` in the tests).

    Inputs of ``apply``: ``volume [B, X, Y, Z]``, ``views`` (a sequence of :class:`ViewOperator`),
    ``clamp_min`` (a float or None) and a :class:`Workspace`. Outputs: one ``[B, U, V]`` image per view.
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
            # derivative of the clamp: 1 above the floor, 0 at and below it (as for relu). A float mask in the
            # scratch "slab" buffer (free by now) and one multiplication: measured within ~0.2 ms of a fused
            # kernel at 128^3, where torch.where / masked_fill_ with a bool mask took ~4 ms on the CPU.
            mask = torch.gt(volume, ctx.clamp_min, out=workspace.get("slab", (b, n_x, n_y, n_z), grad))
            if b == 1:  # grad_columns is grad_volume itself
                grad_volume.mul_(mask)
            else:
                torch.mul(source, mask, out=grad_volume)
        elif b > 1:
            grad_volume.copy_(source)
        return grad_volume, None, None, None

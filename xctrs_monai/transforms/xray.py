# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Radiograph orientation (canonical <-> display), intensity normalisation and PNG previews.

Canonical images are the projector's layout (``DESIGN.md``; Ge et al., Knowledge-Based Systems 2021,
Eq. 5): AP ``[C, X, Z]`` and LA ``[C, Y, Z]`` with the volume's RAS axes (X toward the patient's right,
Y anterior, Z superior) and indices increasing with the volume's. Display images are the radiographs as
people read them, ``[C, rows, cols]`` (or ``H x W``):

- rows run from superior (row 0) to inferior, for both views;
- AP: the patient's right is on the viewer's left (anatomical position, the patient facing the viewer),
  so columns run from the patient's right to the patient's left;
- LA: the usual display of a left-lateral cervical-spine or chest film (detector on the patient's left,
  as in our geometry): the patient faces the viewer's left, so columns run from anterior to posterior.

Both views are therefore ``display[r, c] = canonical[A - 1 - c, Z - 1 - r]`` (a transpose and a flip of
both axes), an involution; :func:`canonical_to_display` / :func:`display_to_canonical` are the only
place this is written down. Loading a radiograph converts display -> canonical; previews convert
canonical -> display.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
from PIL import Image

from monai.config import KeysCollection
from monai.config.type_definitions import NdarrayOrTensor
from monai.data.meta_tensor import MetaTensor
from monai.transforms.transform import MapTransform, Transform
from monai.utils import convert_to_dst_type, convert_to_tensor

__all__ = [
    "VIEWS",
    "canonical_to_display",
    "display_to_canonical",
    "NormalizeXray",
    "NormalizeXrayd",
    "write_xray_preview",
]

VIEWS = ("ap", "la")


def _check_view(view: str) -> str:
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}.")
    return view


def _reorient(img: NdarrayOrTensor, view: str) -> NdarrayOrTensor:
    """``out[..., i, j] = img[..., n - 1 - j, m - 1 - i]`` on the last two axes (its own inverse)."""
    _check_view(view)
    if img.ndim < 2:
        raise ValueError(f"a radiograph needs at least 2 dimensions (H x W, [C, H, W]), got shape {tuple(img.shape)}.")
    if isinstance(img, np.ndarray):
        return np.ascontiguousarray(np.flip(img, axis=(-2, -1)).swapaxes(-1, -2))
    out = torch.flip(img, dims=(-2, -1)).transpose(-1, -2).contiguous()
    if isinstance(img, MetaTensor) and img.affine.shape == (3, 3):
        # index map (i, j) -> (n - 1 - j, m - 1 - i) of the input grid, composed into the 2D affine
        n, m = img.shape[-2:]
        index_map = torch.tensor([[0.0, -1.0, n - 1.0], [-1.0, 0.0, m - 1.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
        out.affine = img.affine.to(torch.float64) @ index_map
    return out


def canonical_to_display(img: NdarrayOrTensor, view: str) -> NdarrayOrTensor:
    """A canonical radiograph (AP ``[C, X, Z]``, LA ``[C, Y, Z]``) in display orientation ``[C, rows, cols]``.

    Args:
        img: canonical image, ``[..., A, Z]`` (tensor, ``MetaTensor`` or numpy array; leading axes kept).
        view: ``"ap"`` or ``"la"``.

    Returns:
        the display image ``[..., Z, A]``, same type as ``img``: superior at the top; AP with the patient's
        right on the viewer's left; LA with the patient facing the viewer's left (anterior on the left).

    Raises:
        ValueError: for an unknown view or fewer than 2 dimensions.
    """
    return _reorient(img, view)


def display_to_canonical(img: NdarrayOrTensor, view: str) -> NdarrayOrTensor:
    """The inverse of :func:`canonical_to_display`: a radiograph as displayed -> canonical layout.

    Args:
        img: display image ``[..., rows, cols]`` (superior at the top; AP: patient's right on the viewer's left;
            LA: patient facing the viewer's left).
        view: ``"ap"`` or ``"la"``.

    Returns:
        canonical image ``[..., A, Z]`` (AP ``A`` = X, LA ``A`` = Y), same type as ``img``.

    Raises:
        ValueError: for an unknown view or fewer than 2 dimensions.
    """
    return _reorient(img, view)


class NormalizeXray(Transform):
    """Robust percentile scaling of a radiograph to ``[0, 1]``, the one normalisation for DRRs and real films.

    ``out = (img - p_lower) / (p_upper - p_lower)``, clipped to ``[0, 1]``. When the two percentiles coincide
    (e.g. a small object on a flat background) the minimum and maximum are used instead.

    Args:
        lower: lower percentile in ``[0, 100)``. Defaults to 0.5.
        upper: upper percentile in ``(lower, 100]``. Defaults to 99.5.
        clip: clip the result to ``[0, 1]``. Defaults to True.
        channel_wise: normalise each channel separately (otherwise the whole image). Defaults to False.

    Raises:
        ValueError: for percentiles outside ``0 <= lower < upper <= 100``.
    """

    backend = [torch.Tensor.__name__, np.ndarray.__name__]

    def __init__(self, lower: float = 0.5, upper: float = 99.5, clip: bool = True, channel_wise: bool = False) -> None:
        if not 0.0 <= lower < upper <= 100.0:
            raise ValueError(f"percentiles must satisfy 0 <= lower < upper <= 100, got lower={lower}, upper={upper}.")
        self.lower, self.upper = float(lower), float(upper)
        self.clip, self.channel_wise = clip, channel_wise

    def _normalize(self, img: torch.Tensor) -> torch.Tensor:
        flat = img.reshape(-1)
        q = torch.quantile(flat, torch.tensor([self.lower, self.upper], dtype=flat.dtype, device=flat.device) / 100.0)
        lo, hi = q[0], q[1]
        if not bool(hi > lo):
            lo, hi = flat.min(), flat.max()
            if not bool(hi > lo):
                raise ValueError(f"NormalizeXray got a constant image (all values {float(lo)}); nothing to normalise.")
        out = (img - lo) / (hi - lo)
        return out.clamp(0.0, 1.0) if self.clip else out

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        """
        Args:
            img: radiograph ``[C, H, W]`` (or ``H x W``), any real dtype.

        Returns:
            float32 (float64 stays float64) image of the same shape and type as ``img``, in ``[0, 1]`` when clipped.

        Raises:
            ValueError: for an empty, non-finite (NaN/Inf) or constant image.
        """
        x = convert_to_tensor(img, track_meta=False)
        if x.numel() == 0:
            raise ValueError(f"NormalizeXray got an empty image of shape {tuple(x.shape)}.")
        if not bool(torch.isfinite(x).all()):
            raise ValueError("NormalizeXray got an image with non-finite values (NaN or Inf).")
        x = x.to(torch.float64 if x.dtype == torch.float64 else torch.float32)
        if self.channel_wise and x.ndim > 2:
            out = torch.stack([self._normalize(channel) for channel in x])
        else:
            out = self._normalize(x)
        out, *_ = convert_to_dst_type(out, img, dtype=out.dtype)
        return out


class NormalizeXrayd(MapTransform):
    """Dictionary-based wrapper of :class:`NormalizeXray`.

    Args:
        keys: keys of the radiographs to normalise, e.g. ``["xray_ap", "xray_la"]``.
        lower, upper, clip, channel_wise: see :class:`NormalizeXray`.
        allow_missing_keys: don't raise an exception when a key is missing. Defaults to False.
    """

    backend = NormalizeXray.backend

    def __init__(
        self,
        keys: KeysCollection,
        lower: float = 0.5,
        upper: float = 99.5,
        clip: bool = True,
        channel_wise: bool = False,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.normalizer = NormalizeXray(lower, upper, clip, channel_wise)

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.normalizer(d[key])
        return d


def write_xray_preview(
    path: str | os.PathLike,
    img: NdarrayOrTensor,
    view: str,
    percentiles: Sequence[float] = (0.5, 99.5),
    invert: bool = False,
) -> str:
    """Write a canonical radiograph as an 8-bit grey PNG in display orientation (atomically).

    Args:
        path: output ``.png`` path; its folder must exist.
        img: canonical image ``[1, A, Z]`` or ``A x Z`` (tensor or array), e.g. a DRR line integral (bone bright).
        view: ``"ap"`` or ``"la"``.
        percentiles: the :class:`NormalizeXray` window. Defaults to ``(0.5, 99.5)``.
        invert: write ``1 - value`` (e.g. for a Beer-Lambert intensity, where bone is dark). Defaults to False.

    Returns:
        the path written.

    Raises:
        ValueError: for an unknown view, a multi-channel image, or an image :class:`NormalizeXray` rejects.
    """
    _check_view(view)
    x = convert_to_tensor(img, track_meta=False).detach().cpu()
    if x.ndim == 3 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 2:
        raise ValueError(f"write_xray_preview needs one canonical image [1, A, Z] or A x Z, got {tuple(img.shape)}.")
    x = NormalizeXray(percentiles[0], percentiles[1])(x)
    if invert:
        x = 1.0 - x
    pixels = np.round(canonical_to_display(x, view).numpy() * 255.0).astype(np.uint8)
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    handle, tmp = tempfile.mkstemp(suffix=".png", prefix=".tmp_preview_", dir=folder)
    try:
        with os.fdopen(handle, "wb") as stream:
            Image.fromarray(pixels).save(stream, format="PNG")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path

# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""The X-ray-blind prior: what an evaluation scores without looking at the radiographs.

A model that reconstructs and segments the cervical spine from two radiographs must beat the population
average of its training data; otherwise its figures say nothing about its use of the X-rays. The prior is
that average: the voxel-wise mean of the training CTs and a vote of the training label maps, after the same
deterministic preprocessing as the evaluated ground truth.

Two votes are offered. ``"majority"`` labels each voxel with its most frequent training label (background
included). When the spine's position varies by more than a vertebra's size, as in patients, no vertebra holds
a majority anywhere and this vote is background almost everywhere: a weak baseline that any model beats.
``"volume"`` (the default) keeps the mean spine volume of the training cases: the voxels most often inside a
vertebra, as many as the mean vertebra volume, each labelled with its most frequent vertebra. It is the
stronger of the two for Dice, so a gain over it says more. It is an ``nn.Module`` with
the network's interface (``B2NN -> B9NNN``) that ignores its input, so the evaluator, the postprocessing
and every metric run on it unchanged.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from monai.transforms import Compose, RandomizableTrait

from xctrs_monai.constants import HU_WINDOW, NUM_SEG_CLASSES
from xctrs_monai.metrics.prior_cache import load_prior_arrays, prior_cache_key, save_prior_arrays

__all__ = ["VOTES", "XrayBlindPrior"]

logger = logging.getLogger(__name__)

_CACHE_VERSION = 2
VOTES = ("volume", "majority")


class _VoteAccumulator:
    """Running sum of CTs and per-class voxel counts of label maps, one case at a time."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.total: torch.Tensor | None = None
        self.counts: torch.Tensor | None = None
        self.foreground = 0
        self.n = 0

    def add(self, ct: torch.Tensor, label: torch.Tensor, name: str) -> None:
        ct, label = _spatial(ct, "CT", name), _spatial(label, "label map", name)
        if ct.shape != label.shape:
            raise ValueError(f"{name}: CT shape {tuple(ct.shape)} differs from label shape {tuple(label.shape)}.")
        if self.total is None:
            self.total = torch.zeros(ct.shape, dtype=torch.float64)
            self.counts = torch.zeros((self.num_classes, ct.numel()), dtype=torch.int32)
        elif ct.shape != self.total.shape:
            raise ValueError(
                f"{name}: shape {tuple(ct.shape)} differs from the first training case's {tuple(self.total.shape)};"
                " the prior needs every case on the same grid (resample and crop in the transform)."
            )
        labels = label.round().long().reshape(1, -1)
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= self.num_classes):
            raise ValueError(
                f"{name}: labels must lie in 0..{self.num_classes - 1}, got {int(labels.min())}..{int(labels.max())}."
            )
        self.total += ct.double()
        self.counts.scatter_add_(0, labels, torch.ones_like(labels, dtype=torch.int32))  # type: ignore[union-attr]
        self.foreground += int((labels > 0).sum())
        self.n += 1

    def result(self, vote: str = "volume") -> tuple[torch.Tensor, torch.Tensor]:
        if self.total is None or self.counts is None:
            raise ValueError("the prior needs at least one training case, got none.")
        if vote == "majority":
            # torch.argmax returns the first maximum: a tie goes to the lower label (background first)
            labels = self.counts.argmax(dim=0)
        else:
            inside = self.n - self.counts[0]  # training cases with a vertebra at each voxel
            size = min(round(self.foreground / self.n), int((inside > 0).sum()))
            # the `size` voxels most often inside a vertebra; a stable sort breaks ties by voxel index
            keep = torch.sort(inside, descending=True, stable=True).indices[:size]
            labels = torch.zeros_like(inside, dtype=torch.long)
            labels[keep] = self.counts[1:, keep].argmax(dim=0) + 1
        return (self.total / self.n).float(), labels.reshape(self.total.shape)


def _spatial(volume: torch.Tensor | np.ndarray, what: str, name: str) -> torch.Tensor:
    """``XYZ`` from ``XYZ`` or ``1XYZ`` (plain tensor, on CPU)."""
    t = torch.as_tensor(np.asarray(volume) if isinstance(volume, np.ndarray) else volume).detach().cpu()
    t = t.as_subclass(torch.Tensor)
    if t.ndim == 4 and t.shape[0] == 1:
        t = t[0]
    if t.ndim != 3:
        raise ValueError(f"{name}: the {what} must be XYZ or 1XYZ, got shape {tuple(t.shape)}.")
    return t


def _check_vote(vote: str) -> None:
    if vote not in VOTES:
        raise ValueError(f"vote must be one of {VOTES}, got {vote!r}.")


def _check_deterministic(transform: Callable | None) -> None:
    flat = transform.flatten().transforms if isinstance(transform, Compose) else [transform]
    random = [type(t).__name__ for t in flat if isinstance(t, RandomizableTrait)]
    if random:
        raise ValueError(f"the prior must be computed with deterministic transforms only, got random {random}.")


class XrayBlindPrior(nn.Module):
    """
    The X-ray-blind population prior of an evaluation: channel 0 is the voxel-wise mean of the training CTs
    on the [0, 1] scale, channels 1..``num_classes`` the one-hot vote of the training label maps (see the
    module docstring for the two votes; a tie goes to the lower label).

    ``forward(xray)`` returns it for every case of the batch, ``B2NN -> B(1 + num_classes)NNN``: the layout of
    ``XCTRSNet`` (``B9NNN``), so an evaluator scores it with the model's metrics. It reads only the batch size
    and device of its input. Build it with :meth:`from_datalist` on the **training split** of the evaluated
    fold and the evaluation's deterministic transforms, or with :meth:`fit` on ``(ct, label)`` pairs.

    Args:
        mean_ct: ``XYZ`` or ``1XYZ`` mean CT on [0, 1].
        labels: ``XYZ`` or ``1XYZ`` voted labels in ``0..num_classes - 1``.
        num_classes: segmentation channels (background + vertebrae). Defaults to ``constants.NUM_SEG_CLASSES``.
        case_ids: the training cases it was computed from, for the record. Defaults to ().

    Raises:
        ValueError: when the shapes differ or a label is outside ``0..num_classes - 1``.
    """

    def __init__(
        self,
        mean_ct: torch.Tensor | np.ndarray,
        labels: torch.Tensor | np.ndarray,
        num_classes: int = NUM_SEG_CLASSES,
        case_ids: Sequence[str] = (),
    ) -> None:
        super().__init__()
        if int(num_classes) != num_classes or num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2, got {num_classes}.")
        mean = _spatial(mean_ct, "mean CT", "XrayBlindPrior").float()
        lab = _spatial(labels, "label map", "XrayBlindPrior").round().long()
        if mean.shape != lab.shape:
            raise ValueError(f"mean_ct shape {tuple(mean.shape)} differs from labels shape {tuple(lab.shape)}.")
        if int(lab.min()) < 0 or int(lab.max()) >= num_classes:
            raise ValueError(f"labels must lie in 0..{num_classes - 1}, got {int(lab.min())}..{int(lab.max())}.")
        self.num_classes = int(num_classes)
        self.case_ids = tuple(str(c) for c in case_ids)
        self.register_buffer("mean_ct", mean[None])
        self.register_buffer("labels", lab)

    def forward(self, xray: torch.Tensor) -> torch.Tensor:
        """
        Args:
            xray: ``B2NN`` radiographs; only the batch size and device are used.

        Returns:
            ``B(1 + num_classes)XYZ`` float32: the mean CT and the one-hot vote, per case.
        """
        seg = nn.functional.one_hot(self.labels, self.num_classes).movedim(-1, 0).float()
        out = torch.cat([self.mean_ct.float(), seg], dim=0).unsqueeze(0).to(xray.device)
        return out.expand(xray.shape[0], *out.shape[1:]).clone()

    @classmethod
    def fit(
        cls,
        cases: Iterable[tuple[torch.Tensor, torch.Tensor]],
        num_classes: int = NUM_SEG_CLASSES,
        vote: str = "volume",
    ) -> XrayBlindPrior:
        """
        Compute the prior from ``(ct, label)`` pairs (``XYZ`` or ``1XYZ``, the CT on [0, 1]).

        Args:
            cases: the training cases, all on the same grid.
            num_classes: segmentation channels. Defaults to ``constants.NUM_SEG_CLASSES``.
            vote: ``"volume"`` or ``"majority"`` (module docstring). Defaults to ``"volume"``.

        Returns:
            the prior.

        Raises:
            ValueError: when there is no case, the grids differ, a label is out of range or ``vote`` is unknown.
        """
        _check_vote(vote)
        acc = _VoteAccumulator(int(num_classes))
        for i, (ct, label) in enumerate(cases):
            acc.add(torch.as_tensor(ct), torch.as_tensor(label), f"case {i}")
        return cls(*acc.result(vote), num_classes=num_classes)

    @classmethod
    def from_datalist(
        cls,
        items: Sequence[Mapping],
        transform: Callable,
        cache_dir: str | Path | None = None,
        image_key: str = "image",
        label_key: str = "label",
        hu_window: tuple[float, float] | None = HU_WINDOW,
        num_classes: int = NUM_SEG_CLASSES,
        num_workers: int = 0,
        vote: str = "volume",
    ) -> XrayBlindPrior:
        """
        Compute the prior from the training items of a datalist, or read it from the cache.

        Each item goes through ``transform`` (the evaluation's deterministic preprocessing of the ground
        truth: load, orient, resample, crop), then its CT is mapped from ``hu_window`` to [0, 1] and clipped
        (as the evaluation's ``ScaleIntensityRanged`` does). With ``cache_dir``, the result is kept in
        ``<cache_dir>/xray_blind_prior_<key>.npz`` (written atomically), ``key`` naming the cases (ids, file
        sizes and modification times) and the transform's parameters, so a repeated evaluation reads it and
        any change of data or preprocessing computes a new one. A cache that cannot be written is skipped with
        a warning.

        Args:
            items: the **training** items (data dicts with ``image_key`` and ``label_key``), never the
                evaluated cases.
            transform: deterministic transform of an item (a random one raises).
            cache_dir: folder of the cache file, e.g. the dataset folder; None computes every time. Defaults
                to None.
            image_key: key of the CT. Defaults to ``"image"``.
            label_key: key of the label map. Defaults to ``"label"``.
            hu_window: the HU values of 0 and 1; None when ``transform`` gives the CT on [0, 1] already.
                Defaults to ``constants.HU_WINDOW``.
            num_classes: segmentation channels. Defaults to ``constants.NUM_SEG_CLASSES``.
            num_workers: data-loader workers. Defaults to 0.
            vote: ``"volume"`` or ``"majority"`` (module docstring). Defaults to ``"volume"``.

        Returns:
            the prior.

        Raises:
            ValueError: when ``items`` is empty, ``transform`` is random, the grids differ, a label is out of
                range, or the CT is on [0, 1] while ``hu_window`` is given (the message names the case).
        """
        from torch.utils.data import DataLoader

        from monai.data import Dataset

        items = [dict(item) for item in items]
        if not items:
            raise ValueError("items is empty: the prior needs the training cases of the evaluated fold.")
        _check_deterministic(transform)
        _check_vote(vote)
        case_ids = [str(item.get("case_id", item.get(image_key, i))) for i, item in enumerate(items)]
        params = {"hu_window": hu_window, "num_classes": int(num_classes), "vote": vote, "version": _CACHE_VERSION}
        path = None
        if cache_dir is not None:
            key = prior_cache_key(items, (image_key, label_key), transform, params)
            path = Path(cache_dir) / f"xray_blind_prior_{key}.npz"
            if path.is_file():
                try:
                    mean_ct, labels, meta = load_prior_arrays(path)
                    logger.info(f"X-ray-blind prior of {len(items)} training cases read from {path}")
                    return cls(mean_ct, labels, num_classes=num_classes, case_ids=meta.get("case_ids", ()))
                except ValueError as err:
                    warnings.warn(f"recomputing the X-ray-blind prior: {err}", stacklevel=2)
        acc = _VoteAccumulator(int(num_classes))
        loader = DataLoader(Dataset(items, transform), batch_size=None, num_workers=int(num_workers))
        for name, data in zip(case_ids, loader):
            ct = _spatial(data[image_key], "CT", name).float()
            if hu_window is not None:
                if ct.numel() and float(ct.min()) >= 0.0 and float(ct.max()) <= 1.0:
                    raise ValueError(
                        f"{name}: the CT after the transform lies in [0, 1], not in HU; pass a transform that"
                        " gives HU, or hu_window=None."
                    )
                low, high = float(hu_window[0]), float(hu_window[1])
                ct = ((ct - low) / (high - low)).clamp(0.0, 1.0)
            acc.add(ct, data[label_key], name)
        prior = cls(*acc.result(vote), num_classes=num_classes, case_ids=case_ids)
        logger.info(f"X-ray-blind prior computed from {acc.n} training cases")
        if path is not None:
            meta = {"case_ids": case_ids, **params}
            try:
                save_prior_arrays(path, prior.mean_ct[0].numpy(), prior.labels.numpy(), meta)
            except OSError as err:
                warnings.warn(f"could not cache the X-ray-blind prior in {path}: {err}", stacklevel=2)
        return prior

# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Prepare a real CT dataset (NIfTI, DICOM series or other ITK formats, with vertebra labels) for xctrs-monai.

Each case is read with MONAI's ``LoadImage`` (``NibabelReader`` for NIfTI, ``ITKReader`` for DICOM series and
other ITK formats; the affine is MONAI's RAS world), its labels are mapped onto 0 background / 1..7 = C1..C7,
and the CT and labels are resampled with ``SpatialResample`` in one step from the source voxels onto the
output grid: ``xctrs_monai.constants.grid_affine(size, spacing)`` (RAS, isotropic, centred on the world
origin) laid over the centre of the C1..C7 bounding box. Resampling straight onto the final grid (rather than
``Orientation``, ``Spacing`` and a crop in turn) interpolates once, reorients without a copy of the scan and
puts the box centre exactly on the grid centre. The CT gets a Gaussian anti-aliasing pre-filter when
down-sampling (CT bilinear, labels nearest).

The prepared volumes live on the grid convention of every volume in this project (phantoms, reconstructions):
world origin = grid centre = isocenter of the projector. Where that was in the source scan, the C1..C7 box
centre in the source's RAS world, is recorded per case as ``world_offset_mm`` in the datalist (source world =
prepared world + offset).

Measured on a 512 x 512 x 600 int16 ``.nii.gz`` CT (0.7 x 0.7 x 0.8 mm, LPS voxel order) with C1..C7 labels,
prepared onto 128^3 at 1.25 mm with one thread (peak resident set of the process, a loaded machine; this code
through ``scripts/benchmark_prepare.py``, the others on the same case in scratch runs): the former hand-written
readers (block-wise NIfTI, scipy resampler) took 35 s and 1.79 GB; ``LoadImage`` of CT and labels together,
``SpatialCrop`` and ``SpatialResample`` 18 s and 2.15 GB; ``Orientation`` + ``Spacing`` of the whole scan +
crop/pad 24 s and 2.98 GB (and no anti-aliasing, and a grid centre off the box centre by up to half a voxel).
Hence the order here: the labels are read, reduced to their box and dropped before the CT is read, and the CT
is cropped to the footprint of the output grid before anything else is done with it: 16 s and 1.09 GB, the
peak being ``LoadImage`` of the CT itself.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from monai.data import MetaTensor
from monai.transforms import LoadImage, SpatialCrop, SpatialResample

from xctrs_monai.constants import DEFAULT_IMG_SIZE, DEFAULT_SPACING, HU_AIR, grid_affine, grid_origin
from xctrs_monai.data.cases import LABEL_PRESETS, CaseSkipped, SourceCase, find_cases, resolve_label_mapping
from xctrs_monai.data.datalist import assign_folds
from xctrs_monai.data.io import save_json, save_nifti
from xctrs_monai.data.phantom_dataset import LABEL_NAMES

__all__ = [
    "LABEL_PRESETS",
    "CaseSkipped",
    "PreparedCase",
    "SourceCase",
    "find_cases",
    "load_volume",
    "prepare_case",
    "prepare_dataset",
    "resolve_label_mapping",
]


class PreparedCase(NamedTuple):
    """One prepared case: ``ct`` int16 HU and ``labels`` uint8 (``XYZ``) on ``affine`` = ``grid_affine(size,
    spacing)``, ``world_offset`` (mm) of that grid's centre in the source scan's RAS world, and ``warnings``."""

    ct: np.ndarray
    labels: np.ndarray
    affine: np.ndarray
    world_offset: np.ndarray
    warnings: list[str]


def _reader(path: Path) -> str | Any:
    """NIfTI through nibabel; a DICOM folder (its largest series) and other formats through ITK."""
    if path.name.lower().endswith((".nii", ".nii.gz")):
        return "NibabelReader"
    if not path.is_dir():
        return "ITKReader"
    import itk
    from monai.data import ITKReader

    names = itk.GDCMSeriesFileNames.New()
    names.SetUseSeriesDetails(True)
    names.SetDirectory(str(path))
    uids = list(names.GetSeriesUIDs())
    if not uids:
        raise CaseSkipped(f"unreadable: no DICOM series in {str(path)!r}")
    return ITKReader(series_name=max(uids, key=lambda uid: len(names.GetFileNames(uid))))


def load_volume(path: str | os.PathLike, is_label: bool = False) -> MetaTensor:
    """Read a 3D volume with MONAI's ``LoadImage``: NIfTI, a folder holding DICOM series, or an ITK format.

    Args:
        path: a ``.nii``/``.nii.gz`` file, a folder of DICOM files (its largest series is read) or an
            ITK-readable file (``.mha``, ``.nrrd``...).
        is_label: round floating-point values to integers (labels stored as floats). Defaults to False.

    Returns:
        a ``[1, X, Y, Z]`` MetaTensor in the file's own data type with its RAS affine.

    Raises:
        CaseSkipped: ``unreadable: ...`` when the file cannot be read, ``wrong dimensionality: ...`` when it is
            not one 3D volume.
    """
    path = Path(path)
    try:
        loader = LoadImage(reader=_reader(path), image_only=True, ensure_channel_first=True, dtype=None)
        img = loader(str(path))
    except CaseSkipped:
        raise
    except Exception as e:  # any reader failure makes the case unreadable, never the run
        raise CaseSkipped(f"unreadable: {type(e).__name__}: {e}") from e
    if img.ndim != 4 or img.shape[0] != 1:
        raise CaseSkipped(f"wrong dimensionality: {path.name} has shape {tuple(img.shape)}, expected one 3D volume")
    if is_label and img.is_floating_point():
        img = torch.round(img)
    return img


def _cervical_box(label: MetaTensor, mapping: Mapping[int, int]) -> tuple[np.ndarray, np.ndarray, set[int]]:
    """World (mm) bounding box of the voxels whose source id ``mapping`` knows, and the C-levels present.

    Raises:
        CaseSkipped: when no voxel holds a mapped id.
    """
    values = label.as_tensor()[0]
    ids = sorted(mapping)
    if not values.is_floating_point():  # ids the file's integer type cannot hold cannot occur in it
        ids = [i for i in ids if torch.iinfo(values.dtype).min <= i <= torch.iinfo(values.dtype).max]
    mask = torch.isin(values, torch.tensor(ids, dtype=values.dtype))
    extent = [torch.nonzero(mask.any(dim=[d for d in range(3) if d != k]))[:, 0] for k in range(3)]
    if any(e.numel() == 0 for e in extent):
        present = sorted(int(v) for v in torch.unique(values) if v != 0)[:20]
        raise CaseSkipped(f"no cervical labels: source ids {present} hold none of {sorted(mapping)}")
    inside = values[tuple(slice(int(e[0]), int(e[-1]) + 1) for e in extent)]
    levels = {mapping[int(v)] for v in torch.unique(inside).tolist() if int(v) in mapping}
    lo = np.array([float(e[0]) - 0.5 for e in extent])
    hi = np.array([float(e[-1]) + 0.5 for e in extent])
    corners = np.array([[a, b, c, 1.0] for a in (lo[0], hi[0]) for b in (lo[1], hi[1]) for c in (lo[2], hi[2])])
    world = (np.asarray(label.affine, dtype=np.float64) @ corners.T).T[:, :3]
    return world.min(0), world.max(0), levels


def _footprint(img: MetaTensor, out_affine: np.ndarray, size: int, margin: int) -> MetaTensor | None:
    """``img`` cropped (``SpatialCrop``) to the source voxels under the output grid, ``margin`` voxels wider;
    ``None`` when the grid does not overlap the scan."""
    to_source = np.linalg.inv(np.asarray(img.affine, dtype=np.float64)) @ out_affine
    ends = (0, size - 1)
    corners = np.array([[a, b, c, 1.0] for a in ends for b in ends for c in ends])
    source = (to_source @ corners.T).T[:, :3]
    shape = np.array(img.shape[1:])
    start = np.clip(np.floor(source.min(0)).astype(int) - margin, 0, shape)
    end = np.clip(np.ceil(source.max(0)).astype(int) + 1 + margin, 0, shape)
    if np.any(end <= start):
        return None
    return SpatialCrop(roi_start=start.tolist(), roi_end=end.tolist())(img)


def _resample(img: MetaTensor | None, out_affine: np.ndarray, size: int, mode: str) -> np.ndarray:
    """``SpatialResample`` onto the output grid, zero outside the scan."""
    if img is None:
        return np.zeros((size,) * 3, dtype=np.float32)
    resample = SpatialResample(mode=mode, padding_mode="zeros", dtype=torch.float32)
    out = resample(img.float(), dst_affine=torch.as_tensor(out_affine), spatial_size=(size,) * 3)
    return out.as_tensor()[0].numpy()


def _smooth(img: MetaTensor, sigma: np.ndarray) -> MetaTensor:
    """Gaussian anti-aliasing of a ``[1, X, Y, Z]`` block, ``sigma`` in voxels per axis.

    scipy's ``gaussian_filter`` rather than MONAI's ``GaussianSmooth``: on the 239 x 238 x 211 footprint of the
    benchmark case (sigma 0.39, 0.39, 0.28 voxels, one thread) ``GaussianSmooth`` took 2.8 s and 0.96 GB of
    transient memory (20x the block), ``gaussian_filter`` 0.31 s and none beyond its output.
    """
    from scipy import ndimage

    smoothed = ndimage.gaussian_filter(img.as_tensor()[0].numpy(), sigma=sigma.tolist(), mode="nearest")
    return MetaTensor(torch.from_numpy(smoothed)[None], affine=img.affine)


def _map_labels(block: torch.Tensor, mapping: Mapping[int, int]) -> torch.Tensor:
    """Source ids -> 1..7 (others 0) through a lookup table."""
    top = max(max(mapping), 0)
    lut = torch.zeros(top + 1, dtype=torch.uint8)
    for src, dst in mapping.items():
        if src >= 0:
            lut[src] = dst
    valid = (block >= 0) & (block <= top)
    return torch.where(valid, lut[block.long().clamp(0, top)], torch.zeros((), dtype=torch.uint8))


def prepare_case(
    case: SourceCase,
    mapping: Mapping[int, int],
    spacing: float = DEFAULT_SPACING,
    size: int = DEFAULT_IMG_SIZE,
    margin_mm: float = 10.0,
    keep_context: bool = True,
) -> PreparedCase:
    """Read, map and resample one case onto the output grid centred on its C1..C7 box.

    With ``keep_context`` the whole grid holds the scan (``HU_AIR`` and label 0 only where the scan ends);
    without it, voxels farther than ``margin_mm`` from the box are padding as well. CT values below ``HU_AIR``
    are air for the projector and the network's HU window alike and are stored as ``HU_AIR``.

    Args:
        case: the source case.
        mapping: ``{source label id: 1..7}``.
        spacing: output isotropic voxel size in mm. Defaults to ``constants.DEFAULT_SPACING``.
        size: output grid size in voxels per axis. Defaults to ``constants.DEFAULT_IMG_SIZE``.
        margin_mm: margin around the C1..C7 bounding box in mm. Defaults to 10.
        keep_context: keep the scan around the box up to the grid edge. Defaults to True.

    Returns:
        the :class:`PreparedCase`.

    Raises:
        CaseSkipped: when the case is unreadable, not 3D, has image/label shapes that differ, or has no
            cervical labels.
    """
    if case.problem:
        raise CaseSkipped(case.problem)
    label = load_volume(case.label, is_label=True)
    lo, hi, levels = _cervical_box(label, mapping)
    centre = 0.5 * (lo + hi)
    affine = grid_affine(size, spacing)
    placed = affine.copy()  # the output grid in the source's world
    placed[:3, 3] += centre
    warnings = []
    extent = hi - lo + 2.0 * margin_mm
    if np.any(extent > size * spacing):
        warnings.append(
            f"C1..C7 box with margin {np.round(extent, 1).tolist()} mm exceeds the grid {size * spacing:g} mm; "
            "centre-cropped"
        )
    label_shape = tuple(label.shape[1:])
    block = _footprint(label, placed, size, margin=1)
    if block is not None:
        block = MetaTensor(_map_labels(block.as_tensor(), mapping), affine=block.affine)
    labels = np.rint(_resample(block, placed, size, "nearest")).astype(np.uint8)
    del label, block  # before the CT is read: the peak memory is one scan, not two

    ct = load_volume(case.image)
    if tuple(ct.shape[1:]) != label_shape:
        raise CaseSkipped(f"shape mismatch: image {tuple(ct.shape[1:])} vs label {label_shape}")
    voxel = np.linalg.norm(np.asarray(ct.affine, dtype=np.float64)[:3, :3], axis=0)
    sigma = np.maximum(0.0, (spacing / voxel - 1.0) / 2.0)  # Gaussian anti-aliasing, in source voxels
    block = _footprint(ct, placed, size, margin=int(math.ceil(4.0 * sigma.max())) + 2)
    del ct
    if block is not None:
        block = block.float() - HU_AIR  # air -> 0: the zero padding of the resampling is air
        if np.any(sigma > 0.05):
            block = _smooth(block, sigma)
    image = _resample(block, placed, size, "bilinear") + HU_AIR

    if not keep_context:
        world = grid_origin(size, spacing) + spacing * np.arange(size)  # output grid, box centre at 0
        inside = [(world >= lo[k] - centre[k] - margin_mm) & (world <= hi[k] - centre[k] + margin_mm) for k in range(3)]
        box = inside[0][:, None, None] & inside[1][None, :, None] & inside[2][None, None, :]
        image[~box] = HU_AIR
        labels[~box] = 0
    lost = sorted(levels - set(np.unique(labels).tolist()))
    if lost:
        warnings.append(f"labels {lost} fall outside the grid")
    image = np.rint(np.clip(image, HU_AIR, np.iinfo(np.int16).max)).astype(np.int16)
    return PreparedCase(image, labels, affine, centre, warnings)


def _previous_offsets(out: Path) -> dict[str, list[float]]:
    """``world_offset_mm`` of the cases in an earlier ``datalist.json`` of ``out`` (for a resumed run)."""
    try:
        items = json.loads((out / "datalist.json").read_text())["training"]
        return {item["case_id"]: item["world_offset_mm"] for item in items if "world_offset_mm" in item}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def prepare_dataset(
    out_dir: str | os.PathLike,
    images_dir: str | os.PathLike | None = None,
    labels_dir: str | os.PathLike | None = None,
    cases: str | os.PathLike | None = None,
    labels: str | Mapping[Any, Any] = "verse",
    spacing: float = DEFAULT_SPACING,
    size: int = DEFAULT_IMG_SIZE,
    margin_mm: float = 10.0,
    keep_context: bool = True,
    n_folds: int = 10,
    seed: int = 0,
    patient_regex: str | None = None,
) -> dict[str, Any]:
    """Prepare a dataset of CT + vertebra labels: RAS, isotropic, centred on C1..C7, with folds.

    Writes ``out_dir/images/<case>.nii.gz`` (int16 HU), ``out_dir/labels/<case>.nii.gz`` (uint8,
    1..7 = C1..C7), both on ``constants.grid_affine(size, spacing)``, ``out_dir/datalist.json``
    (decathlon style; per case its ``fold``, all cases of a patient in one fold, and its
    ``world_offset_mm``) and ``out_dir/skipped.json`` (``[{"case_id", "source", "reason"}]``).
    A case that fails is skipped with its reason and never stops the run; cases whose outputs
    exist are not redone. Note that the folds are recomputed over all good cases on every run.

    Args:
        out_dir: output folder.
        images_dir: folder of CT volumes or DICOM series folders (with ``labels_dir``).
        labels_dir: folder of label volumes matched to the images by case id.
        cases: a CSV/JSON list of cases instead of the folders (see ``find_cases``).
        labels: label convention: a preset in ``LABEL_PRESETS`` or a mapping source id -> 1..7.
            Defaults to ``"verse"``.
        spacing: output isotropic voxel size in mm. Defaults to ``constants.DEFAULT_SPACING`` (the
            default grid's field of view holds an adult C1..C7 with margin, see ``constants``).
        size: output grid size. Defaults to ``constants.DEFAULT_IMG_SIZE``.
        margin_mm: margin around the C1..C7 box in mm. Defaults to 10.
        keep_context: keep the scan around the box up to the grid edge. Defaults to True.
        n_folds: number of cross-validation folds. Defaults to 10.
        seed: seed of the fold assignment. Defaults to 0.
        patient_regex: regular expression giving the patient id from the case id (folder mode).

    Returns:
        a summary dict: ``datalist`` (path), ``written``, ``done`` (case ids), ``skipped``
        (``[{"case_id", "source", "reason"}]``) and ``warnings`` (``{case_id: [...]}``).

    Raises:
        ValueError: for bad arguments (unknown preset, missing folders or list, out-of-range numbers).
    """
    mapping = resolve_label_mapping(labels)
    if not spacing > 0:
        raise ValueError(f"spacing must be > 0, got {spacing}.")
    if int(size) != size or size < 8:
        raise ValueError(f"size must be an integer >= 8, got {size}.")
    if not margin_mm >= 0:
        raise ValueError(f"margin_mm must be >= 0, got {margin_mm}.")
    if int(n_folds) != n_folds or n_folds < 1:
        raise ValueError(f"n_folds must be a positive integer, got {n_folds}.")
    sources = find_cases(images_dir, labels_dir, cases, patient_regex)
    from tqdm import tqdm

    out = Path(out_dir)
    previous = _previous_offsets(out)
    good: list[tuple[SourceCase, list[float]]] = []
    summary: dict[str, Any] = {"written": [], "done": [], "skipped": [], "warnings": {}}
    for case in tqdm(sources, desc=f"prepare -> {out}", unit="case"):
        image_out, label_out = out / "images" / f"{case.case_id}.nii.gz", out / "labels" / f"{case.case_id}.nii.gz"
        try:
            if image_out.is_file() and label_out.is_file():
                if case.case_id not in previous:  # an interrupted run: the offset is the box centre again
                    lo, hi, _ = _cervical_box(load_volume(case.label, is_label=True), mapping)
                    previous[case.case_id] = (0.5 * (lo + hi)).tolist()
                summary["done"].append(case.case_id)
                good.append((case, [float(v) for v in previous[case.case_id]]))
                continue
            prepared = prepare_case(case, mapping, float(spacing), int(size), float(margin_mm), keep_context)
        except CaseSkipped as e:
            summary["skipped"].append({"case_id": case.case_id, "source": str(case.image), "reason": str(e)})
            continue
        save_nifti(prepared.ct, prepared.affine, image_out)
        save_nifti(prepared.labels, prepared.affine, label_out)
        if prepared.warnings:
            summary["warnings"][case.case_id] = prepared.warnings
        summary["written"].append(case.case_id)
        good.append((case, prepared.world_offset.tolist()))
    folds = assign_folds([c.patient_id for c, _ in good], n_folds=int(n_folds), seed=int(seed))
    items = [
        {
            "image": f"images/{c.case_id}.nii.gz",
            "label": f"labels/{c.case_id}.nii.gz",
            "fold": k,
            "case_id": c.case_id,
            "patient_id": c.patient_id,
            "source_image": str(c.image),
            "world_offset_mm": [round(v, 4) for v in offset],
        }
        for (c, offset), k in zip(good, folds)
    ]
    datalist = {
        "name": "xctrs-prepared",
        "description": "CT with C1..C7 labels, RAS, isotropic, centred on C1..C7 (xctrs_monai.data.prepare_dataset); "
        "world_offset_mm: the grid centre in the source scan's RAS world (source = prepared + offset).",
        "tensorImageSize": "3D",
        "modality": {"0": "CT"},
        "labels": LABEL_NAMES,
        "numTraining": len(items),
        "n_folds": int(n_folds),
        "prepare": {
            "spacing": float(spacing),
            "size": int(size),
            "margin_mm": float(margin_mm),
            "keep_context": bool(keep_context),
            "label_mapping": {str(k): v for k, v in mapping.items()},
        },
        "training": items,
    }
    out.mkdir(parents=True, exist_ok=True)
    summary["datalist"] = str(save_json(datalist, out / "datalist.json"))
    save_json(summary["skipped"], out / "skipped.json")
    return summary

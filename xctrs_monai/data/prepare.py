# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Prepare a real CT dataset (NIfTI or DICOM CT + NIfTI vertebra labels) for xctrs-monai.

Each case is read with its affine (nibabel for NIfTI, ITK for DICOM series and other ITK formats),
its labels are mapped onto 0 background / 1..7 = C1..C7, and the CT and labels are resampled in one
step from the source voxels onto the output grid: RAS, isotropic ``spacing``, ``size``^3 voxels,
centred on the C1..C7 bounding box (CT trilinear with a Gaussian anti-aliasing pre-filter when
down-sampling, labels nearest). Resampling straight from the source onto the final grid (rather
than reorienting, resampling and cropping in turn) interpolates once and keeps the physical
position of every structure. Outputs are written atomically with a decathlon datalist whose folds
keep all cases of one patient together.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xctrs_monai.data.datalist import assign_folds
from xctrs_monai.data.io import save_json, save_nifti
from xctrs_monai.data.phantom_dataset import LABEL_NAMES

__all__ = [
    "LABEL_PRESETS",
    "CaseSkipped",
    "SourceCase",
    "find_cases",
    "load_volume",
    "prepare_case",
    "prepare_dataset",
    "resolve_label_mapping",
]

PAD_HU = -1024.0

LABEL_PRESETS: dict[str, dict[int, int]] = {
    "verse": {k: k for k in range(1, 8)},
    "ctspine1k": {k: k for k in range(1, 8)},
    "rsna2022": {k: k for k in range(1, 8)},
    "totalseg_v2": {51 - k: k for k in range(1, 8)},  # vertebrae_C1 = 50 ... vertebrae_C7 = 44
    "totalseg_v1": {42 - k: k for k in range(1, 8)},  # vertebrae_C1 = 41 ... vertebrae_C7 = 35
}
"""Source label id -> 1..7 (C1..C7) for common datasets."""

_VOLUME_SUFFIXES = (".nii.gz", ".nii", ".mha", ".mhd", ".nrrd", ".nhdr")
_ID_SUFFIX = re.compile(r"(_ct|_image|_img|_0000|_seg-vert_msk|_seg|_labels?|_mask|_msk)$", re.IGNORECASE)


class CaseSkipped(Exception):
    """A case that cannot be prepared; the message is the reason written to ``skipped.json``."""


@dataclass
class SourceCase:
    """One input case: a CT (NIfTI/ITK file or DICOM series folder) and its label file."""

    case_id: str
    image: Path
    label: Path | None
    patient_id: str = ""
    problem: str = field(default="")

    def __post_init__(self) -> None:
        self.patient_id = self.patient_id or self.case_id


# --------------------------------------------------------------------------------------------
# arguments
# --------------------------------------------------------------------------------------------
def resolve_label_mapping(labels: str | Mapping[Any, Any]) -> dict[int, int]:
    """Turn a preset name or an explicit mapping into ``{source id: 1..7}``.

    Args:
        labels: a name in ``LABEL_PRESETS`` (``verse``, ``ctspine1k``, ``rsna2022``, ``totalseg_v2``,
            ``totalseg_v1``), a mapping ``{source id: target id in 1..7}``, or that mapping as a JSON
            string (keys may be strings, as JSON writes them).

    Returns:
        the mapping with integer keys and values.

    Raises:
        ValueError: for an unknown preset or a mapping with ids that are not integers or targets
            outside 1..7.
    """
    if isinstance(labels, str):
        text = labels.strip()
        if text.startswith("{"):
            try:
                labels = json.loads(text)
            except ValueError as e:
                raise ValueError(f"labels is neither a preset nor a JSON mapping, got {text!r}.") from e
        elif text.lower() in LABEL_PRESETS:
            return dict(LABEL_PRESETS[text.lower()])
        else:
            raise ValueError(f"labels must be one of the presets {sorted(LABEL_PRESETS)} or a mapping, got {labels!r}.")
    if not isinstance(labels, Mapping) or not labels:
        raise ValueError(f"labels must be a preset name or a non-empty mapping source id -> 1..7, got {labels!r}.")
    mapping = {}
    for src, dst in labels.items():
        try:
            s, d = int(src), int(dst)
        except (TypeError, ValueError) as e:
            raise ValueError(f"label mapping ids must be integers, got {src!r}: {dst!r}.") from e
        if not 1 <= d <= 7:
            raise ValueError(f"label mapping targets must be in 1..7 (C1..C7), got {src!r}: {dst!r}.")
        mapping[s] = d
    return mapping


def _strip_volume_suffix(name: str) -> str | None:
    for suf in _VOLUME_SUFFIXES:
        if name.lower().endswith(suf):
            return name[: -len(suf)]
    return None


def _case_key(stem: str) -> str:
    prev = None
    while prev != stem:
        prev, stem = stem, _ID_SUFFIX.sub("", stem)
    return stem


def _patient(case_id: str, patient_regex: str | None) -> str:
    if not patient_regex:
        return case_id
    m = re.search(patient_regex, case_id)
    if m is None:
        return case_id
    return m.group(1) if m.groups() else m.group(0)


def find_cases(
    images_dir: str | os.PathLike | None = None,
    labels_dir: str | os.PathLike | None = None,
    cases: str | os.PathLike | None = None,
    patient_regex: str | None = None,
) -> list[SourceCase]:
    """List the input cases, from two folders matched by case id or from a CSV/JSON list.

    Folder mode: every volume file in ``images_dir`` (``.nii.gz``, ``.nii``, ``.mha``, ``.nrrd``...)
    or sub-folder (a DICOM series) is a case; its id is the name without extension and without a
    trailing ``_ct``, ``_image``, ``_0000`` (images) or ``_seg``, ``_seg-vert_msk``, ``_label``,
    ``_mask``, ``_msk`` (labels), and the label file in ``labels_dir`` with the same id is its label.
    List mode: ``cases`` is a CSV with columns ``image``, ``label`` and optional ``patient_id``,
    ``case_id``, or a JSON list of such objects (or ``{"cases": [...]}``); relative paths are taken
    from the list's folder.

    Args:
        images_dir: folder of CT volumes or DICOM series folders.
        labels_dir: folder of label volumes.
        cases: CSV or JSON list of cases (instead of the folders).
        patient_regex: optional regular expression applied to the case id; its first group (or the
            whole match) is the patient id used to group folds. Defaults to one patient per case.

    Returns:
        the cases, sorted by case id; cases without a label have ``problem`` set.

    Raises:
        ValueError: when the arguments do not name one existing source (folders or list).
    """
    if cases is not None and (images_dir is not None or labels_dir is not None):
        raise ValueError(f"give either cases={str(cases)!r} or images_dir/labels_dir, not both.")
    if cases is not None:
        return _cases_from_list(Path(cases), patient_regex)
    if images_dir is None or labels_dir is None:
        raise ValueError(
            f"images_dir and labels_dir are both needed, got images_dir={images_dir!r}, labels_dir={labels_dir!r}."
        )
    images_dir, labels_dir = Path(images_dir), Path(labels_dir)
    for name, d in (("images_dir", images_dir), ("labels_dir", labels_dir)):
        if not d.is_dir():
            raise ValueError(f"{name} must be an existing folder, got {str(d)!r}.")
    labels: dict[str, list[Path]] = {}
    for p in sorted(labels_dir.iterdir()):
        stem = _strip_volume_suffix(p.name)
        if p.is_file() and stem is not None and not p.name.startswith("."):
            labels.setdefault(_case_key(stem), []).append(p)
    out = []
    for p in sorted(images_dir.iterdir()):
        if p.name.startswith("."):
            continue
        stem = p.name if p.is_dir() else _strip_volume_suffix(p.name)
        if stem is None:
            continue
        key = _case_key(stem)
        found = labels.get(key, [])
        case = SourceCase(key, p, found[0] if len(found) == 1 else None, _patient(key, patient_regex))
        if not found:
            case.problem = f"no label file for case id {key!r} in {str(labels_dir)!r}"
        elif len(found) > 1:
            case.problem = f"ambiguous label files {[f.name for f in found]}"
        out.append(case)
    return sorted(out, key=lambda c: c.case_id)


def _cases_from_list(path: Path, patient_regex: str | None) -> list[SourceCase]:
    if not path.is_file():
        raise ValueError(f"cases must be an existing CSV or JSON file, got {str(path)!r}.")
    if path.suffix.lower() == ".json":
        rows = json.loads(path.read_text())
        rows = rows.get("cases", rows.get("training")) if isinstance(rows, dict) else rows
        if not isinstance(rows, list):
            raise ValueError(f"cases JSON must be a list of {{image, label}} objects, got {str(path)!r}.")
    elif path.suffix.lower() == ".csv":
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
    else:
        raise ValueError(f"cases must be a .csv or .json file, got {str(path)!r}.")
    out, seen = [], set()
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping) or not row.get("image"):
            raise ValueError(f"case {i} of {str(path)!r} has no 'image': {row!r}.")
        image = Path(row["image"]) if Path(row["image"]).is_absolute() else path.parent / row["image"]
        label = row.get("label")
        label = None if not label else (Path(label) if Path(label).is_absolute() else path.parent / label)
        case_id = str(row.get("case_id") or "") or _case_key(_strip_volume_suffix(image.name) or image.name)
        if case_id in seen:
            case_id = f"{case_id}_{i:04d}"
        seen.add(case_id)
        patient = str(row.get("patient_id") or "") or _patient(case_id, patient_regex)
        case = SourceCase(case_id, image, label, patient)
        if label is None:
            case.problem = "no label given"
        out.append(case)
    return sorted(out, key=lambda c: c.case_id)


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------
def _itk_to_numpy(img) -> tuple[np.ndarray, np.ndarray]:
    import itk

    arr = itk.array_from_image(img)  # (z, y, x)
    arr = np.transpose(arr, tuple(range(arr.ndim))[::-1])
    nd = arr.ndim
    direction = np.asarray(img.GetDirection(), dtype=np.float64).reshape(nd, nd)
    spacing = np.asarray(img.GetSpacing(), dtype=np.float64)
    origin = np.asarray(img.GetOrigin(), dtype=np.float64)
    aff = np.eye(4)
    k = min(nd, 3)
    aff[:k, :k] = (direction @ np.diag(spacing))[:k, :k]
    aff[:k, 3] = origin[:k]
    aff = np.diag([-1.0, -1.0, 1.0, 1.0]) @ aff  # ITK LPS -> RAS
    return arr, aff


def _read_dicom_series(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    import itk

    names = itk.GDCMSeriesFileNames.New()
    names.SetUseSeriesDetails(True)
    names.SetDirectory(str(folder))
    uids = list(names.GetSeriesUIDs())
    if not uids:
        raise CaseSkipped(f"unreadable: no DICOM series in {str(folder)!r}")
    files = max((list(names.GetFileNames(u)) for u in uids), key=len)
    reader = itk.ImageSeriesReader[itk.Image[itk.F, 3]].New(FileNames=files, ImageIO=itk.GDCMImageIO.New())
    reader.Update()
    return _itk_to_numpy(reader.GetOutput())


class _LazyVolume:
    """A NIfTI image read block by block (``vol[sx, sy, sz]`` -> float32), so a large CT is never loaded whole."""

    def __init__(self, proxy) -> None:
        self.proxy = proxy
        self.shape = tuple(proxy.shape)
        self.ndim = len(self.shape)

    def __getitem__(self, sl: tuple[slice, ...]) -> np.ndarray:
        try:
            block = np.asarray(self.proxy[tuple(sl) + (0,) * (self.ndim - len(sl))], dtype=np.float32)
        except Exception as e:  # a truncated or corrupt file shows only when read
            raise CaseSkipped(f"unreadable: {type(e).__name__}: {e}") from e
        return block


def load_volume(path: str | os.PathLike, is_label: bool = False, lazy: bool = False) -> tuple[Any, np.ndarray]:
    """Read a volume and its RAS affine: NIfTI (nibabel), a DICOM series folder or another ITK format.

    Args:
        path: a ``.nii``/``.nii.gz`` file, a folder holding one DICOM series, or an ITK-readable
            file (``.mha``, ``.nrrd``...).
        is_label: read integer labels (rounded, int32) instead of float32 intensities. Defaults to False.
        lazy: for NIfTI intensities, return an object with ``shape`` whose ``[sx, sy, sz]`` slicing reads
            only that block (float32). Defaults to False.

    Returns:
        ``(array, affine)``: the voxel array (``XYZ`` for a volume) and the ``4x4`` voxel-to-RAS-mm
        affine.

    Raises:
        CaseSkipped: with an ``unreadable: ...`` reason when the file cannot be read.
    """
    path = Path(path)
    try:
        if path.is_dir():
            arr, aff = _read_dicom_series(path)
        elif path.name.lower().endswith((".nii", ".nii.gz")):
            import nibabel as nib

            img = nib.load(str(path))
            aff = np.asarray(img.affine, dtype=np.float64)
            if lazy and not is_label:
                return _LazyVolume(img.dataobj), aff
            arr = np.asanyarray(img.dataobj) if is_label else img.get_fdata(dtype=np.float32)
        else:
            import itk

            arr, aff = _itk_to_numpy(itk.imread(str(path), itk.F))
    except CaseSkipped:
        raise
    except Exception as e:  # any reader failure makes the case unreadable, never the run
        raise CaseSkipped(f"unreadable: {type(e).__name__}: {e}") from e
    if is_label:
        arr = np.asarray(arr)
        return (arr if np.issubdtype(arr.dtype, np.integer) else np.rint(arr)).astype(np.int32), aff
    return np.asarray(arr, dtype=np.float32), aff


def _shape_3d(shape: Sequence[int], what: str) -> tuple[int, int, int]:
    shape = tuple(int(n) for n in shape)
    core = shape[:3] if len(shape) >= 3 and all(n == 1 for n in shape[3:]) else shape
    if len(core) != 3:
        raise CaseSkipped(f"wrong dimensionality: {what} has shape {shape}, expected a 3D volume")
    return core


def _map_labels(lab: np.ndarray, mapping: Mapping[int, int]) -> np.ndarray:
    """Source ids -> 1..7 (others 0) through a lookup table."""
    top = max(mapping)
    lut = np.zeros(top + 1, dtype=np.uint8)
    for src, dst in mapping.items():
        if src >= 0:
            lut[src] = dst
    valid = (lab >= 0) & (lab <= top)
    out = np.zeros(lab.shape, dtype=np.uint8)
    out[valid] = lut[lab[valid]]
    return out


# --------------------------------------------------------------------------------------------
# resampling
# --------------------------------------------------------------------------------------------
def _world_box(mask: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    idx = np.argwhere(mask)
    lo, hi = idx.min(0) - 0.5, idx.max(0) + 0.5
    corners = np.array([[a, b, c, 1.0] for a in (lo[0], hi[0]) for b in (lo[1], hi[1]) for c in (lo[2], hi[2])])
    world = (affine @ corners.T).T[:, :3]
    return world.min(0), world.max(0)


def _resample(
    src: np.ndarray | _LazyVolume,
    src_affine: np.ndarray,
    out_affine: np.ndarray,
    size: int,
    order: int,
    cval: float,
    spacing: float,
) -> np.ndarray:
    """Sample ``src`` on the output grid (``size``^3 voxels of ``out_affine``), reading only the block needed."""
    from scipy import ndimage

    m = np.linalg.inv(src_affine) @ out_affine  # output voxel -> source voxel
    corners = np.array([[a, b, c, 1.0] for a in (0, size - 1) for b in (0, size - 1) for c in (0, size - 1)])
    src_c = (m @ corners.T).T[:, :3]
    shape = np.array(src.shape[:3])
    lo = np.clip(np.floor(src_c.min(0)).astype(int) - 2, 0, shape)
    hi = np.clip(np.ceil(src_c.max(0)).astype(int) + 3, 0, shape)
    dtype = np.float32 if order > 0 else src.dtype
    if np.any(hi <= lo):
        return np.full((size,) * 3, cval, dtype=dtype)
    block = src[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]  # reads only this block of a lazy NIfTI
    if order > 0:
        block = block.astype(np.float32)
        vox = np.linalg.norm(src_affine[:3, :3], axis=0)
        sigma = np.maximum(0.0, (spacing / vox - 1.0) / 2.0)
        if np.any(sigma > 0.05):
            block = ndimage.gaussian_filter(block, sigma=sigma, mode="nearest")
    i = np.arange(size, dtype=np.float32)
    coords = [
        (m[k, 0] * i[:, None, None] + m[k, 1] * i[None, :, None] + m[k, 2] * i[None, None, :] + (m[k, 3] - lo[k]))
        for k in range(3)
    ]
    coords = [c.astype(np.float32) for c in coords]
    return ndimage.map_coordinates(
        block, coords, order=order, mode="constant", cval=cval, output=dtype, prefilter=False
    )


def prepare_case(
    case: SourceCase,
    mapping: Mapping[int, int],
    spacing: float = 1.25,
    size: int = 128,
    margin_mm: float = 10.0,
    keep_context: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Read, map, resample and crop one case onto the RAS output grid.

    The output grid is RAS with ``diag(spacing)`` axes and is centred on the bounding box of the
    C1..C7 labels. With ``keep_context`` the whole grid holds the scan (padding with -1024 HU and
    label 0 only where the scan ends); without it, voxels farther than ``margin_mm`` from the box
    are padding as well.

    Args:
        case: the source case.
        mapping: ``{source label id: 1..7}``.
        spacing: output isotropic voxel size in mm. Defaults to 1.25.
        size: output grid size in voxels per axis. Defaults to 128.
        margin_mm: margin around the C1..C7 bounding box in mm. Defaults to 10.
        keep_context: keep the scan around the box up to the grid edge. Defaults to True.

    Returns:
        ``(ct_hu int16 XYZ, labels uint8 XYZ, affine 4x4, warnings)``.

    Raises:
        CaseSkipped: when the case is unreadable, not 3D, has image/label shapes that differ, or
            has no cervical labels.
    """
    if case.problem:
        raise CaseSkipped(case.problem)
    ct, ct_aff = load_volume(case.image, lazy=True)
    ct_shape = _shape_3d(ct.shape, "image")
    if ct.ndim > 3 and isinstance(ct, np.ndarray):
        ct = ct.reshape(ct_shape)
    lab, lab_aff = load_volume(case.label, is_label=True)
    lab = lab.reshape(_shape_3d(lab.shape, "label"))
    if ct_shape != lab.shape:
        raise CaseSkipped(f"shape mismatch: image {ct_shape} vs label {tuple(lab.shape)}")
    mapped = _map_labels(lab, mapping)
    if not mapped.any():
        present = sorted(int(v) for v in np.unique(lab) if v != 0)[:20]
        raise CaseSkipped(f"no cervical labels: source ids {present} hold none of {sorted(mapping)}")
    lo, hi = _world_box(mapped > 0, lab_aff)
    centre = 0.5 * (lo + hi)
    out_aff = np.diag([spacing, spacing, spacing, 1.0])
    out_aff[:3, 3] = centre - 0.5 * (size - 1) * spacing
    warnings = []
    extent = hi - lo + 2.0 * margin_mm
    if np.any(extent > size * spacing):
        warnings.append(
            f"C1..C7 box with margin {np.round(extent, 1).tolist()} mm exceeds the grid {size * spacing:g} mm; "
            "centre-cropped"
        )
    ct_out = _resample(ct, ct_aff, out_aff, size, order=1, cval=PAD_HU, spacing=spacing)
    lab_out = _resample(mapped, lab_aff, out_aff, size, order=0, cval=0, spacing=spacing)
    if not keep_context:
        w = out_aff[:3, 3][:, None] + spacing * np.arange(size)[None, :]
        inside = [(w[k] >= lo[k] - margin_mm) & (w[k] <= hi[k] + margin_mm) for k in range(3)]
        box = inside[0][:, None, None] & inside[1][None, :, None] & inside[2][None, None, :]
        ct_out[~box] = PAD_HU
        lab_out[~box] = 0
    lost = sorted(set(np.unique(mapped).tolist()) - set(np.unique(lab_out).tolist()))
    if lost:
        warnings.append(f"labels {lost} fall outside the grid")
    ct_out = np.rint(np.clip(ct_out, PAD_HU, 32767)).astype(np.int16)
    return ct_out, lab_out.astype(np.uint8), out_aff, warnings


# --------------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------------
def prepare_dataset(
    out_dir: str | os.PathLike,
    images_dir: str | os.PathLike | None = None,
    labels_dir: str | os.PathLike | None = None,
    cases: str | os.PathLike | None = None,
    labels: str | Mapping[Any, Any] = "verse",
    spacing: float = 1.25,
    size: int = 128,
    margin_mm: float = 10.0,
    keep_context: bool = True,
    n_folds: int = 10,
    seed: int = 0,
    patient_regex: str | None = None,
) -> dict[str, Any]:
    """Prepare a dataset of CT + vertebra labels: RAS, isotropic, cropped around C1..C7, with folds.

    Writes ``out_dir/images/<case>.nii.gz`` (int16 HU), ``out_dir/labels/<case>.nii.gz`` (uint8,
    1..7 = C1..C7), ``out_dir/datalist.json`` (decathlon style, ``fold`` per case, all cases of a
    patient in one fold) and ``out_dir/skipped.json`` (``[{"case_id", "source", "reason"}]``).
    A case that fails is skipped with its reason and never stops the run; cases whose outputs
    exist are not redone. Note that the folds are recomputed over all good cases on every run.

    Args:
        out_dir: output folder.
        images_dir: folder of CT volumes or DICOM series folders (with ``labels_dir``).
        labels_dir: folder of label volumes matched to the images by case id.
        cases: a CSV/JSON list of cases instead of the folders (see ``find_cases``).
        labels: label convention: a preset in ``LABEL_PRESETS`` or a mapping source id -> 1..7.
            Defaults to ``"verse"``.
        spacing: output isotropic voxel size in mm. Defaults to 1.25 (a 160 mm field of view at
            size 128, enough for an adult C1..C7 with margin).
        size: output grid size. Defaults to 128.
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
    good: list[SourceCase] = []
    summary: dict[str, Any] = {"written": [], "done": [], "skipped": [], "warnings": {}}
    for case in tqdm(sources, desc=f"prepare -> {out}", unit="case"):
        image_out, label_out = out / "images" / f"{case.case_id}.nii.gz", out / "labels" / f"{case.case_id}.nii.gz"
        if image_out.is_file() and label_out.is_file():
            summary["done"].append(case.case_id)
            good.append(case)
            continue
        try:
            ct, lab, aff, warns = prepare_case(case, mapping, float(spacing), int(size), float(margin_mm), keep_context)
        except CaseSkipped as e:
            summary["skipped"].append({"case_id": case.case_id, "source": str(case.image), "reason": str(e)})
            continue
        save_nifti(ct, aff, image_out)
        save_nifti(lab, aff, label_out)
        if warns:
            summary["warnings"][case.case_id] = warns
        summary["written"].append(case.case_id)
        good.append(case)
    folds = assign_folds([c.patient_id for c in good], n_folds=int(n_folds), seed=int(seed))
    items = [
        {
            "image": f"images/{c.case_id}.nii.gz",
            "label": f"labels/{c.case_id}.nii.gz",
            "fold": k,
            "case_id": c.case_id,
            "patient_id": c.patient_id,
            "source_image": str(c.image),
        }
        for c, k in zip(good, folds)
    ]
    datalist = {
        "name": "xctrs-prepared",
        "description": "CT with C1..C7 labels, RAS, isotropic, centred on C1..C7 (xctrs_monai.data.prepare_dataset).",
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

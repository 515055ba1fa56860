# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""The input cases of dataset preparation: CT + label files found in folders or listed in a CSV/JSON file,
and the label conventions of common datasets mapped onto 0 background / 1..7 = C1..C7."""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["LABEL_PRESETS", "CaseSkipped", "SourceCase", "find_cases", "resolve_label_mapping"]

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

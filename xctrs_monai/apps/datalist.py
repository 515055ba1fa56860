# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""The inference datalist: one radiograph pair, or the rows of a CSV of pairs, each checked on its own."""

from __future__ import annotations

import csv
from pathlib import Path

from monai.config import PathLike

__all__ = ["RESERVED_NAMES", "case_id_from_path", "check_case_id", "read_pairs", "make_datalist"]

#: Names a case folder may not take: the run summary sits beside the case folders.
RESERVED_NAMES = ("summary.json",)
_SUFFIXES = (".nii.gz", ".nii", ".dcm", ".dicom", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def case_id_from_path(path: PathLike) -> str:
    """A case id from a radiograph path: its file name without the image suffix (``ap_01.dcm`` -> ``ap_01``)."""
    name = Path(path).name
    for suffix in _SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)] or name
    return name


def check_case_id(case_id: object) -> str:
    """``case_id`` as a plain folder name.

    Raises:
        ValueError: for an empty or path-like id, one starting with ``.`` (hidden, like the staging folders),
            or a reserved name (:data:`RESERVED_NAMES`).
    """
    text = str(case_id).strip() if case_id is not None else ""
    if not text or Path(text).name != text or text.startswith(".") or "\\" in text:
        raise ValueError(f"case_id must be a plain folder name (no path, not starting with '.'), got {text!r}.")
    if text in RESERVED_NAMES:
        raise ValueError(f"case_id {text!r} is reserved for the run summary; choose another.")
    return text


def read_pairs(csv_path: PathLike) -> tuple[list[dict], dict[str, str]]:
    """Read a CSV of radiograph pairs with a header ``ap,la[,case_id]``; each row is checked on its own.

    Relative paths are taken relative to the CSV's folder; the case id defaults to the AP file name without
    its suffix. A row with an empty view, an invalid case id, or a case id already used by an earlier row
    fails alone; the other rows are kept.

    Args:
        csv_path: the CSV file.

    Returns:
        ``(items, failures)``: ``[{"xray_ap", "xray_la", "case_id"}, ...]`` in file order, and
        ``{"<case id or row> (line N)": message}`` for the rows that failed.

    Raises:
        ValueError: naming the file, when it is missing, unreadable, or has no ``ap``/``la`` columns.
    """
    path = Path(csv_path)
    if not path.is_file():
        raise ValueError(f"Pairs CSV '{path}' does not exist or is not a file.")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            columns = [str(c).strip().lower() for c in (reader.fieldnames or [])]
            if "ap" not in columns or "la" not in columns:
                raise ValueError(f"Pairs CSV '{path}' needs the columns ap,la[,case_id]; got {reader.fieldnames}.")
            rows = [{str(k).strip().lower(): (v or "").strip() for k, v in row.items() if k} for row in reader]
    except (UnicodeDecodeError, csv.Error) as e:
        raise ValueError(f"Pairs CSV '{path}' cannot be read as CSV text: {e}.") from None
    items, failures, seen = [], {}, set()
    for line, row in enumerate(rows, start=2):
        if not any(row.values()):
            continue
        files = {
            v: str(path.parent / row[v]) if row.get(v) and not Path(row[v]).is_absolute() else row.get(v, "")
            for v in ("ap", "la")
        }
        label = row.get("case_id") or case_id_from_path(files["ap"] or files["la"] or f"line{line}")
        where = f"{label} (line {line})"
        try:
            case_id = check_case_id(label)
            missing = [v.upper() for v in ("ap", "la") if not files[v]]
            if missing:
                raise ValueError(f"Missing view: no {' and no '.join(missing)} radiograph in '{path}' line {line}.")
            if case_id in seen:
                raise ValueError(
                    f"Pairs CSV '{path}' line {line} repeats case_id '{case_id}'; give unique case_id values."
                )
        except ValueError as e:
            failures[where] = str(e)
            continue
        seen.add(case_id)
        items.append({"xray_ap": files["ap"], "xray_la": files["la"], "case_id": case_id})
    return items, failures


def make_datalist(
    ap_image: PathLike | None = None,
    la_image: PathLike | None = None,
    case_id: str | None = None,
    pairs_csv: PathLike | None = None,
) -> list[dict]:
    """The datalist of ``inference.json``: one pair (``ap_image`` + ``la_image``), the rows of ``pairs_csv``, or
    nothing (an empty list, e.g. for MONAI's ``check_properties`` with no input given).

    Args:
        ap_image: the AP radiograph.
        la_image: the lateral radiograph.
        case_id: the case id of the pair; defaults to ``None`` (the AP file name without suffix).
        pairs_csv: a CSV of pairs (see :func:`read_pairs`); used when no pair is given.

    Returns:
        ``[{"xray_ap", "xray_la", "case_id"}, ...]``.

    Raises:
        ValueError: when one view of the pair is missing, a case id is invalid, or a CSV row fails (all of the
            failing rows are listed: a bundle run checks the whole CSV first; ``xctrs-infer`` runs the good rows).
    """
    ap = str(ap_image or "").strip()
    la = str(la_image or "").strip()
    if ap or la:
        if not la:
            raise ValueError(f"Missing view: an AP radiograph ('{ap}') was given but no lateral (LA) one.")
        if not ap:
            raise ValueError(f"Missing view: a lateral (LA) radiograph ('{la}') was given but no AP one.")
        return [{"xray_ap": ap, "xray_la": la, "case_id": check_case_id(case_id or case_id_from_path(ap))}]
    if pairs_csv:
        items, failures = read_pairs(pairs_csv)
        if failures:
            raise ValueError("; ".join(f"{k}: {v}" for k, v in failures.items()))
        return items
    return []

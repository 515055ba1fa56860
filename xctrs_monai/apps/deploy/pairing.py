# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Choosing the AP and the lateral radiograph among the DICOM instances of a study folder (MONAI Deploy app).

A hospital pipeline hands the app a folder, not a pair. The radiographs in it (``Modality`` DX, CR, RF or XA,
:data:`~xctrs_monai.transforms.xray_checks.ACCEPTED_MODALITIES`) are classified by their headers with the
project's own rule, :func:`~xctrs_monai.transforms.xray_checks.view_from_header` (``ViewPosition``, else
``PatientOrientation``); exactly one frontal and one lateral view of one patient are needed, and anything
else is refused with a message that lists what the folder holds. The inference then checks the chosen pair
again (:class:`~xctrs_monai.transforms.xray_checks.CheckXrayPair`: same pixels twice, implausible shape).
Needs pydicom only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from xctrs_monai.transforms.xray_checks import ACCEPTED_MODALITIES, view_from_header

__all__ = ["header_fields", "describe_instance", "select_xray_pair"]


def header_fields(ds) -> dict:
    """The fields of a pydicom dataset that :func:`view_from_header` and the messages use."""
    return {
        "modality": str(ds.get("Modality", "")).strip().upper(),
        "view_position": str(ds.get("ViewPosition", "")),
        "patient_orientation": "\\".join(str(v) for v in (ds.get("PatientOrientation") or [])),
        "filename_or_obj": str(getattr(ds, "filename", "") or ds.get("SOPInstanceUID", "")),
        "patient_id": str(ds.get("PatientID", "")),
    }


def describe_instance(ds) -> str:
    """``'<file>' (DX, ViewPosition AP)``: one instance as the error messages list it."""
    fields = header_fields(ds)
    view, why = view_from_header(fields)
    evidence = why if view else "no ViewPosition or PatientOrientation that tells the view"
    return f"'{Path(fields['filename_or_obj']).name}' ({fields['modality'] or 'no Modality'}, {evidence})"


def select_xray_pair(datasets: Sequence, folder: str = "the input folder") -> tuple:
    """The ``(ap, lateral)`` datasets of a study folder: its one frontal and one lateral radiograph.

    Args:
        datasets: the pydicom datasets of the folder (e.g. the native instances that MONAI Deploy's
            ``DICOMDataLoaderOperator`` loaded); instances of other modalities (a CT series, a report) are skipped.
        folder: how to name the folder in messages. Defaults to ``"the input folder"``.

    Returns:
        ``(ap, la)``, two of ``datasets``.

    Raises:
        ValueError: naming the folder and listing its radiographs, when there is no radiograph, a view is
            missing, a view is ambiguous (two frontal or two lateral images), an image is oblique, or the two
            images are of different patients.
    """
    radiographs = [ds for ds in datasets if header_fields(ds)["modality"] in ACCEPTED_MODALITIES]
    if not radiographs:
        found = sorted({header_fields(ds)["modality"] or "no Modality" for ds in datasets})
        raise ValueError(
            f"No radiograph in {folder}: {len(datasets)} DICOM instance(s) of modality {', '.join(found) or 'none'}; "
            f"an AP and a lateral radiograph ({', '.join(ACCEPTED_MODALITIES)}) are needed."
        )
    views = {"ap": [], "la": [], "oblique": [], "": []}
    for ds in radiographs:
        views[view_from_header(header_fields(ds))[0]].append(ds)
    listing = "; ".join(describe_instance(ds) for ds in radiographs)
    if views["oblique"]:
        raise ValueError(f"{folder} holds an oblique view, which the model was not trained on: {listing}.")
    for view, name in (("ap", "frontal (AP/PA)"), ("la", "lateral")):
        if len(views[view]) > 1:
            raise ValueError(
                f"Ambiguous pair in {folder}: {len(views[view])} {name} radiographs; give one AP and one lateral "
                f"view per study. Radiographs: {listing}."
            )
    missing = [name for view, name in (("ap", "frontal (AP/PA)"), ("la", "lateral")) if not views[view]]
    if missing:
        raise ValueError(f"No {' and no '.join(missing)} radiograph in {folder}. Radiographs: {listing}.")
    ap, la = views["ap"][0], views["la"][0]
    ids = header_fields(ap)["patient_id"], header_fields(la)["patient_id"]
    if all(ids) and ids[0] != ids[1]:
        raise ValueError(
            f"The AP and lateral radiographs in {folder} are of different patients (PatientID {ids[0]!r} and "
            f"{ids[1]!r}): {listing}."
        )
    return ap, la

# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Checks of a radiograph pair before it reaches the network: what the files say about themselves.

A wrong pair gives a confident-looking wrong reconstruction, so what the headers can tell is checked
first: the modality (a CT or MR slice is not a radiograph), the view (DICOM ``ViewPosition`` and
``PatientOrientation`` against the view each file is given as: a swapped pair is refused, or swapped when
allowed), the same image given twice (hash of the stored pixels) and an implausible shape (a strip, not a
radiograph). The pixel spacing is checked where the geometry is known, in
:class:`~xctrs_monai.transforms.load_xray.XrayToDetector`.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, Transform

__all__ = [
    "ACCEPTED_MODALITIES",
    "FRONTAL_POSITIONS",
    "LATERAL_POSITIONS",
    "OBLIQUE_POSITIONS",
    "view_from_header",
    "CheckXrayPair",
    "CheckXrayPaird",
]

#: DICOM Modality values of projection radiographs: digital and computed radiography, fluoroscopy, angiography.
ACCEPTED_MODALITIES = ("DX", "CR", "RF", "XA")
#: DICOM ViewPosition values of a frontal (AP-like) view.
FRONTAL_POSITIONS = ("AP", "PA")
#: DICOM ViewPosition values of a lateral view (``LL``/``RL`` are the standard terms).
LATERAL_POSITIONS = ("LL", "RL", "LAT", "LATERAL")
#: DICOM ViewPosition values of oblique views, which the model was not trained on.
OBLIQUE_POSITIONS = ("RLO", "LLO", "RAO", "LAO", "LPO", "RPO")


def view_from_header(meta: Mapping) -> tuple[str, str]:
    """The view a radiograph's DICOM header describes: ``("ap" | "la" | "oblique" | "", evidence)``.

    ``ViewPosition`` decides when it is a known term; otherwise ``PatientOrientation`` does: a row direction
    (or, for a rotated image, a column direction) along the patient's left-right means a frontal view,
    along anterior-posterior a lateral one. Empty when the header says nothing (PNG, NIfTI, missing tags).
    """
    position = str(meta.get("view_position", "")).strip().upper()
    if position in FRONTAL_POSITIONS:
        return "ap", f"ViewPosition {position}"
    if position in LATERAL_POSITIONS:
        return "la", f"ViewPosition {position}"
    if position in OBLIQUE_POSITIONS:
        return "oblique", f"ViewPosition {position}"
    orientation = str(meta.get("patient_orientation", "")).strip().upper()
    letters = [p.strip()[:1] for p in orientation.split("\\") if p.strip()]
    across = [c for c in letters if c not in "HF"]
    if len(letters) == 2 and len(across) == 1:
        if across[0] in "LR":
            return "ap", f"PatientOrientation {orientation}"
        if across[0] in "AP":
            return "la", f"PatientOrientation {orientation}"
    return "", ""


def _describe(meta: Mapping, view: str) -> str:
    return f"{view.upper()} radiograph '{meta.get('filename_or_obj', '')}'"


class CheckXrayPair(Transform):
    """Refuse (or, for a swap, optionally repair) a radiograph pair that its files say is wrong.

    Refused with a one-line ``ValueError`` that names the view and the file: a ``Modality`` outside
    ``modalities`` (a CT or MR slice); an AP given a lateral header or an LA given a frontal one (both at
    once is a swap: refused, or the two images exchanged when ``allow_swap``, which sets the metadata
    ``swapped_inputs``); an oblique view; the same stored pixels for both views; an aspect ratio above
    ``max_aspect``. Files that say nothing (PNG, NIfTI, no tags) pass these header checks.

    Args:
        modalities: accepted DICOM ``Modality`` values. Defaults to :data:`ACCEPTED_MODALITIES`.
        allow_swap: exchange a pair whose headers say it is swapped, instead of refusing it. Defaults to ``False``.
        max_aspect: the largest accepted ratio of the longer to the shorter image side. Defaults to 3.0.

    Raises:
        ValueError: for ``max_aspect < 1``.
    """

    def __init__(
        self, modalities: Sequence[str] = ACCEPTED_MODALITIES, allow_swap: bool = False, max_aspect: float = 3.0
    ) -> None:
        if not float(max_aspect) >= 1.0:
            raise ValueError(f"max_aspect must be >= 1, got {max_aspect}.")
        self.modalities = tuple(str(m).upper() for m in modalities)
        self.allow_swap = bool(allow_swap)
        self.max_aspect = float(max_aspect)

    def _check_one(self, meta: Mapping, view: str) -> None:
        modality = str(meta.get("modality", "")).strip().upper()
        if modality and modality not in self.modalities:
            raise ValueError(
                f"{_describe(meta, view)}: Modality {modality} is not a projection radiograph "
                f"(accepted: {', '.join(self.modalities)})."
            )
        rows, cols = int(meta.get("rows", 0)), int(meta.get("columns", 0))
        if min(rows, cols) > 0 and max(rows, cols) / min(rows, cols) > self.max_aspect:
            aspect = max(rows, cols) / min(rows, cols)
            raise ValueError(
                f"{_describe(meta, view)} is {rows} x {cols} pixels (aspect {aspect:.1f}:1); "
                f"a radiograph is at most {self.max_aspect:g}:1."
            )

    def __call__(self, ap: MetaTensor, la: MetaTensor) -> tuple[MetaTensor, MetaTensor]:
        """
        Args:
            ap: the image given as the AP view, with the reader's metadata.
            la: the image given as the lateral view.

        Returns:
            ``(ap, la)``, exchanged when the headers say they are swapped and ``allow_swap``; the metadata
            ``swapped_inputs`` of both says whether they were.

        Raises:
            ValueError: naming the file(s) and the view, for any refused pair.
        """
        meta_ap, meta_la = dict(getattr(ap, "meta", {})), dict(getattr(la, "meta", {}))
        self._check_one(meta_ap, "ap")
        self._check_one(meta_la, "la")
        sha_ap, sha_la = meta_ap.get("pixel_sha256"), meta_la.get("pixel_sha256")
        if sha_ap and sha_ap == sha_la:
            raise ValueError(
                f"The AP and LA radiographs are the same image ('{meta_ap.get('filename_or_obj', '')}' and "
                f"'{meta_la.get('filename_or_obj', '')}' have identical pixels); give an AP and a lateral view."
            )
        (kind_ap, why_ap), (kind_la, why_la) = view_from_header(meta_ap), view_from_header(meta_la)
        for meta, view, kind, why in ((meta_ap, "ap", kind_ap, why_ap), (meta_la, "la", kind_la, why_la)):
            if kind == "oblique":
                raise ValueError(
                    f"{_describe(meta, view)} is an oblique view ({why}); the model needs an AP and a lateral."
                )
        swapped = kind_ap == "la" and kind_la == "ap"
        if swapped and not self.allow_swap:
            raise ValueError(
                f"The views look swapped: the AP input '{meta_ap.get('filename_or_obj', '')}' has {why_ap} and the LA "
                f"input '{meta_la.get('filename_or_obj', '')}' has {why_la}; give them the other way round, or add "
                "--allow_swap to exchange them."
            )
        if not swapped:
            for meta, view, kind, why in ((meta_ap, "ap", kind_ap, why_ap), (meta_la, "la", kind_la, why_la)):
                if kind and kind != view:
                    other = "lateral" if view == "ap" else "frontal (AP/PA)"
                    raise ValueError(f"{_describe(meta, view)} is a {other} view ({why}), not an {view.upper()} view.")
        if swapped:
            ap, la = la, ap
        for image in (ap, la):
            if isinstance(image, MetaTensor):
                image.meta["swapped_inputs"] = swapped
        return ap, la


class CheckXrayPaird(MapTransform):
    """Dictionary wrapper of :class:`CheckXrayPair`: ``keys`` are the AP key, then the LA key.

    Args:
        keys: ``(ap_key, la_key)``. Defaults to ``("xray_ap", "xray_la")``.
        modalities, allow_swap, max_aspect: see :class:`CheckXrayPair`.
        allow_missing_keys: don't raise when a key is missing (the pair is then not checked). Defaults to ``False``.

    Raises:
        ValueError: when ``keys`` is not a pair.
    """

    def __init__(
        self,
        keys: KeysCollection = ("xray_ap", "xray_la"),
        modalities: Sequence[str] = ACCEPTED_MODALITIES,
        allow_swap: bool = False,
        max_aspect: float = 3.0,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if len(self.keys) != 2:
            raise ValueError(f"keys must be (ap_key, la_key), got {self.keys}.")
        self.checker = CheckXrayPair(modalities, allow_swap, max_aspect)

    def __call__(self, data: Mapping[Hashable, MetaTensor]) -> dict[Hashable, MetaTensor]:
        d = dict(data)
        ap_key, la_key = self.keys
        if (ap_key not in d or la_key not in d) and self.allow_missing_keys:
            return d
        d[ap_key], d[la_key] = self.checker(d[ap_key], d[la_key])
        return d

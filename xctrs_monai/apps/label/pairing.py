# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""What the MONAI Label app adds to one request: the lateral partner of the AP image, and the label legend.

MONAI Label sends one image per inference request; X-CTRSNet needs two. The request's image is the AP
radiograph, and its lateral partner is found by the datastore naming rule ``<case>_ap`` / ``<case>_la``
(:func:`lateral_id`), or given as the request parameter ``la_image`` (a datastore image id or a file on
the server, as MONAI Label's own ``image`` parameter). Nothing here imports MONAI Label.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from xctrs_monai.apps.datalist import case_id_from_path
from xctrs_monai.constants import LABEL_COLOURS, VERTEBRAE

__all__ = ["AP_SUFFIX", "LA_SUFFIX", "lateral_id", "resolve_lateral", "label_names", "label_colours"]

#: The naming rule of a pair in the datastore: ``<case>_ap`` and ``<case>_la`` (either case).
AP_SUFFIX, LA_SUFFIX = "_ap", "_la"


def lateral_id(image_id: str) -> str:
    """The datastore id of the lateral partner of an AP image: ``case1_ap`` -> ``case1_la``, ``c_AP`` -> ``c_LA``.

    Raises:
        ValueError: naming the image, when its id does not end with ``_ap`` (a lateral id says so).
    """
    stem, view = image_id[: -len(AP_SUFFIX)], image_id[-len(AP_SUFFIX) :]
    if stem and view.lower() == AP_SUFFIX:
        return stem + (LA_SUFFIX.upper() if view.isupper() else LA_SUFFIX)
    if image_id[:-3] and image_id[-3:].lower() == LA_SUFFIX:
        raise ValueError(
            f"Image '{image_id}' is a lateral view by its name; send its AP partner '{image_id[:-3]}_ap' as the "
            "image (the lateral is found by the '<case>_ap' / '<case>_la' rule)."
        )
    raise ValueError(
        f"Image '{image_id}' does not follow the pairing rule '<case>_ap' / '<case>_la', so its lateral partner "
        "cannot be found; name the pair so, or give the lateral as the request parameter la_image."
    )


def resolve_lateral(ap_path: str, la_image: str | None, lookup: Callable[[str], str]) -> str:
    """The file of the lateral radiograph paired with the AP file ``ap_path``.

    Args:
        ap_path: the AP radiograph's file (MONAI Label resolves the request's image id to it); its id is its
            file name without the image suffix, as in MONAI Label's local datastore.
        la_image: the request parameter: a datastore image id or a file on the server; ``None`` or ``""``
            applies the naming rule (:func:`lateral_id`).
        lookup: the datastore's ``get_image_uri``: an image id to its file, ``""`` when there is none.

    Returns:
        the path of the lateral radiograph.

    Raises:
        ValueError: naming the image ids and files, when no lateral can be found (one view missing).
    """
    if not ap_path:
        raise ValueError("The request names no image that exists in the datastore; send the AP radiograph's id.")
    if la_image:
        found = lookup(str(la_image))
        if found:
            return found
        if Path(la_image).is_file():
            return str(la_image)
        raise ValueError(f"la_image '{la_image}' is neither an image of the datastore nor a file on the server.")
    ap_id = case_id_from_path(ap_path)
    partner = lateral_id(ap_id)
    found = lookup(partner)
    if not found:
        raise ValueError(
            f"No lateral radiograph for the AP image '{ap_id}' ('{ap_path}'): the datastore has no image '{partner}'. "
            f"Add it (PUT /datastore/?image={partner}) or give the lateral as the request parameter la_image."
        )
    return found


def label_names() -> dict[str, int]:
    """MONAI Label's ``labels``: ``{"C1": 1, ..., "C7": 7}`` (0 is background)."""
    return {name: i for i, name in enumerate(VERTEBRAE, start=1)}


def label_colours() -> dict[str, list[int]]:
    """RGB 0..255 of each vertebra, ``{"C1": [r, g, b], ...}``, from :data:`xctrs_monai.constants.LABEL_COLOURS`."""
    return {name: list(LABEL_COLOURS[i]) for name, i in label_names().items()}

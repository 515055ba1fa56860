# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""
The files a bundle does not carry but lists in its ``large_files.yml`` (model-zoo convention: path, url,
hash_val, hash_type): fetch them, and require them with a message that says how to fetch them.

Command line, from the repository root (or ``--bundle_root .`` from inside ``bundle/``)::

    python -m xctrs_monai.large_files --bundle_root bundle
"""

from __future__ import annotations

import os

from monai.apps import download_url
from monai.bundle import ConfigParser

__all__ = ["LARGE_FILES", "download_large_files", "read_large_files", "require_large_file"]

LARGE_FILES = "large_files.yml"
"""File name of the list, relative to the bundle root."""

_KEYS = ("path", "url")


def read_large_files(bundle_root: str = ".", filename: str = LARGE_FILES) -> list[dict]:
    """
    The entries of ``<bundle_root>/<filename>``.

    Args:
        bundle_root: the bundle folder. Defaults to ``"."``.
        filename: the list, relative to ``bundle_root``. Defaults to ``"large_files.yml"``.

    Returns:
        ``[{"path", "url", "hash_val"?, "hash_type"?}, ...]`` with ``path`` relative to ``bundle_root``.

    Raises:
        ValueError: when the file has no ``large_files`` list or an entry lacks ``path`` or ``url``
            (the message names the file).
    """
    list_path = os.path.join(bundle_root, filename)
    entries = ConfigParser.load_config_file(list_path).get("large_files")
    if not isinstance(entries, list):
        raise ValueError(f"'{list_path}' has no `large_files` list.")
    for entry in entries:
        if not isinstance(entry, dict) or any(not entry.get(k) for k in _KEYS):
            raise ValueError(f"'{list_path}': each entry needs {list(_KEYS)}, got {entry!r}.")
    return entries


def download_large_files(
    bundle_root: str = ".", paths: list[str] | None = None, filename: str = LARGE_FILES
) -> list[str]:
    """
    Download the files listed in ``<bundle_root>/<filename>`` that are not there yet, checking each hash.

    MONAI's ``download_url`` does the work: a file already present with the right hash is kept, a present
    file with another hash is an error, a download is checked before it is moved into place.

    Args:
        bundle_root: the bundle folder. Defaults to ``"."``.
        paths: download only these entries (their ``path``). Defaults to ``None``: all.
        filename: the list, relative to ``bundle_root``. Defaults to ``"large_files.yml"``.

    Returns:
        the local paths of the files.

    Raises:
        ValueError: for a path in ``paths`` that the list does not name.
        monai.apps.HashCheckError: when a downloaded or present file does not have the listed hash.
    """
    entries = read_large_files(bundle_root, filename)
    known = [e["path"] for e in entries]
    unknown = sorted(set(paths or []) - set(known))
    if unknown:
        raise ValueError(f"{unknown} not listed in '{os.path.join(bundle_root, filename)}'; it lists {known}.")
    local = []
    for entry in entries:
        if paths is not None and entry["path"] not in paths:
            continue
        filepath = os.path.join(bundle_root, entry["path"])
        hash_args = {"hash_val": entry["hash_val"], "hash_type": entry.get("hash_type", "md5")}
        download_url(url=entry["url"], filepath=filepath, **(hash_args if entry.get("hash_val") else {}))
        local.append(filepath)
    return local


def require_large_file(bundle_root: str, path: str, purpose: str = "", filename: str = LARGE_FILES) -> str:
    """
    ``<bundle_root>/<path>`` when it exists; otherwise stop with a message naming the command that fetches it.

    In a config: ``"$xctrs_monai.large_files.require_large_file(@bundle_root, 'models/vgg16-397923af.pth')"``.

    Args:
        bundle_root: the bundle folder.
        path: the file, relative to ``bundle_root``, as ``large_files.yml`` names it.
        purpose: what the file is for, put at the start of the message. Defaults to ``""``.
        filename: the list, relative to ``bundle_root``. Defaults to ``"large_files.yml"``.

    Returns:
        ``os.path.join(bundle_root, path)``.

    Raises:
        FileNotFoundError: when the file is missing; the message names it, its URL when listed, and the
            download command.
    """
    filepath = os.path.join(bundle_root, path)
    if os.path.isfile(filepath):
        return filepath
    list_path = os.path.join(bundle_root, filename)
    listed = read_large_files(bundle_root, filename) if os.path.isfile(list_path) else []
    urls = [e["url"] for e in listed if e["path"] == path]
    source = f" (listed in '{list_path}', from {urls[0]})" if urls else ""
    raise FileNotFoundError(
        f"{purpose + ': ' if purpose else ''}'{filepath}' is missing{source}. Download it (needs internet) with: "
        f"python -m xctrs_monai.large_files --bundle_root {bundle_root}"
    )


if __name__ == "__main__":
    import fire

    fire.Fire(download_large_files)

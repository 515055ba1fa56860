# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Write the bundle's JSON configs as the model zoo's pre-commit hook does.

The zoo runs ``pretty-format-json --autofix --no-sort-keys --indent=4`` (pre-commit-hooks): every value on
its own line, four spaces, key order kept, non-ASCII escaped, a final newline. This rewrites the files in
that form, changing only whitespace; ``tests/bundle/test_configs.py`` checks it.

Example::

    python scripts/format_configs.py                     # all of bundle/configs/*.json
    python scripts/format_configs.py --check             # exit 1 and list the files that would change
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import fire

CONFIGS = Path(__file__).resolve().parents[1] / "bundle" / "configs"


def pretty(text: str) -> str:
    """``text`` (a JSON document) in the zoo's format."""
    return json.dumps(json.loads(text), indent=4) + "\n"


def main(*files: str, check: bool = False) -> None:
    """Reformat ``files`` (default: ``bundle/configs/*.json``) in place, through a temporary file.

    Args:
        files: JSON files. Defaults to every ``.json`` file in ``bundle/configs``.
        check: only list the files that are not in the format, and exit with 1 if there are any.
    """
    paths = [Path(f) for f in files] or sorted(CONFIGS.glob("*.json"))
    changed = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        formatted = pretty(text)
        if formatted == text:
            continue
        changed.append(str(path))
        if not check:
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(formatted, encoding="utf-8")
            os.replace(tmp, path)
    print("\n".join(f"{'would reformat' if check else 'reformatted'} {p}" for p in changed) or "all formatted")
    if check and changed:
        sys.exit(1)


if __name__ == "__main__":
    fire.Fire(main)

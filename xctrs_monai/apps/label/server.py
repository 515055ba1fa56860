# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Start the MONAI Label server with the X-CTRSNet app, bound to 127.0.0.1 unless told otherwise::

    python -m xctrs_monai.apps.label.server --studies DATASTORE [--port 8000] [--conf checkpoint model.pt]

It is ``monailabel start_server`` (every option of it works) with two defaults changed: ``--host 127.0.0.1``
(MONAI Label's own default, 0.0.0.0, serves every network the machine is on) and ``--app`` the repository's
``integrations/monailabel`` folder. Give ``--host 0.0.0.0`` only on a trusted network: the server has no
authentication unless MONAI Label's is configured.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["DEFAULT_HOST", "APP_DIR", "start_server_args", "main"]

DEFAULT_HOST = "127.0.0.1"
#: The MONAI Label app folder of a repository checkout (absent from an installed wheel: give ``--app``).
APP_DIR = Path(__file__).resolve().parents[3] / "integrations" / "monailabel"


def start_server_args(argv: Sequence[str]) -> list[str]:
    """``monailabel`` arguments: ``start_server`` first, and ``--host``/``--app`` defaults where not given.

    Raises:
        ValueError: when no ``--app`` is given and the repository's app folder does not exist.
    """
    args = [a for a in argv if a != "start_server"]
    given = {a.split("=", 1)[0] for a in args if a.startswith("-")}
    if not given & {"-i", "--host"}:
        args += ["--host", DEFAULT_HOST]
    if not given & {"-a", "--app"}:
        if not (APP_DIR / "main.py").is_file():
            raise ValueError(f"No MONAI Label app folder at '{APP_DIR}'; give --app PATH (with its main.py).")
        args += ["--app", str(APP_DIR)]
    return ["start_server", *args]


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point: MONAI Label's ``start_server`` with this app and a loopback host by default."""
    from monailabel.main import Main

    try:
        args = start_server_args(sys.argv[1:] if argv is None else argv)
    except ValueError as e:
        print(f"xctrs-label: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    sys.argv = ["monailabel", *args]
    Main(actions="start_server").run()


if __name__ == "__main__":
    main()

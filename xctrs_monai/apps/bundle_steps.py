# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Run bundle steps one after another in this process: the body of a cross-validation fold's subprocess.

``python -m xctrs_monai.apps.bundle_steps <plan.json>`` reads a plan written by
:class:`~xctrs_monai.apps.crossval.CrossValidation`::

    {"status_file": ".../status.json",
     "steps": [{"name": "training", "args": {"config_file": [...], "meta_file": ..., "logging_file": ...}},
               {"name": "evaluation", "args": {...}}]}

and calls MONAI's ``monai.bundle.run(**args)`` for each step (what ``python -m monai.bundle run --config_file ...``
calls), so a fold pays the start-up of Python, torch and MONAI once for both steps. After a step returns, its name
and duration are added to ``status_file`` (atomically); an exception ends the process with a traceback and a
non-zero exit code, and the step stays pending.
"""

from __future__ import annotations

import gc
import json
import sys
import time
from pathlib import Path

from xctrs_monai.apps.crossval_config import read_status
from xctrs_monai.data.io import save_json

__all__ = ["run_steps", "main"]


def run_steps(plan_file: str | Path) -> None:
    """Run the steps of ``plan_file`` in order and record each completed one in the plan's ``status_file``.

    Raises:
        ValueError: naming the plan when it is missing or malformed.
    """
    from monai.bundle import run

    plan_path = Path(plan_file)
    try:
        plan = json.loads(plan_path.read_text())
        steps, status_file = list(plan["steps"]), Path(plan["status_file"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"fold plan '{plan_path}' cannot be read: {e}.") from e
    for step in steps:
        print(f"===== {step['name']} ({time.strftime('%Y-%m-%d %H:%M:%S')})", flush=True)
        start = time.perf_counter()
        run(**step["args"])
        gc.collect()  # the step's datasets and network go before the next step builds its own
        status = read_status(status_file)
        if step["name"] not in status["completed"]:
            status["completed"].append(step["name"])
        status["seconds"][step["name"]] = time.perf_counter() - start
        save_json(status, status_file)
        print(f"===== {step['name']} done in {status['seconds'][step['name']]:.1f} s", flush=True)


def main() -> None:
    """Command line: ``python -m xctrs_monai.apps.bundle_steps <plan.json>``."""
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m xctrs_monai.apps.bundle_steps <plan.json>")
    run_steps(sys.argv[1])


if __name__ == "__main__":
    main()

# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Inference from the command line: ``python scripts/infer.py --ap AP --la LA --out_dir DIR`` (same as ``xctrs-infer``).

See :mod:`xctrs_monai.apps.infer` for the options.
"""

from __future__ import annotations

from xctrs_monai.apps.infer import main

__all__: list[str] = []

if __name__ == "__main__":
    main()

# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""``python integrations/deploy`` (and a MONAI Application Package's entry point) runs the app."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # app.py beside this file, when run as a folder
from app import XCTRSDeployApp  # noqa: E402

if __name__ == "__main__":
    XCTRSDeployApp().run()

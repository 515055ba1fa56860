# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""Applications: inference from radiograph files (``xctrs-infer``), its outputs, report and preview."""

# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0

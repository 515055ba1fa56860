# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
#
# The common start of scripts/e2e_label.sh and scripts/e2e_deploy.sh, sourced with $app set to label or deploy:
# builds or reuses the app's environment ($venv), trains or reuses the tiny model and writes the phantom
# radiographs under $work (${XCTRS_E2E_DIR:-runs/e2e_apps}) with the project's own environment ($python,
# ${PYTHON:-python3}), and sets $img_size and $spacing, the grid of the tiny model.

start=$(date +%s)
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# before PYTHONPATH points at the checkout: pip would take its xctrs_monai.egg-info for an installed package
venv=$(scripts/setup_app_env.sh "$app" | tail -n 1)
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
python=${PYTHON:-python3}
work=${XCTRS_E2E_DIR:-$root/runs/e2e_apps}
"$python" scripts/e2e_apps_data.py tiny_model "$work/model" >/dev/null
"$python" scripts/e2e_apps_data.py radiographs "$work/inputs" >/dev/null
img_size=$("$python" -c 'import sys, json; print(json.load(open(sys.argv[1]))["img_size"])' "$work/model/tiny.json")
spacing=$("$python" -c 'import sys, json; print(json.load(open(sys.argv[1]))["spacing"])' "$work/model/tiny.json")

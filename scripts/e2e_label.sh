#!/usr/bin/env bash
# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
#
# End-to-end check of the MONAI Label app on this machine's CPU:
#
#   scripts/e2e_label.sh
#
# 1. builds or reuses .venv-label/ (scripts/setup_app_env.sh label);
# 2. trains or reuses a tiny model and writes phantom radiographs (scripts/e2e_apps_data.py, in the project's
#    own environment: ${PYTHON:-python3}), under ${XCTRS_E2E_DIR:-runs/e2e_apps};
# 3. starts the server (python -m xctrs_monai.apps.label.server) on 127.0.0.1 and a free port, with a
#    datastore of radiograph pairs and bad inputs;
# 4. sends real HTTP requests and checks the answers (scripts/e2e_label_check.py): label map and CT (NIfTI,
#    RAS affine in mm, labels 0..7, HU range), a pair uploaded through the datastore API, the la_image
#    parameter, and bad requests (a view missing, a lateral sent as the image, a 3D file, a CT slice, an
#    unknown la_image) answered 4xx with a message naming the file while the server keeps serving;
# 5. stops the server. Prints its duration on the last line.
set -euo pipefail

app=label
source "$(dirname "${BASH_SOURCE[0]}")/e2e_apps_common.sh"

datastore="$work/label_datastore"
rm -rf "$datastore"
mkdir -p "$datastore"
cp "$work/inputs/case0_ap.dcm" "$work/inputs/case0_la.dcm" "$datastore/"
cp "$work/inputs/case0_ap.dcm" "$datastore/lonely_ap.dcm" # an AP whose lateral is missing
cp "$work/inputs/bad/volume3d_ap.nii.gz" "$work/inputs/bad/ctslice_ap.dcm" "$datastore/"

port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log="$work/label_server.log"
echo "e2e_label: starting the server on 127.0.0.1:$port (log: $log)" >&2
"$venv/bin/python" -m xctrs_monai.apps.label.server --studies "$datastore" --port "$port" \
    --conf checkpoint "$work/model/models/model.pt" --conf device cpu >"$log" 2>&1 &
server=$!
stop_server() {
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
}
trap stop_server EXIT

if ! "$venv/bin/python" scripts/e2e_label_check.py --url "http://127.0.0.1:$port" --inputs "$work/inputs" \
    --img_size "$img_size" --spacing "$spacing" --server_pid "$server"; then
    echo "e2e_label: the last lines of the server log:" >&2
    tail -n 40 "$log" >&2
    exit 1
fi
grep -q "Uvicorn running on http://127.0.0.1:$port" "$log" || {
    echo "e2e_label: FAILED: the server log does not show it bound to 127.0.0.1:$port" >&2
    exit 1
}
echo "e2e_label: passed in $(($(date +%s) - start)) s"

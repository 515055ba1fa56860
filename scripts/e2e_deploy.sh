#!/usr/bin/env bash
# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
#
# End-to-end check of the MONAI Deploy app on this machine's CPU:
#
#   scripts/e2e_deploy.sh
#
# 1. builds or reuses .venv-deploy/ (scripts/setup_app_env.sh deploy);
# 2. trains or reuses a tiny model, exported to TorchScript with `python -m monai.bundle ckpt_export`, and
#    writes phantom radiographs as DICOM DX (scripts/e2e_apps_data.py, in the project's own environment:
#    ${PYTHON:-python3}), under ${XCTRS_E2E_DIR:-runs/e2e_apps};
# 3. runs the app (integrations/deploy/app.py) on a study folder holding an AP and a lateral DX and a CT slice
#    (skipped: not a radiograph), and checks its outputs (scripts/e2e_deploy_check.py outputs): NIfTI CT in HU
#    and label map on the RAS grid in mm, the DICOM CT series and the DICOM SEG (segments C1..C7, geometry of
#    the CT, masks equal to the label map);
# 4. runs it on bad folders (one view, two AP views, no radiograph, two patients) and checks that each stops
#    with a non-zero status and a message naming the problem and the file.
# Prints its duration on the last line.
set -euo pipefail

app=deploy
source "$(dirname "${BASH_SOURCE[0]}")/e2e_apps_common.sh"
export XCTRS_CONFIG_FILES="$root/bundle/configs/inference.json,$work/model/tiny.json" XCTRS_DEVICE=cpu

in="$work/inputs"
deploy="$work/deploy"
rm -rf "$deploy"
study() { # study NAME FILE... : a folder of DICOM files
    mkdir -p "$deploy/$1"
    local name=$1
    shift
    cp "$@" "$deploy/$name/"
}
study good "$in/case0_ap.dcm" "$in/case0_la.dcm" "$in/bad/ctslice_ap.dcm"
study one_view "$in/case0_ap.dcm"
study two_ap "$in/case0_ap.dcm" "$in/case1_ap.dcm" "$in/case0_la.dcm"
study no_xray "$in/bad/ctslice_ap.dcm"
study two_patients "$in/case0_ap.dcm" "$in/case1_la.dcm"

run_app() { # run_app STUDY : the app on one folder, its log in $deploy/STUDY.log; returns its status
    local t0=$(date +%s) status=0
    "$venv/bin/python" integrations/deploy/app.py -i "$deploy/$1" -o "$deploy/$1.out" -m "$work/model/model.ts" \
        >"$deploy/$1.log" 2>&1 || status=$?
    echo "  app on '$1': status $status in $(($(date +%s) - t0)) s" >&2
    return $status
}

run_app good || {
    tail -n 40 "$deploy/good.log" >&2
    exit 1
}
"$venv/bin/python" scripts/e2e_deploy_check.py outputs --out_dir "$deploy/good.out" --img_size "$img_size" \
    --spacing "$spacing" --input_dir "$deploy/good"

refused() { # refused STUDY MESSAGE FILE : the app must stop, saying MESSAGE and naming FILE
    if run_app "$1"; then
        echo "e2e_deploy: FAILED: the app accepted the bad study '$1'" >&2
        exit 1
    fi
    "$venv/bin/python" scripts/e2e_deploy_check.py refused --log "$deploy/$1.log" --must_say "$2" --must_name "$3"
}
refused one_view "No lateral radiograph" case0_ap.dcm
refused two_ap "Ambiguous pair" case1_ap.dcm
refused no_xray "No radiograph in" "modality CT"
refused two_patients "different patients" case1_la.dcm
echo "e2e_deploy: passed in $(($(date +%s) - start)) s"

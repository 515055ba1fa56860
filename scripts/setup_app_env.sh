#!/usr/bin/env bash
# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
#
# Build, or reuse, the virtual environment of one app integration:
#
#   scripts/setup_app_env.sh label    # .venv-label/  from integrations/monailabel/requirements*.txt
#   scripts/setup_app_env.sh deploy   # .venv-deploy/ from integrations/deploy/requirements.txt
#
# MONAI Label 0.8.5 needs pydicom 2 and highdicom (the Deploy app's DICOM SEG) needs pydicom 3, so each app
# has its own environment. Order: torch==2.13.0 first (the CPU build: pip's find-links hold the local
# +cpu wheel; an unpinned torch or a torchvision would pull multi-GB CUDA builds), then the packages to
# install without dependencies (requirements-nodeps.txt, if any), then requirements.txt, then the
# dependencies of this project's pyproject.toml except itk (1.5 GB, used only by the dataset preparation,
# never by inference) and this project (editable), with torch held at 2.13.0 by a constraint. The environment is rebuilt only when the
# requirements files, pyproject.toml or this script change (a stamp in the environment records their hash);
# XCTRS_REBUILD=1 forces a rebuild. Prints the environment's folder on the last line.
set -euo pipefail

app=${1:-}
case "$app" in
label) folder=monailabel ;;
deploy) folder=deploy ;;
*)
    echo "usage: $0 label|deploy" >&2
    exit 2
    ;;
esac
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
req_dir="$root/integrations/$folder"
venv="$root/.venv-$app"
python=${PYTHON:-python3}
inputs=("$req_dir/requirements.txt" "$root/pyproject.toml" "$root/scripts/setup_app_env.sh")
[ -f "$req_dir/requirements-nodeps.txt" ] && inputs+=("$req_dir/requirements-nodeps.txt")
stamp=$(cat "${inputs[@]}" | sha256sum | cut -c1-16)

if [ "${XCTRS_REBUILD:-0}" != 1 ] && [ -f "$venv/.xctrs-env-stamp" ] && [ "$(cat "$venv/.xctrs-env-stamp")" = "$stamp" ]; then
    echo "setup_app_env: reusing $venv (requirements unchanged)" >&2
    echo "$venv"
    exit 0
fi

start=$(date +%s)
echo "setup_app_env: building $venv (a few minutes; downloads several hundred MB)" >&2
rm -rf "$venv"
"$python" -m venv "$venv"
constraint="$venv/torch-constraint.txt"
echo "torch==2.13.0" >"$constraint"
pip() { # quiet, no cache; drop the warnings about this machine's empty local package indexes
    "$venv/bin/python" -m pip --no-input --no-cache-dir --disable-pip-version-check install -q "$@" \
        2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}
pip "torch==2.13.0"
if [ -f "$req_dir/requirements-nodeps.txt" ]; then
    pip --no-deps -r "$req_dir/requirements-nodeps.txt"
fi
pip -c "$constraint" -r "$req_dir/requirements.txt"
mapfile -t deps < <("$venv/bin/python" -c '
import sys, tomllib
for dep in tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]:
    if not dep.replace(" ", "").lower().startswith(("itk", "torch")):
        print(dep)
' "$root/pyproject.toml")
pip -c "$constraint" "${deps[@]}"
pip --no-deps -e "$root"
if "$venv/bin/python" -c "import torchvision" 2>/dev/null || ! "$venv/bin/python" -c "import torch, sys; sys.exit('+cpu' not in torch.__version__)"; then
    echo "setup_app_env: error: $venv has torchvision or a non-CPU torch; check the requirements files" >&2
    exit 1
fi
echo "$stamp" >"$venv/.xctrs-env-stamp"
echo "setup_app_env: built $venv in $(($(date +%s) - start)) s, $(du -sh "$venv" | cut -f1)" >&2
echo "$venv"

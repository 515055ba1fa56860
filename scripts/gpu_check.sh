#!/usr/bin/env bash
# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
#
# All GPU figures of the README in one go (<= 8 minutes on one GPU): network latency (fp32/bf16/fp16,
# channels-last off/on, paper config at 128^3), training s/iteration and peak GPU memory (fp32/bf16,
# checkpointing off/on), end-to-end inference per case (fp32 against bf16, channels-last off/on), and
# whether this torch build computes InstanceNorm gradients right in the channels-last layout.
#
# Usage (from anywhere; the repository root is found from this file):
#     bash scripts/gpu_check.sh [OUT_DIR]          # default OUT_DIR: gpu_check_out
#     bash scripts/gpu_check.sh --dry-run [OUT_DIR] # print the steps and their time limits, run nothing
#
# Exit status: 0 when every step ran, 1 when a step failed or ran out of time (the others still run;
# see OUT_DIR/summary.txt), 2 when no CUDA GPU is visible to torch (nothing is run), 64 on a bad argument.
# Each step runs under `timeout`; the limits add up to 450 s, plus about 10 s of checks.

set -uo pipefail

DRY_RUN=0
if [[ "${1:-}" == "--dry-run" ]]; then
    DRY_RUN=1
    shift
fi
if [[ "${1:-}" == -* ]]; then
    echo "gpu_check: unknown option '$1' (usage: bash scripts/gpu_check.sh [--dry-run] [OUT_DIR])" >&2
    exit 64
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-gpu_check_out}"
PYTHON="${PYTHON:-python}"
export PYTHONPATH="${ROOT}${PYTHONPATH:+:${PYTHONPATH}}"
export PYTHONWARNINGS="ignore"

# name | time limit (s) | command (run from the repository root)
STEPS=(
    "networks|100|${PYTHON} scripts/benchmark_networks.py --device cuda --precisions fp32,bf16,fp16 --channels_last off,on --runs 20 --warmup 5 --threads 4"
    "training|200|${PYTHON} scripts/benchmark_training.py --configs paper --device cuda --precisions fp32,bf16 --checkpointing off,on --iterations 5 --warmup 2"
    "training_channels_last|50|${PYTHON} scripts/benchmark_training.py --configs paper --device cuda --precisions bf16 --checkpointing off --channels_last True --iterations 5 --warmup 2"
    "inference|60|${PYTHON} scripts/benchmark_inference.py --device cuda --precision bf16 --channels_last False --runs 5"
    "inference_channels_last|40|${PYTHON} scripts/benchmark_inference.py --device cuda --precision bf16 --channels_last True --runs 5"
)

if [[ "${DRY_RUN}" == 1 ]]; then
    echo "gpu_check (dry run): would write to ${OUT} and run, from ${ROOT}:"
    total=0
    for step in "${STEPS[@]}"; do
        IFS='|' read -r name limit cmd <<< "${step}"
        total=$((total + limit))
        printf '  %-24s <= %4ss  %s\n' "${name}" "${limit}" "${cmd}"
    done
    echo "  total time limit ${total} s"
    exit 0
fi

# fail fast and clearly without a GPU: one short torch call, nothing else is started
if ! "${PYTHON}" - <<'EOF'
import sys

import torch

if not torch.cuda.is_available():
    print(
        f"gpu_check: no CUDA GPU is visible to torch {torch.__version__} (CUDA build: {torch.version.cuda}); "
        "nothing was measured. Run this script on a machine with an NVIDIA GPU and a CUDA build of torch.",
        file=sys.stderr,
    )
    sys.exit(2)
EOF
then
    exit 2
fi

mkdir -p "${OUT}"
cd "${ROOT}" || exit 1
SUMMARY="${OUT}/summary.txt"
{
    echo "gpu_check $(date -u '+%Y-%m-%dT%H:%M:%SZ') commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "nvidia-smi: not available"
    "${PYTHON}" - <<'EOF'
import torch

from xctrs_monai.networks import instance_norm_channels_last_backward_ok

device = torch.device("cuda")
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, "
      f"{torch.cuda.get_device_name(device)}, bf16 supported: {torch.cuda.is_bf16_supported()}")
print(f"instance_norm backward right for channels-last gradients on cuda: {instance_norm_channels_last_backward_ok(device)}")
EOF
} 2>&1 | tee "${SUMMARY}"

failed=0
for step in "${STEPS[@]}"; do
    IFS='|' read -r name limit cmd <<< "${step}"
    log="${OUT}/${name}.log"
    echo "== ${name} (limit ${limit} s): ${cmd}" | tee -a "${SUMMARY}"
    start=$(date +%s)
    # shellcheck disable=SC2086  # the command is a word list on purpose
    timeout --kill-after=10 "${limit}" ${cmd} > "${log}" 2>&1
    status=$?
    elapsed=$(( $(date +%s) - start ))
    if [[ ${status} -eq 0 ]]; then
        echo "   ok in ${elapsed} s" | tee -a "${SUMMARY}"
    else
        failed=1
        reason="exit status ${status}"
        [[ ${status} -eq 124 || ${status} -eq 137 ]] && reason="over its ${limit} s limit"
        echo "   FAILED (${reason}) after ${elapsed} s; last lines of ${log}:" | tee -a "${SUMMARY}"
        tail -n 5 "${log}" | sed 's/^/   | /' | tee -a "${SUMMARY}"
    fi
    grep -E '^\||^config|^paper|^quick|X-CTRSNet|median' "${log}" | sed 's/^/   /' >> "${SUMMARY}" || true
done

echo "gpu_check: figures in ${SUMMARY}, full logs in ${OUT}/" | tee -a "${SUMMARY}"
exit ${failed}

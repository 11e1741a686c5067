#!/usr/bin/env bash
# The command-line paths of the CUDA build on a GPU and on the CPU backend of the same
# binary, for the cli step of scripts/gpu-test.sh (it passes the arguments):
#
#   gpu-cli-check.sh GANTRAIN MNIST_DIR WORK_DIR RUN_DIR
#
#   eval        `gantrain eval --real train --parzen --classifier --json` (the calibration
#               point: the first 10,000 training images as samples) on cuda and on the CPU:
#               WORK_DIR/eval-cuda.json, eval-cpu.json
#   sample      `gantrain sample --format npy` from RUN_DIR's checkpoint on cuda and on the
#               CPU: WORK_DIR/sample-cuda.npy, sample-cpu.npy
#   classifier  `gantrain classifier train --device cuda --epochs 1`: WORK_DIR/classifier.log
#
# The cli step then compares them with gpu.test (the thresholds are in
# gpu/checkfiles_test.go).
set -euo pipefail
GT=$1 MNIST=$2 W=$3 RUN=$4
DEV="${GPU_CLI_DEVICE:-cuda}" # cpu to try the script on a machine without a GPU
mkdir -p "$W"

echo "== eval --real train: $DEV, then cpu"
"$GT" eval --real train --data "$MNIST" --parzen --classifier --json --device "$DEV" >"$W/eval-cuda.json"
"$GT" eval --real train --data "$MNIST" --parzen --classifier --json --device cpu --blas go >"$W/eval-cpu.json"

echo "== sample from $RUN: $DEV, then cpu"
"$GT" sample --checkpoint "$RUN" --n 256 --format npy --out "$W/sample-cuda.npy" --device "$DEV"
"$GT" sample --checkpoint "$RUN" --n 256 --format npy --out "$W/sample-cpu.npy" --device cpu --blas go

echo "== classifier train --device $DEV --epochs 1"
"$GT" classifier train --device "$DEV" --data "$MNIST" --epochs 1 --out "$W/classifier.safetensors" 2>&1 | tee "$W/classifier.log"

#!/usr/bin/env bash
# The command-line paths of the CUDA build on a GPU, against the CPU backend of the same
# binary: a step of scripts/gpu-check.sh run (it passes the arguments).
#
#   gpu-cli-check.sh GANTRAIN MNIST_DIR WORK_DIR RUN_DIR
#
#   eval        `gantrain eval --real train --parzen --classifier` (the calibration point:
#               the first 10,000 training images as samples) on cuda and on the CPU: the
#               same σ, Parzen log-likelihood within 0.01 nats, classifier score and
#               Fréchet distance within 1e-3 relative
#   sample      `gantrain sample --format npy` from RUN_DIR's checkpoint on cuda and on
#               the CPU: the same samples within 1e-4
#   classifier  `gantrain classifier train --device cuda --epochs 1`: it trains and
#               reports a test accuracy of at least 90 %
set -euo pipefail
GT=$1 MNIST=$2 W=$3 RUN=$4
PY="${PYTHON:-python3}"
DEV="${GPU_CLI_DEVICE:-cuda}" # cpu to try the script on a machine without a GPU
mkdir -p "$W"

echo "== eval --real train: $DEV, then cpu"
"$GT" eval --real train --data "$MNIST" --parzen --classifier --json --device "$DEV" >"$W/eval-cuda.json"
"$GT" eval --real train --data "$MNIST" --parzen --classifier --json --device cpu --blas go >"$W/eval-cpu.json"
"$PY" - "$W/eval-cuda.json" "$W/eval-cpu.json" "$DEV" <<'PY'
import json, sys
g, c = (json.load(open(p))["result"] for p in sys.argv[1:3])
dev = sys.argv[3]
rows = [
    ("parzen sigma", g["parzen"]["sigma"], c["parzen"]["sigma"], 0, 0),
    ("parzen ll", g["parzen"]["ll"], c["parzen"]["ll"], 0.01, 0),
    ("parzen se", g["parzen"]["se"], c["parzen"]["se"], 0.01, 0),
    ("classifier score", g["classifier"]["score"], c["classifier"]["score"], 0, 1e-3),
    ("frechet distance", g["classifier"]["frechet_distance"], c["classifier"]["frechet_distance"], 0, 1e-3),
]
bad = 0
for name, a, b, abs_tol, rel_tol in rows:
    ok = abs(a - b) <= abs_tol + rel_tol * abs(b)
    bad += not ok
    print(f"  {name:17s} {dev} {a:.6f}  cpu {b:.6f}  {'ok' if ok else 'DIFFERENT'}")
print(f"  parzen seconds: {dev} {g['parzen']['seconds']:.2f}, cpu {c['parzen']['seconds']:.2f}")
sys.exit(1 if bad else 0)
PY

echo "== sample from $RUN: $DEV, then cpu"
"$GT" sample --checkpoint "$RUN" --n 256 --format npy --out "$W/sample-cuda.npy" --device "$DEV"
"$GT" sample --checkpoint "$RUN" --n 256 --format npy --out "$W/sample-cpu.npy" --device cpu --blas go
"$PY" - "$W/sample-cuda.npy" "$W/sample-cpu.npy" <<'PY'
import sys
import numpy as np
g, c = (np.load(p) for p in sys.argv[1:3])
d = float(np.abs(g - c).max())
print(f"  {g.shape} samples, largest difference {d:.2e}")
sys.exit(0 if g.shape == c.shape and d <= 1e-4 else 1)
PY

echo "== classifier train --device $DEV --epochs 1"
"$GT" classifier train --device "$DEV" --data "$MNIST" --epochs 1 --out "$W/classifier.safetensors" 2>&1 | tee "$W/classifier.log"
acc="$(grep -o -E 'test accuracy [0-9.]+%' "$W/classifier.log" | grep -o -E '[0-9.]+' | tail -n1)"
echo "  test accuracy after 1 epoch: ${acc:-not found}%"
"$PY" -c "import sys; sys.exit(0 if float('${acc:-0}') >= 90 else 1)"
echo "all command-line checks passed"

#!/usr/bin/env bash
# A long training run on the GPU machine, for docs/RESULTS.md: one call of the device
# tool, with the binaries of `scripts/gpu-check.sh build` carried.
#
#   run(command="bash scripts/gpu-train.sh SECONDS [train flags]", carry=["bin/gpu-check"], timeout_s=SECONDS+90)
#
# Trains `gantrain train --preset best` (or what the flags say: --preset published, say)
# with scripts/gpu-train.yaml over it (an evaluation every 25 epochs, of the average and of G's own parameters) for
# SECONDS of wall time, then stops it with SIGTERM (it finishes its step and writes a
# checkpoint) and copies metrics.jsonl, the log and the newest sample grid to $OUT. If the
# run fails in its first 90 s (the evaluation on the device, say), it is run again
# without periodic evaluation; with no evaluation in the log, the last checkpoint is
# evaluated once at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN="${GPU_CHECK_BIN:-bin/gpu-check}"
OUT="${OUT:-$PWD/gpu-train-out}"
secs="${1:?usage: gpu-train.sh SECONDS [train flags]}"
shift
mkdir -p "$OUT"
run=/tmp/gpu-train-run
export CUDA_CACHE_PATH=/tmp/gpu-train-cuda-cache
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/train.log"
# The overlay, less raw_generator for a preset without the average (--preset published).
cfg=/tmp/gpu-train.yaml
cp scripts/gpu-train.yaml "$cfg"
prev=""
for a in "$@"; do
	if [[ $prev == --preset && $a != best ]] || [[ $a == --preset=* && $a != --preset=best ]]; then
		sed -i '/raw_generator/d' "$cfg"
	fi
	prev=$a
done
t0=$SECONDS
args=(train --preset best --config "$cfg" --device cuda --data "$BIN/mnist" --out "$run" --listen off "$@")
echo "gantrain ${args[*]}" | tee -a "$OUT/train.log"
timeout -s TERM --kill-after=30 "$secs" "$BIN/gantrain" "${args[@]}" >>"$OUT/train.log" 2>&1
rc=$?
echo "exit $rc after $((SECONDS - t0))s" | tee -a "$OUT/train.log"
if ((rc != 0 && rc != 124 && SECONDS - t0 < 90 && secs - (SECONDS - t0) - 60 >= 30)); then
	echo "== again without periodic evaluation" | tee -a "$OUT/train.log"
	rm -rf "$run"
	left=$((secs - (SECONDS - t0) - 60))
	sed -i 's/every_epochs: .*/every_epochs: 0/' "$cfg"
	timeout -s TERM --kill-after=30 "$left" "$BIN/gantrain" "${args[@]}" >>"$OUT/train.log" 2>&1
	echo "exit $? after $((SECONDS - t0))s" | tee -a "$OUT/train.log"
fi
if ! grep -q 'msg=evaluation ' "$OUT/train.log"; then
	echo "== no periodic evaluation: the last checkpoint, once" | tee -a "$OUT/train.log"
	for raw in "" --raw-generator; do
		timeout 25 "$BIN/gantrain" eval --checkpoint "$run" --data "$BIN/mnist" --parzen --classifier --device cuda $raw >>"$OUT/train.log" 2>&1 ||
			GOMAXPROCS=16 timeout 25 "$BIN/gantrain" eval --checkpoint "$run" --data "$BIN/mnist" --parzen --classifier --blas go $raw >>"$OUT/train.log" 2>&1
	done
fi
cp "$run/metrics.jsonl" "$OUT/" 2>/dev/null
last="$(ls "$run"/samples/*.png 2>/dev/null | tail -n1)"
[[ -n $last ]] && cp "$last" "$OUT/"
ls -la "$run" "$run/checkpoints" >>"$OUT/train.log" 2>&1
grep -E 'level=(INFO|WARN|ERROR) msg=(eval|evaluation|done|stopp)' "$OUT/train.log" | tail -n 60
tail -n 5 "$OUT/train.log"

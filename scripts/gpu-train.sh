#!/usr/bin/env bash
# A long training run on the GPU machine, for docs/RESULTS.md, with the gantrain binary
# and MNIST of `scripts/gpu-check.sh build` copied there (bin/gpu-check/{gantrain,mnist}):
#
#   bash scripts/gpu-train.sh SECONDS [train flags]
#
# Trains `gantrain train --preset published-ema` (or what the flags say: --preset published, say)
# with scripts/gpu-train.yaml over it (an evaluation every 25 epochs, of the average and of G's own parameters) for
# SECONDS of wall time, then stops it with SIGTERM (it finishes its step and writes a
# checkpoint) and copies metrics.jsonl, config.yaml, the log and the newest sample grid to
# $OUT, and the newest checkpoint too, split into checkpoint.part-NN files of 15 MiB
# (no file that comes back from the GPU machine may exceed 16 MiB). If the run fails in its first
# 90 s (the evaluation on the device, say), it is run again without periodic evaluation;
# with no evaluation in the log, the last checkpoint is evaluated once at the end.
#
# Continuing a training in a later run: put what came back under $OUT into a folder
# beside bin/gpu-check and copy both to the GPU machine,
#
#   mkdir -p gpu-resume && cp OUT/{checkpoint.part-*,checkpoint.name,config.yaml,metrics.jsonl} gpu-resume/
#   GPU_TRAIN_RESUME=gpu-resume bash scripts/gpu-train.sh SECONDS --epochs N
#
# The run directory is rebuilt from those files and `gantrain train --resume` continues it
# (the checkpoint's SHA-256 proves the parts were joined right); only the flags that a
# resume allows may be given. What goes to the GPU machine must stay under 64 MiB: 6 MiB of repository,
# 14 MiB of gantrain, 11 MiB of MNIST and the checkpoint, 29 MiB for --preset published
# (38 MiB for --preset published-ema, which does not fit; --preset best needs GPU_TRAIN_KEEP=0).
#
# Environment: GPU_CHECK_BIN (bin/gpu-check), GPU_TRAIN_RUN (the run directory,
# /tmp/gpu-train-run; removed first; runs at the same time, two variants sharing the GPU,
# each need their own, and their own OUT), GPU_TRAIN_DEVICE (cuda; cpu tries the script
# here with a -tags nocuda gantrain), GPU_TRAIN_RESUME (above), GPU_TRAIN_KEEP=0 (bring no
# checkpoint back), GPU_TRAIN_PACK=1 (everything but the checkpoint's parts in one
# train.tar.gz, for a run where few files may come back: beside scripts/gpu-check.sh;
# GPU_TRAIN_RESUME takes a folder with that archive and the parts too).
set -uo pipefail
cd "$(dirname "$0")/.."
BIN="${GPU_CHECK_BIN:-bin/gpu-check}"
OUT="${OUT:-$PWD/gpu-train-out}"
DEVICE="${GPU_TRAIN_DEVICE:-cuda}"
RESUME="${GPU_TRAIN_RESUME:-}"
secs="${1:?usage: gpu-train.sh SECONDS [train flags]}"
shift
mkdir -p "$OUT"
run="${GPU_TRAIN_RUN:-/tmp/gpu-train-run}"
export CUDA_CACHE_PATH=/tmp/gpu-train-cuda-cache
if [[ $DEVICE == cuda* ]]; then
	nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/train.log"
else
	echo "device $DEVICE" | tee "$OUT/train.log"
fi
t0=$SECONDS
if [[ -n $RESUME ]]; then
	# Rebuild the run directory from what an earlier run brought back.
	parts=("$RESUME"/checkpoint.part-*)
	if [[ -f $RESUME/train.tar.gz && ! -f $RESUME/config.yaml ]]; then
		# What GPU_TRAIN_PACK=1 brought back: unpack it beside a copy of the parts.
		unpacked="$(mktemp -d /tmp/gpu-train-resume.XXXXXX)"
		tar -xzf "$RESUME/train.tar.gz" -C "$unpacked" || { echo "error: $RESUME/train.tar.gz does not unpack" | tee -a "$OUT/train.log" >&2; exit 2; }
		[[ -f ${parts[0]} ]] && cp "${parts[@]}" "$unpacked/"
		RESUME="$unpacked"
		parts=("$RESUME"/checkpoint.part-*)
	fi
	if [[ ! -f ${parts[0]} || ! -f $RESUME/config.yaml ]]; then
		echo "error: GPU_TRAIN_RESUME=$RESUME holds no checkpoint.part-* and config.yaml (or train.tar.gz)" | tee -a "$OUT/train.log" >&2
		exit 2
	fi
	rm -rf "$run"
	mkdir -p "$run/checkpoints"
	cp "$RESUME/config.yaml" "$run/"
	[[ -f $RESUME/metrics.jsonl ]] && cp "$RESUME/metrics.jsonl" "$run/"
	name="$(cat "$RESUME/checkpoint.name" 2>/dev/null || echo step-000000000.safetensors)"
	cat "${parts[@]}" >"$run/checkpoints/$name"
	args=(train --resume "$run" --device "$DEVICE" --data "$BIN/mnist" --listen off "$@")
else
	# The overlay, less raw_generator for a preset without the average (all but best and published-ema)
	# unless the flags add one (--g-ema 0.9999).
	cfg="${run%/}.yaml" # beside the run directory: runs with their own GPU_TRAIN_RUN share nothing
	cp scripts/gpu-train.yaml "$cfg"
	prev="" other_preset=0 ema=0
	for a in "$@"; do
		if [[ $prev == --preset && $a != best && $a != published-ema ]] || [[ $a == --preset=* && $a != --preset=best && $a != --preset=published-ema ]]; then
			other_preset=1
		fi
		if [[ $prev == --g-ema && $a =~ [1-9] ]] || [[ $a == --g-ema=*[1-9]* ]]; then
			ema=1
		fi
		prev=$a
	done
	((other_preset && !ema)) && sed -i '/raw_generator/d' "$cfg"
	rm -rf "$run"
	args=(train --preset published-ema --config "$cfg" --device "$DEVICE" --data "$BIN/mnist" --out "$run" --listen off "$@")
fi
echo "gantrain ${args[*]}" | tee -a "$OUT/train.log"
timeout -s TERM --kill-after=30 "$secs" "$BIN/gantrain" "${args[@]}" >>"$OUT/train.log" 2>&1
rc=$?
echo "exit $rc after $((SECONDS - t0))s" | tee -a "$OUT/train.log"
if [[ -z $RESUME ]] && ((rc != 0 && rc != 124 && SECONDS - t0 < 90 && secs - (SECONDS - t0) - 60 >= 30)); then
	echo "== again without periodic evaluation" | tee -a "$OUT/train.log"
	rm -rf "$run"
	left=$((secs - (SECONDS - t0) - 60))
	sed -i 's/every_epochs: .*/every_epochs: 0/' "$cfg"
	timeout -s TERM --kill-after=30 "$left" "$BIN/gantrain" "${args[@]}" >>"$OUT/train.log" 2>&1
	echo "exit $? after $((SECONDS - t0))s" | tee -a "$OUT/train.log"
fi
if ! grep -q 'msg=evaluation ' "$OUT/train.log"; then
	echo "== no periodic evaluation: the last checkpoint, once" | tee -a "$OUT/train.log"
	raws=("")
	grep -qE '^ *g_ema: 0*[1-9.]' "$run/config.yaml" 2>/dev/null && raws+=(--raw-generator) # G's own parameters too
	for raw in "${raws[@]}"; do
		timeout 25 "$BIN/gantrain" eval --checkpoint "$run" --data "$BIN/mnist" --parzen --classifier --device "$DEVICE" $raw >>"$OUT/train.log" 2>&1 ||
			GOMAXPROCS=16 timeout 25 "$BIN/gantrain" eval --checkpoint "$run" --data "$BIN/mnist" --parzen --classifier --blas go $raw >>"$OUT/train.log" 2>&1
	done
fi
cp "$run/metrics.jsonl" "$run/config.yaml" "$OUT/" 2>/dev/null
last="$(ls "$run"/samples/*.png 2>/dev/null | tail -n1)"
[[ -n $last ]] && cp "$last" "$OUT/"
ckpt="$(ls "$run"/checkpoints/step-*.safetensors 2>/dev/null | tail -n1)"
if [[ ${GPU_TRAIN_KEEP:-1} != 0 && -n $ckpt ]]; then
	split -b 15M -d -a 2 "$ckpt" "$OUT/checkpoint.part-"
	basename "$ckpt" >"$OUT/checkpoint.name"
	echo "checkpoint $(basename "$ckpt") ($(stat -c %s "$ckpt") bytes) in $(ls "$OUT"/checkpoint.part-* | wc -l) parts" | tee -a "$OUT/train.log"
fi
ls -la "$run" "$run/checkpoints" >>"$OUT/train.log" 2>&1
grep -E 'level=(INFO|WARN|ERROR) msg=(eval|evaluation|done|stopp|resum)' "$OUT/train.log" | tail -n 60
tail -n 5 "$OUT/train.log"
if [[ ${GPU_TRAIN_PACK:-0} == 1 ]]; then
	small=()
	for f in "$OUT"/*; do
		[[ -f $f && $(basename "$f") != checkpoint.part-* && $(basename "$f") != train.tar.gz ]] && small+=("$(basename "$f")")
	done
	tar -czf "$OUT/train.tar.gz" -C "$OUT" "${small[@]}" && (cd "$OUT" && rm -f "${small[@]}")
	echo "packed into train.tar.gz: ${small[*]}"
fi

#!/usr/bin/env bash
# The GPU check, in two halves:
#
#   scripts/gpu-check.sh build   here (Go toolchain, CUDA headers; no GPU needed):
#                                scripts/gpu-build.sh, the binaries and MNIST into
#                                bin/gpu-check/ (ignored by git)
#   scripts/gpu-check.sh run     on the GPU machine (no Go there), from the repository root,
#                                with bin/gpu-check (or bin/gpu-check.tar.xz, which
#                                it unpacks) copied there; logs under $OUT (or
#                                ./gpu-check-out), a table last
#
# `run` runs, each step with its own timeout and a row in the table:
#   scripts/gpu-test.sh first    info, oom (before anything else holds the GPU)
#   scripts/gpu-test.sh          track, ops, checkpoint, the sanitizers, cli, train, and
#                                for the convolutional nets (dcgan-mnist) memcheck-conv
#                                and train-conv
#   scripts/gpu-time.sh          bench, bench-conv, torch, torch-conv, profile (the card
#                                to themselves)
#   scripts/gpu-report.sh        summary.txt, bench.json (for docs/bench/gpu-DATE-CARD.json),
#                                the logs
# Each script's header says what its steps check. The whole run is held to
# GPU_CHECK_BUDGET seconds (480): each step's timeout is cut to what is left of its part,
# a step with no time left is reported as such, and the report is always written (expect
# 4-6 minutes on an H100; the GPU machine allows a command about 10 minutes).
#
# Environment: GANTRAIN_TRACK_STEPS (2000), SKIP="step step" to leave steps out,
# GPU_CHECK_BUDGET (480 seconds), GPU_CHECK_BIN (bin/gpu-check), COMPUTE_SANITIZER,
# PYTHON and NCU (tool paths), GPU_CHECK_DRY_RUN=1 (print each step's command, run none:
# tries the scripts anywhere), and GPU_CHECK_ALONGSIDE, a command line to run beside the
# check (a long training, say): started after oom under setsid with OUT=$OUT/alongside,
# stopped (SIGSTOP) while gpu-time.sh times the card and continued after it; `run` then
# waits for it to end by itself, and its exit status is the "alongside" row:
#     GPU_CHECK_BUDGET=540 GPU_CHECK_ALONGSIDE="GPU_TRAIN_PACK=1 bash scripts/gpu-train.sh 545 \
#       --preset published --epochs 6000" bash scripts/gpu-check.sh run
# $OUT then gets only summary.txt, bench.json and logs.tar.gz from the check, and what the
# command writes under $OUT/alongside.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN="${GPU_CHECK_BIN:-bin/gpu-check}"

# The GPU_CHECK_ALONGSIDE command runs under setsid, so that a signal to its session
# reaches every process it started, `timeout` and gantrain under it included.
ALONG_PID=""
alongside_start() {
	[[ -n ${GPU_CHECK_ALONGSIDE:-} ]] || return 0
	mkdir -p "$OUT/alongside"
	echo "== alongside (at $(($(date +%s) - GPU_CHECK_START))s): $GPU_CHECK_ALONGSIDE"
	# -w: should setsid have to fork (run under job control), $! still lasts as long as the command.
	OUT="$OUT/alongside" setsid -w bash -c "$GPU_CHECK_ALONGSIDE" >"$LOGS/alongside.log" 2>&1 </dev/null &
	ALONG_PID=$!
	ALONG_T0=$SECONDS
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		[[ $(ps -o sid= -p "$ALONG_PID" 2>/dev/null | tr -d ' ') == "$ALONG_PID" ]] && return 0
		sleep 0.1
	done
	echo "   warning: the alongside command does not lead a session of its own; it cannot be paused for the timings"
}

# alongside_signal SIG: SIG to every process of the alongside command's session.
alongside_signal() {
	[[ -n $ALONG_PID ]] || return 0
	echo "== alongside: SIG$1 to $(pgrep -c -s "$ALONG_PID") processes (at $(($(date +%s) - GPU_CHECK_START))s)"
	pkill "-$1" -s "$ALONG_PID"
}

alongside_wait() {
	[[ -n $ALONG_PID ]] || return 0
	echo "== waiting for alongside (at $(($(date +%s) - GPU_CHECK_START))s)"
	wait "$ALONG_PID"
	local rc=$?
	echo "alongside|$([[ $rc == 0 ]] && echo ok || echo "FAIL($rc)")|$((SECONDS - ALONG_T0))|$(grep -v -E '^\s*$' "$LOGS/alongside.log" | tail -n1 | cut -c1-90)" >>"$LOGS/rows"
	ALONG_PID=""
}

# part SCRIPT ARGS...: one part of the check, waited for so that a signal to `run` is
# handled at once (the part then ends after its current step).
PART=""
part() {
	bash "$@" &
	PART=$!
	wait "$PART"
	PART=""
}

interrupted() {
	echo "== interrupted"
	[[ -z $PART ]] || { kill -TERM "$PART" 2>/dev/null; wait "$PART"; }
	alongside_signal CONT
	alongside_signal TERM
	echo "run|INTERRUPTED|$(($(date +%s) - GPU_CHECK_START))|signal" >>"$LOGS/rows"
	bash scripts/gpu-report.sh
	exit 1
}

run() {
	# The build packs the binaries as $BIN.tar.xz, half their size, for the copy.
	if [[ ! -d $BIN && -f $BIN.tar.xz ]]; then
		tar -C "$(dirname "$BIN")" -xJf "$BIN.tar.xz" || exit 2
	fi
	for f in "$BIN/gpu.test" "$BIN/gantrain" "$BIN/mnist/train-images-idx3-ubyte.gz"; do
		if [[ ! -e $f ]]; then
			echo "error: $f missing: run 'scripts/gpu-check.sh build' on the build machine and copy $BIN here" >&2
			exit 2
		fi
	done
	OUT="${OUT:-$PWD/gpu-check-out}"
	LOGS="$(mktemp -d /tmp/gpu-check.XXXXXX)"
	GPU_CHECK_START=$(date +%s)
	export OUT LOGS GPU_CHECK_START GPU_CHECK_BIN="$BIN" PYTHONUNBUFFERED=1
	# Every gpu.New JIT-compiles the embedded PTX: keep the driver's cache where it can write.
	export CUDA_CACHE_PATH="${CUDA_CACHE_PATH:-/tmp/gpu-check-cuda-cache}" CUDA_CACHE_MAXSIZE="${CUDA_CACHE_MAXSIZE:-1073741824}"
	mkdir -p "$OUT"
	: >"$LOGS/rows"
	trap interrupted TERM INT

	part scripts/gpu-test.sh first
	alongside_start
	part scripts/gpu-test.sh
	alongside_signal STOP # the timings have the card to themselves
	part scripts/gpu-time.sh
	alongside_signal CONT
	local end=""
	[[ -z $ALONG_PID ]] || end=$(($(date +%s) - GPU_CHECK_START))
	alongside_wait
	trap - TERM INT
	bash scripts/gpu-report.sh $end
}

case "${1:-}" in
build) exec bash scripts/gpu-build.sh ;;
run) run ;;
*)
	echo "usage: $0 build|run" >&2
	exit 2
	;;
esac

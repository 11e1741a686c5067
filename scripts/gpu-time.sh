#!/usr/bin/env bash
# The GPU check's timings, on the GPU machine, with the card to themselves (a step of
# `scripts/gpu-check.sh run`, which sets LOGS, GPU_CHECK_START and GPU_CHECK_BUDGET):
#
#   bench       gantrain it/s at batch 100, 1024 and 4096, fp32 and tf32: kernel by kernel,
#               step graphs with autotuned kernels, step graphs with the fixed table;
#               per-kernel times, and each matrix product's kernel, µs and TFLOP/s
#               against the card's peak (done by budget−160 s)
#   bench-conv  gantrain it/s of the dcgan-mnist iteration (BenchmarkConvIteration) at
#               batch 64 and 512 and of the best preset's at its batch, fp32 and tf32,
#               step graphs with autotuned kernels, and each matrix product's kernel
#               (budget−120 s)
#   torch       PyTorch (CUDA) on the paper's iteration: eager and CUDA-graph replay; and
#               cuBLAS (torch.mm) on each matrix product the bench logged (budget−65 s)
#   torch-conv  PyTorch (CUDA, cuDNN) on the same iterations (bench/torch_dcgan.py
#               --device cuda, --net best) at the same batches and precisions, eager and
#               CUDA-graph replay (budget−35 s)
#   profile     Nsight Compute (ncu, clocks left alone) on the step graphs' matrix products
#               at batch 4096 (tf32) and on every kernel of a step at batch 100 (tf32):
#               throughput against the card's, occupancy, warp stalls, per kernel
#               (budget−5 s)
#
# scripts/gpu-report.sh turns bench.log, torch.log, bench-conv.log and torch-conv.log into
# the tables and bench.json.
# Environment: GPU_CHECK_BIN (bin/gpu-check), SKIP, PYTHON (a python3 that imports
# torch), NCU (the path of ncu).
set -uo pipefail
cd "$(dirname "$0")/.."
BIN="$(cd "${GPU_CHECK_BIN:-bin/gpu-check}" && pwd)"
# shellcheck source=scripts/gpu-step.sh
source scripts/gpu-step.sh
BUDGET="${GPU_CHECK_BUDGET:-480}"
export TEST="$BIN/gpu.test" GANTRAIN_MNIST="$BIN/mnist"

step bench 150 $((BUDGET - 160)) bash -c "$GOTEST" "$TEST" -test.run '^$' -test.bench '^BenchmarkIteration$' -test.benchtime 300x
step bench-conv 120 $((BUDGET - 120)) bash -c "$GOTEST" "$TEST" -test.run '^$' -test.bench '^BenchmarkConvIteration$' -test.benchtime 200x

# The python3 with torch (on the GPU machine's image, the plain python3 is it).
PY="${PYTHON:-}" want_torch=1
skipped torch && skipped torch-conv && want_torch=0
if [[ -z $PY ]] && ((want_torch)); then
	for c in python3 /opt/torch/.venv/bin/python3 /usr/bin/python3; do
		if timeout 60 "$c" -c 'import torch' 2>/dev/null; then
			PY="$(command -v "$c")"
			break
		fi
	done
fi
if [[ -z $PY ]] && ((want_torch)); then
	row torch MISSING 0 "no python3 that imports torch"
	row torch-conv MISSING 0 "no python3 that imports torch"
else
	step torch 120 $((BUDGET - 65)) bash -c '"$0" bench/torch_step_cuda.py --batch 100,1024,4096 --precision fp32,tf32 --graph 0,1 &&
		"$0" bench/torch_gemm.py "$LOGS/bench.log"' "$PY"
	grep -E '^torch-cuda' "$LOGS/torch.log" 2>/dev/null | sed 's/^/   /'
	# --preset best's batch, as bench-conv named its variants (none where bench-conv did
	# not time it: then there is nothing to hold PyTorch's best iteration against).
	best_batch=$(grep -oE 'net=best/batch=[0-9]+' "$LOGS/bench-conv.log" 2>/dev/null | head -n 1 | cut -d= -f3)
	step torch-conv 90 $((BUDGET - 35)) bash -c 'set -e
		"$0" bench/torch_dcgan.py --device cuda --batch 64,512 --precision fp32,tf32 --graph 0,1 --iters 100 --rounds 5 --warmup 20
		[[ -z $1 ]] || "$0" bench/torch_dcgan.py --device cuda --net best --batch "$1" --precision fp32,tf32 --graph 0,1 --iters 100 --rounds 5 --warmup 20' \
		"$PY" "$best_batch"
	grep -E '^torch-cuda' "$LOGS/torch-conv.log" 2>/dev/null | sed 's/^/   /'
fi

# Hardware counters of the kernels that matter most: the large tf32 products (the fixed
# table's kernels, so no tuning launches come first) and a whole batch-100 step.
export NCU="${NCU:-$(findtool ncu /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu)}"
# shellcheck disable=SC2016 # expanded by that bash -c
step profile 90 $((BUDGET - 5)) bash -c '
	ncu=("${NCU:-ncu}" --clock-control none --section SpeedOfLight --section Occupancy --section LaunchStats
		--section SchedulerStats --section WarpStateStats)
	cd "$LOGS" || exit 1
	GANTRAIN_BENCH_ONLY=batch=4096/tf32/graph/table "${ncu[@]}" -k "regex:^gemm_tc" --launch-skip 30 --launch-count 8 \
		"$TEST" -test.run "^\$" -test.bench "^BenchmarkIteration\$" -test.benchtime 3x &&
	GANTRAIN_BENCH_ONLY=batch=100/tf32/graph/table "${ncu[@]}" --launch-skip 300 --launch-count 60 \
		"$TEST" -test.run "^\$" -test.bench "^BenchmarkIteration\$" -test.benchtime 20x'

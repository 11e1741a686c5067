#!/usr/bin/env bash
# The GPU check's tests, on the GPU machine (a step of `scripts/gpu-check.sh run`,
# which sets LOGS, GPU_CHECK_START and GPU_CHECK_BUDGET):
#
#   gpu-test.sh first   info and oom, before anything else holds the GPU
#   gpu-test.sh         the rest, all to be done by budget−270 s:
#
#   info        nvidia-smi -L and the card's state, tool paths, unresolved libcuda symbols
#   oom         TestOutOfMemory alone: it fills the device, so it must not overlap the
#               track or a sanitizer run
#   track       GANTRAIN_TRACK_STEPS (2,000) iterations of the paper's model
#               (simultaneous update) on GPU and CPU from one checkpoint, in the
#               background while the steps below run: its CPU half takes the longest
#   ops         every other test of gpu.test but the trainer tests: every backend
#               operation (every kernel) against the CPU backend, every candidate
#               configuration of the matrix products (TestGemmCandidates), the autotuner
#               and its cache (TestAutotune), errors, memory
#   checkpoint  GPU checkpoint → CPU → GPU, bit for bit; both continue alike; step graphs
#               give the same bits as launching kernel by kernel; small convolutional nets
#               with batchnorm trained on GPU (kernel by kernel and step graphs) and CPU
#               from one checkpoint: the same losses and tensors (TestConvTrainerMatchesCPU)
#   memcheck    compute-sanitizer --tool memcheck over `gantrain train --preset published-ema --steps 20`
#               (the sanitizer runs use --autotune=off: the fixed table's kernels; every
#               other candidate is covered by the *-gemm steps)
#   memcheck-conv  the same over `--preset dcgan-mnist --steps 3` (im2col, col2im,
#               batchnorm in training and, for the final samples, inference)
#   cli         scripts/gpu-cli-check.sh: `gantrain eval --real train`, `sample` and
#               `classifier train` on the GPU and on the CPU backend, compared by
#               gpu.test (the thresholds are in gpu/checkfiles_test.go)
#   train-conv  `gantrain train --preset dcgan-mnist` for 1 epoch with step graphs
#               (scripts/gpu-train-conv.yaml: an evaluation at its end); gpu.test checks
#               that it evaluated, scored as a generator of several digits does and
#               wrote its last sample grid (a non-finite loss stops the run: the step fails)
#   racecheck   compute-sanitizer --tool racecheck over 2 iterations
#   memcheck-tf32, racecheck-tf32   the same over 3 iterations with --precision tf32
#               (the tensor-core matmul kernels)
#   initcheck   compute-sanitizer --tool initcheck over 5 iterations launched kernel by
#               kernel (the others submit step graphs, the default)
#   memcheck-gemm, racecheck-gemm, synccheck-gemm   each tool over TestGemmCandidates,
#               TestDenseMaxoutCandidates and the Conv*Candidates tests on a small shape
#               (GANTRAIN_GEMM_SMALL=1): every configuration and split, fp32 and tf32, once
#   train       `gantrain train --preset published-ema` for 25 epochs with step graphs; gpu.test
#               checks that the evaluation at the end shows it learnt
#
# Environment: GPU_CHECK_BIN (bin/gpu-check), SKIP, COMPUTE_SANITIZER (its path),
# GANTRAIN_TRACK_STEPS.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN="$(cd "${GPU_CHECK_BIN:-bin/gpu-check}" && pwd)"
# shellcheck source=scripts/gpu-step.sh
source scripts/gpu-step.sh
BUDGET="${GPU_CHECK_BUDGET:-480}"
TEST="$BIN/gpu.test" GT="$BIN/gantrain"
export GANTRAIN_MNIST="$BIN/mnist"
SANITIZER="${COMPUTE_SANITIZER:-$(findtool compute-sanitizer /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda/compute-sanitizer/compute-sanitizer /usr/local/cuda-*/bin/compute-sanitizer /opt/nvidia/compute-sanitizer/compute-sanitizer)}"
END=$((BUDGET - 270)) # the track and everything beside it

if [[ ${1:-} == first ]]; then
	step info 30 $END bash -c "nvidia-smi -L && nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,temperature.gpu,clocks.sm,clocks.max.sm,power.draw --format=csv
		echo \"compute-sanitizer: ${SANITIZER:-NOT FOUND}\"; [[ -n '$SANITIZER' ]] && '$SANITIZER' --version | tail -n1
		echo \"python3: \$(command -v python3)\"
		echo \"cpus: \$(nproc)\"; uname -r
		echo 'libcuda symbols the binaries need that this driver lacks (none expected):'
		ldd -r '$TEST' 2>&1 | grep -i 'undefined symbol' | head -n 20; ldd -r '$GT' 2>&1 | grep -i 'undefined symbol' | head -n 20
		nvidia-smi -L >/dev/null"
	cat "$LOGS/info.log" 2>/dev/null
	# TestOutOfMemory fills the device (8 GiB tensors until it refuses): alone, first.
	step oom 60 $END bash -c "$GOTEST" "$TEST" -test.run '^TestOutOfMemory$'
	exit 0
fi

# The tracking run, in the background: its CPU half is the longest step. The steps
# below share the machine with it; the timings come after it ends.
track_pid=""
if skipped track; then
	row track skipped 0 SKIP
elif L=$(timeout_of 330 $END) && ((L >= 15)); then
	echo "== track (background, timeout ${L}s, at $(at)s): gpu.test -test.run TestTracksCPU"
	track_t0=$SECONDS
	(cd "$LOGS" && GOMAXPROCS=12 timeout --kill-after=10 "$L" "$TEST" -test.v -test.run '^TestTracksCPU$' -test.timeout $((L - 10))s >"$LOGS/track.log" 2>&1) &
	track_pid=$!
else
	row track NO-TIME 0 "not run: the budget was spent"
fi

# Every other test (every kernel against the CPU), whatever its name.
trainer='^Test(TracksCPU|CheckpointAcrossBackends|StepGraphsMatchEager|ConvTrainerMatchesCPU|OutOfMemory)$'
GOMAXPROCS=4 step ops 180 $END bash -c "$GOTEST" "$TEST" -test.run . -test.skip "$trainer"
GOMAXPROCS=4 step checkpoint 90 $END bash -c "$GOTEST" "$TEST" -test.run '^Test(CheckpointAcrossBackends|StepGraphsMatchEager|ConvTrainerMatchesCPU)$'

# A short training under each sanitizer tool: memcheck (out-of-bounds and misaligned
# accesses, leaks), racecheck (shared-memory hazards), initcheck (reads of device
# memory nothing wrote); fp32 and tf32 (different matmul kernels).
train=("$GT" train --device cuda --data "$GANTRAIN_MNIST" --log-every 2 --sample-every 0
	--checkpoint-every 0 --samples 16 --listen off --progress plain --autotune=off)
cs=("${SANITIZER:-compute-sanitizer}")
step memcheck 120 $END "${cs[@]}" --tool memcheck --leak-check full --error-exitcode 3 "${train[@]}" --preset published-ema --steps 20 --out "$LOGS/run-memcheck"
step memcheck-conv 90 $END "${cs[@]}" --tool memcheck --leak-check full --error-exitcode 3 "${train[@]}" --preset dcgan-mnist --steps 3 --out "$LOGS/run-memcheck-conv"
# The command-line paths on the GPU against the CPU backend of the same binary; sample
# draws from the memcheck run's checkpoint.
step cli 120 $END bash -c 'bash scripts/gpu-cli-check.sh "$0" "$GANTRAIN_MNIST" "$LOGS/cli" "$LOGS/run-memcheck" &&
	GANTRAIN_GPU_CHECK_DIR="$LOGS" "$1" -test.v -test.run "^Test(EvalMatchesCPU|SamplesMatchCPU|ClassifierLearns)\$"' "$GT" "$TEST"
# The convolutional GAN learns: one epoch of --preset dcgan-mnist with step graphs,
# evaluated at the end; TestConvRunLearnt holds its threshold. Before the slow
# racecheck, so that a short budget still runs it.
step train-conv 90 $END bash -c '"$0" train --preset dcgan-mnist --config scripts/gpu-train-conv.yaml --device cuda \
	--data "$GANTRAIN_MNIST" --epochs 1 --listen off --out "$LOGS/run-train-conv" &&
	GANTRAIN_GPU_CHECK_DIR="$LOGS" "$1" -test.v -test.run "^TestConvRunLearnt\$"' "$GT" "$TEST"
step racecheck 120 $END "${cs[@]}" --tool racecheck --error-exitcode 3 "${train[@]}" --steps 2 --out "$LOGS/run-racecheck"
step memcheck-tf32 90 $END "${cs[@]}" --tool memcheck --leak-check full --error-exitcode 3 "${train[@]}" --precision tf32 --steps 3 --out "$LOGS/run-memcheck-tf32"
step racecheck-tf32 90 $END "${cs[@]}" --tool racecheck --error-exitcode 3 "${train[@]}" --precision tf32 --steps 3 --out "$LOGS/run-racecheck-tf32"
step initcheck 90 $END "${cs[@]}" --tool initcheck --error-exitcode 3 "${train[@]}" --cuda-graphs=false --steps 5 --out "$LOGS/run-initcheck"
# Every matrix-product candidate (configuration and split, and the maxout epilogue's)
# once, under each tool.
gemm=(env GANTRAIN_GEMM_SMALL=1 "$TEST" -test.run '^Test(GemmCandidates|DenseMaxoutCandidates|Conv(Forward|Backward|TransposeForward|TransposeBackward)Candidates)$' -test.v)
step memcheck-gemm 60 $END "${cs[@]}" --tool memcheck --error-exitcode 3 "${gemm[@]}"
step racecheck-gemm 120 $END "${cs[@]}" --tool racecheck --error-exitcode 3 "${gemm[@]}"
step synccheck-gemm 60 $END "${cs[@]}" --tool synccheck --error-exitcode 3 "${gemm[@]}"

# A short real training: --preset published-ema for 25 epochs with step graphs, evaluated at the
# end; TestTrainedRunLearnt holds its threshold.
step train 60 $END bash -c '"$0" train --preset published-ema --config scripts/gpu-train.yaml --device cuda --data "$GANTRAIN_MNIST" \
	--epochs 25 --listen off --out "$LOGS/run-train" &&
	GANTRAIN_GPU_CHECK_DIR="$LOGS" "$1" -test.v -test.run "^TestTrainedRunLearnt\$"' "$GT" "$TEST"

if [[ -n $track_pid ]]; then
	echo "== waiting for track (at $(at)s)"
	wait "$track_pid"
	record track $? $((SECONDS - track_t0))
fi

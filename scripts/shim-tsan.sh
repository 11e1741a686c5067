#!/usr/bin/env bash
# shim-tsan.sh runs the kernel shim tests (kernels/shimtest) with the kernels, the shim
# and the test dispatcher compiled with -fsanitize=thread: a missing __syncthreads (or a
# warp exchange read before its barrier) is a data race between the std::threads that
# play a block's CUDA threads, and ThreadSanitizer reports it. Extra arguments go to
# `go test` (e.g. -run TestDenseForward). Takes a few minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
export CGO_CXXFLAGS="-fsanitize=thread -O1 -g"
export CGO_LDFLAGS="-fsanitize=thread"
export TSAN_OPTIONS="halt_on_error=1 exitcode=66 ${TSAN_OPTIONS:-}"
# -count=1: never a cached pass. The shim package is rebuilt because the flags differ.
go test -tags nocuda -count=1 -timeout 30m "$@" ./kernels/shimtest/

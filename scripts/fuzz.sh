#!/usr/bin/env bash
# Runs every fuzz target of the input parsers (checkpoints, configs, idx files, CIFAR-10
# batches, image folders, .npy) for a short time each: FUZZTIME per target (default
# 10s). The seed corpora run on every `go test`; this adds coverage-guided exploration.
# A crash leaves its input under the package's testdata/fuzz/ to commit as a regression
# case.
#
# Go's fuzzing coordinator can fail a run with a bare "context deadline exceeded" when
# its time is up while a starved worker is still busy (a race in the engine, seen on a
# loaded 2-core machine): no failing input written, nothing to reproduce. Such a run is
# repeated once; a real finding always writes its input and fails at once.
set -euo pipefail
cd "$(dirname "$0")/.."
t=${FUZZTIME:-10s}
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# fuzz runs one target, and reports whether it failed only at the engine's deadline.
fuzz() {
  if go test -tags nocuda -run '^$' -fuzz "^$2\$" -fuzztime "$t" "$1" 2>&1 | tee "$log"; then
    return 0
  fi
  if grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written' "$log"; then
    return 2
  fi
  return 1
}
targets=(
  "./checkpoint FuzzDecode"
  "./config FuzzParse"
  "./data FuzzReadIDXImages"
  "./data FuzzReadIDXLabels"
  "./data FuzzReadCIFAR10"
  "./data FuzzDecodeImageFolder"
  "./imageio FuzzReadNPY"
)
for tg in "${targets[@]}"; do
  set -- $tg
  echo "fuzz $1 $2 for $t"
  rc=0
  fuzz "$1" "$2" || rc=$?
  if [ "$rc" = 2 ]; then
    echo "fuzz $1 $2: stopped at the engine's deadline with no failing input; once more"
    fuzz "$1" "$2"
  elif [ "$rc" != 0 ]; then
    exit 1
  fi
done

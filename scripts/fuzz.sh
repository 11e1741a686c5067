#!/usr/bin/env bash
# Runs every fuzz target of the input parsers (checkpoints, configs, idx files, image
# folders, .npy) for a short time each: FUZZTIME per target (default 10s). The seed
# corpora run on every `go test`; this adds coverage-guided exploration. A crash
# leaves its input under the package's testdata/fuzz/ to commit as a regression case.
set -euo pipefail
cd "$(dirname "$0")/.."
t=${FUZZTIME:-10s}
targets=(
  "./checkpoint FuzzDecode"
  "./config FuzzParse"
  "./data FuzzReadIDXImages"
  "./data FuzzReadIDXLabels"
  "./data FuzzDecodeImageFolder"
  "./imageio FuzzReadNPY"
)
for tg in "${targets[@]}"; do
  set -- $tg
  echo "fuzz $1 $2 for $t"
  go test -tags nocuda -run '^$' -fuzz "^$2\$" -fuzztime "$t" "$1"
done

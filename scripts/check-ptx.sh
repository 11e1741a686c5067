#!/usr/bin/env bash
# check-ptx.sh rebuilds the kernels' PTX (kernels/gen.sh, Debian's nvcc 11.8) into a
# temporary directory and fails, naming the file, if it differs from what is committed:
# a kernel changed without `go generate ./kernels`, or the committed PTX was edited.
set -euo pipefail
cd "$(dirname "$0")/../kernels"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sh gen.sh "$tmp"
status=0
for f in ptx/compute_80.ptx ptx/compute_90.ptx shimtest/srchash.h; do
  if ! cmp -s "$f" "$tmp/$f"; then
    echo "check-ptx: kernels/$f differs from a fresh build: run 'go generate ./kernels' and commit the result" >&2
    diff -u "$f" "$tmp/$f" | head -20 >&2 || true
    status=1
  fi
done
[ $status -eq 0 ] && echo "check-ptx: committed PTX matches the kernel sources"
exit $status

#!/usr/bin/env bash
# The GPU check's report (the last step of `scripts/gpu-check.sh run`): the table of the
# steps' rows ($LOGS/rows) with the track's windows, the timing tables of
# scripts/gpu-bench-table.py (the paper's nets from bench.log and torch.log, the
# convolutional nets from bench-conv.log and torch-conv.log) and each batch's device time
# per iteration, in $LOGS/summary.txt; then what comes back from the GPU machine under
# $OUT (at most 8 files of at most 16 MiB each): summary.txt, bench.json (for
# docs/bench/; a row per net, batch and precision), the main logs cut at 8 MiB,
# other.log (the other steps' logs, the conv ones among them), and all the logs in
# logs.tar.gz. Beside a GPU_CHECK_ALONGSIDE command only summary.txt, bench.json and the
# archive, to leave it room. Exits 1 if a step failed.
#
#   gpu-report.sh [CHECK_END]   CHECK_END: seconds from the start when the check proper
#                               ended, if an alongside command ran on after it
set -uo pipefail
cd "$(dirname "$0")/.."
: "${LOGS:?}" "${OUT:?}" "${GPU_CHECK_START:?}"
BUDGET="${GPU_CHECK_BUDGET:-480}"
now=$(($(date +%s) - GPU_CHECK_START))
end="${1:-$now}"
failed=0
card="$(timeout 10 nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -n1)"
{
	echo "gantrain GPU check, $(date -u +%Y-%m-%dT%H:%MZ), $card, total ${end}s of ${BUDGET}s${1:+, then the alongside command to ${now}s}"
	printf '%-15s %-10s %5s  %s\n' step status secs note
	while IFS='|' read -r n s t note; do
		printf '%-15s %-10s %5s  %s\n' "$n" "$s" "$t" "$note"
		[[ $s == ok || $s == n/a || $s == skipped ]] || failed=1
	done <"$LOGS/rows"
	if [[ -f $LOGS/track.log ]]; then
		echo
		echo "track (GPU vs CPU from one checkpoint, means over windows of 200 iterations):"
		grep -E 'iterations: gpu|^\s+iterations +D loss|^\s+[0-9]+-[0-9]+ ' "$LOGS/track.log" | sed -E 's/^ {4}([a-z_]+\.go:[0-9]+: | {4})/  /'
	fi
	echo
	name="${card%%,*}"
	python3 scripts/gpu-bench-table.py "$LOGS/bench.log" "$LOGS/torch.log" "$LOGS/bench-conv.log" "$LOGS/torch-conv.log" \
		--card "${name:-unknown card}" --json "$LOGS/bench.json" || echo "(no timing table: scripts/gpu-bench-table.py failed)"
	# The kernel tables (bench.log) come before each result line: keep the last header.
	if [[ -f $LOGS/bench.log ]]; then
		echo "gantrain device time per iteration, kernel by kernel (tables in bench.log):"
		awk '/device time per iteration/ {h = $0; sub(/^.*device time per iteration /, "", h)}
			$1 ~ /^BenchmarkIteration\/batch=[0-9]+\/(fp32|tf32)(-[0-9]+)?$/ && h != "" {n = $1; sub(/-[0-9]+$/, "", n); sub(/^BenchmarkIteration\//, "", n); printf "  %-16s %s\n", n, h; h = ""}' "$LOGS/bench.log"
	fi
	if ((failed)); then
		echo "RESULT: FAILURES (logs in \$OUT: summary.txt, *.log, logs.tar.gz)"
	else
		echo "RESULT: all steps passed"
	fi
} >"$LOGS/summary.txt"

mkdir -p "$OUT"
cp "$LOGS/summary.txt" "$OUT/"
[[ -f $LOGS/bench.json ]] && cp "$LOGS/bench.json" "$OUT/"
if [[ -z ${GPU_CHECK_ALONGSIDE:-} ]]; then
	for f in ops track bench torch; do
		[[ -f "$LOGS/$f.log" ]] && head -c 8M "$LOGS/$f.log" >"$OUT/$f.log"
	done
	for f in info oom checkpoint memcheck memcheck-conv cli train-conv racecheck memcheck-tf32 racecheck-tf32 initcheck \
		memcheck-gemm racecheck-gemm synccheck-gemm train bench-conv torch-conv profile; do
		[[ -f "$LOGS/$f.log" ]] && { echo "######## $f.log"; head -c 2M "$LOGS/$f.log"; }
	done >"$OUT/other.log"
fi
tar -czf "$OUT/logs.tar.gz" -C "$LOGS" --exclude='run-*/checkpoints' . 2>/dev/null
if (($(stat -c %s "$OUT/logs.tar.gz" 2>/dev/null || echo 0) > 15 * 1024 * 1024)); then
	tar -czf "$OUT/logs.tar.gz" -C "$LOGS" --exclude='run-*' . 2>/dev/null
fi
echo
cat "$LOGS/summary.txt"
exit "$failed"

# shellcheck shell=bash
# The step runner of the GPU check, sourced by scripts/gpu-test.sh and gpu-time.sh:
#
#   step NAME LIMIT ENDBY CMD...
#
# runs CMD with a timeout of LIMIT seconds, cut so that it ends ENDBY seconds after the
# check's start (GPU_CHECK_START, from `date +%s`) at the latest, its output in
# $LOGS/NAME.log, and appends the step's row to $LOGS/rows (NAME|STATUS|SECONDS|NOTE,
# which scripts/gpu-report.sh turns into the table). A step named in SKIP is not run; a
# step with under 15 s left is reported as NO-TIME. With GPU_CHECK_DRY_RUN=1 each step
# prints its command and passes.
: "${LOGS:?}" "${GPU_CHECK_START:?}"

skipped() { [[ " ${SKIP:-} " == *" $1 "* ]]; }

# timeout_of LIMIT ENDBY: the timeout of a step (may be ≤ 0 when the time is spent).
timeout_of() {
	local left=$((GPU_CHECK_START + $2 - $(date +%s)))
	echo $(($1 < left ? $1 : left))
}

# at: seconds since the check's start.
at() { echo $(($(date +%s) - GPU_CHECK_START)); }

row() { echo "$1|$2|$3|$4" >>"$LOGS/rows"; }

step() {
	local name=$1 limit=$2 endby=$3 L
	shift 3
	L=$(timeout_of "$limit" "$endby")
	if skipped "$name"; then
		row "$name" skipped 0 SKIP
		return
	fi
	if ((L < 15)); then
		echo "== $name: no time left in the budget"
		row "$name" NO-TIME 0 "not run: the budget was spent"
		return
	fi
	echo "== $name (timeout ${L}s, at $(at)s): $*"
	if [[ ${GPU_CHECK_DRY_RUN:-0} == 1 ]]; then
		row "$name" ok 0 "dry run"
		return
	fi
	local t0=$SECONDS rc
	STEP_TIMEOUT=$L timeout --kill-after=10 "$L" "$@" >"$LOGS/$name.log" 2>&1
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
	oom | ops | checkpoint | track | cli | train | train-conv)
		note="$(grep -c -E '^\s*--- PASS' "$log") passed, $(grep -c -E '^\s*--- FAIL' "$log") failed"
		;;
	memcheck* | racecheck* | synccheck* | initcheck)
		note="$(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$log" | tail -n1 | sed 's/^=*\s*//')"
		if [[ -z ${SANITIZER:-} ]]; then
			status="MISSING"
			note="compute-sanitizer not found (PATH, /usr/local/cuda*/bin)"
		elif grep -q -E 'Device not supported|not supported on this (platform|device)' "$log"; then
			status="n/a"
			note="compute-sanitizer does not support this machine"
		fi
		;;
	esac
	case $name in
	cli | train | train-conv) # the values the threshold tests logged
		local values
		values="$(grep -E '^\s+checkfiles_test\.go:[0-9]+: ' "$log" | sed -E 's/^\s+checkfiles_test\.go:[0-9]+: //' | paste -sd ';' | cut -c1-120)"
		[[ -z $values ]] || note="$note: $values"
		;;
	esac
	if [[ $status != ok && $status != n/a && (-z $note || $note == "0 passed, 0 failed") ]]; then
		local why
		why="$(grep -m1 -E '^panic: |^fatal error: |Error in initialization|error' "$log")"
		[[ -n $why ]] || why="$(grep -v -E '^\s*$' "$log" | tail -n1)"
		note="${note:+$note: }$(cut -c1-90 <<<"$why")"
	fi
	row "$name" "$status" "$secs" "$note"
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

# GOTEST: a Go test binary as a step's command, run in $LOGS with -test.v and a
# -test.timeout 10 s inside the step's: step NAME LIMIT ENDBY bash -c "$GOTEST" BINARY ARGS...
# shellcheck disable=SC2016 # expanded by that bash -c
GOTEST='cd "$LOGS" && exec "$0" -test.v "$@" -test.timeout "$((STEP_TIMEOUT - 10))s"'
export LOGS

# A signal ends the part after its current step (scripts/gpu-check.sh reports then).
trap 'echo "== interrupted"; exit 143' TERM INT

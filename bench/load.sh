#!/usr/bin/env bash
# Load benchmark of gantrain's HTTP service (a benchmark, not a test): while gantrain
# trains, wrk hammers /metrics and then /v1/status on loopback; the script reports
# wrk's requests/s, latency, socket errors and non-2xx responses (which must be 0),
# and training steps/s under load against the same run without load (windows before
# and after each load window, so drift shows).
#
# Three variants:
#   shared  wrk as fast as it can (closed loop) with gantrain and wrk on all CPUs:
#           wrk competes with training for the cores, so on a small box the change
#           measures wrk's own CPU use as much as gantrain's cost of serving.
#   pinned  wrk as fast as it can, gantrain on CPU 0 (taskset; Go and OpenBLAS then
#           use one thread), wrk on CPU 1: the change is the cost of serving that
#           many requests inside gantrain (it serves thousands per second, each one
#           taking CPU from training).
#   paced   wrk at a fixed rate (PACED_RPS, default 100 requests/s in all, through
#           wrk's Lua delay()), all CPUs: a heavy but realistic load (Prometheus
#           scrapes once every few seconds; the live page fetches 2 URLs every 2 s).
#
# Usage: bench/load.sh
# Environment (all optional):
#   MODEL        mnist (default: the paper's nets on real MNIST) or ring (the toy
#                preset; used automatically when MNIST cannot be loaded)
#   WINDOW       seconds of each measurement window and wrk run (default 10)
#   REPEAT       load windows per target and variant, each followed by a window
#                without load (default 3); the change of each is against the mean
#                of the unloaded windows around it, and the median is reported
#   WARMUP       seconds of training before the first window (default 10)
#   WRK_THREADS  wrk -t in the shared variant (default 2; pinned uses 1)
#   WRK_CONNS    wrk -c (default 16)
#   PACED_RPS    total request rate of the paced variant (default 100)
#   VARIANTS     "shared pinned paced" (default) or some of them
#   BLAS         gantrain --blas (default auto: OpenBLAS when installed)
#   GANTRAIN     a gantrain binary to use instead of building one
#
# Exit status: 0 when every wrk run had no socket errors and no non-2xx responses,
# 1 otherwise, 2 when a tool is missing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
MODEL="${MODEL:-mnist}"
WINDOW="${WINDOW:-10}"
REPEAT="${REPEAT:-3}"
WARMUP="${WARMUP:-10}"
WRK_THREADS="${WRK_THREADS:-2}"
WRK_CONNS="${WRK_CONNS:-16}"
VARIANTS="${VARIANTS:-shared pinned paced}"
PACED_RPS="${PACED_RPS:-100}"
BLAS="${BLAS:-auto}"
N="$(nproc)"

for tool in wrk curl; do
    command -v "$tool" >/dev/null || { echo "error: $tool is not installed (apt-get install $tool)" >&2; exit 2; }
done
if [[ " $VARIANTS " == *" pinned "* ]] && { ! command -v taskset >/dev/null || (( N < 2 )); }; then
    echo "note: the pinned variant needs taskset and 2 CPUs; skipping it"
    VARIANTS="${VARIANTS/pinned/}"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/gantrain-load.XXXXXX")"
gpid=""
cleanup() {
    if [[ -n "$gpid" ]] && kill -0 "$gpid" 2>/dev/null; then
        kill -TERM "$gpid" 2>/dev/null || true
        wait "$gpid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

bin="${GANTRAIN:-}"
if [[ -z "$bin" ]]; then
    bin="$work/gantrain"
    (cd "$root" && go build -tags nocuda -o "$bin" ./cmd/gantrain)
fi

echo "== machine"
echo "cpu: $(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n1) (nproc=$N)"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
load1="$(cut -d' ' -f1 /proc/loadavg)"
if awk -v l="$load1" -v n="$N" 'BEGIN { exit !(l > n * 0.5) }'; then
    echo "WARNING: the machine is busy (load $load1 on $N CPUs): steps/s will be noisy"
fi
echo "gantrain: $("$bin" version)"
echo "wrk: $(wrk --version 2>&1 | head -n1)"
echo

# start_gantrain PREFIX...: starts training (under PREFIX, e.g. taskset) and sets
# gpid and addr.
start_gantrain() {
    local model_args run="$work/run-$RANDOM"
    if [[ "$MODEL" == ring ]]; then
        model_args=(--preset ring)
    else
        model_args=(--preset paper)
    fi
    "$@" "$bin" train "${model_args[@]}" --steps 100000000 --blas "$BLAS" --progress plain \
        --log-every 100 --sample-every 0 --checkpoint-every 0 --listen 127.0.0.1:0 --out "$run" \
        >"$work/gantrain.log" 2>&1 &
    gpid=$!
    addr=""
    for _ in $(seq 1 300); do
        addr="$(sed -n 's|.*msg=serving url=http://\([0-9.:]*\)/.*|\1|p' "$work/gantrain.log" | head -n1)"
        if [[ -n "$addr" ]] && grep -q 'msg=training' "$work/gantrain.log"; then
            return 0
        fi
        if ! kill -0 "$gpid" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    echo "gantrain did not start training:" >&2
    tail -n 20 "$work/gantrain.log" >&2
    return 1
}

stop_gantrain() {
    kill -TERM "$gpid" 2>/dev/null || true
    wait "$gpid" 2>/dev/null || true
    gpid=""
}

# step prints the run's current step, from /v1/status.
step() {
    curl -fsS --max-time 5 "http://$addr/v1/status" | grep -o '"step":[0-9]*' | head -n1 | cut -d: -f2
}

now() { date +%s.%N; }

# window SECONDS [CMD...]: runs CMD (or sleeps) and prints the training steps/s over
# the window.
window() {
    local secs="$1"; shift
    local s0 t0 s1 t1
    s0="$(step)"; t0="$(now)"
    if (( $# )); then "$@"; else sleep "$secs"; fi
    s1="$(step)"; t1="$(now)"
    awk -v a="$s0" -v b="$s1" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.3f", (b - a) / (t1 - t0) }'
}

# Each connection waits CONNS/RPS seconds before each request.
echo "function delay() return $(( 1000 * WRK_CONNS / PACED_RPS )) end" >"$work/pace.lua"

failed=0
declare -a rows=() medians=()
for variant in $VARIANTS; do
    wextra=()
    case "$variant" in
    pinned) gprefix=(taskset -c 0); wprefix=(taskset -c 1); wthreads=1 ;;
    paced) gprefix=(); wprefix=(); wthreads=1; wextra=(-s "$work/pace.lua") ;;
    *) gprefix=(); wprefix=(); wthreads="$WRK_THREADS" ;;
    esac
    if ! start_gantrain "${gprefix[@]}"; then
        if [[ "$MODEL" == mnist ]] && grep -qi mnist "$work/gantrain.log"; then
            echo "MNIST cannot be loaded here; falling back to MODEL=ring"
            MODEL=ring
            start_gantrain "${gprefix[@]}"
        else
            exit 1
        fi
    fi
    echo "== variant $variant: model $MODEL, gantrain ${gprefix[*]:-unpinned} at $addr, wrk ${wprefix[*]:-unpinned} -t$wthreads -c$WRK_CONNS -d${WINDOW}s ${wextra[*]}"
    sleep "$WARMUP"
    base_prev="$(window "$WINDOW")"
    echo "steps/s without load: $base_prev"
    for path in /metrics /v1/status; do
        changes=""
        for rep in $(seq 1 "$REPEAT"); do
            out="$work/wrk.out"
            load="$(window "$WINDOW" bash -c '"$@" >"'"$out"'" 2>&1' _ "${wprefix[@]}" wrk -t"$wthreads" -c"$WRK_CONNS" -d"${WINDOW}s" --latency "${wextra[@]}" "http://$addr$path")"
            base_next="$(window "$WINDOW")"
            echo "-- wrk $path ($rep/$REPEAT)"
            sed 's/^/   /' "$out"
            rps="$(awk '/^Requests\/sec:/ {print $2}' "$out")"
            lat_avg="$(awk '$1 == "Latency" {print $2; exit}' "$out")"
            lat_p99="$(awk '$1 == "99%" {print $2}' "$out")"
            total="$(awk '/requests in/ {print $1}' "$out")"
            non2xx="$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")"; non2xx="${non2xx:-0}"
            sockerr="$(awk '/Socket errors:/ {gsub(",", ""); print $4 + $6 + $8 + $10}' "$out")"; sockerr="${sockerr:-0}"
            if [[ -z "$rps" ]] || (( non2xx > 0 || sockerr > 0 )); then
                failed=1
            fi
            change="$(awk -v l="$load" -v a="$base_prev" -v b="$base_next" 'BEGIN { m = (a + b) / 2; if (m > 0) printf "%+.1f", 100 * (l / m - 1); else print "nan" }')"
            changes="$changes $change"
            echo "   steps/s: before $base_prev, under load $load, after $base_next → change $change% (vs the mean of before and after)"
            rows+=("$(printf '%-7s %-11s %3s %10s %9s %9s %9s %7s %6s %9s %9s %9s %8s' "$variant" "$path" "$rep" "$rps" "$lat_avg" "$lat_p99" "$total" "$sockerr" "$non2xx" "$base_prev" "$load" "$base_next" "$change%")")
            base_prev="$base_next"
        done
        med="$(echo "$changes" | tr ' ' '\n' | grep -v '^$' | sort -g | awk '{v[NR] = $1} END { if (NR % 2) m = v[(NR + 1) / 2]; else m = (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%+.1f%% (min %+.1f%%, max %+.1f%%)", m, v[1], v[NR] }')"
        medians+=("$(printf '%-7s %-11s median change of steps/s under load: %s' "$variant" "$path" "$med")")
    done
    stop_gantrain
    echo
done

echo "== summary (model $MODEL; windows of ${WINDOW}s, $REPEAT per target; load average now $(cut -d' ' -f1-3 /proc/loadavg))"
printf '%-7s %-11s %3s %10s %9s %9s %9s %7s %6s %9s %9s %9s %8s\n' variant path rep "req/s" "lat avg" "lat p99" requests sockerr non2xx "st/s pre" "st/s load" "st/s post" change
for r in "${rows[@]}"; do echo "$r"; done
echo
for r in "${medians[@]}"; do echo "$r"; done
if (( failed )); then
    echo "FAIL: some requests failed (socket errors or non-2xx responses)"
    exit 1
fi
echo "OK: no socket errors, no non-2xx responses"

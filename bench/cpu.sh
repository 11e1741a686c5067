#!/usr/bin/env bash
# CPU benchmark: time of one full GAN training iteration (1 D-step + 1 G-step,
# batch 100, paper's MNIST nets) in gantrain (Go) vs PyTorch, same machine, same run.
# Each side is measured at several thread settings and its best is kept.
#
# Usage: bench/cpu.sh
# Environment knobs (all optional):
#   TORCH_CONFIGS   torch settings "OMP:BLAS[:p]" (intra-op threads : OpenBLAS threads,
#                   ":p" adds OMP_WAIT_POLICY=PASSIVE, which helps libgomp on a busy box);
#                   default "1:1 N:N N:N:p 1:N" with N = nproc (duplicates dropped)
#   GO_THREADS      GANTRAIN_THREADS values to try; default "1 N"
#   TORCH_ITERS     iterations per torch timing round (default 50)
#   TORCH_ROUNDS    torch timing rounds, median reported (default 5)
#   TORCH_WARMUP    torch warm-up iterations (default 20)
#   GO_BENCHTIME    go test -benchtime (default 100x)
#   GO_COUNT        go test -count (default 3)
#   GO_BENCH_OUTPUT file with canned `go test -bench` output to parse instead of
#                   running go (for testing the parser)
#   SKIP_TORCH=1 / SKIP_GO=1  skip one side
#   PYTHON          interpreter with torch (default /usr/bin/python3)
#
# Exit status: 0 on success (whatever the ratio), 2 if torch is missing,
# 3 if the Go benchmark produced no ms/iter metric.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
PY="${PYTHON:-/usr/bin/python3}"  # Debian python3-torch lives here
N="$(nproc)"

TORCH_ITERS="${TORCH_ITERS:-50}"
TORCH_ROUNDS="${TORCH_ROUNDS:-5}"
TORCH_WARMUP="${TORCH_WARMUP:-20}"
GO_BENCHTIME="${GO_BENCHTIME:-100x}"
GO_COUNT="${GO_COUNT:-3}"
SKIP_TORCH="${SKIP_TORCH:-0}"
SKIP_GO="${SKIP_GO:-0}"

uniq_words() { awk '{for (i = 1; i <= NF; i++) if (!seen[$i]++) printf "%s ", $i}'; }
TORCH_CONFIGS="$(echo "${TORCH_CONFIGS:-1:1 $N:$N $N:$N:p 1:$N}" | uniq_words)"
GO_THREADS="$(echo "${GO_THREADS:-1 $N}" | uniq_words)"

# ---------------------------------------------------------------- environment
echo "== machine"
cpu_model="$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n1)"
echo "cpu: ${cpu_model:-unknown}  (nproc=$N)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
load1="$(cut -d' ' -f1 /proc/loadavg)"
if awk -v l="$load1" -v n="$N" 'BEGIN { exit !(l > n * 0.5) }'; then
    echo "WARNING: machine is busy (load $load1 on $N CPUs): timings will be noisy"
fi

torch_ms=""
torch_cfg=""
declare -a rows=()

if [[ "$SKIP_TORCH" != 1 ]]; then
    if ! "$PY" -c 'import torch' >/dev/null 2>&1; then
        echo "error: $PY cannot import torch: install python3-torch and libopenblas0-pthread" >&2
        echo "       (apt-get install python3-torch libopenblas0-pthread python3-numpy)" >&2
        exit 2
    fi
    echo "torch: $("$PY" -c 'import torch; print(torch.__version__)')"
    echo "torch build BLAS: $("$PY" -c 'import torch; print(torch.__config__.show())' \
        | grep -o -E '(BLAS_INFO|LAPACK_INFO)=[^,]*|USE_MKL[A-Z]*=[^,]*' | tr '\n' ' ')"
    # BLAS_INFO=generic means "whatever libblas.so.3 resolves to": show the library really loaded.
    echo "torch BLAS loaded: $("$PY" -c '
import torch
torch.mm(torch.ones(2, 2), torch.ones(2, 2))
libs = sorted({l.split()[-1] for l in open("/proc/self/maps")
               if len(l.split()) >= 6 and any(k in l.split()[-1] for k in ("blas", "mkl", "lapack"))})
print(" ".join(libs) or "none found")')"

    # ---------------------------------------------------------------- torch
    echo
    echo "== pytorch (OMP:BLAS threads in $TORCH_CONFIGS)"
    for cfg in $TORCH_CONFIGS; do
        IFS=: read -r omp blas policy <<<"$cfg"
        blas="${blas:-$omp}"
        label="$omp omp / $blas blas"
        envs=()
        if [[ "$policy" == p ]]; then
            envs=(OMP_WAIT_POLICY=PASSIVE)
            label="$label (passive)"
        fi
        line="$(env "${envs[@]}" "$PY" "$here/torch_step.py" --threads "$omp" \
            --blas-threads "$blas" --iters "$TORCH_ITERS" --rounds "$TORCH_ROUNDS" --warmup "$TORCH_WARMUP")"
        echo "$line${policy:+ (OMP_WAIT_POLICY=PASSIVE)}"
        ms="$(echo "$line" | sed -n 's/.*ms_per_iter=\([0-9.]*\).*/\1/p')"
        if [[ -z "$ms" ]]; then
            echo "error: cannot parse torch output: $line" >&2
            exit 1
        fi
        rows+=("pytorch|$label|$ms")
        if [[ -z "$torch_ms" ]] || awk -v a="$ms" -v b="$torch_ms" 'BEGIN { exit !(a < b) }'; then
            torch_ms="$ms"
            torch_cfg="$cfg"
        fi
    done
fi

# ---------------------------------------------------------------- gantrain
# Prints the median ms/iter of the BenchmarkIteration lines in the given go test output.
parse_go() {
    awk '
        $1 ~ /^BenchmarkIteration(-[0-9]+)?$/ {
            for (i = 2; i <= NF; i++) if ($i == "ms/iter") v[n++] = $(i - 1) + 0
        }
        END {
            if (n == 0) exit 1
            for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
            m = (n % 2) ? v[int(n / 2)] : (v[n / 2 - 1] + v[n / 2]) / 2
            printf "%.2f %d\n", m, n
        }'
}

go_ms=""
go_cfg=""
if [[ "$SKIP_GO" != 1 ]]; then
    echo
    echo "== gantrain (GOMAXPROCS=$N, GANTRAIN_THREADS in $GO_THREADS)"
    for t in $GO_THREADS; do
        if [[ -n "${GO_BENCH_OUTPUT:-}" ]]; then
            out="$(cat "$GO_BENCH_OUTPUT")"
            rc=0
        else
            set +e
            out="$(cd "$root" && GOMAXPROCS="$N" GANTRAIN_THREADS="$t" OPENBLAS_NUM_THREADS="$t" \
                go test -tags nocuda -run XXX -bench '^BenchmarkIteration$' \
                -benchtime "$GO_BENCHTIME" -count "$GO_COUNT" ./trainer/ 2>&1)"
            rc=$?
            set -e
        fi
        echo "$out" | grep -E '^BenchmarkIteration' || true
        if ! res="$(echo "$out" | parse_go)"; then
            echo "GANTRAIN_THREADS=$t: no 'ms/iter' metric from BenchmarkIteration (go test rc=$rc); output:"
            echo "$out" | tail -n 20 | sed 's/^/    /'
            continue
        fi
        ms="${res%% *}"
        echo "gantrain threads=$t median ms_per_iter=$ms (of ${res##* } runs)"
        rows+=("gantrain|$t blas (GOMAXPROCS=$N)|$ms")
        if [[ -z "$go_ms" ]] || awk -v a="$ms" -v b="$go_ms" 'BEGIN { exit !(a < b) }'; then
            go_ms="$ms"
            go_cfg="$t"
        fi
    done
fi

# ---------------------------------------------------------------- summary
echo
echo "== one training iteration (1 D-step + 1 G-step, batch 100), CPU"
printf '%-10s %-26s %10s\n' side threads ms/iter
for r in "${rows[@]}"; do
    IFS='|' read -r side thr ms <<<"$r"
    printf '%-10s %-26s %10s\n' "$side" "$thr" "$ms"
done
echo
[[ -n "$torch_ms" ]] && echo "best pytorch: $torch_ms ms/iter (OMP:BLAS $torch_cfg)"
[[ -n "$go_ms" ]] && echo "best gantrain: $go_ms ms/iter (GANTRAIN_THREADS=$go_cfg)"
if [[ -n "$torch_ms" && -n "$go_ms" ]]; then
    awk -v g="$go_ms" -v p="$torch_ms" 'BEGIN {
        r = g / p
        printf "ratio gantrain/pytorch = %.2f (target <= 1.00) %s\n", r, (r <= 1.0 ? "OK" : "SLOWER")
    }'
elif [[ "$SKIP_GO" != 1 && -z "$go_ms" ]]; then
    echo "ratio gantrain/pytorch = n/a (no Go result)"
    exit 3
fi

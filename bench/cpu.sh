#!/usr/bin/env bash
# CPU benchmark: one full GAN training iteration (1 D-step + 1 G-step, the paper's MNIST
# nets, and the convolutional nets of --preset dcgan-mnist and --preset best) in gantrain
# (Go) against PyTorch, same machine, same run, at each batch size.
# Each side runs at several thread settings and its best (the median of its repeats)
# is kept. Also printed: the machine's FMA peak (bench/peak), each side's achieved
# GFLOP/s on the iteration's matrix products and its fraction of that peak, and
# gantrain with each matrix library it can load (how much of a difference is the
# library's alone).
#
# Usage: bench/cpu.sh
# Environment knobs (all optional):
#   NETS            any of "paper" (bench/torch_step.py), "dcgan-mnist" and "best"
#                   (bench/torch_dcgan.py --net); default "paper dcgan-mnist best"
#   BATCHES         batch sizes of the paper's nets (default "100 500")
#   DCGAN_BATCHES   batch sizes of the convolutional nets (default "64"); their timings
#                   take a fifth of TORCH_ITERS, TORCH_WARMUP and GO_BENCHTIME
#   TORCH_CONFIGS   torch settings "OMP:BLAS[:p]" (intra-op threads : OpenBLAS threads,
#                   ":p" adds OMP_WAIT_POLICY=PASSIVE, which helps libgomp on a busy box);
#                   default "1:1 N:N N:N:p 1:N" with N = nproc (duplicates dropped)
#   GO_THREADS      GANTRAIN_THREADS values to try; default "1 N"
#   GO_LIBS         matrix libraries for gantrain (GANTRAIN_BLAS); default "auto" plus
#                   each of "openblas blis mkl go" that loads here, at N threads
#   TORCH_ITERS     iterations per torch timing round (default 50)
#   TORCH_ROUNDS    torch timing rounds, median reported (default 5)
#   TORCH_WARMUP    torch warm-up iterations (default 20)
#   GO_BENCHTIME    go test -benchtime (default 100x)
#   GO_COUNT        go test -count (default 3)
#   PAIRS           rounds of the paired comparison (default 7; 0 skips it): each side's
#                   best setting, alternately, so that the machine's drift hits both
#   GO_BENCH_OUTPUT file with canned `go test -bench` output to parse instead of
#                   running go (for testing the parser)
#   SKIP_TORCH=1 / SKIP_GO=1 / SKIP_PEAK=1  skip one part
#   PYTHON          interpreter with torch (default /usr/bin/python3)
#
# Exit status: 0 on success (whatever the ratio), 2 if torch is missing,
# 3 if the Go benchmark produced no ms/iter metric.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
PY="${PYTHON:-/usr/bin/python3}"  # Debian python3-torch lives here
N="$(nproc)"

NETS="${NETS:-paper dcgan-mnist best}"
BATCHES="${BATCHES:-100 500}"
DCGAN_BATCHES="${DCGAN_BATCHES:-64}"
TORCH_ITERS="${TORCH_ITERS:-50}"
TORCH_ROUNDS="${TORCH_ROUNDS:-5}"
TORCH_WARMUP="${TORCH_WARMUP:-20}"
GO_BENCHTIME="${GO_BENCHTIME:-100x}"
GO_COUNT="${GO_COUNT:-3}"
SKIP_TORCH="${SKIP_TORCH:-0}"
SKIP_GO="${SKIP_GO:-0}"
SKIP_PEAK="${SKIP_PEAK:-0}"
PAIRS="${PAIRS:-7}"

uniq_words() { awk '{for (i = 1; i <= NF; i++) if (!seen[$i]++) printf "%s ", $i}'; }
TORCH_CONFIGS="$(echo "${TORCH_CONFIGS:-1:1 $N:$N $N:$N:p 1:$N}" | uniq_words)"
GO_THREADS="$(echo "${GO_THREADS:-1 $N}" | uniq_words)"
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }

# ---------------------------------------------------------------- environment
echo "== machine"
cpu_model="$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n1)"
cpu_family="$(sed -n 's/^cpu family[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo 2>/dev/null | head -n1)"
cpu_num="$(sed -n 's/^model[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo 2>/dev/null | head -n1)"
echo "cpu: ${cpu_model:-unknown}, family ${cpu_family:-?} model ${cpu_num:-?}  (nproc=$N)"
# Variables that steer the libraries' choice of kernels and threads change both sides'
# timings (OPENBLAS_CORETYPE=Haswell keeps OpenBLAS, and PyTorch with it, off AVX-512).
steer="$(env | grep -E '^(OPENBLAS_|GOTOBLAS_|BLIS_|MKL_|OMP_|GANTRAIN_)' | sort | tr '\n' ' ' || true)"
echo "library environment: ${steer:-none}"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
load1="$(cut -d' ' -f1 /proc/loadavg)"
if awk -v l="$load1" -v n="$N" 'BEGIN { exit !(l > n * 0.5) }'; then
    echo "WARNING: machine is busy (load $load1 on $N CPUs): timings will be noisy"
fi

peak=""
if [[ "$SKIP_PEAK" != 1 ]]; then
    # The widest kernel's figure on all threads: what N threads can do at most.
    peak_out="$(cd "$root" && go run ./bench/peak -threads "$N" 2>&1)" || true
    echo "$peak_out"
    peak="$(echo "$peak_out" | sed -n 's/.*all_threads_gflops=\([0-9.]*\).*/\1/p' | head -n1)"
fi

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
fi

# Prints "median_ms runs gflops_per_iter" of the BenchmarkIteration lines in go test output.
parse_go() {
    awk '
        $1 ~ /^BenchmarkIteration(-[0-9]+)?$/ {
            for (i = 2; i <= NF; i++) {
                if ($i == "ms/iter") { ms = $(i - 1) + 0; v[n++] = ms }
                if ($i == "GFLOP/s") rate = $(i - 1) + 0
            }
            if (rate > 0 && ms > 0) work = rate * ms / 1000
        }
        END {
            if (n == 0) exit 1
            for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
            m = (n % 2) ? v[int(n / 2)] : (v[n / 2 - 1] + v[n / 2]) / 2
            printf "%.2f %d %.4f\n", m, n, work
        }'
}

# go_bench THREADS LIB BATCH NET: prints "median_ms runs gflop_per_iter", or nothing.
# Pure Go is an order of magnitude slower: it gets a tenth of the iterations, once.
go_bench() {
    local out rc=0 benchtime="$GO_BENCHTIME" count="$GO_COUNT"
    if [[ "$4" != paper && "$benchtime" == *x ]]; then
        benchtime="$(( ${benchtime%x} / 5 + 1 ))x"
    fi
    if [[ "$2" == go && "$GO_BENCHTIME" == *x ]]; then
        benchtime="$(( ${GO_BENCHTIME%x} / 10 + 1 ))x" count=1
    fi
    if [[ -n "${GO_BENCH_OUTPUT:-}" ]]; then
        out="$(cat "$GO_BENCH_OUTPUT")"
    else
        set +e
        out="$(cd "$root" && GOMAXPROCS="$N" GANTRAIN_THREADS="$1" GANTRAIN_BLAS="$2" GANTRAIN_BATCH="$3" GANTRAIN_PRESET="$4" \
            go test -tags nocuda -run XXX -bench '^BenchmarkIteration$' \
            -benchtime "$benchtime" -count "$count" ./trainer/ 2>&1)"
        rc=$?
        set -e
    fi
    echo "$out" | grep -E '^BenchmarkIteration|backend:' | sed 's/^/    /' | sort -u >&2 || true
    if ! echo "$out" | parse_go; then
        echo "GANTRAIN_THREADS=$1 GANTRAIN_BLAS=$2: no 'ms/iter' metric (go test rc=$rc); output:" >&2
        echo "$out" | tail -n 20 | sed 's/^/    /' >&2
    fi
}

# Which libraries load here (each named one is refused when it does not).
libs="${GO_LIBS:-}"
if [[ -z "$libs" && "$SKIP_GO" != 1 ]]; then
    libs="auto"
    for l in openblas blis mkl go; do
        if (cd "$root" && GANTRAIN_BLAS="$l" go test -count 1 -run '^TestOpen$' ./blas/ >/dev/null 2>&1); then
            libs="$libs $l"
        fi
    done
fi

# The machine's speed drifts (other tenants of a virtual machine's host) over the
# minutes between the two sides' timings above. paired BATCH TORCH_CFG GO_THREADS NET
# times each side's best setting PAIRS times, alternately, a few seconds each, and
# reports the median of each and their ratio.
paired() {
    local batch="$1" omp blas policy t="$3" net="$4" i tms gms
    IFS=: read -r omp blas policy <<<"$2"
    blas="${blas:-$omp}"
    local envs=()
    [[ "$policy" == p ]] && envs=(OMP_WAIT_POLICY=PASSIVE)
    local iters=$(( 3000 / batch + 5 ))
    [[ "$net" != paper ]] && iters=$(( iters / 5 + 1 ))
    local tl=() gl=()
    for ((i = 0; i < PAIRS; i++)); do
        tms="$(env "${envs[@]}" "$PY" "$here/$(torch_script "$net")" $(torch_net "$net") --threads "$omp" --blas-threads "$blas" --batch "$batch" \
            --iters "$iters" --rounds 1 --warmup 5 | sed -n 's/.*ms_per_iter=\([0-9.]*\).*/\1/p')"
        gms="$(cd "$root/trainer" && GOMAXPROCS="$N" GANTRAIN_THREADS="$t" GANTRAIN_BATCH="$batch" GANTRAIN_PRESET="$net" "$testbin" \
            -test.run XXX -test.bench '^BenchmarkIteration$' -test.benchtime "${iters}x" 2>&1 | parse_go | cut -d' ' -f1)"
        tl+=("$tms") gl+=("$gms")
    done
    echo "paired, $PAIRS rounds of $iters iterations alternately: pytorch ${tl[*]}; gantrain ${gl[*]}"
    median() { printf '%s\n' "$@" | sort -g | awk '{v[n++] = $1} END {print v[int(n / 2)]}'; }
    local tmed gmed line
    tmed="$(median "${tl[@]}")" gmed="$(median "${gl[@]}")"
    line="$(awk -v g="$gmed" -v p="$tmed" -v b="$batch" -v net="$net" 'BEGIN {
        r = g / p
        printf "%s batch %s, paired: pytorch %.2f ms, gantrain %.2f ms (medians): ratio %.2f (target <= 0.80) %s", net, b, p, g, r, (r <= 0.80 ? "OK" : "SLOWER THAN TARGET")
    }')"
    echo "$line"
    summary+=("$line")
}

testbin=""
if [[ "$SKIP_GO" != 1 && "$SKIP_TORCH" != 1 && "$PAIRS" -gt 0 && -z "${GO_BENCH_OUTPUT:-}" ]]; then
    testbin="$(mktemp -d)/trainer.test"
    (cd "$root" && go test -tags nocuda -c -o "$testbin" ./trainer/)
fi

# torch_script NET: the PyTorch twin of NET's iteration.
torch_script() {
    case "$1" in
    paper) echo torch_step.py ;;
    dcgan-mnist | best) echo torch_dcgan.py ;;
    *) echo "error: unknown net $1 in NETS (want paper, dcgan-mnist or best)" >&2; exit 1 ;;
    esac
}

# torch_net NET: the arguments that pick NET's nets in its twin (none for the paper's).
torch_net() {
    [[ "$1" == paper ]] || echo "--net $1"
}

cases=""
for net in $NETS; do
    torch_script "$net" >/dev/null
    bs="$BATCHES"
    [[ "$net" != paper ]] && bs="$DCGAN_BATCHES"
    for batch in $bs; do cases="$cases $net:$batch"; done
done

summary=()
for case in $cases; do
    net="${case%%:*}" batch="${case#*:}"
    t_iters="$TORCH_ITERS" t_warm="$TORCH_WARMUP"
    if [[ "$net" != paper ]]; then
        t_iters=$(( TORCH_ITERS / 5 + 1 )) t_warm=$(( TORCH_WARMUP / 5 + 1 ))
    fi
    echo
    echo "======== $net, batch $batch"
    declare -a rows=()
    torch_ms="" torch_cfg="" go_ms="" go_cfg="" work="" openblas_ms=""

    if [[ "$SKIP_TORCH" != 1 ]]; then
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
            line="$(env "${envs[@]}" "$PY" "$here/$(torch_script "$net")" $(torch_net "$net") --threads "$omp" --batch "$batch" \
                --blas-threads "$blas" --iters "$t_iters" --rounds "$TORCH_ROUNDS" --warmup "$t_warm")"
            echo "$line${policy:+ (OMP_WAIT_POLICY=PASSIVE)}"
            ms="$(echo "$line" | sed -n 's/.*ms_per_iter=\([0-9.]*\).*/\1/p')"
            if [[ -z "$ms" ]]; then
                echo "error: cannot parse torch output: $line" >&2
                exit 1
            fi
            rows+=("pytorch|$label|$ms")
            if [[ -z "$torch_ms" ]] || lt "$ms" "$torch_ms"; then
                torch_ms="$ms" torch_cfg="$cfg"
            fi
        done
    fi

    if [[ "$SKIP_GO" != 1 ]]; then
        echo "== gantrain (GANTRAIN_THREADS in $GO_THREADS; libraries: $libs)"
        for lib in $libs; do
            for t in $GO_THREADS; do
                # Other libraries than the default only at the most threads.
                [[ "$lib" != auto && "$t" != "$N" ]] && continue
                res="$(go_bench "$t" "$lib" "$batch" "$net")"
                [[ -z "$res" ]] && continue
                read -r ms runs w <<<"$res"
                [[ "$w" != "0.0000" ]] && work="$w"
                echo "gantrain threads=$t blas=$lib median ms_per_iter=$ms (of $runs runs)"
                rows+=("gantrain|$t threads, $lib|$ms")
                if [[ "$lib" == auto ]] && { [[ -z "$go_ms" ]] || lt "$ms" "$go_ms"; }; then
                    go_ms="$ms" go_cfg="$t"
                fi
                [[ "$lib" == openblas ]] && openblas_ms="$ms"
            done
        done
    fi

    echo
    echo "== one training iteration of $net (1 D-step + 1 G-step, batch $batch), CPU${work:+, $work GFLOP in products}"
    printf '%-10s %-28s %10s %9s %8s\n' side setting ms/iter GFLOP/s "of peak"
    for r in "${rows[@]}"; do
        IFS='|' read -r side thr ms <<<"$r"
        rate="" frac=""
        if [[ -n "$work" ]]; then
            rate="$(awk -v w="$work" -v ms="$ms" 'BEGIN { printf "%.1f", w / ms * 1000 }')"
            [[ -n "$peak" ]] && frac="$(awk -v r="$rate" -v p="$peak" 'BEGIN { printf "%.0f %%", 100 * r / p }')"
        fi
        printf '%-10s %-28s %10s %9s %8s\n' "$side" "$thr" "$ms" "$rate" "$frac"
    done
    unset rows
    echo
    [[ -n "$torch_ms" ]] && echo "best pytorch: $torch_ms ms/iter (OMP:BLAS $torch_cfg)"
    [[ -n "$go_ms" ]] && echo "best gantrain: $go_ms ms/iter (GANTRAIN_THREADS=$go_cfg, library chosen by auto)"
    if [[ -n "$torch_ms" && -n "$go_ms" ]]; then
        line="$(awk -v g="$go_ms" -v p="$torch_ms" -v b="$batch" -v net="$net" 'BEGIN {
            r = g / p
            printf "%s batch %s: ratio gantrain/pytorch = %.2f (target <= 0.80) %s", net, b, r, (r <= 0.80 ? "OK" : "SLOWER THAN TARGET")
        }')"
        echo "$line"
        summary+=("$line")
        if [[ "$PAIRS" -gt 0 && -z "${GO_BENCH_OUTPUT:-}" ]]; then
            paired "$batch" "$torch_cfg" "$go_cfg" "$net"
        fi
        if [[ -n "$openblas_ms" ]]; then
            # PyTorch computes its products with OpenBLAS: what is left of the ratio
            # with the same library is gantrain's own.
            awk -v o="$openblas_ms" -v p="$torch_ms" -v g="$go_ms" 'BEGIN {
                printf "  with OpenBLAS, as PyTorch: %.2f ms/iter, ratio %.2f (the library chosen by auto: %+.0f %%)\n", o, o / p, 100 * (g - o) / o
            }'
        fi
    elif [[ "$SKIP_GO" != 1 && -z "$go_ms" ]]; then
        echo "ratio gantrain/pytorch = n/a (no Go result)"
        exit 3
    fi
done

if [[ ${#summary[@]} -gt 0 ]]; then
    echo
    echo "== summary${peak:+ (FMA peak $peak GFLOP/s on $N threads)}"
    printf '%s\n' "${summary[@]}"
fi

#!/usr/bin/env python3
"""cuBLAS (through torch.mm) on the matrix products gantrain's benchmark ran: the
reference for each product's kernel in docs/PERFORMANCE.md.

Usage: python3 bench/torch_gemm.py BENCH_LOG [--reps 20] [--rounds 5]

Reads the products from the gemm[...] rows BenchmarkIteration logs (gpu/bench_test.go),
e.g. "gemm[batch=100/tf32/graph] tf32 nn 100x1200x1200 lda=1200 ldb=1200 vec4 | ...",
and times each once per precision and layout: C (M×N) = op(A)·op(B) with A and B
stored as gantrain stores them (nn: A M×K, B K×N; tn: A K×M; nt: B N×K), random
inputs, --reps products captured in a CUDA graph and replayed, timed with CUDA events;
the median of --rounds rounds. Prints one line per product:
  torch-gemm tf32 nn 100x1200x1200 us=4.1 tflops=70.2
"""
import argparse
import re
import statistics
import sys

import torch

ROW = re.compile(r"gemm\[batch=\d+/(fp32|tf32)/graph\] (fp32|tf32) (nn|tn|nt) (\d+)x(\d+)x(\d+) ")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bench_log")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    if not torch.cuda.is_available():
        print("error: torch.cuda.is_available() is False", file=sys.stderr)
        return 2
    products = []
    with open(a.bench_log, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = ROW.search(line)
            if m:
                p = (m.group(2), m.group(3), int(m.group(4)), int(m.group(5)), int(m.group(6)))
                if p not in products:
                    products.append(p)
    torch.manual_seed(1)
    for prec, kind, M, N, K in products:
        torch.backends.cuda.matmul.allow_tf32 = prec == "tf32"
        a_ = torch.rand((K, M) if kind == "tn" else (M, K), device="cuda") - 0.5
        b_ = torch.rand((N, K) if kind == "nt" else (K, N), device="cuda") - 0.5
        A = a_.t() if kind == "tn" else a_
        B = b_.t() if kind == "nt" else b_
        out = torch.empty(M, N, device="cuda")
        for _ in range(3):
            torch.mm(A, B, out=out)
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            torch.mm(A, B, out=out)
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            for _ in range(a.reps):
                torch.mm(A, B, out=out)
        g.replay()
        torch.cuda.synchronize()
        times = []
        for _ in range(a.rounds):
            e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            e0.record()
            g.replay()
            e1.record()
            e1.synchronize()
            times.append(e0.elapsed_time(e1) * 1000 / a.reps)
        us = statistics.median(times)
        print(f"torch-gemm {prec} {kind} {M}x{N}x{K} us={us:.2f} tflops={2 * M * N * K / us / 1e6:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

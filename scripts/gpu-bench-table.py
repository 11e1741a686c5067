#!/usr/bin/env python3
"""The timing table of scripts/gpu-check.sh: gantrain's BenchmarkIteration (bench.log)
against PyTorch (bench/torch_step_cuda.py's torch.log) on one card, and the same for the
convolutional nets (dcgan-mnist, best): BenchmarkConvIteration (bench-conv.log) against
bench/torch_dcgan.py --device cuda (torch-conv.log).

Usage: gpu-bench-table.py LOG... --card NAME [--date YYYY-MM-DD] [--json OUT]

Each log is read for every kind of line, so the logs may come in any order and any of
them may be missing. Prints iterations per second per batch and precision of the
paper's nets: gantrain kernel by kernel, with step graphs (autotuned kernels), with step
graphs and the fixed table; PyTorch eager and with a CUDA graph; and gantrain's ratio
to PyTorch's CUDA graph. Then the same of the dcgan-mnist nets (gantrain with step
graphs only), and each matrix product's kernel and rate of the paper's nets (the rows
BenchmarkIteration logs). --json writes the same as
{"card", "date", "rows": [{"net", "batch", "precision", "gantrain_its", ...}], "gemm": [...]}
(docs/bench/gpu-DATE-CARD.json): "net" is "paper" or "dcgan-mnist"; a dcgan-mnist row
has gantrain_its (step graphs), torch_eager_its and torch_graphs_its. Missing numbers are
null, never invented.
"""
import argparse
import datetime
import json
import re
import sys

BENCH = re.compile(r"^BenchmarkIteration/batch=(\d+)/(fp32|tf32)(/graph)?(/table)?(?:-\d+)?\s.*?([\d.]+) it/s")
TORCH = re.compile(r"^torch-cuda batch=(\d+) precision=(fp32|tf32) graph=([01]) .*it_per_s=([\d.]+)")
CONV_BENCH = re.compile(r"^BenchmarkConvIteration/net=([\w-]+)/batch=(\d+)/(fp32|tf32)/graph(?:-\d+)?\s.*?([\d.]+) it/s")
CONV_TORCH = re.compile(r"^torch-cuda net=([\w-]+) batch=(\d+) precision=(fp32|tf32) graph=([01]) .*it_per_s=([\d.]+)")
GEMM = re.compile(r"gemm\[batch=(\d+)/(fp32|tf32)/graph\] (.+?)\s+\| (\S+)\s+\| (\S+)\s+\|\s+([\d.]+) µs \|\s+([\d.]+) TFLOP/s \|\s+([\d.]+)% of peak")
TGEMM = re.compile(r"^torch-gemm (fp32|tf32) (nn|tn|nt) (\d+x\d+x\d+) us=([\d.]+)")
PEAK = re.compile(r"matrix products of batch=(\d+)/(fp32|tf32)/graph \(peak ([\d.]+) TFLOP/s")


def read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().splitlines()
    except OSError:
        return []


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("logs", nargs="+", metavar="LOG")
    ap.add_argument("--card", required=True)
    ap.add_argument("--date", default=datetime.date.today().isoformat())
    ap.add_argument("--json")
    a = ap.parse_args()

    lines = [line for path in a.logs for line in read(path)]
    its = {}  # (batch, prec, variant) -> it/s, the paper's nets
    conv = {}  # (net, batch, prec, variant) -> it/s
    for line in lines:
        m = BENCH.match(line)
        if m:
            variant = "table" if m.group(4) else ("graph" if m.group(3) else "eager")
            its[(int(m.group(1)), m.group(2), variant)] = float(m.group(5))
        m = TORCH.match(line)
        if m:
            its[(int(m.group(1)), m.group(2), "torch_graph" if m.group(3) == "1" else "torch_eager")] = float(m.group(4))
        m = CONV_BENCH.match(line)
        if m:
            conv[(m.group(1), int(m.group(2)), m.group(3), "graph")] = float(m.group(4))
        m = CONV_TORCH.match(line)
        if m:
            conv[(m.group(1), int(m.group(2)), m.group(3), "torch_graph" if m.group(4) == "1" else "torch_eager")] = float(m.group(5))
    cublas = {}  # "tf32 nn 100x1200x1200" -> µs (bench/torch_gemm.py)
    for line in lines:
        m = TGEMM.match(line)
        if m:
            cublas[f"{m.group(1)} {m.group(2)} {m.group(3)}"] = float(m.group(4))
    gemm, peaks = [], {}
    for line in lines:
        m = PEAK.search(line)
        if m:
            peaks[(int(m.group(1)), m.group(2))] = float(m.group(3))
        m = GEMM.search(line)
        if m:
            product = m.group(3).strip()
            if any(g["batch"] == int(m.group(1)) and g["product"] == product for g in gemm):
                continue  # a benchmark's rows come once per run of it (b.N = 1, then the timed run)
            gemm.append({"batch": int(m.group(1)), "precision": m.group(2), "product": product,
                         "kernel": m.group(4), "source": m.group(5), "us": float(m.group(6)),
                         "tflops": float(m.group(7)), "peak_pct": float(m.group(8)),
                         "cublas_us": cublas.get(" ".join(product.split()[:3]))})

    batches = sorted({k[0] for k in its})
    rows = []
    for b in batches:
        for p in ("fp32", "tf32"):
            g = lambda v: its.get((b, p, v))
            rows.append({"net": "paper", "batch": b, "precision": p, "gantrain_its": g("graph"),
                         "gantrain_table_its": g("table"), "gantrain_eager_its": g("eager"),
                         "torch_eager_its": g("torch_eager"), "torch_graphs_its": g("torch_graph")})
    conv_rows = []
    for net, b in sorted({k[:2] for k in conv}):
        for p in ("fp32", "tf32"):
            g = lambda v: conv.get((net, b, p, v))
            conv_rows.append({"net": net, "batch": b, "precision": p, "gantrain_its": g("graph"),
                              "torch_eager_its": g("torch_eager"), "torch_graphs_its": g("torch_graph")})

    fmt = lambda v: "-" if v is None else f"{v:,.1f}"
    ratio = lambda r: f"{r['gantrain_its'] / r['torch_graphs_its']:.2f}x" if r["gantrain_its"] and r["torch_graphs_its"] else "-"
    print(f"iterations per second (1 D step + 1 G step, paper's MNIST nets), {a.card}:")
    print(f"  {'batch':>5} {'prec':5} {'gantrain':>10} {'+graph':>10} {'+graph,table':>13} {'torch':>10} {'torch+graph':>12} {'ratio':>6}")
    for r in rows:
        print(f"  {r['batch']:>5} {r['precision']:5} {fmt(r['gantrain_eager_its']):>10} {fmt(r['gantrain_its']):>10} "
              f"{fmt(r['gantrain_table_its']):>13} {fmt(r['torch_eager_its']):>10} {fmt(r['torch_graphs_its']):>12} {ratio(r):>6}")
    for net in sorted({r["net"] for r in conv_rows}):
        print(f"iterations per second (1 D step + 1 G step, {net} nets), {a.card}:")
        print(f"  {'batch':>5} {'prec':5} {'+graph':>10} {'torch':>10} {'torch+graph':>12} {'ratio':>6}")
        for r in (r for r in conv_rows if r["net"] == net):
            print(f"  {r['batch']:>5} {r['precision']:5} {fmt(r['gantrain_its']):>10} {fmt(r['torch_eager_its']):>10} "
                  f"{fmt(r['torch_graphs_its']):>12} {ratio(r):>6}")
    if gemm:
        print("matrix products (autotuned, step graphs): kernel, µs, TFLOP/s, % of the card's peak, cuBLAS µs (torch.mm)")
        for g in gemm:
            cb = "-" if g["cublas_us"] is None else f"{g['cublas_us']:.1f}"
            print(f"  {g['batch']:>5} {g['product']:44} {g['kernel']:30} {g['us']:9.1f} {g['tflops']:7.2f} {g['peak_pct']:5.1f}% {cb:>8}")
    if a.json:
        out = {"card": a.card, "date": a.date, "rows": rows + conv_rows, "gemm": gemm,
               "peak_tflops": {f"{b}/{p}": v for (b, p), v in sorted(peaks.items())}}
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

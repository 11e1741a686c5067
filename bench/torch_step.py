#!/usr/bin/python3
"""PyTorch CPU reference timing for one GAN training iteration (1 D-step + 1 G-step)
with the Goodfellow et al. 2014 MNIST nets, batch 100, float32.

Usage: /usr/bin/python3 bench/torch_step.py --threads 2 [--blas-threads 2] --iters 50 --rounds 5 --warmup 20
Prints: torch threads=N ms_per_iter=XX.XX  (median over timing rounds)

Nets (float32):
  G: Linear(100,1200) ReLU, Linear(1200,1200) ReLU, Linear(1200,784) Sigmoid; z ~ U(-sqrt3, sqrt3)
  D: Dropout(0.2), Linear(784,1200), maxout 5 (adjacent columns), Dropout(0.5),
     Linear(240,1200), maxout 5, Dropout(0.5), Linear(240,1) -> logit
  SGD lr 0.1 momentum 0.5 for each net.
One iteration: D-step on cat([real 100, G(z) 100]) with BCE-with-logits (1 real, 0 fake),
then G-step with fresh z, non-saturating loss BCE(D(G(z)), 1), D params frozen.
"""
import argparse
import os
import sys


def parse_args():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--threads", type=int, default=1,
                   help="torch intra-op (OpenMP) threads; also the BLAS threads unless --blas-threads")
    p.add_argument("--blas-threads", type=int, default=0,
                   help="OpenBLAS threads (default: same as --threads)")
    p.add_argument("--iters", type=int, default=50, help="iterations per timing round")
    p.add_argument("--rounds", type=int, default=5, help="timing rounds (median is reported)")
    p.add_argument("--warmup", type=int, default=20, help="untimed warm-up iterations")
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--verbose", action="store_true", help="print per-round times and losses")
    return p.parse_args()


args = parse_args()
if args.blas_threads <= 0:
    args.blas_threads = args.threads
# Debian's torch uses the system BLAS (libblas.so.3 -> OpenBLAS-pthread), whose thread pool
# is sized by OPENBLAS_NUM_THREADS when it loads; torch.set_num_threads does not reach it.
# So set the environment before importing torch.
os.environ["OMP_NUM_THREADS"] = str(args.threads)
os.environ["OPENBLAS_NUM_THREADS"] = str(args.blas_threads)
os.environ["MKL_NUM_THREADS"] = str(args.blas_threads)

import math  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from gan_nets import paper_nets  # noqa: E402

torch.set_num_threads(args.threads)
torch.set_num_interop_threads(1)
torch.manual_seed(args.seed)
torch.set_default_dtype(torch.float32)

NOISE, PIX, N_TRAIN = 100, 784, 50000

G, D = paper_nets()

optD = torch.optim.SGD(D.parameters(), lr=0.1, momentum=0.5)
optG = torch.optim.SGD(G.parameters(), lr=0.1, momentum=0.5)

B = args.batch
SQRT3 = math.sqrt(3.0)

# Fixed stand-in for the MNIST training set: 50000 x 784 in [0, 1].
data = torch.rand(N_TRAIN, PIX)
state = {"perm": torch.randperm(N_TRAIN), "pos": 0}

targets_d = torch.cat([torch.ones(B, 1), torch.zeros(B, 1)])
targets_g = torch.ones(B, 1)


def next_real():
    if state["pos"] + B > N_TRAIN:
        state["perm"] = torch.randperm(N_TRAIN)
        state["pos"] = 0
    idx = state["perm"][state["pos"]:state["pos"] + B]
    state["pos"] += B
    return data.index_select(0, idx)


def noise():
    return torch.empty(B, NOISE).uniform_(-SQRT3, SQRT3)


def set_requires_grad(module, flag):
    for p in module.parameters():
        p.requires_grad_(flag)


def iteration():
    # ---- D-step ----
    with torch.no_grad():
        fake = G(noise())
    real = next_real()
    optD.zero_grad(set_to_none=True)
    logits = D(torch.cat([real, fake]))
    loss_d = F.binary_cross_entropy_with_logits(logits, targets_d)
    loss_d.backward()
    optD.step()

    # ---- G-step (non-saturating) ----
    set_requires_grad(D, False)
    optG.zero_grad(set_to_none=True)
    logits = D(G(noise()))
    loss_g = F.binary_cross_entropy_with_logits(logits, targets_g)
    loss_g.backward()
    optG.step()
    set_requires_grad(D, True)
    return loss_d, loss_g


def main():
    for _ in range(args.warmup):
        iteration()
    rounds = []
    for r in range(args.rounds):
        t0 = time.perf_counter()
        for _ in range(args.iters):
            ld, lg = iteration()
        ms = (time.perf_counter() - t0) * 1000.0 / args.iters
        rounds.append(ms)
        if args.verbose:
            print(f"round {r}: {ms:.2f} ms/iter  loss_d={ld.item():.4f} loss_g={lg.item():.4f}",
                  file=sys.stderr)
    med = statistics.median(rounds)
    extra = "" if args.blas_threads == args.threads else f" blas_threads={args.blas_threads}"
    print(f"torch threads={args.threads}{extra} ms_per_iter={med:.2f}")


if __name__ == "__main__":
    main()

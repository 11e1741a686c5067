#!/usr/bin/python3
"""PyTorch CPU reference timing for one GAN training iteration (1 D-step + 1 G-step)
with gantrain's dcgan-mnist nets, float32.

Usage: /usr/bin/python3 bench/torch_dcgan.py --threads 2 [--blas-threads 2] --iters 20 --rounds 5 --warmup 5
Prints: torch threads=N ms_per_iter=XX.XX  (median over timing rounds)

Nets (as model.DCGANGenerator(28, 28, 128, 2) and model.DCGANDiscriminator(64, 2)):
  G: Linear(100, 7*7*128), BatchNorm1d, ReLU, view 128x7x7,
     ConvTranspose2d(128, 64, 4, 2, 1), BatchNorm2d, ReLU,
     ConvTranspose2d(64, 1, 4, 2, 1), Sigmoid;  z ~ N(0, 1)
  D: Conv2d(1, 64, 4, 2, 1), LeakyReLU(0.2), Conv2d(64, 128, 4, 2, 1), BatchNorm2d,
     LeakyReLU(0.2), flatten, Linear(6272, 1) -> logit
  Adam lr 2e-4, betas (0.5, 0.999), for each net.
One iteration: D-step on the real and the fake half (batchnorm statistics apart, as
gantrain keeps them), BCE with logits; then a G-step with fresh z, non-saturating loss.
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
    p.add_argument("--iters", type=int, default=20, help="iterations per timing round")
    p.add_argument("--rounds", type=int, default=5, help="timing rounds (median is reported)")
    p.add_argument("--warmup", type=int, default=5, help="untimed warm-up iterations")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--verbose", action="store_true", help="print per-round times and losses")
    return p.parse_args()


args = parse_args()
if args.blas_threads <= 0:
    args.blas_threads = args.threads
# Debian's torch uses the system BLAS, whose thread pool is sized by the environment
# when it loads: set it before importing torch.
os.environ["OMP_NUM_THREADS"] = str(args.threads)
os.environ["OPENBLAS_NUM_THREADS"] = str(args.blas_threads)
os.environ["MKL_NUM_THREADS"] = str(args.blas_threads)

import statistics  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(args.threads)
torch.set_num_interop_threads(1)
torch.manual_seed(args.seed)

NOISE, N_TRAIN = 100, 50000


class View(nn.Module):
    def __init__(self, *shape):
        super().__init__()
        self.shape = shape

    def forward(self, x):
        return x.view(x.shape[0], *self.shape)


G = nn.Sequential(
    nn.Linear(NOISE, 7 * 7 * 128), nn.BatchNorm1d(7 * 7 * 128), nn.ReLU(), View(128, 7, 7),
    nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.ReLU(),
    nn.ConvTranspose2d(64, 1, 4, 2, 1), nn.Sigmoid(),
)
D = nn.Sequential(
    nn.Conv2d(1, 64, 4, 2, 1), nn.LeakyReLU(0.2),
    nn.Conv2d(64, 128, 4, 2, 1), nn.BatchNorm2d(128), nn.LeakyReLU(0.2),
    nn.Flatten(), nn.Linear(7 * 7 * 128, 1),
)
G.train()
D.train()
optD = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
optG = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))

B = args.batch
data = torch.rand(N_TRAIN, 1, 28, 28)
state = {"perm": torch.randperm(N_TRAIN), "pos": 0}
ones, zeros = torch.ones(B, 1), torch.zeros(B, 1)


def next_real():
    if state["pos"] + B > N_TRAIN:
        state["perm"], state["pos"] = torch.randperm(N_TRAIN), 0
    idx = state["perm"][state["pos"]:state["pos"] + B]
    state["pos"] += B
    return data.index_select(0, idx)


def set_requires_grad(module, flag):
    for p in module.parameters():
        p.requires_grad_(flag)


def iteration():
    with torch.no_grad():
        fake = G(torch.randn(B, NOISE))
    optD.zero_grad(set_to_none=True)
    loss_d = 0.5 * (F.binary_cross_entropy_with_logits(D(next_real()), ones)
                    + F.binary_cross_entropy_with_logits(D(fake), zeros))
    loss_d.backward()
    optD.step()

    set_requires_grad(D, False)
    optG.zero_grad(set_to_none=True)
    loss_g = F.binary_cross_entropy_with_logits(D(G(torch.randn(B, NOISE))), ones)
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
    extra = "" if args.blas_threads == args.threads else f" blas_threads={args.blas_threads}"
    print(f"torch threads={args.threads}{extra} ms_per_iter={statistics.median(rounds):.2f}")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""PyTorch reference timing for one GAN training iteration (1 D-step + 1 G-step) with
gantrain's convolutional MNIST nets (--net dcgan-mnist or best), float32: on the CPU (the twin of gantrain's CPU backend,
bench/cpu.sh) or on a GPU (the twin of its CUDA backend, scripts/gpu-time.sh).

Usage: /usr/bin/python3 bench/torch_dcgan.py --threads 2 [--blas-threads 2] --iters 20 --rounds 5 --warmup 5
Prints: torch net=NET threads=N ms_per_iter=XX.XX  (median over timing rounds)

       python3 bench/torch_dcgan.py --device cuda --batch 64,512 --precision fp32,tf32 --graph 0,1
Prints one line per combination (each its own fresh nets), as bench/torch_step_cuda.py:
  torch-cuda net=NET batch=B precision=fp32|tf32 graph=0|1 ms_per_iter=X it_per_s=Y  (median round)

Nets (bench/gan_nets.py): --net dcgan-mnist, as model.DCGANGenerator(28, 28, 128, 2)
and model.DCGANDiscriminator(64, 2):
  G: Linear(100, 7*7*128), BatchNorm1d, ReLU, view 128x7x7,
     ConvTranspose2d(128, 64, 4, 2, 1), BatchNorm2d, ReLU,
     ConvTranspose2d(64, 1, 4, 2, 1), Sigmoid;  z ~ N(0, 1)
  D: Conv2d(1, 64, 4, 2, 1), LeakyReLU(0.2), Conv2d(64, 128, 4, 2, 1), BatchNorm2d,
     LeakyReLU(0.2), flatten, Linear(6272, 1) -> logit
  Adam lr 2e-4, betas (0.5, 0.999), for each net.
--net best (--preset best): the same with a dense hidden layer of 1,024 units (and its
batchnorm) in front of G and before D's logit, G's learning rate 1e-3, and a moving
average of G's parameters (decay 0.9999, warm-up (1+t)/(10+t)) updated after every
G-step, as g_ema does.
One iteration: D-step on the real and the fake half (batchnorm statistics apart, as
gantrain keeps them), BCE with logits; then a G-step with fresh z, non-saturating loss.

On CUDA: the training set resident on the device, cuDNN's autotuner on
(cudnn.benchmark), Adam's foreach kernels; fp32 turns TF32 off for the matrix products
and the convolutions, tf32 on. CUDA events around each round of --iters iterations after
--warmup iterations; losses are not read back inside a round. --graph 1 captures one
iteration in a CUDA graph and replays it, as bench/torch_step_cuda.py does (the
minibatch order a permutation read at a position held on the device; Adam capturable).
"""
import argparse
import os
import sys


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1,
                   help="torch intra-op (OpenMP) threads; also the BLAS threads unless --blas-threads")
    p.add_argument("--blas-threads", type=int, default=0,
                   help="OpenBLAS threads (default: same as --threads)")
    p.add_argument("--iters", type=int, default=20, help="iterations per timing round")
    p.add_argument("--rounds", type=int, default=5, help="timing rounds (median is reported)")
    p.add_argument("--warmup", type=int, default=5, help="untimed warm-up iterations")
    p.add_argument("--net", default="dcgan-mnist", choices=("dcgan-mnist", "best"),
                   help="the nets: --preset dcgan-mnist's, or --preset best's (with G's moving average)")
    p.add_argument("--batch", default="64", help="batch size (cuda: comma-separated sizes)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--verbose", action="store_true", help="print per-round times and losses")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--precision", default="fp32",
                   help="cuda: comma-separated: fp32 (exact), tf32 (TF32 tensor-core matmuls and convolutions)")
    p.add_argument("--graph", default="0",
                   help="cuda: comma-separated: 0 (eager), 1 (capture one iteration in a CUDA graph, replay it)")
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
from gan_nets import best_mnist_nets, dcgan_mnist_nets  # noqa: E402

torch.set_num_threads(args.threads)
torch.set_num_interop_threads(1)

NOISE, N_TRAIN = 100, 50000


def nets(dev):
    """G and D of --net in training mode on dev."""
    return best_mnist_nets(dev) if args.net == "best" else dcgan_mnist_nets(dev)


def g_average(G, dev):
    """With --net best, the update of the moving average of G's parameters after a
    G-step (g_ema 0.9999 with g_ema_warmup); else None. The update count lives on the
    device so that a captured graph replays the warm-up as it goes on."""
    if args.net != "best":
        return None
    params = list(G.parameters())
    avg = [p.detach().clone() for p in params]
    t = torch.zeros((), device=dev)

    def update():
        with torch.no_grad():
            t.add_(1)
            w = 1 - torch.clamp((1 + t) / (10 + t), max=0.9999)
            for a, p in zip(avg, params):
                a.lerp_(p, w)
    return update


def adam(net, lr=2e-4, **kw):
    return torch.optim.Adam(net.parameters(), lr=lr, betas=(0.5, 0.999), **kw)


def g_lr():
    """G's learning rate: --preset best trains G at 1e-3 (InfoGAN's rates), D at 2e-4."""
    return 1e-3 if args.net == "best" else 2e-4


def set_requires_grad(module, flag):
    for p in module.parameters():
        p.requires_grad_(flag)


def make_iteration(G, D, optD, optG, next_real, noise, ones, zeros, set_to_none, average=None):
    """One iteration (a D step, then a G step with D frozen, then G's average if
    given), returning both losses."""
    def iteration():
        with torch.no_grad():
            fake = G(noise())
        optD.zero_grad(set_to_none=set_to_none)
        loss_d = 0.5 * (F.binary_cross_entropy_with_logits(D(next_real()), ones)
                        + F.binary_cross_entropy_with_logits(D(fake), zeros))
        loss_d.backward()
        optD.step()

        set_requires_grad(D, False)
        optG.zero_grad(set_to_none=set_to_none)
        loss_g = F.binary_cross_entropy_with_logits(D(G(noise())), ones)
        loss_g.backward()
        optG.step()
        if average is not None:
            average()
        set_requires_grad(D, True)
        return loss_d, loss_g
    return iteration


def main_cpu():
    torch.manual_seed(args.seed)
    G, D = nets("cpu")
    optD, optG = adam(D), adam(G, g_lr())
    B = int(args.batch)
    data = torch.rand(N_TRAIN, 1, 28, 28)
    state = {"perm": torch.randperm(N_TRAIN), "pos": 0}

    def next_real():
        if state["pos"] + B > N_TRAIN:
            state["perm"], state["pos"] = torch.randperm(N_TRAIN), 0
        idx = state["perm"][state["pos"]:state["pos"] + B]
        state["pos"] += B
        return data.index_select(0, idx)

    iteration = make_iteration(G, D, optD, optG, next_real, lambda: torch.randn(B, NOISE),
                               torch.ones(B, 1), torch.zeros(B, 1), set_to_none=True,
                               average=g_average(G, "cpu"))
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
    print(f"torch net={args.net} threads={args.threads}{extra} ms_per_iter={statistics.median(rounds):.2f}")


def main_cuda():
    if not torch.cuda.is_available():
        print("error: torch.cuda.is_available() is False", file=sys.stderr)
        sys.exit(2)
    torch.backends.cudnn.benchmark = True
    failed = False
    for batch in [int(b) for b in args.batch.split(",")]:
        for prec in args.precision.split(","):
            for graph in [g == "1" for g in args.graph.split(",")]:
                try:
                    bench_cuda(batch, prec, graph)
                except Exception as e:  # one combination failing must not hide the others
                    print(f"torch-cuda net={args.net} batch={batch} precision={prec} graph={int(graph)} error: {e!r}",
                          flush=True)
                    failed = True
    sys.exit(1 if failed else 0)


def bench_cuda(B, prec, graph):
    # The capture and the timing of the paper's twin (this folder is on sys.path).
    from torch_step_cuda import captured, median_ms

    if prec not in ("fp32", "tf32"):
        raise ValueError(f"precision {prec!r}")
    dev = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = prec == "tf32"
    torch.backends.cudnn.allow_tf32 = prec == "tf32"  # on by default: fp32 must turn it off
    torch.manual_seed(args.seed)
    G, D = nets(dev)
    # A captured step must read Adam's step count on the device (capturable).
    optD, optG = adam(D, foreach=True, capturable=graph), adam(G, g_lr(), foreach=True, capturable=graph)
    data = torch.rand(N_TRAIN, 1, 28, 28, device=dev)
    # The minibatch order: a fixed on-device permutation, read at a position held on the
    # device too, so that one iteration is capturable (no host-side indexing).
    perm = torch.randperm(N_TRAIN, device=dev)
    pos = torch.zeros((), dtype=torch.long, device=dev)
    arange = torch.arange(B, device=dev)

    def next_real():
        idx = perm[(pos + arange) % N_TRAIN]
        pos.add_(B).remainder_(N_TRAIN)
        return data.index_select(0, idx)

    # Gradients zeroed in place rather than freed: a graph replays into the same memory.
    iteration = make_iteration(G, D, optD, optG, next_real, lambda: torch.randn(B, NOISE, device=dev),
                               torch.ones(B, 1, device=dev), torch.zeros(B, 1, device=dev), set_to_none=False,
                               average=g_average(G, dev))
    ms = median_ms(captured(iteration) if graph else iteration, args, True)
    print(f"torch-cuda net={args.net} batch={B} precision={prec} graph={int(graph)} ms_per_iter={ms:.4f}"
          f" it_per_s={1000 / ms:.1f} (torch {torch.__version__}, {torch.cuda.get_device_name()})", flush=True)


if __name__ == "__main__":
    main_cuda() if args.device == "cuda" else main_cpu()

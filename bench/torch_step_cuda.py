#!/usr/bin/env python3
"""PyTorch CUDA reference timing for one GAN training iteration (1 D-step + 1 G-step)
with the Goodfellow et al. 2014 MNIST nets, float32, the whole training set resident on
the GPU (the same work gantrain's GPU backend does per iteration).

Usage: python3 bench/torch_step_cuda.py --batch 100,4096 --precision fp32,tf32 --graph 0,1
Prints one line per combination (each its own fresh nets):
  torch-cuda batch=B precision=fp32|tf32 graph=0|1 ms_per_iter=X it_per_s=Y  (median round)

Nets as in bench/torch_step.py (the CPU harness):
  G: Linear(100,1200) ReLU, Linear(1200,1200) ReLU, Linear(1200,784) Sigmoid; z ~ U(-sqrt3, sqrt3)
  D: Dropout(0.2), Linear(784,1200), maxout 5, Dropout(0.5), Linear(240,1200), maxout 5,
     Dropout(0.5), Linear(240,1) -> logit
  SGD lr 0.1 momentum 0.5 for each net (foreach implementation: fused multi-tensor kernels).
Timing: CUDA events around each round of --iters iterations after --warmup iterations;
losses are not read back inside a round. --graph captures one iteration in a CUDA graph
and replays it (the best launch overhead PyTorch offers).
"""
import argparse
import math
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from gan_nets import paper_nets


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", default="100", help="comma-separated batch sizes")
    p.add_argument("--precision", default="fp32", help="comma-separated: fp32 (exact), tf32 (TF32 tensor-core matmuls)")
    p.add_argument("--graph", default="0", help="comma-separated: 0 (eager), 1 (capture one iteration in a CUDA graph, replay it)")
    p.add_argument("--iters", type=int, default=200, help="iterations per timing round")
    p.add_argument("--rounds", type=int, default=5, help="timing rounds (median reported)")
    p.add_argument("--warmup", type=int, default=30)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--device", default="cuda", help="cuda, or cpu to try the script without a GPU")
    return p.parse_args()


NOISE, PIX, N_TRAIN = 100, 784, 50000


def main():
    args = parse_args()
    cuda = args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        print("error: torch.cuda.is_available() is False", file=sys.stderr)
        sys.exit(2)
    failed = False
    for batch in [int(b) for b in args.batch.split(",")]:
        for prec in args.precision.split(","):
            for graph in [g == "1" for g in args.graph.split(",")]:
                if graph and not cuda:
                    continue
                try:
                    bench(args, cuda, batch, prec, graph)
                except Exception as e:  # one combination failing must not hide the others
                    print(f"torch-{args.device} batch={batch} precision={prec} graph={int(graph)} error: {e!r}", flush=True)
                    failed = True
    sys.exit(1 if failed else 0)


def bench(args, cuda, B, prec, graph):
    if prec not in ("fp32", "tf32"):
        raise ValueError(f"precision {prec!r}")
    dev = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = prec == "tf32"
    torch.backends.cudnn.allow_tf32 = prec == "tf32"
    torch.manual_seed(args.seed)

    G, D = paper_nets(dev)
    optD = torch.optim.SGD(D.parameters(), lr=0.1, momentum=0.5, foreach=True)
    optG = torch.optim.SGD(G.parameters(), lr=0.1, momentum=0.5, foreach=True)

    sqrt3 = math.sqrt(3.0)
    data = torch.rand(N_TRAIN, PIX, device=dev)
    targets_d = torch.cat([torch.ones(B, 1), torch.zeros(B, 1)]).to(dev)
    targets_g = torch.ones(B, 1, device=dev)
    # The minibatch order: a fixed on-device permutation, read at a position held on the
    # device too, so that one iteration is capturable (no host-side indexing).
    perm = torch.randperm(N_TRAIN, device=dev)
    pos = torch.zeros((), dtype=torch.long, device=dev)
    arange = torch.arange(B, device=dev)
    d_params = list(D.parameters())

    def iteration():
        idx = perm[(pos + arange) % N_TRAIN]
        pos.add_(B).remainder_(N_TRAIN)
        real = data.index_select(0, idx)
        # D-step
        with torch.no_grad():
            fake = G(torch.empty(B, NOISE, device=dev).uniform_(-sqrt3, sqrt3))
        optD.zero_grad(set_to_none=False)
        loss_d = F.binary_cross_entropy_with_logits(D(torch.cat([real, fake])), targets_d)
        loss_d.backward()
        optD.step()
        # G-step (non-saturating), D frozen
        for p in d_params:
            p.requires_grad_(False)
        optG.zero_grad(set_to_none=False)
        loss_g = F.binary_cross_entropy_with_logits(D(G(torch.empty(B, NOISE, device=dev).uniform_(-sqrt3, sqrt3))), targets_g)
        loss_g.backward()
        optG.step()
        for p in d_params:
            p.requires_grad_(True)
        return loss_d, loss_g

    ms = median_ms(captured(iteration) if graph else iteration, args, cuda)
    name = torch.cuda.get_device_name() if cuda else "cpu"
    print(f"torch-{args.device} batch={B} precision={prec} graph={int(graph)} ms_per_iter={ms:.4f} it_per_s={1000 / ms:.1f}"
          f" (torch {torch.__version__}, {name})", flush=True)



def captured(iteration):
    """Captures one call of iteration in a CUDA graph, after 5 calls on a side stream
    (allocations, library autotuning, lazily built optimiser state), and returns the
    graph's replay."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(5):
            iteration()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        iteration()
    return g.replay


def median_ms(step, args, cuda):
    """Calls step args.warmup times, then times args.rounds rounds of args.iters calls
    (CUDA events on cuda, nothing read back inside a round) and returns the median
    round's milliseconds per call."""
    for _ in range(args.warmup):
        step()
    if cuda:
        torch.cuda.synchronize()
    rounds = []
    for _ in range(args.rounds):
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
        else:
            t0 = time.perf_counter()
        for _ in range(args.iters):
            step()
        if cuda:
            end.record()
            end.synchronize()
            rounds.append(start.elapsed_time(end) / args.iters)
        else:
            rounds.append((time.perf_counter() - t0) * 1000 / args.iters)
    return statistics.median(rounds)

if __name__ == "__main__":
    main()

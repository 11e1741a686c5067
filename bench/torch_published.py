#!/usr/bin/python3
"""An independent PyTorch twin of `gantrain train --preset published` (and, with
--update alternating, of `--preset paper`), for judging whether gantrain's Parzen curve
on MNIST is the configuration's or gantrain's: the same configuration written a second
time, by hand, on another framework, with its own random numbers.

  /usr/bin/python3 bench/torch_published.py --epochs 100 --save-every 10 --out-dir /tmp/tp
  for f in /tmp/tp/samples-epoch*.npy; do gantrain eval --npy $f --json; done

The configuration is the authors' published MNIST one
(docs/log/audit-published-code-2026-11-27.md):
  - data: the first 50,000 training images /255, reshuffled every epoch, batch 100;
  - noise: 100 dimensions, uniform in (−√3, √3), fresh each minibatch;
  - G: 100 → 1200 ReLU → 1200 ReLU → 784 sigmoid, weights U(±0.05), hidden biases 0,
    output bias the logit of the training set's mean pixels clipped to [1e-7, 1−1e-7];
  - D: maxout 240×5 → maxout 240×5 → 1 sigmoid, weights U(±0.005), biases 0, the five
    pieces of a unit contiguous; per-element dropout on the input of every D layer:
    keep 0.8 scaled 1.25 into the first, keep 0.5 scaled 2 into the others;
  - objectives: D ½(BCE(real, 1) + BCE(fake, 0)), G BCE(fake, 1) (non-saturating),
    batch means;
  - update: simultaneous (the published code): one forward pass of D over [real; fake]
    with one set of masks gives both nets' gradients, both applied together.
    Alternating (Algorithm 1, k = 1): a D step, then a G step on fresh noise and fresh masks;
  - SGD with velocity momentum v ← μv − εg, θ ← θ + v; ε = 0.1/1.000004^t per update,
    floor 1e-6; μ = 0.5 + 0.2·(k−1)/249 in epoch k (from 1), 0.7 from epoch 250.

Every --save-every epochs it writes samples-epochE.npy: 10,000 samples (sigmoid means)
from one fixed noise, float32, for `gantrain eval --npy`. Weights, RNG and BLAS are
PyTorch's, not gantrain's: the comparison is of behaviour, not of bits.
"""
import argparse
import json
import math
import os
import sys
import time

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("--epochs", type=int, default=100)
p.add_argument("--update", choices=["simultaneous", "alternating"], default="simultaneous")
p.add_argument("--out-dir", required=True, help="directory for samples-epochE.npy and log.jsonl")
p.add_argument("--save-every", type=int, default=10, help="epochs between sample files (0: only at the end)")
p.add_argument("--threads", type=int, default=1)
p.add_argument("--seed", type=int, default=1)
p.add_argument("--data", default="", help="directory of MNIST's idx .gz files (default: the GoMNIST module)")
args = p.parse_args()
if args.epochs < 1 or args.save_every < 0 or args.threads < 1:
    sys.exit("torch_published.py: --epochs and --threads must be ≥ 1, --save-every ≥ 0")
os.environ["OMP_NUM_THREADS"] = os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from mnist_idx import train_images  # noqa: E402

torch.set_num_threads(args.threads)
torch.manual_seed(args.seed)
os.makedirs(args.out_dir, exist_ok=True)



x = torch.from_numpy(train_images(args.data))
mean = x.mean(0).clamp(1e-7, 1 - 1e-7)


def uniform(shape, r):
    return torch.empty(shape).uniform_(-r, r)


# Parameters as plain tensors: W is (in × out), as pylearn2 stores it.
G = [uniform((100, 1200), .05), torch.zeros(1200),
     uniform((1200, 1200), .05), torch.zeros(1200),
     uniform((1200, 784), .05), torch.log(mean / (1 - mean))]
D = [uniform((784, 1200), .005), torch.zeros(1200),
     uniform((240, 1200), .005), torch.zeros(1200),
     uniform((240, 1), .005), torch.zeros(1)]
for t in G + D:
    t.requires_grad_(True)
velG = [torch.zeros_like(t) for t in G]
velD = [torch.zeros_like(t) for t in D]
KEEP, SCALE = (0.8, 0.5, 0.5), (1.25, 2.0, 2.0)


def generate(z):
    h = F.relu(z @ G[0] + G[1])
    h = F.relu(h @ G[2] + G[3])
    return torch.sigmoid(h @ G[4] + G[5])


def dropout(h, layer):
    mask = torch.rand_like(h) < KEEP[layer]
    return h * mask * SCALE[layer]


def discriminate(v):
    """D's logits, with dropout on every layer's input (always on in training)."""
    h = dropout(v, 0) @ D[0] + D[1]
    h = h.view(-1, 240, 5).amax(-1)
    h = dropout(h, 1) @ D[2] + D[3]
    h = h.view(-1, 240, 5).amax(-1)
    return dropout(h, 2) @ D[4] + D[5]


def noise(m):
    return torch.empty(m, 100).uniform_(-math.sqrt(3), math.sqrt(3))


def sgd(params, vel, grads, lr, mom):
    with torch.no_grad():
        for p_, v, g in zip(params, vel, grads):
            v.mul_(mom).sub_(lr * g)
            p_.add_(v)


fixed = torch.Generator().manual_seed(args.seed + 1000)
fixed_z = torch.empty(10000, 100).uniform_(-math.sqrt(3), math.sqrt(3), generator=fixed)


def save(epoch):
    with torch.no_grad():
        s = generate(fixed_z).numpy().astype(np.float32)
    path = os.path.join(args.out_dir, f"samples-epoch{epoch}.npy")
    np.save(path, s)
    return path


m = 100
ones, zeros = torch.ones(m, 1), torch.zeros(m, 1)
t = 0
log = open(os.path.join(args.out_dir, "log.jsonl"), "a")
start = time.time()
for epoch in range(1, args.epochs + 1):
    mom = 0.5 + 0.2 * min(epoch - 1, 249) / 249
    perm = torch.randperm(len(x))
    sums = np.zeros(4)
    for i in range(0, len(x) - m + 1, m):
        lr = max(0.1 / 1.000004 ** t, 1e-6)
        real = x[perm[i:i + m]]
        if args.update == "simultaneous":
            logits = discriminate(torch.cat([real, generate(noise(m))]))
            lreal, lfake = logits[:m], logits[m:]
            d_loss = 0.5 * (F.binary_cross_entropy_with_logits(lreal, ones) +
                            F.binary_cross_entropy_with_logits(lfake, zeros))
            g_loss = F.binary_cross_entropy_with_logits(lfake, ones)
            gd = torch.autograd.grad(d_loss, D, retain_graph=True)
            gg = torch.autograd.grad(g_loss, G)
            sgd(D, velD, gd, lr, mom)
            sgd(G, velG, gg, lr, mom)
        else:
            with torch.no_grad():
                fake = generate(noise(m))
            logits = discriminate(torch.cat([real, fake]))
            lreal, lfake = logits[:m], logits[m:]
            d_loss = 0.5 * (F.binary_cross_entropy_with_logits(lreal, ones) +
                            F.binary_cross_entropy_with_logits(lfake, zeros))
            sgd(D, velD, torch.autograd.grad(d_loss, D), lr, mom)
            g_loss = F.binary_cross_entropy_with_logits(discriminate(generate(noise(m))), ones)
            sgd(G, velG, torch.autograd.grad(g_loss, G), lr, mom)
        t += 1
        with torch.no_grad():
            sums += [d_loss.item(), g_loss.item(), torch.sigmoid(lreal).mean().item(), torch.sigmoid(lfake).mean().item()]
    n = len(x) // m
    rec = {"epoch": epoch, "d_loss": sums[0] / n, "g_loss": sums[1] / n, "d_real": sums[2] / n,
           "d_fake": sums[3] / n, "lr": lr, "momentum": mom, "seconds": round(time.time() - start, 1)}
    if not all(math.isfinite(v) for v in sums):
        sys.exit(f"epoch {epoch}: non-finite loss {rec}")
    if (args.save_every and epoch % args.save_every == 0) or epoch == args.epochs:
        rec["samples"] = save(epoch)
    print(json.dumps(rec), file=log, flush=True)
    print(json.dumps(rec), file=sys.stderr, flush=True)

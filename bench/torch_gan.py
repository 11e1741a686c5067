#!/usr/bin/python3
"""An independent PyTorch twin of configs/mnist-mlp-adam.yaml, for judging gantrain's
training dynamics (not its speed): train on the same 50,000 MNIST images, then save
10,000 samples for `gantrain eval --npy`.

  /usr/bin/python3 bench/torch_gan.py --epochs 10 --out /tmp/torch-mlp-10.npy
  gantrain eval --npy /tmp/torch-mlp-10.npy

The nets and optimiser follow the config: G 100→256→512→1024→784 (leaky ReLU 0.2,
sigmoid out, output bias at the logit of the mean image), D 784→1024→512→256→1
(leaky ReLU 0.2, dropout 0.3 after each hidden layer), N(0, 1) noise, Adam 2e-4
β=(0.5, 0.999), batch 100, non-saturating G loss, one D step then one G step (D in
train mode, fresh noise for G). Weights use PyTorch's default initialisation, not
gantrain's, and PyTorch's own RNG: the comparison is of behaviour, not of bits.
"""
import argparse
import os
import sys
import time

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("--epochs", type=int, default=10)
p.add_argument("--out", required=True, help="samples .npy to write (10000×784 float32)")
p.add_argument("--threads", type=int, default=1)
p.add_argument("--seed", type=int, default=1)
p.add_argument("--data", default="", help="directory of MNIST's idx .gz files (default: the GoMNIST module)")
args = p.parse_args()
os.environ["OMP_NUM_THREADS"] = os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from mnist_idx import train_images  # noqa: E402

torch.set_num_threads(args.threads)
torch.manual_seed(args.seed)



x = torch.from_numpy(train_images(args.data))
mean = x.mean(0).clamp(1e-5, 1 - 1e-5)

G = nn.Sequential(nn.Linear(100, 256), nn.LeakyReLU(0.2), nn.Linear(256, 512), nn.LeakyReLU(0.2),
                  nn.Linear(512, 1024), nn.LeakyReLU(0.2), nn.Linear(1024, 784))
with torch.no_grad():
    G[-1].bias.copy_(torch.log(mean / (1 - mean)))
D = nn.Sequential(nn.Linear(784, 1024), nn.LeakyReLU(0.2), nn.Dropout(0.3),
                  nn.Linear(1024, 512), nn.LeakyReLU(0.2), nn.Dropout(0.3),
                  nn.Linear(512, 256), nn.LeakyReLU(0.2), nn.Dropout(0.3), nn.Linear(256, 1))
optG = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
optD = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
m = 100
ones, zeros = torch.ones(m, 1), torch.zeros(m, 1)
start = time.time()
for epoch in range(args.epochs):
    perm = torch.randperm(len(x))
    for i in range(0, len(x) - m + 1, m):
        real = x[perm[i:i + m]]
        fake = torch.sigmoid(G(torch.randn(m, 100)))
        logits = D(torch.cat([real, fake.detach()]))
        d_loss = F.binary_cross_entropy_with_logits(logits, torch.cat([ones, zeros]))
        optD.zero_grad()
        d_loss.backward()
        optD.step()
        fake = torch.sigmoid(G(torch.randn(m, 100)))
        g_loss = F.binary_cross_entropy_with_logits(D(fake), ones)
        optG.zero_grad()
        g_loss.backward()
        optG.step()
    print(f"epoch {epoch + 1}: d_loss {d_loss.item():.4f} g_loss {g_loss.item():.4f} "
          f"({time.time() - start:.0f} s)", file=sys.stderr, flush=True)
with torch.no_grad():
    s = torch.sigmoid(G(torch.randn(10000, 100))).numpy().astype(np.float32)
np.save(args.out, s)
print(f"wrote {args.out}: {s.shape}", file=sys.stderr)

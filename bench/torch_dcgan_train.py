#!/usr/bin/python3
"""An independent PyTorch twin of `gantrain train --preset dcgan-mnist`, for judging
gantrain's training of convolutional nets (not its speed): train on the same 50,000
MNIST images and save 10,000 samples after every --save-every epochs, for
`gantrain eval --npy` (bench/eval_samples.py evaluates them all).

  /usr/bin/python3 bench/torch_dcgan_train.py --epochs 6 --dir /tmp/torch-dcgan
  /usr/bin/python3 bench/eval_samples.py --gantrain ./gantrain --dir /tmp/torch-dcgan

The nets, initialisation and optimiser follow the preset (model.DCGANGenerator(28, 28,
128, 2), model.DCGANDiscriminator(64, 2)): G 100 → Linear 6272, BatchNorm1d, ReLU, view
7×7×128, ConvTranspose2d 64 (k4 s2 p1), BatchNorm2d, ReLU, ConvTranspose2d 1 (k4 s2 p1),
sigmoid, its output bias at the logit of the data's mean pixel; D Conv2d 64 (k4 s2 p1),
LeakyReLU 0.2, Conv2d 128 (k4 s2 p1), BatchNorm2d, LeakyReLU 0.2, Linear 6272 → 1;
weights U(±0.035), biases 0, batchnorm scales 1; N(0, 1) noise; Adam 2e-4, β (0.5,
0.999); batch 64; one D step (the real and the fake half through D apart, so that
batchnorm normalises each by its own statistics) then one G step with fresh noise,
non-saturating loss. Samples use the running statistics (gantrain's default,
train.sample_batchnorm: running). PyTorch's own RNG: the comparison is of behaviour,
not of bits.
"""
import argparse
import math
import os
import time

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("--epochs", type=int, default=6)
p.add_argument("--dir", required=True, help="directory for samples-epochE.npy (10000×784 float32)")
p.add_argument("--save-every", type=int, default=2)
p.add_argument("--threads", type=int, default=1)
p.add_argument("--seed", type=int, default=1)
p.add_argument("--data", default="", help="directory of MNIST's idx .gz files (default: the GoMNIST module)")
args = p.parse_args()
os.environ["OMP_NUM_THREADS"] = os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from gan_nets import dcgan_mnist_nets  # noqa: E402
from mnist_idx import train_images  # noqa: E402

torch.set_num_threads(args.threads)
torch.manual_seed(args.seed)
os.makedirs(args.dir, exist_ok=True)

x = torch.from_numpy(train_images(args.data)[:50000]).float().view(-1, 1, 28, 28)
N, B, R = x.shape[0], 64, 0.035


G, D = dcgan_mnist_nets()
with torch.no_grad():
    for m in list(G) + list(D):
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            m.weight.uniform_(-R, R)
            m.bias.zero_()
    mean = x.mean().clamp(1e-7, 1 - 1e-7)
    G[7].bias.fill_(math.log(mean / (1 - mean)))

optD = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
optG = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
ones, zeros = torch.ones(B, 1), torch.zeros(B, 1)
fixed = torch.randn(10000, 100, generator=torch.Generator().manual_seed(12345))

t0 = time.time()
for epoch in range(1, args.epochs + 1):
    perm = torch.randperm(N)
    for i in range(N // B):
        real = x[perm[i * B:(i + 1) * B]]
        with torch.no_grad():
            fake = G(torch.randn(B, 100))
        optD.zero_grad(set_to_none=True)
        loss_d = 0.5 * (F.binary_cross_entropy_with_logits(D(real), ones)
                        + F.binary_cross_entropy_with_logits(D(fake), zeros))
        loss_d.backward()
        optD.step()
        for q in D.parameters():
            q.requires_grad_(False)
        optG.zero_grad(set_to_none=True)
        loss_g = F.binary_cross_entropy_with_logits(D(G(torch.randn(B, 100))), ones)
        loss_g.backward()
        optG.step()
        for q in D.parameters():
            q.requires_grad_(True)
    print(f"epoch {epoch} d_loss {loss_d.item():.4f} g_loss {loss_g.item():.4f} ({time.time() - t0:.0f} s)", flush=True)
    if epoch % args.save_every == 0 or epoch == args.epochs:
        G.eval()
        with torch.no_grad():
            s = torch.cat([G(fixed[k:k + 1000]) for k in range(0, 10000, 1000)]).view(10000, 784)
        G.train()
        np.save(os.path.join(args.dir, f"samples-epoch{epoch}.npy"), s.numpy().astype(np.float32))

"""The PyTorch definitions of gantrain's nets, one place for the benchmarks and twins
(bench/torch_step.py, torch_step_cuda.py, torch_dcgan.py, torch_dcgan_train.py).

paper_nets: the 2014 paper's MNIST nets (model.PaperGenerator, PaperDiscriminator).
  G: Linear(100,1200) ReLU, Linear(1200,1200) ReLU, Linear(1200,784) Sigmoid
  D: Dropout(0.2), Linear(784,1200), maxout 5 (adjacent columns), Dropout(0.5),
     Linear(240,1200), maxout 5, Dropout(0.5), Linear(240,1) -> logit
dcgan_mnist_nets: --preset dcgan-mnist (model.DCGANGenerator(28, 28, 128, 2),
  model.DCGANDiscriminator(64, 2)).
  G: Linear(100, 7*7*128), BatchNorm1d, ReLU, view 128x7x7,
     ConvTranspose2d(128, 64, 4, 2, 1), BatchNorm2d, ReLU,
     ConvTranspose2d(64, 1, 4, 2, 1), Sigmoid
  D: Conv2d(1, 64, 4, 2, 1), LeakyReLU(0.2), Conv2d(64, 128, 4, 2, 1), BatchNorm2d,
     LeakyReLU(0.2), flatten, Linear(6272, 1) -> logit
best_mnist_nets: --preset best, InfoGAN's MNIST nets (model.DCGANGenerator(28, 28, 128,
  2, 1024), model.DCGANDiscriminator(64, 2, 1024)): dcgan_mnist_nets with a dense
  hidden layer of 1,024 units in front of G and before D's logit.
  G: Linear(100, 1024), BatchNorm1d, ReLU, Linear(1024, 7*7*128), BatchNorm1d, ReLU,
     then as dcgan_mnist_nets
  D: as dcgan_mnist_nets to flatten, Linear(6272, 1024), BatchNorm1d, LeakyReLU(0.2),
     Linear(1024, 1) -> logit
All return (G, D) in training mode, with PyTorch's default initialisation.
"""
import torch.nn as nn

NOISE = 100


class Maxout(nn.Module):
    """Maxout over groups of `pieces` adjacent columns: (n, units*pieces) -> (n, units)."""

    def __init__(self, pieces):
        super().__init__()
        self.pieces = pieces

    def forward(self, x):
        n, c = x.shape
        return x.view(n, c // self.pieces, self.pieces).amax(dim=2)


class View(nn.Module):
    """Reads each row as an image of the given (C, H, W) shape."""

    def __init__(self, *shape):
        super().__init__()
        self.shape = shape

    def forward(self, x):
        return x.view(x.shape[0], *self.shape)


def paper_nets(dev="cpu"):
    G = nn.Sequential(
        nn.Linear(NOISE, 1200), nn.ReLU(),
        nn.Linear(1200, 1200), nn.ReLU(),
        nn.Linear(1200, 784), nn.Sigmoid(),
    ).to(dev)
    D = nn.Sequential(
        nn.Dropout(p=0.2),
        nn.Linear(784, 240 * 5), Maxout(5),
        nn.Dropout(p=0.5),
        nn.Linear(240, 240 * 5), Maxout(5),
        nn.Dropout(p=0.5),
        nn.Linear(240, 1),
    ).to(dev)
    G.train()
    D.train()
    return G, D


def dcgan_mnist_nets(dev="cpu", hidden=0):
    """hidden > 0: a dense layer of that many units (and its batchnorm) in front of G
    and before D's logit, as the hidden argument of model.DCGANGenerator does. Each
    layer is made in the order of the nets, so that a seed gives the same parameters."""
    def g_hidden():
        return [nn.Linear(NOISE, hidden), nn.BatchNorm1d(hidden), nn.ReLU()] if hidden else []

    def d_head():
        if not hidden:
            return [nn.Linear(7 * 7 * 128, 1)]
        return [nn.Linear(7 * 7 * 128, hidden), nn.BatchNorm1d(hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1)]

    G = nn.Sequential(
        *g_hidden(),
        nn.Linear(hidden or NOISE, 7 * 7 * 128), nn.BatchNorm1d(7 * 7 * 128), nn.ReLU(), View(128, 7, 7),
        nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.ReLU(),
        nn.ConvTranspose2d(64, 1, 4, 2, 1), nn.Sigmoid(),
    ).to(dev)
    D = nn.Sequential(
        nn.Conv2d(1, 64, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(64, 128, 4, 2, 1), nn.BatchNorm2d(128), nn.LeakyReLU(0.2),
        nn.Flatten(), *d_head(),
    ).to(dev)
    G.train()
    D.train()
    return G, D


def best_mnist_nets(dev="cpu"):
    return dcgan_mnist_nets(dev, hidden=1024)

#!/usr/bin/python3
"""Load a gantrain checkpoint into the PyTorch twins of its nets (bench/gan_nets.py).

A checkpoint stores every tensor as PyTorch's modules hold it for NCHW images
(docs/ARCHITECTURE.md, "Checkpoints"), under gantrain's names
(generator.layers.N.weight, .bias, .running_mean, .running_var; the optimiser state
and G's moving average with suffixes). The nets' parameterised layers come in the same
order as the torch.nn.Sequential's modules with parameters, so the tensors are copied
in that order, each shape checked.

Usage:
  python3 bench/torch_load_checkpoint.py --net best CHECKPOINT [--ema] [--samples N --out s.npy]
    loads G and D (with --ema, G's moving average, whose batchnorm statistics it then
    stands as gantrain does) and, with --samples, writes N samples of G in eval mode as
    an N×28×28 .npy (`gantrain eval --npy s.npy` scores them)
  python3 bench/torch_load_checkpoint.py --net best CHECKPOINT --check CASE.json
    runs G on CASE's noise and D on its images in eval mode and compares their outputs
    with CASE's (gantrain's own forward of the same checkpoint); exits 1 past --tol
--net: paper, dcgan-mnist or best (the preset whose nets the checkpoint holds).
Reads the file with numpy (no safetensors package needed).
"""
import argparse
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gan_nets  # noqa: E402


def read_safetensors(path):
    """The tensors of a safetensors file by name, as numpy arrays, and its metadata."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", None) or {}
    data = raw[8 + n:]
    out = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        dt = {"F32": "<f4", "I32": "<i4"}[info["dtype"]]
        out[name] = np.frombuffer(data[begin:end], dtype=dt).reshape(info["shape"])
    return out, meta


def load_net(net, prefix, tensors, suffix=""):
    """Copies the checkpoint's tensors of one net (prefix "generator" or
    "discriminator") into net's modules with parameters, in order."""
    layers = sorted({int(k.split(".")[2]) for k in tensors
                     if k.startswith(prefix + ".layers.") and k.endswith(".weight")})
    modules = [m for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm1d, nn.BatchNorm2d))]
    if len(layers) != len(modules):
        sys.exit("%s: %d layers with parameters in the checkpoint, %d in the PyTorch net" % (prefix, len(layers), len(modules)))
    sfx = "." + suffix if suffix else ""
    for i, m in zip(layers, modules):
        names = {"weight": m.weight, "bias": m.bias}
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            names.update(running_mean=m.running_mean, running_var=m.running_var)
        for field, dst in names.items():
            key = "%s.layers.%d.%s" % (prefix, i, field)
            if field in ("weight", "bias"):
                key += sfx
            src = tensors.get(key)
            if src is None:
                sys.exit("no tensor %s in the checkpoint" % key)
            if list(src.shape) != list(dst.shape):
                sys.exit("%s: shape %s, the PyTorch module's %s" % (key, list(src.shape), list(dst.shape)))
            with torch.no_grad():
                dst.copy_(torch.from_numpy(src.copy()))


def noise(meta, n):
    """n rows of G's noise as the checkpoint's run draws it."""
    dist = json.loads(meta.get("gantrain.config", "{}")).get("noise", {}).get("dist")
    if dist == "normal":
        return torch.randn(n, gan_nets.NOISE)
    return (torch.rand(n, gan_nets.NOISE) * 2 - 1) * 3 ** 0.5  # uniform in ±√3


def stand(G, meta, passes=32):
    """Sets the batchnorm statistics of G's moving average, which no training pass ran
    (the checkpoint holds G's own): the mean of the batch statistics of `passes`
    minibatch-sized passes, as gantrain stands them (Brock et al. 2019)."""
    batch = json.loads(meta.get("gantrain.config", "{}")).get("train", {}).get("batch", 100)
    bns = [m for m in G.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average
    G.train()
    with torch.no_grad():
        for _ in range(passes):
            G(noise(meta, batch))
    G.eval()


def nets(name):
    return {"paper": gan_nets.paper_nets, "dcgan-mnist": gan_nets.dcgan_mnist_nets,
            "best": gan_nets.best_mnist_nets}[name]()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("--net", required=True, choices=["paper", "dcgan-mnist", "best"])
    p.add_argument("--ema", action="store_true", help="load G's moving average (the checkpoint's .ema tensors)")
    p.add_argument("--check", help="a JSON case: noise z, images x, and gantrain's outputs g and d")
    p.add_argument("--tol", type=float, default=1e-4, help="largest |difference| --check accepts")
    p.add_argument("--samples", type=int, default=0)
    p.add_argument("--out", default="samples.npy")
    args = p.parse_args()

    torch.set_num_threads(1)
    tensors, meta = read_safetensors(args.checkpoint)
    if meta.get("gantrain.format") != "2":
        sys.exit("checkpoint format %r: this loader reads format 2 (PyTorch's C×H×W order of flattened images)" % meta.get("gantrain.format"))
    G, D = nets(args.net)
    load_net(G, "generator", tensors, "ema" if args.ema else "")
    load_net(D, "discriminator", tensors)
    G.eval()
    D.eval()
    if args.ema:
        stand(G, meta)
    with torch.no_grad():
        if args.check:
            case = json.load(open(args.check))
            n = len(case["d"])  # rows, flattened in the JSON
            z = torch.tensor(case["z"], dtype=torch.float32).view(n, -1)
            x = torch.tensor(case["x"], dtype=torch.float32).view(n, 1, 28, 28)
            dg = (G(z).reshape(n, -1) - torch.tensor(case["g"]).view(n, -1)).abs().max().item()
            dd = (D(x).reshape(-1) - torch.tensor(case["d"]).view(-1)).abs().max().item()
            print("max |G difference| %.3g, max |D difference| %.3g" % (dg, dd))
            if not (dg <= args.tol and dd <= args.tol):
                sys.exit(1)
            print("OK")
        if args.samples:
            z = noise(meta, args.samples)
            np.save(args.out, G(z).reshape(args.samples, 28, 28).numpy())
            print("wrote %d samples to %s" % (args.samples, args.out))


if __name__ == "__main__":
    main()

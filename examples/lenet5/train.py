#!/usr/bin/env python3
"""Train and export LeNet-5 for fold-ml: the classic MNIST architecture, as every MNIST zkML
demo uses it, on scikit-learn's digits upsampled to 28x28 and normalized like MNIST.

Reproducible (fixed seeds, deterministic torch algorithms, 2 threads), CPU only.

Model (torch.nn, exported by torch.onnx with opset 13):
  Conv 1->6 5x5 pad 2 -> ReLU -> MaxPool 2x2
  Conv 6->16 5x5 (no padding) -> ReLU -> MaxPool 2x2
  Flatten -> Gemm 400->120 -> ReLU -> Gemm 120->84 -> ReLU -> Gemm 84->10

Input: the 8x8 digit (0..16) scaled to [0, 1], bilinearly upsampled to 28x28, then
normalized with MNIST's mean and std ((x - 0.1307) / 0.3081): signed, in about
[-0.42, 2.82], as an MNIST-trained LeNet expects.

Outputs (next to this script):
  lenet5.onnx   the model
  calib.json    {"inputs": [...]}  the first 200 training images (784 floats each, NCHW)
  test.json     {"inputs", "labels", "float_predictions"}  the 360 held-out images
  digit.json    the first held-out image as a plain array of 784 floats

Usage:
  python3 -m venv /tmp/digits-venv && . /tmp/digits-venv/bin/activate
  pip install -r examples/digits/requirements.txt
  python examples/lenet5/train.py
"""

import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from train_common import check_and_write, export, seed_everything, train  # noqa: E402

SEED = 0
HERE = os.path.dirname(os.path.abspath(__file__))
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
OPS = ["Conv", "Relu", "MaxPool", "Conv", "Relu", "MaxPool", "Flatten", "Gemm", "Relu", "Gemm", "Relu", "Gemm"]


class LeNet5(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def images():
    d = load_digits()
    x = torch.from_numpy((d.images.astype(np.float32) / 16.0).reshape(-1, 1, 8, 8))
    x = F.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False)
    x = ((x - MNIST_MEAN) / MNIST_STD).numpy()
    return x, d.target.astype(np.int64)


def main():
    t0 = time.perf_counter()
    seed_everything(SEED)
    x, y = images()
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)
    print(f"train {xtr.shape}, test {xte.shape}, input range [{x.min():.3f}, {x.max():.3f}]")
    model = train(LeNet5(), *map(torch.from_numpy, (xtr, ytr, xte, yte)), epochs=30, seed=SEED)
    path = os.path.join(HERE, "lenet5.onnx")
    ops = export(model, (1, 1, 28, 28), path)
    assert ops == OPS, f"unexpected op list {ops}"
    # 4 significant digits keep test.json (360 images of 784 values) under 2 MiB
    check_and_write(model, HERE, "lenet5.onnx", xtr, xte, yte, t0, digits=4)


if __name__ == "__main__":
    main()

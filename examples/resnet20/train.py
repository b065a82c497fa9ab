#!/usr/bin/env python3
"""Train and export a CIFAR-shaped ResNet-20 for fold-ml: He et al.'s CIFAR ResNet (3 stages
of 3 basic blocks, 16/32/64 channels, stride-2 stage transitions with 1x1 projection
shortcuts and BatchNorm, global average pooling, a linear classifier), on scikit-learn's
digits replicated to 3 channels and normalized per channel like CIFAR-10.

Input size: 3x8x8, the digits' native resolution (the committed example), or CIFAR's full
3x32x32 with `--size 32` (the digits upsampled bilinearly; at 32x32 a basic block of stage 1
is 2 x 147,456 x 16 = 4.7M multiply-accumulates, proven in tiles). The architecture is
ResNet-20's either way.

Reproducible (fixed seeds, deterministic torch algorithms, 2 threads), CPU only.

Model (torch.nn, exported by torch.onnx with opset 13 in eval mode, which folds each
BatchNorm into the convolution before it):
  Conv 3->16 3x3 -> BN -> ReLU
  3 x BasicBlock(16), BasicBlock(32, stride 2, projection) + 2 x BasicBlock(32),
  BasicBlock(64, stride 2, projection) + 2 x BasicBlock(64)
    BasicBlock: ReLU(BN(Conv3x3(ReLU(BN(Conv3x3(x))))) + shortcut(x)),
    shortcut = x, or BN(Conv1x1 stride 2(x)) where the shape changes
  GlobalAveragePool -> Flatten -> Gemm 64->10

Outputs (next to this script):
  resnet20.onnx the model
  calib.json    {"inputs": [...]}  the first 200 training images (192 floats each, NCHW)
  test.json     {"inputs", "labels", "float_predictions"}  the 360 held-out images
  digit.json    the first held-out image as a plain array of 192 floats

Usage:
  python3 -m venv /tmp/digits-venv && . /tmp/digits-venv/bin/activate
  pip install -r examples/digits/requirements.txt
  python examples/resnet20/train.py                          # 3x8x8, next to this script
  python examples/resnet20/train.py --size 32 --out /tmp/resnet20-32   # CIFAR size (not committed)
"""

import argparse

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
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


class BasicBlock(nn.Module):
    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet20(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        layers, c_in = [], 16
        for c_out, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(3):
                layers.append(BasicBlock(c_in, c_out, stride if i == 0 else 1))
                c_in = c_out
        self.blocks = nn.Sequential(*layers)
        self.fc = nn.Linear(64, classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = F.relu(self.bn(self.conv(x)))
        x = self.blocks(x)
        x = F.adaptive_avg_pool2d(x, 1)
        return self.fc(torch.flatten(x, 1))


def images(size):
    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0).reshape(-1, 1, 8, 8).repeat(3, axis=1)
    if size != 8:
        up = F.interpolate(torch.from_numpy(x), size=(size, size), mode="bilinear", align_corners=False)
        x = up.numpy().clip(0.0, 1.0).astype(np.float32)
    mean = np.array(CIFAR_MEAN, dtype=np.float32).reshape(1, 3, 1, 1)
    std = np.array(CIFAR_STD, dtype=np.float32).reshape(1, 3, 1, 1)
    return ((x - mean) / std).astype(np.float32), d.target.astype(np.int64)


def main():
    args = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    args.add_argument("--size", type=int, default=8, help="input height and width (8: the digits' own)")
    args.add_argument("--out", default=HERE, help="output directory")
    args.add_argument("--epochs", type=int, default=40)
    a = args.parse_args()
    os.makedirs(a.out, exist_ok=True)
    t0 = time.perf_counter()
    seed_everything(SEED)
    x, y = images(a.size)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)
    print(f"train {xtr.shape}, test {xte.shape}, input range [{x.min():.3f}, {x.max():.3f}]")
    model = train(ResNet20(), *map(torch.from_numpy, (xtr, ytr, xte, yte)), epochs=a.epochs, seed=SEED)
    path = os.path.join(a.out, "resnet20.onnx")
    ops = export(model, (1, 3, a.size, a.size), path)
    print("ops:", " ".join(ops))
    assert ops.count("Conv") == 21 and ops.count("Add") == 9, "ResNet-20: 19 convs + 2 projections, 9 residual adds"
    check_and_write(model, a.out, "resnet20.onnx", xtr, xte, yte, t0)


if __name__ == "__main__":
    main()

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

import json
import os
import random
import time

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

SEED = 0
HERE = os.path.dirname(os.path.abspath(__file__))
N_CALIB = 200
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
OPS = ["Conv", "Relu", "MaxPool", "Conv", "Relu", "MaxPool", "Flatten", "Gemm", "Relu", "Gemm", "Relu", "Gemm"]


def seed_everything():
    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    torch.set_flush_denormal(True)


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


def accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def train(model, xtr, ytr, xte, yte, epochs=30, lr=3e-3, batch=32):
    g = torch.Generator().manual_seed(SEED)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * ((len(xtr) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.2)
    t0 = time.perf_counter()
    for ep in range(epochs):
        model.train()
        perm = torch.randperm(len(xtr), generator=g)
        for i in range(0, len(xtr), batch):
            idx = perm[i:i + batch]
            loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        if (ep + 1) % 10 == 0:
            print(f"  epoch {ep + 1:3d}  test acc {accuracy(model, xte, yte):.4f}  ({time.perf_counter() - t0:.0f}s)")
    model.eval()
    return model


def export(model, path):
    torch.onnx.export(
        model, (torch.zeros(1, 1, 28, 28),), path, dynamo=False, opset_version=13,
        input_names=["input"], output_names=["logits"], training=torch.onnx.TrainingMode.EVAL,
    )
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    ops = [n.op_type for n in m.graph.node if n.op_type != "Constant"]
    assert ops == OPS, f"unexpected op list {ops}"


def ort_predict(path, x):
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return np.array([int(np.argmax(sess.run(["logits"], {"input": img[None]})[0][0])) for img in x])


def r5(v):
    return float(f"{float(v):.5g}")


def flat(x):
    return [[r5(v) for v in img.reshape(-1)] for img in x]


def dump(obj, name):
    with open(os.path.join(HERE, name), "w") as f:
        json.dump(obj, f, separators=(",", ":"))
        f.write("\n")


def main():
    t0 = time.perf_counter()
    seed_everything()
    x, y = images()
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)
    print(f"train {xtr.shape}, test {xte.shape}, input range [{x.min():.3f}, {x.max():.3f}]")
    model = train(LeNet5(), *map(torch.from_numpy, (xtr, ytr, xte, yte)))
    path = os.path.join(HERE, "lenet5.onnx")
    export(model, path)
    with torch.no_grad():
        torch_pred = model(torch.from_numpy(xte)).argmax(1).numpy()
    ort_pred = ort_predict(path, xte)
    assert np.array_equal(torch_pred, ort_pred), "onnxruntime != torch predictions"
    acc = float((ort_pred == yte).mean())
    assert acc >= 0.95, f"float accuracy {acc} < 0.95"
    dump({"inputs": flat(xtr[:N_CALIB])}, "calib.json")
    dump({"inputs": flat(xte), "labels": [int(v) for v in yte], "float_predictions": [int(v) for v in ort_pred]},
         "test.json")
    dump(flat(xte[:1])[0], "digit.json")
    print(f"float test accuracy {acc:.4f} ({int(round(acc * len(yte)))}/{len(yte)}); digit.json label {int(yte[0])}, "
          f"predicted {ort_pred[0]}")
    for fn in ("lenet5.onnx", "calib.json", "test.json", "digit.json"):
        print(f"  {fn:12s} {os.path.getsize(os.path.join(HERE, fn)):9d} bytes")
    print(f"  torch {torch.__version__}, onnx {onnx.__version__}, onnxruntime {ort.__version__}; "
          f"{time.perf_counter() - t0:.0f}s")


if __name__ == "__main__":
    main()

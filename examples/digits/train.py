#!/usr/bin/env python3
"""Train and export the two `digits` example models for fold-ml.

Reproducible (fixed seeds, deterministic torch algorithms, 2 threads), CPU only.

Outputs (all next to this script):
  cnn.onnx        Conv-BN-Relu-MaxPool-Conv-Relu-AveragePool-Flatten-Gemm
  resnet64.onnx   stem Conv-Relu, 64 x [Conv -> Add(x, conv) -> Relu], AveragePool-Flatten-Gemm
  calib.json      {"inputs": [...]}  first 200 training images (64 floats each, NCHW)
  test.json       {"inputs", "labels", "cnn_float_predictions", "resnet64_float_predictions"}
  digit.json      the first held-out image as a plain array of 64 floats

Usage:
  python3 -m venv /tmp/digits-venv && . /tmp/digits-venv/bin/activate
  pip install -r examples/digits/requirements.txt
  python examples/digits/train.py
"""

import math
import os
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from train_common import accuracy, dump, seed_everything, train  # noqa: E402

SEED = 0
HERE = os.path.dirname(os.path.abspath(__file__))
N_BLOCKS = 64
N_CALIB = 200

CNN_OPS = [
    "Conv", "BatchNormalization", "Relu", "MaxPool",
    "Conv", "Relu", "AveragePool", "Flatten", "Gemm",
]
RESNET_OPS = ["Conv", "Relu"] + ["Conv", "Add", "Relu"] * N_BLOCKS + ["AveragePool", "Flatten", "Gemm"]


# --------------------------------------------------------------------------- models
class DigitsCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, stride=1, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.pool1 = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=1, padding=1)
        self.pool2 = nn.AvgPool2d(2, 2)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(16 * 2 * 2, 10)

    def forward(self, x):
        x = self.pool1(F.relu(self.bn1(self.conv1(x))))
        x = self.pool2(F.relu(self.conv2(x)))
        return self.fc(self.flatten(x))


class Block(nn.Module):
    def __init__(self, ch=8):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1, bias=True)
        with torch.no_grad():
            self.conv.weight.mul_(0.1)  # small init: each block starts near identity
            self.conv.bias.zero_()

    def forward(self, x):
        return F.relu(x + self.conv(x))


class ResNet64(nn.Module):
    def __init__(self, n_blocks=N_BLOCKS, ch=8):
        super().__init__()
        self.stem = nn.Conv2d(1, ch, 3, padding=1)
        self.blocks = nn.ModuleList([Block(ch) for _ in range(n_blocks)])
        self.pool = nn.AvgPool2d(2, 2)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(ch * 4 * 4, 10)

    def forward(self, x):
        x = F.relu(self.stem(x))
        for b in self.blocks:
            x = b(x)
        x = self.pool(x)
        return self.fc(self.flatten(x))


# --------------------------------------------------------------------------- export
def clean_identities(m):
    """The TorchScript exporter dedups byte-identical initializers into Identity nodes
    (happens e.g. for an untrained BN whose running_var == weight == 1). Replace any
    Identity(initializer) by a real initializer so the graph only holds the intended ops."""
    inits = {t.name: t for t in m.graph.initializer}
    keep = []
    for n in m.graph.node:
        if n.op_type == "Identity" and n.input[0] in inits:
            t = onnx.TensorProto()
            t.CopyFrom(inits[n.input[0]])
            t.name = n.output[0]
            m.graph.initializer.append(t)
        else:
            keep.append(n)
    del m.graph.node[:]
    m.graph.node.extend(keep)
    return m


def export(model, path, expected_ops):
    model.eval()
    dummy = torch.zeros(1, 1, 8, 8)
    # do_constant_folding=False stops the legacy exporter's eval-mode peephole from
    # fusing BatchNormalization into the preceding Conv.
    torch.onnx.export(
        model, (dummy,), path, dynamo=False, opset_version=13,
        input_names=["input"], output_names=["logits"],
        do_constant_folding=False, training=torch.onnx.TrainingMode.EVAL,
    )
    m = clean_identities(onnx.load(path))
    onnx.checker.check_model(m, full_check=True)
    ops = [n.op_type for n in m.graph.node if n.op_type != "Constant"]
    assert ops == expected_ops, f"{path}: unexpected op list {ops}"
    for n in m.graph.node:
        if n.op_type == "BatchNormalization":
            assert len(n.output) == 1, "BN exported in training mode"
    ishape = [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim]
    assert ishape == [1, 1, 8, 8], ishape
    onnx.save(m, path)
    return ops


def ort_predict(path, x):
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    preds = []
    for img in x:
        (logits,) = sess.run(["logits"], {"input": img[None].astype(np.float32)})
        preds.append(int(np.argmax(logits[0])))
    return np.array(preds)


# --------------------------------------------------------------------------- quant sim
# Informational only: an integer simulation of the circuit's arithmetic as documented in
# circuits/src/quant.rs, to check the models survive quantization. Per layer:
#   acc = bias_q + skip * x_q + sum(w_q * x_q)     (w_q int8 per-layer symmetric, x_q in [0,127])
#   y_q = clamp(floor(acc / 2^shift), 0, 127)      (round-to-nearest via +2^(shift-1) in bias)
#   then optional max/avg pool on the 7-bit values.
# The output scale is s_w * s_x * 2^shift with shift = ceil(log2(calib_max / 127 / (s_w * s_x)))
# (the smallest power of two that does not saturate the calibration max; pessimistic: it
# can waste up to one bit). The skip multiplier is round(1 / s_w). The last layer returns
# the raw accumulator (logits). The real importer may choose scales differently.
def layer_list(model):
    """[(weight, bias, kind, skip, pool)] in float64, BN folded into its conv."""
    d = lambda t: t.detach().double().clone()
    if isinstance(model, DigitsCNN):
        bn = model.bn1
        s = d(bn.weight) / torch.sqrt(d(bn.running_var) + bn.eps)
        w1 = d(model.conv1.weight) * s[:, None, None, None]
        b1 = (d(model.conv1.bias) - d(bn.running_mean)) * s + d(bn.bias)
        return [
            (w1, b1, "conv", False, "max"),
            (d(model.conv2.weight), d(model.conv2.bias), "conv", False, "avg"),
            (d(model.fc.weight), d(model.fc.bias), "fc", False, None),
        ]
    layers = [(d(model.stem.weight), d(model.stem.bias), "conv", False, None)]
    for i, b in enumerate(model.blocks):
        pool = "avg" if i == len(model.blocks) - 1 else None
        layers.append((d(b.conv.weight), d(b.conv.bias), "conv", True, pool))
    layers.append((d(model.fc.weight), d(model.fc.bias), "fc", False, None))
    return layers


def _linear(x, w, kind):
    if kind == "conv":
        return F.conv2d(x, w, padding=w.shape[-1] // 2)
    return x.flatten(1) @ w.T


def _add_bias(acc, b):
    return acc + b.view(1, -1, *([1] * (acc.dim() - 2)))


def _pool(x, pool, integer):
    if pool == "max":
        return F.max_pool2d(x, 2, 2)
    if pool == "avg":
        y = F.avg_pool2d(x, 2, 2)
        return torch.floor(y + 0.5) if integer else y
    return x


def simulate_quant(model, xcal, xte, yte):
    layers = layer_list(model)
    # float pass over the calibration set: max of every requantized (post-ReLU, pre-pool) output
    maxes = []
    with torch.no_grad():
        x = xcal.double()
        for w, b, kind, skip, pool in layers[:-1]:
            y = F.relu(_add_bias(_linear(x, w, kind), b) + (x if skip else 0))
            maxes.append(y.max().item())
            x = _pool(y, pool, False)
        # integer pass over the test set
        s_x = 1.0 / 127
        xq = torch.clamp(torch.floor(xte.double() / s_x + 0.5), 0, 127)
        for li, (w, b, kind, skip, pool) in enumerate(layers):
            s_w = w.abs().max().item() / 127
            wq = torch.round(w / s_w)
            acc_scale = s_w * s_x
            last = li == len(layers) - 1
            shift = 0 if last else max(0, math.ceil(math.log2(maxes[li] / 127 / acc_scale)))
            bq = torch.round(b / acc_scale) + (2 ** (shift - 1) if shift > 0 else 0)
            acc = _add_bias(_linear(xq, wq, kind), bq)
            if skip:
                acc = acc + round(1 / s_w) * xq
            if last:
                break
            xq = _pool(torch.clamp(torch.floor(acc / 2 ** shift), 0, 127), pool, True)
            s_x = acc_scale * 2 ** shift
        qacc = (acc.argmax(1) == yte).double().mean().item()
    return qacc, maxes


# --------------------------------------------------------------------------- json
def r6(v):
    return float(f"{float(v):.6g}")


def flat_images(x):
    return [[r6(v) for v in img.reshape(-1)] for img in x]


# --------------------------------------------------------------------------- main
def main():
    t_start = time.perf_counter()
    seed_everything()
    d = load_digits()
    X = (d.images.astype(np.float32) / 16.0).reshape(-1, 1, 8, 8)
    y = d.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    print(f"train {xtr.shape}, test {xte.shape}, input range [{X.min()}, {X.max()}]")
    assert len(xte) == 360
    Xtr, Xte, Ytr, Yte = map(torch.from_numpy, (xtr, xte, ytr, yte))

    results = {}
    specs = [
        ("cnn", DigitsCNN, CNN_OPS, dict(epochs=60, lr=1e-2)),
        ("resnet64", ResNet64, RESNET_OPS, dict(epochs=60, lr=3e-3)),
    ]
    for name, cls, ops_expected, hp in specs:
        torch.manual_seed(SEED)
        print(f"training {name} ...")
        model = train(cls(), Xtr, Ytr, Xte, Yte, seed=SEED, name=name, **hp)
        acc = accuracy(model, Xte, Yte)
        path = os.path.join(HERE, f"{name}.onnx")
        ops = export(model, path, ops_expected)
        with torch.no_grad():
            torch_pred = model(Xte).argmax(1).numpy()
        ort_pred = ort_predict(path, xte)
        assert np.array_equal(torch_pred, ort_pred), f"{name}: onnxruntime != torch predictions"
        ort_acc = float((ort_pred == yte).mean())
        qacc, maxes = simulate_quant(model, Xtr[:N_CALIB], Xte, Yte)
        print(f"  {name}: torch acc {acc:.4f}, onnxruntime acc {ort_acc:.4f} (preds identical), "
              f"simulated integer (7-bit act, int8 weight, 2^shift requant) acc ~{qacc:.4f}, "
              f"calib activation max {max(maxes):.3f}")
        if isinstance(model, DigitsCNN):
            bn = model.bn1
            print(f"  BN running_mean {[round(float(v), 3) for v in bn.running_mean]}")
            print(f"  BN running_var  {[round(float(v), 3) for v in bn.running_var]}")
        assert ort_acc >= 0.95, f"{name}: float accuracy {ort_acc} < 0.95"
        results[name] = dict(acc=ort_acc, preds=ort_pred, ops=ops, qacc=qacc)

    dump({"inputs": flat_images(xtr[:N_CALIB])}, os.path.join(HERE, "calib.json"))
    dump({
        "inputs": flat_images(xte),
        "labels": [int(v) for v in yte],
        "cnn_float_predictions": [int(v) for v in results["cnn"]["preds"]],
        "resnet64_float_predictions": [int(v) for v in results["resnet64"]["preds"]],
    }, os.path.join(HERE, "test.json"))
    dump(flat_images(xte[:1])[0], os.path.join(HERE, "digit.json"))

    print("\nsummary")
    print(f"  digit.json label: {int(yte[0])}  (cnn predicts {results['cnn']['preds'][0]}, "
          f"resnet64 predicts {results['resnet64']['preds'][0]})")
    for name in ("cnn", "resnet64"):
        r = results[name]
        print(f"  {name}: float test accuracy {r['acc']:.4f} ({int(round(r['acc'] * 360))}/360), "
              f"simulated quantized ~{r['qacc']:.4f}, {len(r['ops'])} ops")
    for fn in ("cnn.onnx", "resnet64.onnx", "calib.json", "test.json", "digit.json"):
        print(f"  {fn:14s} {os.path.getsize(os.path.join(HERE, fn)):8d} bytes")
    print(f"  torch {torch.__version__}, onnx {onnx.__version__}, onnxruntime {ort.__version__}")
    print(f"  total time {time.perf_counter() - t_start:.0f}s")


if __name__ == "__main__":
    main()

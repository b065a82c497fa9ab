"""Helpers shared by the example training scripts (LeNet-5, ResNet-20, digits): seeding,
the training loop, ONNX export and check, onnxruntime predictions, and the JSON fixtures.

Every script runs CPU-only on 2 threads with deterministic torch algorithms, so that the
committed fixtures are reproducible.
"""

import json
import os
import random
import time

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn.functional as F


def seed_everything(seed=0):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    torch.set_flush_denormal(True)  # tiny gradients late in training are very slow otherwise


def accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def train(model, xtr, ytr, xte, yte, epochs, lr=3e-3, wd=1e-4, batch=32, seed=0, name="model"):
    """Adam with weight decay `wd` under a one-cycle schedule; prints the training loss and
    held-out accuracy every 10 epochs and at the end; returns the model in eval mode."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=wd)
    steps = epochs * ((len(xtr) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.2)
    t0 = time.perf_counter()
    for ep in range(epochs):
        model.train()
        perm = torch.randperm(len(xtr), generator=g)
        tot = 0.0
        for i in range(0, len(xtr), batch):
            idx = perm[i:i + batch]
            loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += loss.item() * len(idx)
        if (ep + 1) % 10 == 0 or ep == epochs - 1:
            print(f"  [{name}] epoch {ep + 1:3d}  loss {tot / len(xtr):.4f}  "
                  f"test acc {accuracy(model, xte, yte):.4f}  ({time.perf_counter() - t0:.0f}s)")
    model.eval()
    return model


def export(model, shape, path):
    """Exports with torch.onnx (opset 13, eval mode), checks the file, and returns its
    operators (Constant nodes left out)."""
    torch.onnx.export(
        model, (torch.zeros(*shape),), path, dynamo=False, opset_version=13,
        input_names=["input"], output_names=["logits"], training=torch.onnx.TrainingMode.EVAL,
    )
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    return [n.op_type for n in m.graph.node if n.op_type != "Constant"]


def ort_predict(path, x):
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return np.array([int(np.argmax(sess.run(["logits"], {"input": img[None]})[0][0])) for img in x])


def flat(x, digits=5):
    """Images as lists of floats rounded to `digits` significant digits."""
    return [[float(f"{float(v):.{digits}g}") for v in img.reshape(-1)] for img in x]


def dump(obj, path):
    with open(path, "w") as f:
        json.dump(obj, f, separators=(",", ":"))
        f.write("\n")


def check_and_write(model, here, model_file, xtr, xte, yte, t0, n_calib=200, digits=5):
    """onnxruntime must predict as torch on the held-out images, with at least 95% accuracy;
    then the fixtures are written (`write_fixtures`, images rounded to `digits` significant
    digits, the float predictions made on the rounded images) and the versions printed."""
    path = os.path.join(here, model_file)
    with torch.no_grad():
        torch_pred = model(torch.from_numpy(xte)).argmax(1).numpy()
    ort_pred = ort_predict(path, xte)
    assert np.array_equal(torch_pred, ort_pred), "onnxruntime != torch predictions"
    acc = float((ort_pred == yte).mean())
    assert acc >= 0.95, f"float accuracy {acc} < 0.95"
    print(f"float test accuracy {acc:.4f} ({int(round(acc * len(yte)))}/{len(yte)}); digit.json label {int(yte[0])}, "
          f"predicted {ort_pred[0]}")
    stored = np.array(flat(xte, digits), dtype=np.float32).reshape(xte.shape)
    write_fixtures(here, model_file, xtr, stored, yte, ort_predict(path, stored), n_calib, digits)
    print(f"  torch {torch.__version__}, onnx {onnx.__version__}, onnxruntime {ort.__version__}; "
          f"{time.perf_counter() - t0:.0f}s")


def write_fixtures(here, model_file, xtr, xte, yte, ort_pred, n_calib=200, digits=5):
    """calib.json (the first training images), test.json (held-out images, labels, float
    predictions), digit.json (the first held-out image); prints their sizes."""
    dump({"inputs": flat(xtr[:n_calib], digits)}, os.path.join(here, "calib.json"))
    dump({"inputs": flat(xte, digits), "labels": [int(v) for v in yte], "float_predictions": [int(v) for v in ort_pred]},
         os.path.join(here, "test.json"))
    dump(flat(xte[:1], digits)[0], os.path.join(here, "digit.json"))
    for fn in (model_file, "calib.json", "test.json", "digit.json"):
        print(f"  {fn:14s} {os.path.getsize(os.path.join(here, fn)):9d} bytes")

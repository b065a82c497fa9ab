#!/usr/bin/env python3
"""Export torchvision's ResNet-18 (ImageNet shape, 3x224x224) for fold-ml.

The architecture is torchvision.models.resnet18 unchanged: a 7x7 stride-2 stem with
BatchNorm, ReLU and a 3x3 stride-2 max pooling, four stages of two basic blocks (64, 128,
256, 512 channels; stride-2 projection shortcuts), global average pooling and a 512->1000
classifier. No pretrained weights are downloaded (nothing outside the package index is
reachable): the convolutions keep torchvision's He (kaiming normal, fan-out)
initialization, and the BatchNorm statistics and the classifier bias are set from data —
the running means and variances are accumulated over the calibration images (so every
layer's activations are normalized as after training), and the classifier bias centres
the logits on them. That is the issue's "random He-scaled weights with a data-dependent
head bias"; accuracy is meaningless, agreement with the float model is what fold-ml
measures.

Images: smooth random patterns (sums of low-frequency sinusoids per channel, in [0, 1]),
normalized with ImageNet's channel means and stds — signed inputs, like real ones.

Outputs (in OUT_DIR, default /tmp/resnet18 — too large to commit):
  resnet18.onnx  the model (opset 13, eval mode: each BatchNorm folded into its conv)
  calib.json     {"inputs": [...]}  N_CALIB images (150,528 floats each, NCHW)
  test.json      {"inputs", "float_predictions"}  N_TEST other images
  image.json     the first test image as a plain array

Usage:
  pip install -r examples/digits/requirements.txt
  pip install --no-deps -r examples/resnet18/requirements.txt   # torchvision, pillow
  python examples/resnet18/export.py [OUT_DIR]
  fold-ml import /tmp/resnet18/resnet18.onnx --calibrate /tmp/resnet18/calib.json \\
      --test /tmp/resnet18/test.json --out /tmp/resnet18/resnet18.foldml
  fold-ml inspect --model /tmp/resnet18/resnet18.foldml
"""
import os
import sys
import time

import numpy as np
import torch
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from train_common import dump, export, flat, ort_predict, seed_everything  # noqa: E402

N_CALIB, N_TEST = 8, 4
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)[:, None, None]
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)[:, None, None]


def images(n, rng):
    """Smooth random images in [0, 1], normalized like ImageNet's."""
    yy, xx = np.mgrid[0:224, 0:224].astype(np.float32) / 224.0
    out = []
    for _ in range(n):
        img = np.zeros((3, 224, 224), dtype=np.float32)
        for c in range(3):
            for _ in range(4):
                fy, fx, phase = rng.uniform(0.5, 6.0), rng.uniform(0.5, 6.0), rng.uniform(0, 2 * np.pi)
                img[c] += np.sin(2 * np.pi * (fy * yy + fx * xx) + phase)
        img = (img - img.min()) / (img.max() - img.min())
        out.append((img - MEAN) / STD)
    return np.stack(out).astype(np.float32)


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "/tmp/resnet18"
    os.makedirs(out_dir, exist_ok=True)
    t0 = time.time()
    seed_everything(0)
    rng = np.random.default_rng(0)
    calib, test = images(N_CALIB, rng), images(N_TEST, rng)
    model = torchvision.models.resnet18(weights=None)
    # BatchNorm statistics from the calibration images (a cumulative average)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    with torch.no_grad():
        model(torch.from_numpy(calib))
    model.eval()
    # the head's bias centres the logits on the calibration images
    with torch.no_grad():
        logits = model(torch.from_numpy(calib))
        model.fc.bias -= logits.mean(dim=0)
    path = os.path.join(out_dir, "resnet18.onnx")
    ops = export(model, (1, 3, 224, 224), path)
    print(f"exported {path}: {len(ops)} operators ({', '.join(sorted(set(ops)))})")
    preds = ort_predict(path, test)
    dump({"inputs": flat(calib)}, os.path.join(out_dir, "calib.json"))
    dump({"inputs": flat(test), "float_predictions": preds.tolist()}, os.path.join(out_dir, "test.json"))
    dump(flat(test[:1])[0], os.path.join(out_dir, "image.json"))
    print(f"float predictions on the test images: {preds.tolist()}; {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()

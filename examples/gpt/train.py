#!/usr/bin/env python3
"""Train and export a small character-level GPT for fold-ml's transformer work: GPT-2's
pre-norm layout (4 blocks, width 64, 4 heads, MLP 256, context 16) on Python source text
that ships with Python itself (the standard library's modules listed in SOURCES), so the
data is on every machine that runs this script.

Model (torch.nn, exported by torch.onnx with opset 17 in eval mode):
  tokens (1x16 int64) -> token embedding (vocab x 64) + learned positions (16 x 64)
  4 x Block: x = x + Attn(LayerNorm(x)); x = x + W2·GELU(W1·LayerNorm(x))
    Attn: q, k, v = Linear(64 -> 64) each; per head (4 x 16): softmax(q·kᵀ/4 + causal mask)·v;
          Linear(64 -> 64)
    GELU: the exact (erf) form
  LayerNorm -> Linear(64 -> vocab) on the last position: the next token's logits (1 x vocab)

The operators the export holds (Gather, Add, LayerNormalization, MatMul, Reshape,
Transpose, Mul, Where or Add of the mask, Softmax, Erf/Div/Mul of GELU, ...) are what the
importer has to read; the proof covers the blocks (each one Nova step) and, as their own
segments, the embedding and the head.

Outputs (next to this script):
  gpt.onnx      the model
  vocab.json    the characters, index = token id
  calib.json    {"inputs": [...]}  200 training windows of 16 token ids
  test.json     {"inputs", "next", "float_next"}  500 held-out windows, the true next
                token and the float model's choice (onnxruntime, checked against torch)

Reproducible (fixed seeds, deterministic torch algorithms, 2 threads), CPU only.

Usage:
  python3 -m venv /tmp/gpt-venv && . /tmp/gpt-venv/bin/activate
  pip install -r examples/digits/requirements.txt
  python examples/gpt/train.py
"""

import argparse
import importlib
import inspect
import json
import os
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from train_common import dump, seed_everything  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CONTEXT, WIDTH, HEADS, HIDDEN, BLOCKS = 16, 64, 4, 256, 4
# Standard-library modules whose source is the corpus (training: all but the last;
# held out: the last).
SOURCES = ["textwrap", "string", "json.decoder", "json.encoder", "argparse", "shlex", "fnmatch", "difflib"]


def corpus():
    """Each module's source, non-ASCII characters replaced by '?'."""
    texts = []
    for name in SOURCES:
        src = inspect.getsource(importlib.import_module(name))
        texts.append("".join(c if 32 <= ord(c) < 127 or c == "\n" else "?" for c in src))
    return texts


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(WIDTH), nn.LayerNorm(WIDTH)
        self.q, self.k, self.v, self.o = (nn.Linear(WIDTH, WIDTH) for _ in range(4))
        self.fc1, self.fc2 = nn.Linear(WIDTH, HIDDEN), nn.Linear(HIDDEN, WIDTH)
        self.register_buffer("mask", torch.triu(torch.full((CONTEXT, CONTEXT), float("-inf")), 1))

    def attention(self, a):
        t, dh = a.shape[1], WIDTH // HEADS
        split = lambda x: x.reshape(-1, t, HEADS, dh).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.q(a)), split(self.k(a)), split(self.v(a))
        scores = q @ k.transpose(2, 3) / dh ** 0.5 + self.mask[:t, :t]
        mixed = (F.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(-1, t, WIDTH)
        return self.o(mixed)

    def forward(self, x):
        x = x + self.attention(self.ln1(x))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class Gpt(nn.Module):
    def __init__(self, vocab):
        super().__init__()
        self.tok = nn.Embedding(vocab, WIDTH)
        self.pos = nn.Parameter(torch.randn(CONTEXT, WIDTH) * 0.02)
        self.blocks = nn.Sequential(*(Block() for _ in range(BLOCKS)))
        self.ln = nn.LayerNorm(WIDTH)
        self.head = nn.Linear(WIDTH, vocab)

    def forward(self, tokens, last_only=True):
        x = self.blocks(self.tok(tokens) + self.pos[: tokens.shape[1]])
        x = self.ln(x)
        return self.head(x[:, -1] if last_only else x)


def windows(ids, n, rng):
    """`n` random windows of CONTEXT tokens and the token after each."""
    starts = rng.integers(0, len(ids) - CONTEXT - 1, size=n)
    return np.stack([ids[s:s + CONTEXT] for s in starts]), np.array([ids[s + CONTEXT] for s in starts])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--out", default=HERE)
    args = p.parse_args()
    seed_everything(0)
    t0 = time.perf_counter()
    texts = corpus()
    vocab = sorted(set("".join(texts)))
    index = {c: i for i, c in enumerate(vocab)}
    train_ids = np.array([index[c] for c in "\n".join(texts[:-1])], dtype=np.int64)
    test_ids = np.array([index[c] for c in texts[-1]], dtype=np.int64)
    print(f"vocab {len(vocab)}, train {len(train_ids)} chars, held out {len(test_ids)} chars ({SOURCES[-1]})")

    model = Gpt(len(vocab))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=args.steps, pct_start=0.1)
    rng = np.random.default_rng(0)
    for step in range(args.steps):
        model.train()
        starts = rng.integers(0, len(train_ids) - CONTEXT - 1, size=64)
        x = torch.from_numpy(np.stack([train_ids[s:s + CONTEXT] for s in starts]))
        y = torch.from_numpy(np.stack([train_ids[s + 1:s + CONTEXT + 1] for s in starts]))
        loss = F.cross_entropy(model(x, last_only=False).reshape(-1, len(vocab)), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if (step + 1) % 500 == 0:
            print(f"  step {step + 1:5d}  loss {loss.item():.3f}  ({time.perf_counter() - t0:.0f}s)")
    model.eval()

    xte, yte = windows(test_ids, 500, np.random.default_rng(1))
    xcal, _ = windows(train_ids, 200, np.random.default_rng(2))
    path = os.path.join(args.out, "gpt.onnx")
    torch.onnx.export(model, (torch.from_numpy(xte[:1]),), path, dynamo=False, opset_version=17,
                      input_names=["tokens"], output_names=["logits"], training=torch.onnx.TrainingMode.EVAL)
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    ops = sorted({n.op_type for n in m.graph.node if n.op_type != "Constant"})
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    ort_next = np.array([int(np.argmax(sess.run(["logits"], {"tokens": w[None]})[0][0])) for w in xte])
    with torch.no_grad():
        torch_next = model(torch.from_numpy(xte)).argmax(1).numpy()
    agree = float((ort_next == torch_next).mean())
    assert agree == 1.0, f"onnxruntime agrees with torch on {agree:.3f} of the windows"
    acc = float((ort_next == yte).mean())
    print(f"held-out next-character accuracy {acc:.3f} (500 windows of {SOURCES[-1]}); operators: {', '.join(ops)}")
    dump(vocab, os.path.join(args.out, "vocab.json"))
    dump({"inputs": xcal.tolist()}, os.path.join(args.out, "calib.json"))
    dump({"inputs": xte.tolist(), "next": yte.tolist(), "float_next": ort_next.tolist()},
         os.path.join(args.out, "test.json"))
    for fn in ("gpt.onnx", "vocab.json", "calib.json", "test.json"):
        print(f"  {fn:10s} {os.path.getsize(os.path.join(args.out, fn)):9d} bytes")
    print(f"  torch {torch.__version__}, onnx {onnx.__version__}, onnxruntime {ort.__version__}; "
          f"{time.perf_counter() - t0:.0f}s")


if __name__ == "__main__":
    main()

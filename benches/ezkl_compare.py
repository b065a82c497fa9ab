#!/usr/bin/env python3
"""Side-by-side: the same dense MLP (N layers of W x W Gemm + Relu) proven by ezkl and by
fold-ml, on this machine, in one run. Not part of CI.

    python3 -m venv /tmp/ezkl-venv && /tmp/ezkl-venv/bin/pip install ezkl onnx numpy
    cargo build --release
    /tmp/ezkl-venv/bin/python benches/ezkl_compare.py --width 16 --layers 128 [--layers 1024 ...]

ezkl runs with its default visibility (input and output public, weights fixed in the
circuit), its calibrated settings and a locally generated SRS; its prove time is the
`ezkl.prove` call. fold-ml's prove time is folding + compression as it reports them (its
weights and input are private); parameter setup is excluded on both sides. Peak RSS is the
maximum resident set of the process doing the proving.
"""
import argparse
import asyncio
import inspect
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FOLD_ML = os.path.join(ROOT, "target", "release", "fold-ml")


def call(fn, *args, **kwargs):
    result = fn(*args, **kwargs)
    return asyncio.run(result) if inspect.isawaitable(result) else result


def build_onnx(path, width, layers, seed=0):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    prev = "input"
    for i in range(layers):
        w = (np.eye(width) + rng.uniform(-0.05, 0.05, (width, width))).astype(np.float32)
        b = rng.uniform(-0.02, 0.02, width).astype(np.float32)
        inits += [helper.make_tensor(f"w{i}", TensorProto.FLOAT, w.shape, w.flatten()),
                  helper.make_tensor(f"b{i}", TensorProto.FLOAT, b.shape, b)]
        nodes.append(helper.make_node("Gemm", [prev, f"w{i}", f"b{i}"], [f"g{i}"], transB=1))
        nodes.append(helper.make_node("Relu", [f"g{i}"], [f"r{i}"]))
        prev = f"r{i}"
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, width])],
                              [helper.make_tensor_value_info(prev, TensorProto.FLOAT, [1, width])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, path)


def ezkl_prove(width, layers, work):
    """Runs the ezkl pipeline; returns (prove seconds, peak RSS MiB of the prove process)."""
    model, data = os.path.join(work, "mlp.onnx"), os.path.join(work, "input.json")
    build_onnx(model, width, layers)
    with open(data, "w") as f:
        json.dump({"input_data": [[0.5] * width]}, f)
    script = f"""
import asyncio, inspect, json, resource, sys, time, ezkl
def call(fn, *a, **k):
    r = fn(*a, **k)
    return asyncio.run(r) if inspect.isawaitable(r) else r
w = {work!r}
p = lambda n: w + "/" + n
call(ezkl.gen_settings, {model!r}, p("settings.json"))
call(ezkl.calibrate_settings, {data!r}, {model!r}, p("settings.json"), "resources")
call(ezkl.compile_circuit, {model!r}, p("compiled"), p("settings.json"))
logrows = json.load(open(p("settings.json")))["run_args"]["logrows"]
call(ezkl.gen_srs, p("srs"), logrows)
call(ezkl.setup, p("compiled"), p("vk"), p("pk"), p("srs"))
call(ezkl.gen_witness, {data!r}, p("compiled"), p("witness.json"))
t = time.time()
call(ezkl.prove, p("witness.json"), p("compiled"), p("pk"), p("proof.json"), p("srs"))
prove = time.time() - t
assert call(ezkl.verify, p("proof.json"), p("settings.json"), p("vk"), p("srs"))
print(json.dumps({{"prove": prove, "logrows": logrows}}))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"ezkl failed: {out.stderr[-2000:]}")
    res = json.loads(out.stdout.strip().splitlines()[-1])
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return res["prove"], rss, res["logrows"]


def fold_ml_prove(width, layers, work):
    job, cache = os.path.join(work, "job"), os.path.join(work, "cache")
    args = [FOLD_ML, "prove", "--dense", str(width), "--layers", str(layers), "--job", job, "--cache", cache]
    subprocess.run([FOLD_ML, "inspect", "--dense", str(width), "--layers", str(layers)], check=True, capture_output=True)
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    fold = float(re.search(r"folding\s+([\d.]+) s", out).group(1))
    compress = float(re.search(r"compression\s+([\d.]+) s", out).group(1))
    rss = float(re.search(r"peak memory\s+([\d.]+) MiB", out).group(1))
    k = re.search(r"parameters", out) and subprocess.run(
        [FOLD_ML, "verify", job, "--cache", cache], capture_output=True).returncode
    assert k == 0, "fold-ml proof did not verify"
    return fold + compress, rss


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--layers", type=int, action="append")
    ap.add_argument("--skip-ezkl-above", type=int, default=512, help="do not run ezkl beyond this depth")
    a = ap.parse_args()
    print("| W | layers | ezkl prove | ezkl peak RSS | fold-ml prove (fold + compress) | fold-ml peak RSS |")
    print("|---|---|---|---|---|---|")
    for n in a.layers or [128]:
        with tempfile.TemporaryDirectory() as work:
            f_t, f_rss = fold_ml_prove(a.width, n, work)
            if n <= a.skip_ezkl_above:
                e_t, e_rss, logrows = ezkl_prove(a.width, n, work)
                ezkl_cols = f"{e_t:.1f} s (logrows {logrows}) | {e_rss:.0f} MiB"
            else:
                ezkl_cols = "not run | —"
            print(f"| {a.width} | {n} | {ezkl_cols} | {f_t:.1f} s | {f_rss:.0f} MiB |", flush=True)


if __name__ == "__main__":
    main()

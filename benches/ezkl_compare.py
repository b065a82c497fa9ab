#!/usr/bin/env python3
"""Side-by-side: the same model proven by ezkl and by fold-ml, on this machine, in one run.
Not part of CI. Either a dense MLP (N layers of W x W Gemm + Relu) built here, or an ONNX
file with its calibration inputs and one input (e.g. LeNet-5).

    python3 -m venv /tmp/ezkl-venv && /tmp/ezkl-venv/bin/pip install ezkl onnx numpy
    cargo build --release
    /tmp/ezkl-venv/bin/python benches/ezkl_compare.py --width 16 --layers 128 [--layers 1024 ...]
    /tmp/ezkl-venv/bin/python benches/ezkl_compare.py --onnx examples/lenet5/lenet5.onnx \
        --calibrate examples/lenet5/calib.json --input examples/lenet5/digit.json
    cargo build --release --example gpt_prove
    /tmp/ezkl-venv/bin/python benches/ezkl_compare.py --gpt [--ezkl-timeout 2700]

With --gpt, the shipped GPT (examples/gpt/gpt.onnx) on the first held-out window: fold-ml by
the `gpt_prove` example (the library's three-segment proof; the CLI cannot prove a GPT
yet), ezkl stage by stage with each stage's time, until it finishes or the timeout. ezkl
cannot quantize the causal mask's -inf ("significant bit truncation"), so it reads a copy
whose -inf entries are -30 (exp(-30) < 1e-13: the same float softmax).

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


def ezkl_prove(model, values, work):
    """Runs the ezkl pipeline on `model` with the flat input `values`; returns (prove seconds,
    setup seconds, peak RSS MiB of the proving process, logrows)."""
    data = os.path.join(work, "input.json")
    with open(data, "w") as f:
        json.dump({"input_data": [values]}, f)
    script = f"""
import asyncio, inspect, json, resource, sys, time, ezkl
def call(fn, *a, **k):
    r = fn(*a, **k)
    return asyncio.run(r) if inspect.isawaitable(r) else r
w = {work!r}
p = lambda n: w + "/" + n
t = time.time()
call(ezkl.gen_settings, {model!r}, p("settings.json"))
call(ezkl.calibrate_settings, {data!r}, {model!r}, p("settings.json"), "resources")
call(ezkl.compile_circuit, {model!r}, p("compiled"), p("settings.json"))
logrows = json.load(open(p("settings.json")))["run_args"]["logrows"]
call(ezkl.gen_srs, p("srs"), logrows)
call(ezkl.setup, p("compiled"), p("vk"), p("pk"), p("srs"))
setup = time.time() - t
call(ezkl.gen_witness, {data!r}, p("compiled"), p("witness.json"))
t = time.time()
call(ezkl.prove, p("witness.json"), p("compiled"), p("pk"), p("proof.json"), p("srs"))
prove = time.time() - t
assert call(ezkl.verify, p("proof.json"), p("settings.json"), p("vk"), p("srs"))
print(json.dumps({{"prove": prove, "setup": setup, "logrows": logrows}}))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"ezkl failed: {out.stderr[-2000:]}")
    res = json.loads(out.stdout.strip().splitlines()[-1])
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return res["prove"], res["setup"], rss, res["logrows"]


def fold_ml_run(args, job, cache):
    """Runs `fold-ml prove ARGS`, verifies the job; returns (fold + compress seconds, setup
    seconds, peak RSS MiB)."""
    out = subprocess.run([FOLD_ML, "prove", *args, "--job", job, "--cache", cache],
                         capture_output=True, text=True, check=True).stdout
    num = lambda key: float(re.search(key + r"\s+([\d.]+)", out).group(1))
    code = subprocess.run([FOLD_ML, "verify", job, "--cache", cache], capture_output=True).returncode
    assert code == 0, "fold-ml proof did not verify"
    return num("folding") + num("compression"), num("parameters"), num("peak memory")


def onnx_side_by_side(a):
    with open(a.input) as f:
        values = json.load(f)
    with tempfile.TemporaryDirectory() as work:
        model = os.path.join(work, "model.foldml")
        subprocess.run([FOLD_ML, "import", a.onnx, "--calibrate", a.calibrate, "--out", model],
                       check=True, capture_output=True)
        f_t, f_setup, f_rss = fold_ml_run(["--model", model, "--input", a.input],
                                         os.path.join(work, "job"), os.path.join(work, "cache"))
        print("| prover | prove | setup | peak RSS |")
        print("|---|---|---|---|")
        print(f"| fold-ml (fold + compress) | {f_t:.1f} s | {f_setup:.1f} s | {f_rss:.0f} MiB |", flush=True)
        try:
            e_t, e_setup, e_rss, logrows = ezkl_prove(os.path.abspath(a.onnx), values, work)
            print(f"| ezkl (logrows {logrows}) | {e_t:.1f} s | {e_setup:.1f} s | {e_rss:.0f} MiB |")
        except RuntimeError as e:
            print(f"| ezkl | failed: {str(e).splitlines()[-1] if str(e) else e} | | |")


def mlp_side_by_side(a):
    print("| W | layers | ezkl prove | ezkl peak RSS | fold-ml prove (fold + compress) | fold-ml peak RSS |")
    print("|---|---|---|---|---|---|")
    for n in a.layers or [128]:
        with tempfile.TemporaryDirectory() as work:
            args = ["--dense", str(a.width), "--layers", str(n)]
            f_t, _, f_rss = fold_ml_run(args, os.path.join(work, "job"), os.path.join(work, "cache"))
            if n <= a.skip_ezkl_above:
                model = os.path.join(work, "mlp.onnx")
                build_onnx(model, a.width, n)
                e_t, _, e_rss, logrows = ezkl_prove(model, [0.5] * a.width, work)
                ezkl_cols = f"{e_t:.1f} s (logrows {logrows}) | {e_rss:.0f} MiB"
            else:
                ezkl_cols = "not run | —"
            print(f"| {a.width} | {n} | {ezkl_cols} | {f_t:.1f} s | {f_rss:.0f} MiB |", flush=True)


GPT_STAGES = """
import asyncio, inspect, json, resource, sys, time, ezkl
def call(fn, *a, **k):
    r = fn(*a, **k)
    return asyncio.run(r) if inspect.isawaitable(r) else r
model, data, w = sys.argv[1:4]
p = lambda n: w + "/" + n
def stage(name, fn, *a):
    t = time.time()
    call(fn, *a)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"| ezkl {name} | {time.time() - t:.1f} s | {rss:.0f} MiB |", flush=True)
stage("gen_settings", ezkl.gen_settings, model, p("settings.json"))
stage("calibrate_settings", ezkl.calibrate_settings, data, model, p("settings.json"), "resources")
logrows = json.load(open(p("settings.json")))["run_args"]["logrows"]
print(f"| ezkl logrows | {logrows} | |", flush=True)
stage("compile_circuit", ezkl.compile_circuit, model, p("compiled"), p("settings.json"))
stage("gen_srs", ezkl.gen_srs, p("srs"), logrows)
stage("setup", ezkl.setup, p("compiled"), p("vk"), p("pk"), p("srs"))
stage("gen_witness", ezkl.gen_witness, data, p("compiled"), p("witness.json"))
stage("prove", ezkl.prove, p("witness.json"), p("compiled"), p("pk"), p("proof.json"), p("srs"))
stage("verify", ezkl.verify, p("proof.json"), p("settings.json"), p("vk"), p("srs"))
"""


def gpt_side_by_side(a):
    import numpy as np
    import onnx
    from onnx import numpy_helper

    gpt = os.path.join(ROOT, "examples", "gpt")
    with open(os.path.join(gpt, "test.json")) as f:
        ids = json.load(f)["inputs"][0]
    print("| prover, stage | time | peak RSS |")
    print("|---|---|---|")
    out = subprocess.run([os.path.join(ROOT, "target", "release", "examples", "gpt_prove")],
                         capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        print(f"| fold-ml: {line} | | |", flush=True)
    with tempfile.TemporaryDirectory() as work:
        m = onnx.load(os.path.join(gpt, "gpt.onnx"))
        for t in m.graph.initializer:
            x = numpy_helper.to_array(t)
            if x.dtype.kind == "f" and np.isneginf(x).any():
                t.CopyFrom(numpy_helper.from_array(np.where(np.isneginf(x), np.float32(-30), x), t.name))
        model = os.path.join(work, "gpt_finite.onnx")
        onnx.save(m, model)
        data = os.path.join(work, "input.json")
        with open(data, "w") as f:
            json.dump({"input_data": [ids]}, f)
        try:
            subprocess.run([sys.executable, "-c", GPT_STAGES, model, data, work], check=True,
                           timeout=a.ezkl_timeout)
        except subprocess.TimeoutExpired:
            print(f"| ezkl | stopped by the {a.ezkl_timeout} s timeout in the next stage | |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--layers", type=int, action="append")
    ap.add_argument("--skip-ezkl-above", type=int, default=512, help="do not run ezkl beyond this depth")
    ap.add_argument("--onnx", help="an ONNX model instead of the MLP (needs --calibrate and --input)")
    ap.add_argument("--calibrate", help="fold-ml's calibration inputs for --onnx")
    ap.add_argument("--input", help="the one input to prove for --onnx (a JSON array of floats)")
    ap.add_argument("--gpt", action="store_true", help="the shipped GPT, stage by stage (see above)")
    ap.add_argument("--ezkl-timeout", type=int, default=2700, help="seconds ezkl may run with --gpt")
    a = ap.parse_args()
    if a.gpt:
        gpt_side_by_side(a)
    elif a.onnx:
        onnx_side_by_side(a)
    else:
        mlp_side_by_side(a)


if __name__ == "__main__":
    main()

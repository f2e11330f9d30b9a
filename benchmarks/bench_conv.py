"""Convolutional kernels against their baselines and bounds, every ratio from one run (1 torch thread).

    python benchmarks/bench_conv.py [--baseline SRC] [--nt-python PY] [--resnet-tiles 256 512] [--repeats 3]

(d) the default workflow's ConvNet-8 (width 32, digits 1×8×8, float64) eNTK of 200 samples (x2 = None),
    auto / structured / jacobian; with --baseline SRC (a checkout's src/, e.g. `git worktree add /tmp/base
    main`) the same call through that tree's engine in a subprocess, alternated with this tree's.
(b) bench_kernels' cnn-bench eNTK (float32, N = 128): auto / structured / jacobian, and with --nt-python
    (an environment from benchmarks/requirements-nt.txt) neural-tangents' implementations on the same weights
    and inputs (benchmarks/nt_cnn.py), kernels compared value by value.
(c) ResNet-18 (w64, 3×32×32, float32) pNTK tiles x1 (T) × x2 (T), against the bound
    2·P FLOPs per pair + the per-sample work (forward, backward, per-sample gradients: pntk.kernels.flop_count)
    at the float32 GEMM rate measured in the same run.
Every repeat is printed and kept in --json; tables give the minimum and the spread (max/min − 1). Rates of
the conv contractions: the engine's FLOP model (contraction stage) over the time of the contraction calls.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_kernels import CNNBench

from pntk.kernels import empirical_kernel, flop_count, structured
from pntk.kernels._common import jacobian_rows
from pntk.models import ModelSpec, init_model
from pntk.provenance import machine_description

_CONVNET = r'''
import sys, time, torch
from pntk.kernels import empirical_kernel
from pntk.models import ModelSpec, init_model
torch.set_num_threads(1)
model = init_model(ModelSpec("convnet", 32, (1, 8, 8), 10, depth=8), 0).double()
x = torch.load(sys.argv[1])
empirical_kernel(model, x[:4], kind="entk", method=sys.argv[2])  # warm-up
t = time.perf_counter()
k = empirical_kernel(model, x, kind="entk", method=sys.argv[2])
print(time.perf_counter() - t)
torch.save(k, sys.argv[3])
'''


def gemm_rate(dtype: torch.dtype, n: int = 1024, repeats: int = 5) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def timed(fn, repeats: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def summary(ts: list[float]) -> str:
    return f"{min(ts):.3f} s (spread {max(ts) / min(ts) - 1:.0%}, n={len(ts)})"


def convnet(args, res: dict) -> None:
    """(d): the default ConvNet eNTK, this tree (and a baseline tree) in subprocesses, alternated."""
    from sklearn.datasets import load_digits

    x = torch.tensor(load_digits().data[:200], dtype=torch.float64).view(200, 1, 8, 8) / 16
    tmp = Path(tempfile.mkdtemp())
    torch.save(x, tmp / "x.pt")
    trees = {"this": str(Path(__file__).resolve().parents[1] / "src")}
    if args.baseline:
        trees["baseline"] = str(Path(args.baseline).resolve())
    times: dict[str, list[float]] = {}
    for _ in range(args.repeats):
        for tag, src in trees.items():
            for method in ("auto", "structured", "jacobian"):
                env = {**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": "1"}
                out = subprocess.run([sys.executable, "-c", _CONVNET, str(tmp / "x.pt"), method,
                                      str(tmp / f"{tag}-{method}.pt")], env=env, capture_output=True, text=True)
                if out.returncode:
                    raise RuntimeError(out.stderr[-2000:])
                times.setdefault(f"{tag} {method}", []).append(float(out.stdout.split()[-1]))
                print(f"(d) ConvNet eNTK 200², {tag:8s} {method:10s} {times[f'{tag} {method}'][-1]:.3f} s", flush=True)
    ref = torch.load(tmp / "this-auto.pt")
    for key in trees:
        for method in ("structured", "jacobian"):
            k = torch.load(tmp / f"{key}-{method}.pt")
            res.setdefault("convnet_agreement", {})[f"{key} {method}"] = float((k - ref).abs().max() / ref.abs().max())
    res["convnet"] = times


def contraction_rate(model, x, kind: str, repeats: int) -> dict:
    """FLOP model's contraction stage over the time of structured.contract on one block (no featurize)."""
    jr = jacobian_rows(kind, 10, x.dtype, x.device)
    model.eval()
    plan = structured.make_plan(model, x, None, jr)
    f = structured.featurize(model, x, jr, plan)
    ts = timed(lambda: structured.contract(f, f, jr.diagonal, True), repeats)
    flops = plan.flops["contraction"]
    return dict(seconds=ts, flops=flops, rate=flops / min(ts), modes=[layer.mode for layer in plan.layers])


def cnn_bench(args, res: dict) -> None:
    """(b): cnn-bench eNTK, float32; neural-tangents on the same weights and inputs."""
    torch.manual_seed(0)
    model = CNNBench()
    x = torch.randn(args.cnn_n, 3, 16, 16)
    times = {m: timed(lambda m=m: empirical_kernel(model, x, kind="entk", method=m), args.repeats)
             for m in ("auto", "structured", "jacobian")}
    for m, ts in times.items():
        print(f"(b) cnn-bench eNTK N={args.cnn_n}, {m:10s} {summary(ts)}", flush=True)
    res["cnn"] = dict(n=args.cnn_n, times=times, contraction=contraction_rate(model, x, "entk", args.repeats))
    if not args.nt_python:
        res["cnn"]["neural_tangents"] = "skipped: no --nt-python (see benchmarks/requirements-nt.txt)"
        return
    tmp = Path(tempfile.mkdtemp())
    w = {"x": x.numpy()}
    convs = [m for m in model.features if isinstance(m, torch.nn.Conv2d)]
    for i, c in enumerate(convs):
        w[f"conv{i}_w"], w[f"conv{i}_b"] = c.weight.detach().numpy(), c.bias.detach().numpy()
    w["readout_w"], w["readout_b"] = model.readout.weight.detach().numpy(), model.readout.bias.detach().numpy()
    np.savez(tmp / "w.npz", **w)
    env = {"PATH": os.environ.get("PATH", "/usr/bin"), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [args.nt_python, str(Path(__file__).parent / "nt_cnn.py"), str(tmp / "w.npz"), str(tmp / "nt.json"),
           "--repeats", str(args.repeats), "--impls", *args.nt_impls]
    subprocess.run(cmd, check=True, env=env)
    nt = json.loads((tmp / "nt.json").read_text())
    ours = empirical_kernel(model, x, kind="entk")
    for impl in ("1", "2", "3"):
        if "kernel_file" in nt.get(impl, {}):
            k = torch.from_numpy(np.load(nt[impl]["kernel_file"]))
            nt[impl]["max_rel_diff"] = float((k - ours).abs().max() / ours.abs().max())
            del nt[impl]["kernel_file"]
    res["cnn"]["neural_tangents"] = nt


def resnet_tiles(args, res: dict) -> None:
    """(c): ResNet-18 pNTK tiles T × T against 2·P per pair + per-sample work at the GEMM rate."""
    model = init_model(ModelSpec("resnet18", 64, (3, 32, 32), 10), 0)
    p = sum(q.numel() for q in model.parameters())
    rows = []
    for t in args.resnet_tiles:
        x1, x2 = torch.randn(t, 3, 32, 32), torch.randn(t, 3, 32, 32)
        rate = gemm_rate(torch.float32)
        f = flop_count(model, x1, x2)
        bound = (2.0 * p * t * t + f["forward"] + f["backward"] + f["per_sample_gradients"]) / rate
        empirical_kernel(model, x1[:2], x2[:2])
        t0 = time.perf_counter()
        empirical_kernel(model, x1, x2, progress=False)
        secs = time.perf_counter() - t0
        rows.append(dict(tile=t, seconds=secs, per_pair=secs / t / t, bound_seconds=bound, ratio=secs / bound,
                         gemm_rate=rate))
        print(f"(c) ResNet-18 pNTK tile {t}: {secs:.1f} s = {secs / t / t * 1e3:.3f} ms/pair; bound {bound:.1f} s "
              f"at {rate / 1e9:.1f} GFLOP/s: {secs / bound:.2f}×", flush=True)
    res["resnet"] = dict(params=p, tiles=rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", help="src/ of another checkout: its engine on (d), same run")
    ap.add_argument("--nt-python", default=os.environ.get("PNTK_NT_PYTHON"), help="python of a neural-tangents env")
    ap.add_argument("--nt-impls", nargs="+", default=["1", "3"], help="neural-tangents implementations (2: slow)")
    ap.add_argument("--cnn-n", type=int, default=128)
    ap.add_argument("--resnet-tiles", type=int, nargs="*", default=[256])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip", nargs="*", default=[], choices=["d", "b", "c"])
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    res: dict = dict(date=time.strftime("%Y-%m-%d %H:%M"), cpu=machine_description(), torch=torch.__version__,
                     threads=1, load_avg_start=os.getloadavg())
    res["gemm_rate_start"] = {"float32": gemm_rate(torch.float32), "float64": gemm_rate(torch.float64)}
    if "d" not in args.skip:
        convnet(args, res)
        model = init_model(ModelSpec("convnet", 32, (1, 8, 8), 10, depth=8), 0)
        from sklearn.datasets import load_digits
        x = torch.tensor(load_digits().data[:200], dtype=torch.float32).view(200, 1, 8, 8) / 16
        res["convnet_contraction_float32"] = contraction_rate(model, x, "entk", args.repeats)
    if "b" not in args.skip:
        cnn_bench(args, res)
    if "c" not in args.skip:
        resnet_tiles(args, res)
    res["gemm_rate_end"] = {"float32": gemm_rate(torch.float32), "float64": gemm_rate(torch.float64)}
    res["load_avg_end"] = os.getloadavg()
    report(res)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))


def report(res: dict) -> None:
    g32 = max(res["gemm_rate_start"]["float32"], res["gemm_rate_end"]["float32"])
    print(f"\n# {res['date']}, {res['cpu']}, torch {res['torch']}, 1 thread, load {res['load_avg_start'][0]:.1f} → "
          f"{res['load_avg_end'][0]:.1f}; float32 GEMM {g32 / 1e9:.1f} GFLOP/s (best of start/end)")
    if "convnet" in res:
        t = {k: min(v) for k, v in res["convnet"].items()}
        for k, v in res["convnet"].items():
            print(f"(d) {k}: {summary(v)}")
        if "baseline auto" in t:
            print(f"(d) ConvNet eNTK speed-up, baseline auto / this auto: {t['baseline auto'] / t['this auto']:.2f}×")
        print(f"(d) auto / best method: {t['this auto'] / min(t['this structured'], t['this jacobian']):.2f}")
        print(f"(d) agreement (max rel diff vs this auto): {res['convnet_agreement']}")
        c = res["convnet_contraction_float32"]
        print(f"(d) float32 contraction: {c['rate'] / 1e9:.1f} GFLOP/s = {c['rate'] / g32:.0%} of the GEMM rate "
              f"(modes {c['modes']})")
    if "cnn" in res:
        t = {k: min(v) for k, v in res["cnn"]["times"].items()}
        print(f"(b) auto / best method: {t['auto'] / min(t['structured'], t['jacobian']):.2f}")
        c = res["cnn"]["contraction"]
        print(f"(b) float32 contraction: {c['rate'] / 1e9:.1f} GFLOP/s = {c['rate'] / g32:.0%} of the GEMM rate")
        nt = res["cnn"]["neural_tangents"]
        if isinstance(nt, dict):
            best = {k: min(v["seconds"]) for k, v in nt.items() if isinstance(v, dict) and "seconds" in v}
            k = min(best, key=best.get)
            print(f"(b) neural-tangents {nt['neural_tangents']} (jax {nt['jax']}): " + ", ".join(
                f"impl {i} {min(v['seconds']):.3f} s (diff {v['max_rel_diff']:.1e})" for i, v in nt.items()
                if isinstance(v, dict) and "seconds" in v))
            print(f"(b) neural-tangents best (impl {k}) / pntk auto: {best[k] / t['auto']:.2f}×")
        else:
            print(f"(b) neural-tangents: {nt}")
    for row in res.get("resnet", {}).get("tiles", []):
        print(f"(c) ResNet-18 pNTK tile {row['tile']}: {row['per_pair'] * 1e3:.3f} ms/pair, "
              f"{row['ratio']:.2f}× the bound")


if __name__ == "__main__":
    main()

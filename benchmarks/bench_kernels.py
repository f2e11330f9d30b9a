"""Kernel engine benchmark: seconds per kernel entry pair and peak memory, every kind x method.

    python benchmarks/bench_kernels.py [--quick] [--device cuda] [--models a,b,c] [--max-n N] [--json out.json]

Models (float32, x2 = None, so a call computes the symmetric N x N kernel; "per pair" = time / N²):
    a  FCN-3 64→1024→1024→10 (pntk.models fcn, 1×8×8 inputs), N = 256
    b  cnn-bench: 4 × [Conv3×3 'same' 64 ch + ReLU] on 3×16×16, global average pool, Linear 10, N = 128
    c  ResNet-18 (pntk.models, base width 64) on 3×32×32, N = 64 (--quick: 16)
Combinations that would take too long run on the first n samples (column "N"); their per-pair rate
is what is compared. Phase 1 times every combination (best of at least --repeats calls, more for
short calls until --min-time seconds, after a warm-up); phase 2
measures peak memory in one more call each: on CPU the peak RSS above the pre-call RSS, sampled
every millisecond with glibc's mmap threshold lowered so freed buffers go back to the OS
(torch.cuda.max_memory_allocated on GPU). Ratios and the FLOP counts of (a), (b) (the engine's own
model, pntk.kernels.flop_count) use phase-1 times; the matmul rate (best of the measurements taken
before every combination) is from the same run. Tiles at the workflow's size: bench_tiles.py.
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import platform
import threading
import time

import psutil
import torch
from torch import nn

from pntk.kernels import empirical_kernel, flop_count
from pntk.models import ModelSpec, init_model
from pntk.provenance import machine_description

KINDS = ["pntk", "entk", "first_logit", "trace"]
METHODS = ["reference", "jacobian", "structured", "auto"]


class CNNBench(nn.Module):
    def __init__(self, width: int = 64, num_classes: int = 10):
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(4):
            layers += [nn.Conv2d(3 if i == 0 else width, width, 3, padding="same"), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.readout = nn.Linear(width, num_classes)

    def forward(self, x):
        return self.readout(self.features(x).mean(dim=(2, 3)))  # (N, 64) -> (N, 10)


def models(quick: bool) -> dict[str, dict]:
    torch.manual_seed(0)
    return {
        "a": dict(label="(a) FCN-3 64-1024-1024-10", in_shape=(1, 8, 8), n=256,
                  build=lambda: init_model(ModelSpec("fcn", 1024, (1, 8, 8), 10), 0),
                  slice={"reference": 4, ("jacobian", "entk"): 32, ("jacobian", "trace"): 32}),
        "b": dict(label="(b) cnn-bench 4x conv64 16x16", in_shape=(3, 16, 16), n=128, build=CNNBench,
                  slice={"reference": 4}),
        "c": dict(label="(c) ResNet-18 w64 32x32", in_shape=(3, 32, 32), n=16 if quick else 64,
                  build=lambda: init_model(ModelSpec("resnet18", 64, (3, 32, 32), 10), 0),
                  slice={"reference": 1, ("jacobian", "entk"): 2, ("jacobian", "trace"): 2,
                         ("structured", "entk"): 4, ("structured", "trace"): 4,
                         ("auto", "entk"): 4, ("auto", "trace"): 4}),
    }


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class RssPeak:
    """Peak RSS above the starting RSS, sampled by a background thread."""

    def __init__(self, interval: float = 1e-3):
        self.proc, self.interval, self.peak, self._stop = psutil.Process(), interval, 0, False

    def __enter__(self):
        self.base = self.proc.memory_info().rss
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self):
        while not self._stop:
            self.peak = max(self.peak, self.proc.memory_info().rss - self.base)
            time.sleep(self.interval)

    def __exit__(self, *exc):
        self._stop = True
        self.thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss - self.base)


def release_freed_memory() -> None:
    gc.collect()
    if platform.system() == "Linux":
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1 << 16)  # M_MMAP_THRESHOLD = 64 KiB: large buffers are unmapped on free
        libc.malloc_trim(0)


def matmul_rate(device: torch.device, repeats: int = 5) -> float:
    """FLOP/s of a (256×1024)@(1024×1024) float32 matmul (the FCN's GEMM shape), best of repeats."""
    a = torch.randn(256, 1024, device=device)
    b = torch.randn(1024, 1024, device=device)
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        t = time.perf_counter()
        for _ in range(10):
            a @ b
        sync(device)
        best = min(best, (time.perf_counter() - t) / 10)
    return 2 * 256 * 1024 * 1024 / best


def run(args) -> dict:
    device = torch.device(args.device)
    rows, cfgs = [], models(args.quick)
    rates = [matmul_rate(device)]
    calls = []
    for key in args.models.split(","):
        cfg = cfgs[key]
        model = cfg["build"]().float().to(device)
        x = torch.randn(cfg["n"], *cfg["in_shape"], device=device)
        for kind in KINDS:
            for method in METHODS:
                n = min(cfg["n"], cfg["slice"].get((method, kind), cfg["slice"].get(method, cfg["n"])))
                n = min(n, args.max_n) if args.max_n else n
                calls.append((key, cfg, model, x[:n], kind, method))
    for key, cfg, model, xs, kind, method in calls:  # phase 1: time
        rates.append(matmul_rate(device, repeats=2))  # the machine is shared: keep the best rate seen
        empirical_kernel(model, xs[:2], kind=kind, method=method)  # warm-up
        best, count, spent = float("inf"), 0, 0.0
        while count < args.repeats or (spent < args.min_time and count < 50):  # short calls: more repeats
            sync(device)
            t = time.perf_counter()
            k = empirical_kernel(model, xs, kind=kind, method=method)
            sync(device)
            dt = time.perf_counter() - t
            best, count, spent = min(best, dt), count + 1, spent + dt
            del k
        n = xs.shape[0]
        rows.append(dict(model=key, kind=kind, method=method, n=n, seconds=best, per_pair=best / n**2,
                         repeats=count))
        print(f"{cfg['label']:30s} {kind:11s} {method:10s} N={n:4d} {best:9.4f} s "
              f"{best / n**2:.3e} s/pair", flush=True)
    flops = {}  # the engine's own FLOP model (pntk.kernels.flop_count) of each model's pNTK
    for key, _cfg, model, xs, kind, method in calls:
        if kind == "pntk" and method == "structured":
            flops[key] = flop_count(model, xs)
    for row, (_, _, model, xs, kind, method) in zip(rows, calls):  # phase 2: peak memory
        release_freed_memory()
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
            k = empirical_kernel(model, xs, kind=kind, method=method)
            row["peak_mib"] = (torch.cuda.max_memory_allocated(device) - base) / 2**20
        else:
            with RssPeak() as peak:
                k = empirical_kernel(model, xs, kind=kind, method=method)
            row["peak_mib"] = peak.peak / 2**20
        del k
    rate = max(rates)
    print(f"# matmul rate: best {rate / 1e9:.1f}, median {sorted(rates)[len(rates) // 2] / 1e9:.1f} GFLOP/s "
          f"float32 over {len(rates)} measurements", flush=True)
    return dict(rows=rows, matmul_flops=rate, matmul_flops_all=rates, threads=torch.get_num_threads(),
                device=str(device), flops=flops)


def report(res: dict) -> str:
    rows = res["rows"]
    t = {(r["model"], r["kind"], r["method"]): r for r in rows}
    out = ["| model | kind | method | N | time (s) | s / pair | peak mem (MiB) |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['model']} | {r['kind']} | {r['method']} | {r['n']} | {r['seconds']:.4f} | "
                   f"{r['per_pair']:.3e} | {r['peak_mib']:.0f} |")
    pp = lambda m, k, meth: t[(m, k, meth)]["per_pair"] if (m, k, meth) in t else float("nan")  # noqa: E731
    out += ["", "| target | measured | goal | met |", "|---|---|---|---|"]
    notes: list[str] = []

    def target(name, value, goal, cmp=lambda v, g: v >= g):
        out.append(f"| {name} | {value:.1f}× | {goal} | {'yes' if cmp(value, float(goal[1:-1])) else 'NO'} |")

    def flop_note(m: str, method: str) -> str:
        f = res["flops"][m]
        lb_s = f["total"] / res["matmul_flops"]
        parts = " + ".join(f"{k} {v / 1e9:.2f}" for k, v in f.items() if k != "total" and v)
        return (f"FLOPs of ({m}) pNTK, N={t[(m, 'pntk', method)]['n']} (pntk.kernels.flop_count): {parts} = "
                f"{f['total'] / 1e9:.2f} GFLOP = {lb_s * 1e3:.1f} ms at {res['matmul_flops'] / 1e9:.1f} GFLOP/s; "
                f"{method} took {t[(m, 'pntk', method)]['seconds'] * 1e3:.1f} ms")

    if ("a", "pntk", "structured") in t and "a" in res["flops"]:
        target("(a) pNTK jacobian / structured", pp("a", "pntk", "jacobian") / pp("a", "pntk", "structured"), "≥50×")
        target("(a) eNTK jacobian / structured", pp("a", "entk", "jacobian") / pp("a", "entk", "structured"), "≥20×")
        lb_s = res["flops"]["a"]["total"] / res["matmul_flops"]
        target("(a) pNTK structured / FLOP time at the matmul rate", t[("a", "pntk", "structured")]["seconds"] / lb_s,
               "≤2×", cmp=lambda v, g: v <= g)
        notes.append(flop_note("a", "structured"))
    if ("b", "pntk", "auto") in t and "b" in res["flops"]:
        target("(b) pNTK jacobian / auto", pp("b", "pntk", "jacobian") / pp("b", "pntk", "auto"), "≥1.5×")
        notes.append(flop_note("b", "auto"))
    for m in ("a", "b"):
        for meth in ("jacobian", "structured", "auto"):
            if (m, "pntk", meth) in t:
                target(f"({m}) eNTK / pNTK per pair, {meth}", pp(m, "entk", meth) / pp(m, "pntk", meth), "≥10×")
    return "\n".join(out + [""] + notes)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--quick", action="store_true", help="(c) with N = 16")
    p.add_argument("--max-n", type=int, default=None, help="at most this many samples per call (smoke tests)")
    p.add_argument("--models", default="a,b,c")
    p.add_argument("--repeats", type=int, default=3, help="at least this many timed calls (best is kept)")
    p.add_argument("--min-time", type=float, default=3.0, help="...and more (up to 50) until this many seconds")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--json", default=None, help="also write the raw numbers here")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    res = run(args)
    res.update(date=time.strftime("%Y-%m-%d"), cpu=machine_description(),
               cores=os.cpu_count(), load_avg=os.getloadavg())
    print(f"\n# {res['date']}, device {res['device']}, {res['cores']} cores, torch threads {res['threads']}, "
          f"load average at end {res['load_avg'][0]:.1f}\n")
    print(report(res))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()

"""The ConvNet's analytic NTK (pntk.analysis.cntk) against its oracle, the plain recursion over every position pair.

    python benchmarks/bench_cntk.py [--images 128] [--oracle-images 24] [--repeats 5]

On 8×8 digits (depth 8, the default's ConvNet), one torch thread: CPU seconds per image pair of the pruned,
separable recursion in float64 and float32 (images × images pairs, blocks of 16 as the workflow runs it) and of
the oracle (float64; fewer pairs: it is slow and memory-hungry), after a warm-up, every repeat kept (min and max
printed); the ratios of the minima; the largest relative difference from the oracle on the oracle's pairs; the
planner's estimate (`cpu_seconds`) against the measured minimum; and the wall-clock gain of two worker threads.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from sklearn.datasets import load_digits

from pntk.analysis.cntk import cpu_seconds, relu_cnn_gap_kernels
from pntk.analysis.cntk_reference import reference_kernels


def timed(fn, repeats: int) -> tuple[list[float], object]:
    out = fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        out = fn()
        times.append(time.process_time() - t0)
    return times, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=128, help="images per side for the pruned recursion")
    ap.add_argument("--oracle-images", type=int, default=24, help="images per side for the oracle")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    x = torch.tensor(load_digits().data, dtype=torch.float64).reshape(-1, 1, 8, 8) / 16
    a, b = x[:args.images], x[500:500 + args.images]
    oa, ob = a[:args.oracle_images], b[:args.oracle_images]
    n, n_oracle = args.images**2, args.oracle_images**2
    runs = {
        "pruned float64": (n, lambda: relu_cnn_gap_kernels(a, b, depth=8)[1]),
        "pruned float32": (n, lambda: relu_cnn_gap_kernels(a, b, depth=8, dtype=torch.float32)[1]),
        "oracle float64": (n_oracle, lambda: reference_kernels(oa, ob, 8)[1]),
    }
    per_pair = {name: [t / pairs for t in timed(fn, args.repeats)[0]] for name, (pairs, fn) in runs.items()}
    ref = reference_kernels(oa, ob, 8)[1]
    err = {dt: float(np.abs(relu_cnn_gap_kernels(oa, ob, depth=8, dtype=dt)[1] - ref).max() / np.abs(ref).max())
           for dt in (torch.float64, torch.float32)}
    print(f"CNTK-GAP, 8×8 digits, depth 8, 1 thread, {args.repeats} repeats after a warm-up: CPU µs per image pair "
          f"(min, max); pruned on {n} pairs, oracle on {n_oracle}")
    for name, times in per_pair.items():
        print(f"  {name:15s} {min(times) * 1e6:8.1f}  {max(times) * 1e6:8.1f}")
    print(f"largest relative difference from the oracle: float64 {err[torch.float64]:.1e}, "
          f"float32 {err[torch.float32]:.1e}")
    f64, f32 = min(per_pair["pruned float64"]), min(per_pair["pruned float32"])
    print(f"oracle / pruned float64: {min(per_pair['oracle float64']) / f64:.1f}×; float64 / float32: {f64 / f32:.2f}×")
    for dt, best in (("float32", f32), ("float64", f64)):
        est = cpu_seconds(1, 1, (1, 8, 8), 8, dt)
        print(f"planner's estimate ({dt}) {est * 1e6:.1f} µs per pair: {est / best:.2f}× the measured minimum")
    wall = {}
    for workers in (1, 2):
        t0 = time.perf_counter()
        relu_cnn_gap_kernels(a, b, depth=8, dtype=torch.float32, workers=workers)
        wall[workers] = time.perf_counter() - t0
    print(f"two worker threads (float32): {wall[1] / wall[2]:.2f}× faster in wall-clock time (one run each)")
    one = cpu_seconds(1, 1, (1, 8, 8), 8)
    full = (cpu_seconds(1347, None, (1, 8, 8), 8) + cpu_seconds(450, 1347, (1, 8, 8), 8)) / one  # image pairs
    print(f"the default's §5 regression (1347 train, 450 test) in float32: {full * f32:.0f} CPU-s at this rate")


if __name__ == "__main__":
    main()

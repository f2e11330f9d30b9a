"""Kernel regression: dense float64 Cholesky vs Jacobi-preconditioned CG streaming from a Zarr store.

For each N: draw N train + M test points on the sphere S^{d-1}, labels = nearest of O random centres,
write the 2-layer ReLU NTK (an exact infinite-width NTK: real-NTK-like spectrum, λmax ~ N, λmin ~ 0.1)
Θ(D,D) (N, N) and Θ(X,D) (M, N) to Zarr v3 stores (tile × tile chunks, zarr's default codec like
pntk.store), then time `linearized_predict` from those stores with
  cholesky: read the store into a dense float64 matrix, factor, solve the O right-hand sides, predict
  cg:       memory cap --cg-cap-mb, matrix products streamed from the store, rel. residual ≤ --tol
and print the ratio cg/cholesky measured in this run.

    python benchmarks/bench_regression.py                       # N = 5000 10000 20000 on CPU
    python benchmarks/bench_regression.py --device cuda --sizes 5000 10000 20000 50000
"""
from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import zarr

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from pntk.provenance import machine_description  # noqa: E402
from pntk.regression import accuracy, linearized_predict  # noqa: E402


def relu_ntk(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """NTK of a 2-layer ReLU net at infinite width for unit-norm inputs: u κ0(u) + κ1(u)."""
    u = np.clip(x @ y.T, -1.0, 1.0)  # (n, m) cosines
    th = np.arccos(u)
    return u * (np.pi - th) / np.pi + (np.sqrt(1.0 - u * u) + u * (np.pi - th)) / np.pi


def write_kernel(path: Path, x_rows, x_cols, tile: int, dtype: str, compressor: str):
    kw = {} if compressor == "default" else {"compressors": None}
    g = zarr.open_group(str(path), mode="w")
    a = g.create_array("kernel", shape=(len(x_rows), len(x_cols)), chunks=(tile, tile), dtype=dtype, **kw)
    for i in range(0, len(x_rows), tile):  # one chunk-row at a time
        a[i : i + tile] = relu_ntk(x_rows[i : i + tile], x_cols).astype(dtype)
    return a


def bench_one(n, args, work: Path, log) -> dict:
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n + args.test, args.dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)  # on the sphere
    centres = rng.normal(size=(args.outputs, args.dim))
    labels = (x @ centres.T).argmax(1)  # (n + M,) nearest-centre classes
    y_d = np.eye(args.outputs)[labels[:n]]  # (N, O) one-hot
    t0 = time.perf_counter()
    kdd = write_kernel(work / f"kdd-{n}.zarr", x[:n], x[:n], args.tile, args.dtype, args.compressor)
    kxd = write_kernel(work / f"kxd-{n}.zarr", x[n:], x[:n], args.tile, args.dtype, args.compressor)
    t_write = time.perf_counter() - t0
    disk = sum(f.stat().st_size for f in (work / f"kdd-{n}.zarr").rglob("*") if f.is_file())
    row = dict(N=n, M=args.test, O=args.outputs, tile=args.tile, dtype=args.dtype, write_s=round(t_write, 1),
               store_gb=round(disk / 1e9, 2))
    common = dict(ridge=args.ridge, device=args.device, log=log, return_info=True)
    if not args.skip_cholesky:
        t0 = time.perf_counter()
        p_chol, info = linearized_predict(kdd, kxd, None, None, y_d, solver="cholesky",
                                          memory_cap_bytes=1 << 40, **common)
        row.update(chol_s=round(time.perf_counter() - t0, 2), chol_load_s=info["load_seconds"],
                   chol_factor_solve_s=info["factor_solve_seconds"], chol_jitter=info["jitter"],
                   chol_acc=accuracy(p_chol, labels[n:]))
    t0 = time.perf_counter()
    p_cg, info = linearized_predict(kdd, kxd, None, None, y_d, solver="cg", tol=args.tol,
                                    memory_cap_bytes=args.cg_cap_mb << 20, **common)
    row.update(cg_s=round(time.perf_counter() - t0, 2), cg_iters=info["cg_iterations"],
               cg_converged=info["cg_converged"], cg_read_s=info["read_seconds"],
               cg_block_mb=round(info["block_bytes"] / 2**20), cg_acc=accuracy(p_cg, labels[n:]))
    if not args.skip_cholesky:
        row["cg_over_chol"] = round(row["cg_s"] / row["chol_s"], 2)
        row["rel_diff"] = float(f"{np.linalg.norm(p_cg - p_chol) / np.linalg.norm(p_chol):.2e}")
    row["load1"] = round(os.getloadavg()[0], 1)  # 1-min load average: the CPU is shared
    if not args.keep:
        shutil.rmtree(work / f"kdd-{n}.zarr")
        shutil.rmtree(work / f"kxd-{n}.zarr")
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[5000, 10000, 20000])
    ap.add_argument("--outputs", type=int, default=10, help="O right-hand sides (classes)")
    ap.add_argument("--test", type=int, default=1000, help="M test points")
    ap.add_argument("--dim", type=int, default=32, help="input dimension d")
    ap.add_argument("--tile", type=int, default=2048)
    ap.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    ap.add_argument("--compressor", default="default", choices=["default", "none"])
    ap.add_argument("--ridge", type=float, default=0.0)
    ap.add_argument("--tol", type=float, default=1e-6, help="CG relative residual per right-hand side")
    ap.add_argument("--cg-cap-mb", type=int, default=1024, help="memory cap that forces the CG path")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workdir", type=Path, default=None, help="where stores go (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the stores")
    ap.add_argument("--skip-cholesky", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    log = logging.getLogger("bench_regression")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_regression-"))
    work.mkdir(parents=True, exist_ok=True)
    head = (f"# {datetime.date.today()} | {machine_description()} | device {args.device} | torch {torch.__version__} | "
            f"zarr {zarr.__version__} | ReLU-NTK d={args.dim}, ridge {args.ridge}, CG tol {args.tol}, "
            f"CG cap {args.cg_cap_mb} MiB | {os.cpu_count()} CPUs, load avg {os.getloadavg()[0]:.1f}")
    print(head, flush=True)
    rows = []
    for n in args.sizes:
        rows.append(bench_one(n, args, work, log))
        print(json.dumps(rows[-1]), flush=True)
    cols = ["N", "store_gb", "chol_s", "chol_load_s", "chol_factor_solve_s", "cg_s", "cg_iters", "cg_read_s",
            "cg_over_chol", "chol_acc", "cg_acc", "rel_diff", "load1"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r.get(c, "–")) for c in cols) + " |")
    if args.json:
        args.json.write_text(json.dumps(dict(header=head, rows=rows), indent=1))
    if not args.workdir and not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

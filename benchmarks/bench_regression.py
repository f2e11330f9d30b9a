"""Out-of-core kernel regression: Nyström-preconditioned CG streaming a Zarr store, against one
streaming pass, plain (Jacobi) CG and dense Cholesky — ratios measured within one run.

Store: ``--store PATH`` (a pNTK train×train store; ``--store-xd`` its test×train store, else its first
--test rows stand in for test points) or, per ``--sizes`` N, a synthetic store built here with the
real tile path (pntk.tiles.compute_tile → pntk.store.write_tile, float32, the store's codec): the pNTK
of a random FCN-3 (width --width) on N + M points in R^32 drawn around 10 class centres. Synthetic
stores go to --workdir and are reused when their parameters match (building is timed separately).

For each N, with --threads fixed (torch threads = tile readers) and one warm-up pass first:
  decode   one streaming pass that only reads (decodes) every upper-triangle tile      × --repeats
  product  one pass computing Θ V for the O right-hand sides (float64 strips)           × --repeats
  nystrom  linearized_predict(solver="nystrom"): landmark pass + PCG to --tol             × --solve-repeats
  cg       Jacobi CG to --tol (≤ --cg-maxiter iterations), N ≤ --cg-max: iterations vs Nyström  × 1
  cholesky dense float64, N ≤ --dense-max: ‖f_nystrom − f_chol‖ / ‖f_chol‖               × 1
Every repeat is printed; min and spread (max − min)/min per timing; ratios use the minima.

    python benchmarks/bench_regression.py --sizes 5000 20000            # CPU
    python benchmarks/bench_regression.py --sizes 50000 --workdir /tmp/bench-reg
    python benchmarks/bench_regression.py --store results/runs/.../pntk-train-train.zarr
    python benchmarks/bench_regression.py --device cuda --sizes 50000   # skips cleanly without CUDA
"""
from __future__ import annotations

import argparse
import datetime
import json
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
from pntk.models import FCN
from pntk.provenance import machine_description
from pntk.regression import accuracy, linearized_predict
from pntk.regression.solvers import ZarrKernelOperator, cg_solve
from pntk.store import zarr_store as kstore
from pntk.store.tiles import compute_tile
from pntk.tiling import TileGrid


def synthetic_stores(n: int, args, log) -> tuple[Path, Path, np.ndarray]:
    """(train×train store, test×train store, labels (N + M,)) of a random FCN-3's pNTK, built once."""
    rng = np.random.default_rng(n)
    m, dim = args.test, 32
    labels = rng.integers(0, args.outputs, n + m)  # (N + M,)
    centres = rng.normal(size=(args.outputs, dim))
    x = (centres[labels] + 0.7 * rng.normal(size=(n + m, dim))).astype(np.float32)  # (N + M, 32)
    params = dict(bench="fcn3-pntk", n=n, m=m, width=args.width, tile=args.tile, seed=0)
    paths = [args.workdir / f"pntk-{n}-{k}.zarr" for k in ("train-train", "test-train")]
    if all((p / "zarr.json").exists() and zarr.open_group(str(p), mode="r").attrs.get("bench") == params
           for p in paths):
        return paths[0], paths[1], labels
    torch.manual_seed(0)
    model = FCN(dim, args.width, args.outputs, depth=3)
    ids = np.arange(n + m)
    t0 = time.perf_counter()
    for path, rows, sym in [(paths[0], ids[:n], True), (paths[1], ids[n:], False)]:
        kstore.create_store(path, kind="pntk", row_ids=rows, col_ids=ids[:n], row_labels=labels[rows],
                            col_labels=labels[:n], tile=args.tile, dtype="float32", attrs={"bench": {}})
        grid = TileGrid(len(rows), n, args.tile, sym)
        for i, j in grid.tiles():
            rs, cs = grid.slices(i, j)
            block = compute_tile(model, x[rows][rs], x[:n][cs], same_inputs=grid.is_diagonal(i, j),
                                 kind="pntk", method="auto", batch_size=None, dtype=torch.float32)
            kstore.write_tile(path, i, j, block)
        zarr.open_group(str(path), mode="r+").attrs["bench"] = params  # complete: reusable
    log(f"built N={n} stores in {time.perf_counter() - t0:.0f} s")
    return paths[0], paths[1], labels


def timed(fn, repeats: int):
    """(every wall time, unrounded: a tiny pass can take well under a millisecond; last result)."""
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return times, out


def stats(times: list) -> dict:
    lo = min(times)
    return dict(all=[float(f"{t:.4g}") for t in times], min=float(f"{lo:.4g}"),
                spread=round((max(times) - lo) / lo, 3) if lo > 0 else 0.0)


def ratio(a: float, b: float, digits: int = 2) -> float | None:
    """a / b, or None where b is 0 (a pass below the clock's resolution): never a ZeroDivisionError."""
    return round(a / b, digits) if b > 0 else None


def bench_one(kdd, kxd, labels, n, args, log) -> dict:
    g = zarr.open_group(str(kdd), mode="r")
    arr = g["kernel"]
    if kxd is None:  # an existing store without its test×train partner: its first rows stand in
        kxd_arr, y_train, y_test = arr[: args.test], labels, labels[: args.test]
    else:
        kxd_arr, y_train, y_test = zarr.open_group(str(kxd), mode="r")["kernel"], labels[:n], labels[n:]
    o = int(labels.max()) + 1
    y_d = np.eye(o)[y_train]  # (N, O) one-hot
    row = dict(N=n, M=int(kxd_arr.shape[0]), O=o, tile=list(arr.chunks), dtype=str(arr.dtype),
               codec=str(arr.compressors), threads=args.threads, ridge=args.ridge, tol=args.tol)
    op = ZarrKernelOperator(arr, ridge=args.ridge, device=args.device, symmetric=True, threads=args.threads)
    op.stream(lambda *a: None)  # warm-up: page cache, allocator, thread pool
    decode, _ = timed(lambda: op.stream(lambda *a: None), args.repeats)
    v = torch.from_numpy(y_d)
    product, _ = timed(lambda: op.matmat(v), args.repeats)
    row.update(decode_pass_s=stats(decode), product_pass_s=stats(product),
               decode_triangle_gb_per_s=ratio(arr.nbytes / 2 / 1e9, min(decode)))
    common = dict(ridge=args.ridge, ridge_scale=args.ridge_scale, device=args.device, log=log, return_info=True,
                  tol=args.tol, threads=args.threads)

    def nystrom():
        return linearized_predict(arr, kxd_arr, None, None, y_d, solver="nystrom", rank=args.rank,
                                  memory_cap_bytes=args.cap_gb * 2**30, landmarks=args.landmarks, **common)

    solve, (p_ny, info) = timed(nystrom, args.solve_repeats)
    iters = info["cg_iterations"]
    # uniform landmarks read their columns in one pass (inside nystrom_seconds); pivoted Cholesky reads rows
    cg_passes = info["kernel_passes"] - (1 if args.landmarks == "uniform" else 0)
    per_iter = (info["seconds"] - info["nystrom_seconds"]) / max(cg_passes, 1)  # CG products incl. verifying
    row.update(nystrom_s=stats(solve), iterations=iters, converged=info["cg_converged"], jitter=info["jitter"],
               residual=info["cg_max_rel_residual"], rank=info["nystrom_rank"], sketch_s=info["nystrom_seconds"],
               lambda_max=info["nystrom_lambda_max"], tail_level=info["nystrom_level"], landmarks=args.landmarks,
               ridge_used=info["ridge"], seconds_total=round(info["seconds"], 1),
               per_iteration_s=round(per_iter, 3), per_iteration_over_decode=ratio(per_iter, min(decode)),
               acc_nystrom=accuracy(p_ny, y_test), iterations_le_30=iters <= 30)
    if n <= args.cg_max:  # plain CG on the same system (no escalation): its iteration count, capped
        t0 = time.perf_counter()
        rhs = torch.from_numpy(y_d)
        _, cg = cg_solve(op, rhs, precond=1.0 / op.diagonal(), tol=args.tol, maxiter=args.cg_maxiter,
                         log=lambda m: None, name="jacobi-cg", stall_window=args.cg_maxiter)
        done = "" if cg.converged else ">"  # not converged within the cap: a lower bound
        row.update(cg_s=round(time.perf_counter() - t0, 2), cg_iterations=f"{done}{cg.iterations}",
                   cg_residual=float(f"{max(cg.rel_residual):.2e}"),
                   cg_iterations_over_nystrom=f"{done}{cg.iterations / max(iters, 1):.1f}")
    if n <= args.dense_max:
        t0 = time.perf_counter()
        p_chol, chol = linearized_predict(arr, kxd_arr, None, None, y_d, solver="cholesky",
                                          memory_cap_bytes=1 << 40, **common)
        chol_s = time.perf_counter() - t0
        row.update(chol_s=round(chol_s, 2), chol_jitter=chol["jitter"], nystrom_over_chol=ratio(min(solve), chol_s),
                   rel_diff_vs_cholesky=float(f"{np.linalg.norm(p_ny - p_chol) / np.linalg.norm(p_chol):.2e}"))
    row["load1"] = round(os.getloadavg()[0], 1)  # the CPU may be shared: say how busy it was
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000])
    ap.add_argument("--store", type=Path, default=None, help="existing pNTK train×train store (ignores --sizes)")
    ap.add_argument("--store-xd", type=Path, default=None, help="its test×train store")
    ap.add_argument("--outputs", type=int, default=10, help="O classes (synthetic stores)")
    ap.add_argument("--test", type=int, default=1000, help="M test points")
    ap.add_argument("--width", type=int, default=512, help="FCN-3 width of the synthetic pNTK")
    ap.add_argument("--tile", type=int, default=2048)
    ap.add_argument("--rank", type=int, default=None, help="Nyström landmark columns (default: the library's)")
    ap.add_argument("--ridge", type=float, default=0.0)
    ap.add_argument("--ridge-scale", choices=["absolute", "mean_diagonal"], default="absolute",
                    help="mean_diagonal: --ridge is a fraction of Θ's mean diagonal (as regression.ridge_scale)")
    ap.add_argument("--landmarks", choices=["rpcholesky", "uniform"], default="rpcholesky",
                    help="Nyström landmarks: randomly pivoted Cholesky or uniform columns")
    ap.add_argument("--tol", type=float, default=1e-6, help="CG relative residual per right-hand side")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads = tile readers")
    ap.add_argument("--repeats", type=int, default=3, help="repeats of the single passes")
    ap.add_argument("--solve-repeats", type=int, default=1, help="repeats of the Nyström solve")
    ap.add_argument("--cap-gb", type=float, default=8.0, help="memory cap given to the solver")
    ap.add_argument("--cg-max", type=int, default=10000, help="plain CG only up to this N")
    ap.add_argument("--cg-maxiter", type=int, default=300, help="plain CG iteration cap (reported as '>cap')")
    ap.add_argument("--dense-max", type=int, default=20000, help="dense Cholesky only up to this N")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workdir", type=Path, default=None, help="synthetic stores (kept and reused)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"# --device {args.device}: CUDA is not available here; skipping")
        return
    torch.set_num_threads(args.threads)
    temp = args.workdir is None and args.store is None
    args.workdir = Path(tempfile.mkdtemp(prefix="bench_regression-")) if temp else args.workdir
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
    stamp = time.perf_counter()

    def log(msg):
        print(f"  [{time.perf_counter() - stamp:7.1f} s] {msg}", file=sys.stderr, flush=True)

    head = (f"# {datetime.date.today()} | {machine_description()} | device {args.device} | torch {torch.__version__} "
            f"| zarr {zarr.__version__} | threads {args.threads} | ridge {args.ridge} ({args.ridge_scale}), "
            f"tol {args.tol}, rank {args.rank or 'default'}, {args.landmarks} landmarks | {os.cpu_count()} CPUs, "
            f"load avg {os.getloadavg()[0]:.1f}")
    print(head, flush=True)
    rows = []
    try:
        if args.store:
            labels = zarr.open_group(str(args.store), mode="r")["row_label"][:]
            if args.store_xd:
                labels = np.concatenate([labels, zarr.open_group(str(args.store_xd), mode="r")["row_label"][:]])
            n = zarr.open_group(str(args.store), mode="r")["row"].shape[0]
            rows.append(bench_one(args.store, args.store_xd, labels, n, args, log))
            print(json.dumps(rows[-1]), flush=True)
        for n in [] if args.store else args.sizes:
            t0 = time.perf_counter()
            kdd, kxd, labels = synthetic_stores(n, args, log)
            build = round(time.perf_counter() - t0, 1)
            rows.append(dict(bench_one(kdd, kxd, labels, n, args, log), build_s=build))
            print(json.dumps(rows[-1]), flush=True)
    finally:
        if temp:
            shutil.rmtree(args.workdir, ignore_errors=True)
    cols = ["N", "decode_pass_s", "product_pass_s", "nystrom_s", "iterations", "per_iteration_over_decode",
            "cg_iterations", "rel_diff_vs_cholesky", "chol_s", "jitter", "load1"]
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        cells = [r.get(c, "–") for c in cols]
        print("| " + " | ".join(f"{c['min']} (±{c['spread']:.0%})" if isinstance(c, dict) else str(c)
                                for c in cells) + " |")
    if args.json:
        args.json.write_text(json.dumps(dict(header=head, rows=rows), indent=1))


if __name__ == "__main__":
    main()

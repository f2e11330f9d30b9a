"""Kernel tiles at machine speed: FLOP rate against the matmul peak, write overhead, peak RSS against N.

    python benchmarks/bench_tiles.py [--threads 2] [--tile 4096] [--device cuda] [--quick] [--json out.json]

One run measures, at one fixed torch thread count:
  1. matmul peak: float32 GEMMs of the tile's shapes (T×K @ K×T for K = 1024, 3072, and T×T @ T×T),
     measured before every tile repeat too (the machine may be shared); the best rate seen is the peak.
  2. tile rate: an FCN-3 width-1024 pNTK tile T × T on random 3×32×32 inputs in float32 through
     pntk.store.tiles.compute_tile (what the tile jobs call), off-diagonal (x1 ≠ x2) and diagonal (symmetric);
     useful FLOPs from the engine's own model, pntk.kernels.flop_count; achieved rate / peak.
  3. write overhead: the tiles of a symmetric grid × grid store (tile (i, j) and its mirror (j, i) are
     written, as in a train × train store) computed from a prepared data store as checkpoint_job does —
     compute only; compute + synchronous writes; compute + pntk.store.tile_io.TileWriter (writes overlap the
     next tile) — and the ratios (compute + write) / compute.
  4. peak RSS of a tile job (pntk.kernel_jobs.tile_job in a fresh process, its VmHWM) for prepared
     data of two sizes N: it should not grow with N.
Every timing is preceded by a warm-up; every repeat is printed, with min, median and spread
((max - min) / min). Data, checkpoint and stores live under --workdir (data sets are kept between runs).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from pntk.data import open_images, read_rows
from pntk.kernels import flop_count
from pntk.models import ModelSpec, init_model
from pntk.provenance import machine_description
from pntk.store import tiles
from pntk.store.paths import StorePaths
from pntk.store.tile_io import RowCache, TileWriter, write_now

IN_SHAPE = (3, 32, 32)
SPEC = ModelSpec("fcn", 1024, IN_SHAPE, 10)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device) -> float:
    sync(device)
    t = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t


def summary(times: list[float]) -> dict:
    lo = min(times)
    return {"all": times, "min": lo, "median": statistics.median(times), "spread": (max(times) - lo) / lo}


def fmt(s: dict, unit: str = "s") -> str:
    return (f"min {s['min']:.3f} {unit}, median {s['median']:.3f}, spread {100 * s['spread']:.0f} % "
            f"(all: {', '.join(f'{t:.3f}' for t in s['all'])})")


# ----------------------------------------------------------------------------- 1 + 2: rates
def matmul_peak(tile: int, device: torch.device) -> dict[str, float]:
    """FLOP/s of each GEMM shape of the tile (best of 3 after a warm-up)."""
    rates = {}
    for k in (1024, 3072, tile):
        a = torch.randn(tile, k, device=device)
        b = torch.randn(tile, k, device=device)
        a @ b.T  # warm-up
        rates[f"{tile}x{k}@{k}x{tile}"] = 2.0 * tile * tile * k / min(timed(lambda a=a, b=b: a @ b.T, device)
                                                                  for _ in range(3))
    return rates


def tile_rates(args, device: torch.device, model, peaks: list[float]) -> dict:
    g = torch.Generator().manual_seed(0)
    x1 = torch.randn(args.tile, *IN_SHAPE, generator=g)
    x2 = torch.randn(args.tile, *IN_SHAPE, generator=g)
    out = {}
    for name, diagonal in (("off-diagonal", False), ("diagonal", True)):
        flops = flop_count(model, x1.to(device), None if diagonal else x2.to(device))

        def run(diagonal=diagonal):
            return tiles.compute_tile(model, x1.to(device), x2.to(device), same_inputs=diagonal, kind="pntk",
                                      method="auto", batch_size=None, dtype=torch.float32)

        run()  # warm-up
        times, beside = [], []
        for _ in range(args.repeats):
            peaks.append(max(matmul_peak(args.tile, device).values()))
            times.append(timed(run, device))
            beside.append(flops["total"] / times[-1] / peaks[-1])  # against the matmul rate just before
        s = summary(times)
        out[name] = {"seconds": s, "flops": flops, "rate": flops["total"] / s["min"],
                     "fraction_of_matmul_just_before": beside}
        print(f"tile {args.tile}² {name}: {fmt(s)}; {flops['total'] / 1e9:.0f} GFLOP "
              f"(forward {flops['forward'] / 1e9:.0f}, backward {flops['backward'] / 1e9:.0f}, "
              f"contraction {flops['contraction'] / 1e9:.0f}) -> {out[name]['rate'] / 1e9:.1f} GFLOP/s; "
              f"per repeat, of the matmul rate measured just before: "
              f"{', '.join(f'{100 * b:.0f} %' for b in beside)}", flush=True)
    return out


# ----------------------------------------------------------------------------- data, checkpoint, stores
def prepared_data(work: Path, n_train: int, n_test: int = 64) -> Path:
    """A prepared data store (the layout pntk.data writes) of random 3×32×32 images; kept between runs."""
    import zarr

    from pntk.data import fingerprint

    path = work / f"random-{n_train}.zarr"
    if (path / "zarr.json").exists():
        return path
    n = n_train + n_test
    rng = np.random.default_rng(n_train)
    x = np.empty((n, *IN_SHAPE), np.float32)
    for i in range(0, n, 4096):
        x[i:i + 4096] = rng.standard_normal((min(4096, n - i), *IN_SHAPE), dtype=np.float32)
    y = rng.integers(0, 10, n).astype(np.int64)
    split = np.r_[np.zeros(n_train, np.int8), np.ones(n_test, np.int8)]
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    g = zarr.open_group(str(tmp), mode="w", zarr_format=3)
    for name, a in (("x", x), ("y", y), ("split", split), ("source_index", np.arange(n))):
        g.create_array(name, shape=a.shape, dtype=a.dtype, chunks=(1024,) + a.shape[1:])[...] = a
    g.attrs.update({"format_version": 1, "name": "random", "num_classes": 10, "in_shape": list(IN_SHAPE),
                    "layout": "NCHW", "mean": [0.0] * 3, "std": [1.0] * 3, "n_train": n_train, "n_test": n_test,
                    "fingerprint": fingerprint(x, y, split)})
    os.replace(tmp, path)
    return path


def checkpoint(work: Path, data: Path) -> Path:
    """An epoch-0 checkpoint of the FCN-3 width 1024, written by pntk.train (run layout of the workflow)."""
    from pntk.train import TrainConfig, train_run

    path = work / "runs" / "random" / "fcn-w1024-s0" / "checkpoints" / "epoch000.pt"
    if path.exists():
        return path
    x, _ = open_images(data)
    xs = read_rows(x, np.arange(256))
    ys = np.arange(256) % 10
    (path,) = train_run(SPEC, 0, xs, ys, xs[:64], ys[:64], TrainConfig(epochs=0, checkpoint_epochs=(0,)),
                        path.parent.parent)
    return path


def kernels_cfg(args) -> dict:
    return {"tile_size": args.tile, "dtype": "float32", "method": "auto", "batch_size": None, "device": args.device}


def init_store(work: Path, name: str, data: Path, ckpt: Path, args) -> Path:
    from pntk.kernel_jobs import init_job

    stem = ckpt.parent.parent / "epoch000" / "kernels" / name / "pntk-train-train"
    shutil.rmtree(stem.parent, ignore_errors=True)
    init_job(StorePaths(stem).sentinel, kind="pntk", rows="train", cols="train", data_path=data,
             checkpoint=ckpt, kernels_cfg=kernels_cfg(args), data_cfg={"subset_train": 1, "subset_test": 1, "seed": 0})
    return stem


# ----------------------------------------------------------------------------- 3: write overhead
def write_overhead(args, work: Path, data: Path, ckpt: Path, model) -> dict:
    """Tiles (i <= j) of a grid × grid symmetric store, computed as checkpoint_job computes them."""
    from pntk.tiling import TileGrid

    x, _ = open_images(data)
    t = args.tile
    grid = TileGrid(args.grid * t, args.grid * t, t, symmetric=True).tiles()
    dtype = torch.float32
    out = {}

    def run(mode: str) -> float:
        stem = init_store(work, mode, data, ckpt, args)
        cpu0, t0 = time.process_time(), time.perf_counter()
        read = RowCache(x)
        with TileWriter() as writer:
            for i, j in grid:
                ts = time.perf_counter()
                r = torch.as_tensor(read(np.arange(i * t, (i + 1) * t)), device=args.device)
                c = torch.as_tensor(read(np.arange(j * t, (j + 1) * t)), device=args.device)
                block = tiles.compute_tile(model, r, c, same_inputs=i == j, kind="pntk", method="auto",
                                           batch_size=None, dtype=dtype)
                seconds = time.perf_counter() - ts
                flag = StorePaths(stem).flag(i, j)
                if mode == "sync":
                    write_times.append(write_now(flag, block, i, j, seconds)["write_seconds"])
                elif mode == "overlap":
                    writer.submit(flag, block, i, j, seconds)
        if mode == "overlap":
            write_times.extend(rec["write_seconds"] for rec in writer.records)
        cpu_times.append(time.process_time() - cpu0)
        return time.perf_counter() - t0

    write_times: list[float] = []
    cpu_times: list[float] = []
    run("compute")  # warm-up (also reads the data once into the page cache)
    for mode in ("compute", "sync", "overlap"):
        write_times.clear()
        cpu_times.clear()
        out[mode] = summary([run(mode) for _ in range(args.repeats_io)])
        out[mode]["cpu_seconds"] = cpu_times[:]  # all threads: the work done, less sensitive to other load
        line = f"{len(grid)} tiles ({args.grid}×{args.grid} symmetric grid), {mode:8s}: {fmt(out[mode])}"
        if write_times:
            out[mode]["write_seconds_per_tile"] = write_times[:]
            line += f"; writer busy {sum(write_times) / args.repeats_io:.2f} s per pass"
        print(f"{line}; CPU {min(cpu_times):.1f} s", flush=True)
    for mode in ("sync", "overlap"):
        out[f"ratio_{mode}"] = out[mode]["min"] / out["compute"]["min"]
    out["write_parts"] = write_parts(init_store(work, "parts", data, ckpt, args), t)
    return out


def write_parts(stem: Path, t: int) -> dict[str, float]:
    """Where the write of one off-diagonal tile of a symmetric store goes (seconds, best of 3)."""
    import hashlib

    import zarr

    from pntk.store import zarr_store as S

    block = np.random.default_rng(0).random((t, t), dtype=np.float32)
    arr = zarr.open_group(str(StorePaths(stem).store), mode="r+")["kernel"]
    steps = {"finite check": lambda: np.isfinite(block).all(),
             "sha256 of one chunk": lambda: hashlib.sha256(block).hexdigest(),
             "transposed copy": lambda: S.transposed(block),
             "zarr write of one chunk (encode + file)": lambda: arr.__setitem__((slice(0, t), slice(t, 2 * t)), block),
             "fsync of one chunk": lambda: S.sync_chunk(StorePaths(stem).store, arr, (0, 1)),
             "write_tile (both chunks, checksums, fsync)": lambda: S.write_tile(StorePaths(stem).store, 0, 1, block)}
    parts = {name: min(timed(fn, torch.device("cpu")) for _ in range(3)) for name, fn in steps.items()}
    print("write of one off-diagonal tile: " + ", ".join(f"{k} {v:.3f} s" for k, v in parts.items()), flush=True)
    return parts


# ----------------------------------------------------------------------------- 4: peak RSS
CHILD = """
import json, sys
import torch
torch.set_num_threads(int(sys.argv[1]))
from pntk.kernel_jobs import tile_job

def status(key):  # kB; VmHWM is the peak RSS of this process image (ru_maxrss would include the parent's)
    return int(next(l.split()[1] for l in open("/proc/self/status") if l.startswith(key + ":")))

base = status("VmHWM")
tile_job(**json.loads(sys.argv[2]))
print(json.dumps({"base_kib": base, "peak_kib": status("VmHWM")}))
"""


def tile_job_rss(args, work: Path, n_train: int) -> dict:
    data = prepared_data(work, n_train)
    ckpt = checkpoint(work, data)
    stem = init_store(work, f"rss-{n_train}", data, ckpt, args)
    job = {"flag": str(StorePaths(stem).flag(0, 1)), "kind": "pntk", "rows": "train", "cols": "train", "i": 0,
           "j": 1, "data_path": str(data), "checkpoint": str(ckpt), "kernels_cfg": kernels_cfg(args),
           "data_cfg": {"subset_train": 1, "subset_test": 1, "seed": 0}}
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"),
           "OMP_NUM_THREADS": str(args.threads)}
    res = subprocess.run([sys.executable, "-c", CHILD, str(args.threads), json.dumps(job)], env=env,
                         capture_output=True, text=True, check=True)
    rec = json.loads(res.stdout.strip().splitlines()[-1])
    rec.update(n_train=n_train, peak_mib=rec["peak_kib"] / 1024,
               above_imports_mib=(rec["peak_kib"] - rec["base_kib"]) / 1024)
    print(f"tile job (0,1), T = {args.tile}, N = {n_train}: peak RSS {rec['peak_mib']:.0f} MiB "
          f"({rec['above_imports_mib']:.0f} MiB above the RSS after imports)", flush=True)
    return rec


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="torch intra-op threads (fixed for the run)")
    p.add_argument("--tile", type=int, default=4096)
    p.add_argument("--repeats", type=int, default=3, help="timed tile computations (after a warm-up)")
    p.add_argument("--repeats-io", type=int, default=2, help="timed passes over the grid per write mode")
    p.add_argument("--grid", type=int, default=3, help="tiles per side of the store of part 3")
    p.add_argument("--rss-sizes", default="8192,50000", help="train rows N of the prepared data for part 4")
    p.add_argument("--parts", default="rate,io,rss")
    p.add_argument("--quick", action="store_true", help="tile 1024, grid 2, N 2048 and 8192: checks the script runs")
    p.add_argument("--workdir", default="/tmp/pntk-bench-tiles")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    if args.quick:
        args.tile, args.grid, args.rss_sizes, args.repeats = 1024, 2, "2048,8192", 2
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("CUDA is not available: skipped (run with --device cpu)")
        return
    torch.set_num_threads(args.threads)
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    parts = args.parts.split(",")
    res: dict = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine_description(), "device": str(device),
                 "threads": torch.get_num_threads(), "tile": args.tile, "load_avg_start": os.getloadavg()}
    print(f"# {res['date']}, {res['machine']}, device {device}, load average {res['load_avg_start'][0]:.1f}",
          flush=True)
    model = init_model(SPEC, 0).float().to(device)
    if "rate" in parts:
        peaks: list[float] = [max(matmul_peak(args.tile, device).values())]
        res["tile"] = tile_rates(args, device, model, peaks)
        res["matmul_peak"] = {"all": peaks, "best": max(peaks), "median": statistics.median(peaks)}
        print(f"matmul peak: best {max(peaks) / 1e9:.1f} GFLOP/s, median {statistics.median(peaks) / 1e9:.1f} "
              f"(all: {', '.join(f'{r / 1e9:.1f}' for r in peaks)})")
        for name, t in res["tile"].items():
            t["fraction_of_peak"] = t["rate"] / max(peaks)
            print(f"  {name} tile: {t['rate'] / 1e9:.1f} GFLOP/s = {100 * t['fraction_of_peak']:.0f} % of the peak "
                  f"({100 * t['rate'] / statistics.median(peaks):.0f} % of the median matmul rate)")
    if "io" in parts:
        data = prepared_data(work, args.grid * args.tile)
        res["io"] = write_overhead(args, work, data, checkpoint(work, data), model)
        print(f"(compute + write) / compute: synchronous {res['io']['ratio_sync']:.2f}, "
              f"overlapped {res['io']['ratio_overlap']:.2f}")
    if "rss" in parts:
        res["rss"] = [tile_job_rss(args, work, int(n)) for n in args.rss_sizes.split(",")]
    res["load_avg_end"] = os.getloadavg()
    res["maxrss_bench_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"# load average at the end {res['load_avg_end'][0]:.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1, default=str))


if __name__ == "__main__":
    main()

"""Kernel stores read remotely: a lazy one-tile slice over HTTP (bytes, requests), a whole store read and the
regression's out-of-core CG solve (10 right-hand sides) over HTTP (nginx) and S3 (moto server) against the
same store read locally.

    python benchmarks/bench_remote.py [--n 4096] [--tile 1024] [--repeats 5] [--json out.json]

Needs nginx on PATH (or /usr/sbin/nginx) and the `test` extra (moto[server], s3fs). The store, n × n
float32 of tile × tile chunks (uncompressed), is written once through the tile protocol
(pntk.store.tiles: init, tile + flag, finalize), copied under nginx's root and uploaded to a bucket.
Both servers run on localhost: the remote numbers are the protocol's and the servers' costs, not a
network's. Every repeat is printed, with min and median.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from pntk import open_kernel
from pntk.regression import ZarrKernelOperator, cg_solve
from pntk.store import remote, tiles
from pntk.store.paths import StorePaths
from pntk.tiling import TileGrid

NGINX_CONF = """daemon off; master_process off; worker_processes 1; {user}
pid {tmp}/nginx.pid; error_log {tmp}/error.log;
events {{ worker_connections 64; }}
http {{ default_type application/octet-stream;
  log_format counted '$request_method $uri $status $body_bytes_sent';
  access_log {tmp}/access.log counted;
  client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy; fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
  server {{ listen 127.0.0.1:{port}; root {root}; }} }}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd: list[str], port: int) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd[0]} exited with {proc.returncode}")
        time.sleep(0.1)
    raise RuntimeError(f"{cmd[0]} did not listen on {port}")


def write_store(stem: Path, n: int, tile: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    ids = np.arange(n)
    x = rng.standard_normal((n, 64), dtype=np.float32)
    full = x @ x.T / 64 + np.eye(n, dtype=np.float32)  # symmetric positive definite: the solver's case too
    paths = StorePaths.of(stem)
    tiles.init_store(paths.sentinel, kind="pntk", row_ids=ids, col_ids=ids, row_labels=ids % 10,
                     col_labels=ids % 10, tile=tile, dtype="float32", out_dim=None, attrs={})
    flags = []
    grid = TileGrid(n, n, tile, symmetric=True)
    for i, j in grid.tiles():
        flags.append(paths.flag(i, j))
        tiles.write_tile_and_flag(flags[-1], full[grid.slices(i, j)], i, j, 0.0)
    tiles.finalize(paths.manifest, flags)
    return full


def timed(fn, repeats: int) -> list[float]:
    fn()  # warm-up (filesystem instances, page cache, connections)
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def log_lines(path: Path) -> list[tuple[str, str, int, int]]:
    return [(m, u, int(s), int(b)) for m, u, s, b in (ln.split(" ") for ln in path.read_text().splitlines())]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--tile", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json")
    args = ap.parse_args()
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    tmp = Path(tempfile.mkdtemp(prefix="pntk-bench-remote-"))
    procs = []
    try:
        root = tmp / "www"
        stem = root / "k" / "pntk-train-train"
        full = write_store(stem, args.n, args.tile)
        port = free_port()
        (tmp / "nginx.conf").write_text(NGINX_CONF.format(user="user root;" if os.geteuid() == 0 else "",
                                                          tmp=tmp, port=port, root=root))
        procs.append(start([nginx, "-p", str(tmp), "-c", str(tmp / "nginx.conf"), "-e", str(tmp / "error.log")],
                           port))
        http = f"http://127.0.0.1:{port}/k/pntk-train-train.zarr"
        s3_port = free_port()
        procs.append(start([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(s3_port)], s3_port))
        os.environ.update({"AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{s3_port}", "AWS_ACCESS_KEY_ID": "bench",
                           "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"})
        fs = remote.RemotePath("s3://bench").fs
        fs.mkdir("bench")
        fs.put(str(root / "k") + "/", "s3://bench/k/", recursive=True)
        s3 = "s3://bench/k/pntk-train-train.zarr"

        access = tmp / "access.log"
        n0 = len(log_lines(access))
        K = open_kernel(http)
        opened = log_lines(access)[n0:]
        n1 = len(log_lines(access))
        t = args.tile
        block = K.isel(row=slice(t, 2 * t), col=slice(0, t)).values
        assert np.array_equal(block, full[t:2 * t, :t])
        sliced = log_lines(access)[n1:]
        rec = {"n": args.n, "tile": args.tile, "store_bytes": int(full.nbytes),
               "open": {"requests": len(opened), "bytes": sum(b for *_, b in opened),
                        "uris": sorted({u.rsplit(".zarr/", 1)[-1] for _, u, _, _ in opened})},
               "slice": {"requests": len(sliced), "bytes": sum(b for *_, b in sliced),
                         "chunk_bytes": int(block.nbytes),
                         "uris": [u.rsplit(".zarr/", 1)[-1] for _, u, _, _ in sliced]}}
        print(json.dumps(rec, indent=1))
        local = str(stem) + ".zarr"
        for name, where in (("local", local), ("http", http), ("s3", s3)):
            times = timed(lambda w=where: open_kernel(w).values, args.repeats)
            rec[f"read_{name}_s"] = times
            print(f"whole store {name:5s}: " + " ".join(f"{x:.3f}" for x in times)
                  + f"  min {min(times):.3f} s, median {statistics.median(times):.3f} s, "
                  f"{full.nbytes / 2**20 / min(times):.0f} MiB/s")
        rhs = torch.from_numpy(np.random.default_rng(1).standard_normal((args.n, 10)))
        answers = {}
        for name, where in (("local", local), ("http", http), ("s3", s3)):
            def solve(w=where, name=name):
                X, info = cg_solve(ZarrKernelOperator(w), rhs, tol=1e-6)
                assert info.converged, info
                answers[name] = (X.numpy(), info.iterations)
            times = timed(solve, args.repeats)
            rec[f"cg_{name}_s"] = times
            print(f"CG solve  {name:5s}: " + " ".join(f"{x:.3f}" for x in times)
                  + f"  min {min(times):.3f} s, median {statistics.median(times):.3f} s "
                  f"({answers[name][1]} iterations: {answers[name][1] + 1} passes over the store)")
        assert all(a[0].tobytes() == answers["local"][0].tobytes() for a in answers.values())
        if args.json:
            Path(args.json).write_text(json.dumps(rec, indent=1))
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

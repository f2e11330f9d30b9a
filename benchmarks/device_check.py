"""Steps of benchmarks/device_check.sh that need Python; each prints `RESULT key: value` lines.

    python benchmarks/device_check.py info    --device cuda      machine, GPU, torch/CUDA/cuDNN versions
    python benchmarks/device_check.py tf32    --device cuda      TF32 flags inside the kernel path + accuracy
    python benchmarks/device_check.py rate    --device cuda [--sizes 256 512 1024 2048] [--budget 60]
                                              ResNet-18 pNTK pairs/s per tile size, FLOP rate / fp32 peak
    python benchmarks/device_check.py conv    --device cuda [--sizes 200 1024]
                                              ConvNet (default) and cnn-bench eNTK at N = sizes[0], ResNet-18
                                              pNTK tile sizes[-1]: auto / structured / jacobian seconds
    python benchmarks/device_check.py regression --device cuda [--sizes 20000 50000]
                                              Nyström-PCG on a resident float32 Θ, and streamed from a store
Steps that measure take --record FILE: their numbers are merged into that JSON (what `pntk plan` reads).
    python benchmarks/device_check.py merge A.yaml B.yaml OUT.yaml   deep-merge configs as Snakemake does
"""
from __future__ import annotations

import argparse
import datetime
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def result(key: str, value) -> None:
    print(f"RESULT {key}: {value}", flush=True)


def record(path: str | None, **values) -> None:
    """Merge ``values`` into the JSON file ``path`` (the measured device profile; see pntk.plan.devices)."""
    if not path:
        return
    import json

    f = Path(path)
    data = json.loads(f.read_text()) if f.exists() else {}
    data.update(values, date=datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), gpu=nvidia_smi().split(",")[0])
    f.write_text(json.dumps(data, indent=1))


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def nvidia_smi() -> str:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
        return out.stdout.strip() or f"nvidia-smi failed: {out.stderr.strip()}"
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"no nvidia-smi ({err.__class__.__name__})"


def cmd_info(args) -> None:
    import torch

    from pntk.provenance import machine_description

    result("date", datetime.datetime.now().strftime("%Y-%m-%d %H:%M"))
    result("host", platform.node())
    result("cpu", machine_description())
    result("gpu (nvidia-smi)", nvidia_smi())
    result("torch", torch.__version__)
    result("cuda (torch build)", torch.version.cuda)
    result("cudnn", torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None)
    result("cuda available", torch.cuda.is_available())
    if torch.cuda.is_available():
        result("torch device", torch.cuda.get_device_name(0))
    result("plan profile", profile_name(nvidia_smi()) if args.device.startswith("cuda") else "cpu")


def profile_name(smi: str) -> str:
    """The pntk.plan.devices GPU matching an nvidia-smi name ("NVIDIA H200, 143771 MiB, ..." → h200)."""
    from pntk.plan.devices import GPUS

    name = smi.split(",")[0].lower()
    hits = [k for k in GPUS if k.split("-")[0] in name]
    if len(hits) > 1:  # A100: 40 or 80 GB by memory
        mem = float(smi.split(",")[1].split()[0]) / 1024 if "," in smi else 40
        hits = [k for k in hits if k.endswith("80gb") == (mem > 60)]
    return hits[0] if hits else "unknown"


def cmd_tf32(args) -> None:
    """Read the TF32 switches while the kernel engine runs (forward hook), and compare a float32 ConvNet
    pNTK on the device with the float64 CPU result: TF32 convolutions show up as ~1e-3 relative error."""
    import torch

    from pntk.kernels import empirical_kernel
    from pntk.models import ModelSpec, init_model

    result("before: torch.backends.cuda.matmul.allow_tf32", torch.backends.cuda.matmul.allow_tf32)
    result("before: torch.backends.cudnn.allow_tf32", torch.backends.cudnn.allow_tf32)
    result("before: float32_matmul_precision", torch.get_float32_matmul_precision())
    model = init_model(ModelSpec("convnet", 32, (3, 16, 16), 10, depth=4), 0)
    seen = set()
    model.register_forward_hook(lambda *_: seen.add((torch.backends.cuda.matmul.allow_tf32,
                                                     torch.backends.cudnn.allow_tf32)))
    x = torch.randn(64, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    k32 = empirical_kernel(model.to(args.device), x.to(args.device), kind="pntk").double().cpu()
    k64 = empirical_kernel(model.double().cpu(), x.double(), kind="pntk")
    err = float((k32 - k64).norm() / k64.norm())
    result("in the kernel path: (matmul.allow_tf32, cudnn.allow_tf32)", sorted(seen))
    result("ConvNet pNTK float32 on device vs float64 CPU, relative error", f"{err:.2e}")
    tf32 = any(a or b for a, b in seen)
    if not args.device.startswith("cuda"):
        result("verdict", f"not applicable on {args.device} (TF32 is a CUDA switch)")
    else:
        result("verdict", "TF32 ON in the kernel path (cudnn.allow_tf32 is PyTorch's default: convolutions "
               "may round to TF32)" if tf32 else "TF32 off in the kernel path")


def cmd_rate(args) -> None:
    """ResNet-18 (w64, 3×32×32) pNTK tiles x1 (n) × x2 (n), one timed call each after a warm-up."""
    import torch

    from pntk.kernels import empirical_kernel, flop_count
    from pntk.models import ModelSpec, init_model
    from pntk.plan.devices import GPUS

    dev = args.device
    model = init_model(ModelSpec("resnet18", 64, (3, 32, 32), 10), 0).to(dev)
    a = torch.randn(args.gemm, args.gemm, device=dev)
    a @ a  # warm-up
    sync(dev)
    t = time.perf_counter()
    for _ in range(5):
        a @ a
    sync(dev)
    sgemm = 5 * 2 * args.gemm**3 / (time.perf_counter() - t)
    key = profile_name(nvidia_smi()) if dev.startswith("cuda") else "unknown"
    peak = GPUS[key][1] if key in GPUS else sgemm
    result(f"fp32 sgemm {args.gemm}² measured", f"{sgemm / 1e12:.3g} TFLOP/s")
    result("fp32 peak used", f"{peak / 1e12:.3g} TFLOP/s ({'datasheet ' + key if key in GPUS else 'measured sgemm'})")
    empirical_kernel(model, torch.randn(2, 3, 32, 32, device=dev), torch.randn(2, 3, 32, 32, device=dev))  # warm-up
    start, best = time.perf_counter(), None
    for n in args.sizes:
        if time.perf_counter() - start > args.budget:
            result(f"tile {n}", "skipped (budget)")
            continue
        x1, x2 = torch.randn(n, 3, 32, 32, device=dev), torch.randn(n, 3, 32, 32, device=dev)
        sync(dev)
        t = time.perf_counter()
        empirical_kernel(model, x1, x2, kind="pntk")
        sync(dev)
        secs = time.perf_counter() - t
        flops = flop_count(model, x1, x2, kind="pntk")["total"]
        row = (n * n / secs, flops / secs / peak, n)
        best = max(best or row, row)
        result(f"tile {n}", f"{secs:.2f} s, {row[0]:.3g} pairs/s, {flops / secs / 1e12:.2f} TFLOP/s "
                            f"(engine FLOP model) = {row[1]:.1%} of fp32 peak")
    if best:
        result("ResNet-18 pNTK best", f"{best[0]:.3g} pairs/s at tile {best[2]} = {best[1]:.1%} of fp32 peak")
        record(args.record, kernel_efficiency=best[1], kernel_efficiency_source=f"ResNet-18 pNTK tile {best[2]}",
               sgemm_flops=sgemm)


def _timed(fn, dev: str) -> float:
    fn()  # warm-up (CUDA context, cuDNN plans, allocator)
    sync(dev)
    t = time.perf_counter()
    fn()
    sync(dev)
    return time.perf_counter() - t


def cmd_conv(args) -> None:
    """Conv kernels on the device: every method of the default ConvNet's and cnn-bench's eNTK at N = sizes[0]
    (the workflow's float64, and float32), a ResNet-18 pNTK tile of sizes[-1]; FLOP rates by flop_count."""
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_kernels import CNNBench

    from pntk.kernels import empirical_kernel, flop_count
    from pntk.models import ModelSpec, init_model

    dev, n, tile = args.device, args.sizes[0], args.sizes[-1]
    gen = torch.Generator().manual_seed(0)
    cases = [("convnet float64", init_model(ModelSpec("convnet", 32, (1, 8, 8), 10, depth=8), 0).double(),
              torch.rand(n, 1, 8, 8, generator=gen, dtype=torch.float64), "entk"),
             ("convnet float32", init_model(ModelSpec("convnet", 32, (1, 8, 8), 10, depth=8), 0),
              torch.rand(n, 1, 8, 8, generator=gen), "entk"),
             ("cnn-bench float32", CNNBench(), torch.randn(min(n, 128), 3, 16, 16, generator=gen), "entk")]
    out = {}
    for label, model, x, kind in cases:
        model, x = model.to(dev), x.to(dev)
        flops = flop_count(model, x, kind=kind)["total"]
        secs = {m: _timed(lambda m=m, model=model, x=x, kind=kind: empirical_kernel(model, x, kind=kind, method=m),
                          dev) for m in ("auto", "structured", "jacobian")}
        best = min(secs, key=secs.get)
        out[label] = dict(n=x.shape[0], seconds=secs, flops=flops)
        result(f"{label} eNTK N={x.shape[0]}", ", ".join(f"{m} {s:.3f} s" for m, s in secs.items())
               + f"; auto {flops / secs['auto'] / 1e12:.3g} TFLOP/s (FLOP model); fastest {best}"
               + ("" if secs["auto"] <= 1.1 * secs[best] else "  << auto is slower than " + best))
    model = init_model(ModelSpec("resnet18", 64, (3, 32, 32), 10), 0).to(dev)
    x1, x2 = (torch.randn(tile, 3, 32, 32, generator=gen).to(dev) for _ in range(2))
    secs = _timed(lambda: empirical_kernel(model, x1, x2, kind="pntk"), dev)
    flops = flop_count(model, x1, x2, kind="pntk")["total"]
    out["resnet18 pntk"] = dict(tile=tile, seconds=secs, flops=flops)
    result(f"ResNet-18 pNTK tile {tile}", f"{secs:.2f} s, {tile * tile / secs:.3g} pairs/s, "
                                          f"{flops / secs / 1e12:.3g} TFLOP/s (FLOP model)")
    record(args.record, conv=out)


def cmd_regression(args) -> None:
    """Nyström-PCG (rank 1000, ridge 1 % of the mean diagonal, tol 1e-6, 10 right-hand sides) on a random
    float32 kernel Θ = AAᵀ/d + 0.1·I held in device memory, and, up to the first size, the same system read
    from a float32 store on disk (the streaming path). Records seconds per CG iteration and Θ-bytes per second."""
    import tempfile

    import numpy as np
    import torch

    from pntk.regression import linearized_predict
    from pntk.store import zarr_store as kstore
    from pntk.tiling import TileGrid

    dev, rows = args.device, {}
    for i, n in enumerate(args.sizes):
        gen = torch.Generator(device="cpu").manual_seed(n)
        a = torch.randn(n, 256, generator=gen).to(dev)
        k = torch.addmm(torch.eye(n, device=dev), a, a.T, beta=0.1, alpha=1 / 256)  # (n, n) float32 on the device
        labels = torch.randint(0, 10, (n,), generator=gen).numpy()
        y = np.eye(10)[labels]  # (n, 10) one-hot targets
        kxd = k[: min(n, 1000)]
        common = dict(ridge=0.01, ridge_scale="mean_diagonal", tol=1e-6, rank=1000, solver="nystrom",
                      device=dev, return_info=True, log=lambda m: None)
        sync(dev)
        t = time.perf_counter()
        _, info = linearized_predict(k, kxd, None, None, y, memory_cap_bytes=int(1.5 * k.numel() * 4) + (1 << 30),
                                     **common)
        sync(dev)
        row = dict(n=n, resident_seconds=time.perf_counter() - t, iterations=info["cg_iterations"],
                   resident=info.get("resident", False),
                   per_iteration_s=info["pass_seconds"] / max(info["kernel_passes"], 1))
        row["resident_bps"] = 4.0 * n * n / max(row["per_iteration_s"], 1e-12)
        if i == 0:  # the same system streamed from a float32 store on disk
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "k.zarr"
                tile = max(64, min(4096, n // 2))
                ids = np.arange(n)
                kstore.create_store(path, kind="pntk", row_ids=ids, col_ids=ids, row_labels=labels, col_labels=labels,
                                    tile=tile, dtype="float32", attrs={})
                kc = k.cpu()
                grid = TileGrid(n, n, tile, symmetric=True)
                for ti, tj in grid.tiles():
                    r, c = grid.slices(ti, tj)
                    kstore.write_tile(path, ti, tj, kc[r, c])
                del kc
                sync(dev)
                t = time.perf_counter()
                _, sinfo = linearized_predict(path, kxd.cpu().numpy(), None, None, y, memory_cap_bytes=64 << 20,
                                              **common)
                row.update(streamed_seconds=time.perf_counter() - t, streamed_iterations=sinfo["cg_iterations"],
                           streamed_per_iteration_s=sinfo["pass_seconds"] / max(sinfo["kernel_passes"], 1))
        rows[str(n)] = row
        result(f"regression N={n}", ", ".join(f"{k_}={v:.4g}" if isinstance(v, float) else f"{k_}={v}"
                                               for k_, v in row.items()))
        del k, a, kxd
    last = rows[str(args.sizes[-1])]
    record(args.record, regression=rows, regression_resident_bps=last["resident_bps"])


def cmd_merge(args) -> None:
    import yaml

    def merge(a, b):
        return {**a, **{k: merge(a[k], v) if isinstance(v, dict) and isinstance(a.get(k), dict) else v
                        for k, v in b.items()}}

    out = {}
    for f in args.files[:-1]:
        out = merge(out, yaml.safe_load(Path(f).read_text()) or {})
    Path(args.files[-1]).write_text(yaml.safe_dump(out, sort_keys=False))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("step", choices=["info", "tf32", "rate", "conv", "regression", "merge"])
    p.add_argument("files", nargs="*")
    p.add_argument("--device", default="cuda")
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024, 2048])
    p.add_argument("--budget", type=float, default=60.0, help="rate: start no tile after this many seconds")
    p.add_argument("--gemm", type=int, default=4096, help="rate: side of the sgemm that measures the peak")
    p.add_argument("--record", default=None, help="merge what this step measured into this JSON file")
    args = p.parse_args()
    {"info": cmd_info, "tf32": cmd_tf32, "rate": cmd_rate, "conv": cmd_conv, "regression": cmd_regression,
     "merge": cmd_merge}[args.step](args)


if __name__ == "__main__":
    main()

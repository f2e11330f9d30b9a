"""Device profiles for `pntk plan`: this CPU from a short calibration, or a named GPU from its datasheet,
and the time model's constants (`COSTS`) — the one place to check against a measured run.

A profile gives rates (FLOP/s in float32 and float64, bytes/s of memory, Zarr writes and reads), the
memory size and the number of CPU threads a heavy job gets. `pntk.plan` turns FLOPs and bytes into
seconds with them and with `COSTS` (efficiencies, per-job start-up, per-step overhead).
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

GB = 1e9
TFLOPS = 1e12


@dataclass(frozen=True)
class DeviceProfile:
    name: str                  # "cpu", "a100-40gb", ...
    kind: str                  # "cpu" | "cuda": which config `device` values it serves
    label: str                 # human description (CPU model, GPU product)
    fp32_flops: float          # GEMM FLOP/s, float32 (GPU: peak without tensor cores, TF32 stays off)
    fp64_flops: float          # GEMM FLOP/s, float64
    fp32_flops_1t: float       # CPU side, one thread (the rate of a one-thread job)
    fp64_flops_1t: float
    memory_bytes: float        # GPU memory, or RAM for the CPU
    mem_bandwidth: float       # bytes/s (copy bandwidth)
    zarr_write_bps: float      # bytes/s of float32 tiles written into a kernel store (checksum, fsync), one thread
    zarr_read_bps: float       # ... and read back
    job_start_s: float         # fresh Python process importing torch and pntk (a Snakemake script job)
    threads: int               # CPU threads of a heavy job (--cores locally, cpus_per_gpu on a GPU node)
    source: str                # where the numbers come from
    kernel_efficiency: float | None = None  # kernel tiles' share of fp32_flops, measured (device_check.sh); else COSTS
    resident_pass_bps: float | None = None  # bytes/s of a CG product over a resident float32 Θ, measured; else
    #                                         mem_bandwidth × COSTS.resident_pass_efficiency

    def flops(self, dtype: str, threads: int) -> float:
        """Achievable GEMM rate in `dtype` for a job with `threads` CPU threads (GPU: the device)."""
        if self.kind == "cuda":
            return self.fp64_flops if dtype == "float64" else self.fp32_flops
        one, full = (self.fp64_flops_1t, self.fp64_flops) if dtype == "float64" else (self.fp32_flops_1t,
                                                                                      self.fp32_flops)
        return one if threads <= 1 else max(one, full * min(threads, self.threads) / self.threads)


@dataclass(frozen=True)
class Costs:
    """Constants of the time model. Each is a ratio to a calibrated rate or a per-event cost; the CIFAR-10
    CPU run (configs/cifar10-fcn-cpu.yaml) checks them: compare `pntk plan --json` per rule with the
    jobs' wall times in the run's logs and adjust here. Measured values name the measurement."""

    # Share of the GEMM rate that each kind of work reaches.
    # Kernel tiles: FCN-3 w1024 pNTK tile 2000 × 1500 (CIFAR shape), one thread, 17.8 GFLOP/s of the
    # engine's FLOP model against 24.9 GFLOP/s sgemm in the same minute (2-core EPYC, load ~10).
    kernel_efficiency_cpu: float = 0.7
    kernel_efficiency_cuda: float = 0.5   # assumption until benchmarks/device_check.sh measures it
    # SGD steps: FCN-3 w1024, 4 epochs of 50,000 CIFAR-shaped images, batch 128, 2 threads: 99 s for 6.31
    # TFLOP (the cifar10-fcn-cpu run of 2026-12-01, quiet): 0.52 of the calibrated sgemm rate; 0.45 also
    # keeps the default digits runs (overhead-dominated) within 5 % (0.2, from a machine at load ~10, put the
    # CIFAR-10 train at 2.7× its time).
    train_efficiency_cpu: float = 0.45
    train_efficiency_cuda: float = 0.3    # assumption (small batches: far from peak)
    # Dense float64 LAPACK against dgemm, one thread: Cholesky 0.2–0.35 at n = 1000–2000 (rises with n),
    # eigvalsh 0.15–0.3 at n = 1000–2000 (tridiagonalisation is memory-bound), eigh (4 n³) ≈ 0.2.
    cholesky_efficiency: float = 0.5
    eigvalsh_efficiency: float = 0.2
    eigh_efficiency: float = 0.2
    # Per-step framework overhead of SGD: dispatch per leaf module per step (fwd + bwd + update, batch slicing).
    # Default run of 2026-12-01 14:39 (AMD EPYC, quiet): active-learning fits of the digits FCN-3 w64 (3
    # Linear modules) ≈ 0.5 ms per step (10 look-ahead fits of 80–160 steps in 0.38–0.73 s), the default
    # train of FCN w64 420 steps + 11 evaluations in 0.3–0.4 s: ≈ 1.5e-4 s per module and step. (2e-5, from
    # torch.optim on a loaded machine, under-planned active learning 5×.)
    step_overhead_per_module_cpu_s: float = 1.5e-4
    step_overhead_per_module_cuda_s: float = 3e-5
    # One kernel call of a small batch (Fig 1 times single pairs) costs dispatch per leaf module and
    # Jacobian pass, not FLOPs: torchvision ResNet-18/34/50, 1×8×8, one thread, the default run of 2026-12-01
    # 14:39 (AMD EPYC, beside one other job): eNTK medians 0.14 / 0.21 / 0.32 s, pNTK 0.045 / 0.078 / 0.10 s,
    # ≈ 0.25–0.4 ms per module and pass. (3e-3, measured at load ~16, planned that job 5.4× its time.)
    kernel_call_s_per_module_pass: float = 3e-4
    # MLMOC's look-ahead beyond its FLOPs: the flat eNTK (P·O, P·O) comes from the engine in the layout the
    # algebra uses (no transposing copy since issue 27); what is left per kernel value is converting Θ(S, S)'s
    # lower triangle to float64 and mirroring Σ: 0.64 s of look-ahead for P = 550, O = 10 (digits FCN-3 w64,
    # |L| = 50, |S| = 500, 1 thread, AMD EPYC at load 2–3, 2026-12-07), 0.31 s of it Σ's GEMM: ≈ 1e-8 s per
    # value (5e-8 before, with the (P, P, O, O) → (P·O, P·O) float64 transposes). GPU: assumed 1/50 of it.
    lookahead_s_per_kernel_value_cpu: float = 1e-8
    lookahead_s_per_kernel_value_cuda: float = 1e-9
    # Snakemake's own work around a job (output checks, metadata), between a job's last log line and its
    # "Finished jobid": 0.5–1 s in the cifar10-fcn-cpu run of 2026-12-01 (AMD EPYC, 14 jobs, the light ones
    # one at a time); a median of 5 s in the default run of 2026-12-01 (Xeon, 62 jobs, two at a time).
    job_finish_s: float = 0.5
    # Start of a job that does not import torch (tables, claims, figures, report): Python, numpy, pandas,
    # matplotlib and pntk's tables, as a fraction of the calibrated start of a torch job (AMD EPYC:
    # `python -c "import pntk.report.html"` 0.89 s, figure_set 0.93 s, claims 1.37 s against 2.0 s calibrated;
    # the report job, start included, took under 1 s).
    torch_free_start_fraction: float = 0.4
    cuda_init_s: float = 5.0             # first CUDA call of a job (context, cuBLAS handles); assumption
    # prepare_data beyond the start: the cifar10-fcn-cpu run of 2026-12-01 (AMD EPYC) read, normalised and
    # stored the 60,000 images (1.8e8 values) in 9.1 s of job wall, ≈ 2 s of it importing torch(vision).
    prepare_s_per_value: float = 4e-8
    # Out-of-core solves (benchmarks/BENCHMARKS.md, "Kernel regression", random FCN-3 pNTK, ridge 0, tol 1e-6,
    # 2 threads): Nyström-PCG of rank 1000 took 159 iterations at N = 20,000 (more at larger N: λ_ℓ/λ_min
    # grows; a ridge of a few % of the mean diagonal brings it near 30), each iteration 4.1 decode passes
    # over the stored upper triangle, and the sketch 14 passes (16.7 s / 1.23 s). Jacobi CG: 351
    # iterations at N = 3,000. The least certain numbers of the model: a trained network's pNTK at the
    # workflow's tol 1e-8 may differ either way; the solvers' iteration caps bound it.
    nystrom_iterations: int = 160
    # With a ridge of ≥ 1 % of the mean diagonal (regression.ridge_scale: mean_diagonal), randomly pivoted
    # Cholesky landmarks, tol 1e-6 (the cifar10-fcn-cpu runs' FCN-3 w1024 pNTKs, synthetic CIFAR-10,
    # N = 50,000): 43 iterations at init and 23 after 4 epochs at rank 5,000 (the config's rank since its
    # regression runs in memory; fourth run, 2026-12-07), 28 / 14 at rank 12,000 (third run, 2026-12-01).
    nystrom_iterations_with_ridge: int = 33
    jacobi_cg_iterations: int = 350
    # One CG iteration over the decode pass this machine's calibration measures through zarr (0.82 GB/s):
    # 4.8 s per iteration at N = 50,000 against a 6.1 s zarr pass, since chunk files are read into reused
    # buffers and multiplied in reused float64 strips (it was 4.1 before, with a fresh allocation per chunk).
    iteration_over_decode_pass: float = 0.8
    # A CG product over Θ(D, D)'s tiles kept in memory (regression resident under memory_cap_gb): bytes of the
    # stored upper triangle per second, as a share of the copy bandwidth. CPU: the float64 row strips and two
    # thin GEMMs per strip (BENCHMARKS.md, "Resident regression"); GPU: an assumption until device_check.sh
    # records the measured rate (then `resident_pass_bps` of the profile is used instead).
    # (CPU: 2.37 s per iteration over 5.6 GiB of kept float32 tiles at N = 50,000, of which ≈ 1 s is P⁻¹ at rank
    # 5,000: ≈ 4.6 GB/s, 0.3 of a 15 GB/s copy bandwidth; the fourth cifar10-fcn-cpu run, 2026-12-07.)
    resident_pass_efficiency_cpu: float = 0.3
    resident_pass_efficiency_cuda: float = 0.3
    # The randomly pivoted Cholesky sketch (pntk.regression.rpcholesky): n·k² flops of block updates in the
    # factor's precision, n·k² for FᵀF and k³/3 for its Cholesky in float64, at this fraction of the GEMM
    # rates (measured 160 s for n = 50,000, k = 12,000, float32 F, 2 threads, pivot-row reads included: 0.65);
    # and P⁻¹ per CG iteration, 4·n·k·rhs float64 flops over float64 row panels of F, memory-bound (1.7 s
    # there for 10 columns: 0.12 of the float64 rate).
    sketch_efficiency: float = 0.65
    preconditioner_efficiency: float = 0.12
    # Light jobs (tables, figures, init/finalize bookkeeping): seconds beyond the job start. Measured
    # (job logs' own wall): tables 3.3 s, claims 1.4 s, figures 10.1 s in the cifar10-fcn-cpu run of 2026-12-01
    # (AMD EPYC; figures drawn by 2 forked workers); tables 3 s, claims 3 s, figures 19–24 s in the default
    # run of 2026-12-01 (Xeon).
    tables_s: float = 2.0
    claims_s: float = 1.0
    figures_s: float = 9.0
    light_job_s: float = 1.0
    # A store's init or finalize inside a running process (kernel_checkpoint, diagnose_on_D): 0.05–0.15 s each
    # between the log lines of diagnose_on_D jobs (2026-12-07, AMD EPYC); 1 s each overpriced those jobs 1.7–2.5×.
    store_in_process_s: float = 0.1
    # Host-side rates of a GPU node (its CPUs run prepare_data, diagnostics, tables, figures and Zarr
    # encoding): a server core, AVX2/AVX-512 class; assumptions, not measured.
    host_fp32_flops_per_core: float = 50e9
    host_fp64_flops_per_core: float = 25e9
    host_zarr_write_bps: float = 0.4e9
    host_zarr_read_bps: float = 0.5e9
    host_job_start_s: float = 4.0


COSTS = Costs()

# Named GPUs: (label, fp32 FLOP/s without tensor cores, fp64 FLOP/s, memory bytes, memory bandwidth).
# Sources: NVIDIA datasheets — "NVIDIA Tesla V100 GPU Accelerator" (SXM2: 15.7 / 7.8 TFLOPS, 900 GB/s);
# "NVIDIA A100 Tensor Core GPU" (SXM: FP32 19.5, FP64 9.7 TFLOPS; 40 GB HBM2 1,555 GB/s, 80 GB HBM2e
# 2,039 GB/s); "NVIDIA H100 Tensor Core GPU" (SXM: FP32 67, FP64 34 TFLOPS, 80 GB, 3.35 TB/s);
# "NVIDIA H200 Tensor Core GPU" (SXM: FP32 67, FP64 34 TFLOPS, 141 GB, 4.8 TB/s); "NVIDIA L40S GPU"
# (FP32 91.6 TFLOPS, 48 GB GDDR6, 864 GB/s; FP64 at 1/64 of FP32 on Ada: 1.4 TFLOPS).
GPUS: dict[str, tuple[str, float, float, float, float]] = {
    "v100": ("NVIDIA V100 SXM2 32 GB", 15.7 * TFLOPS, 7.8 * TFLOPS, 32 * GB, 900 * GB),
    "a100-40gb": ("NVIDIA A100 SXM 40 GB", 19.5 * TFLOPS, 9.7 * TFLOPS, 40 * GB, 1555 * GB),
    "a100-80gb": ("NVIDIA A100 SXM 80 GB", 19.5 * TFLOPS, 9.7 * TFLOPS, 80 * GB, 2039 * GB),
    "h100": ("NVIDIA H100 SXM 80 GB", 67 * TFLOPS, 34 * TFLOPS, 80 * GB, 3350 * GB),
    "h200": ("NVIDIA H200 SXM 141 GB", 67 * TFLOPS, 34 * TFLOPS, 141 * GB, 4800 * GB),
    "l40s": ("NVIDIA L40S 48 GB", 91.6 * TFLOPS, 1.43 * TFLOPS, 48 * GB, 864 * GB),
}
ALIASES = {"a100": "a100-40gb"}  # the cluster GRES name of configs/paper-cifar10.yaml; the smaller card
DEVICE_NAMES = ("cpu", *GPUS, *ALIASES)


def check_device_name(name: str) -> str:
    """The canonical device name (lower case, aliases resolved); ValueError naming the choices otherwise."""
    key = ALIASES.get(name.lower(), name.lower())
    if key != "cpu" and key not in GPUS:
        raise ValueError(f"unknown device {name!r}; expected one of {', '.join(DEVICE_NAMES)}")
    return key


def gpu_profile(name: str, cpus_per_gpu: int = 8, costs: Costs = COSTS) -> DeviceProfile:
    """A named GPU's profile; its host side (CPU threads, Zarr rates, job start) from `costs`. Where
    benchmarks/device_check.sh recorded measurements for this GPU (``measured_file``), the kernel efficiency
    and the resident regression's pass rate are those, and `source` says so."""
    key = check_device_name(name)
    if key == "cpu":
        raise ValueError("gpu_profile: 'cpu' is not a GPU; use cpu_profile()")
    label, fp32, fp64, mem, bw = GPUS[key]
    profile = DeviceProfile(name=key, kind="cuda", label=label, fp32_flops=fp32, fp64_flops=fp64,
                            fp32_flops_1t=costs.host_fp32_flops_per_core, fp64_flops_1t=costs.host_fp64_flops_per_core,
                            memory_bytes=mem, mem_bandwidth=bw, zarr_write_bps=costs.host_zarr_write_bps,
                            zarr_read_bps=costs.host_zarr_read_bps, job_start_s=costs.host_job_start_s,
                            # Printed by `pntk plan`: the module's old name, until the plans quoted in the docs
                            # are regenerated (its data lives here, pntk/plan/devices.py).
                            threads=cpus_per_gpu, source="NVIDIA datasheet (see pntk/plan_devices.py)")
    return with_measurements(profile, measured_file(key))


def measured_file(key: str) -> Path:
    """Where device_check.sh records what it measured on GPU `key` (beside the CPU calibration)."""
    return _cache_file().parent / f"device-{key}.json"


def with_measurements(profile: DeviceProfile, path: Path) -> DeviceProfile:
    """`profile` with the kernel efficiency and resident pass rate of a device_check record, if there is one
    (a record that does not parse is ignored, and said in `source`)."""
    if not path.is_file():
        return replace(profile, source=profile.source + "; no device_check record (COSTS' assumptions)")
    try:
        rec = json.loads(path.read_text())
        eff = rec.get("kernel_efficiency")
        bps = rec.get("regression_resident_bps")
        eff = float(eff) if eff is not None and 0 < float(eff) <= 1 else None
        bps = float(bps) if bps is not None and float(bps) > 0 else None
    except (ValueError, TypeError, AttributeError):
        return replace(profile, source=profile.source + f"; {path} unreadable, ignored")
    parts = ([f"kernel efficiency {eff:.2f}"] if eff else []) + ([f"resident pass {bps / GB:.0f} GB/s"] if bps else [])
    if not parts:
        return profile
    return replace(profile, kernel_efficiency=eff, resident_pass_bps=bps,
                   source=profile.source + f"; {', '.join(parts)} measured by device_check.sh on "
                                           f"{rec.get('date', '?')} ({rec.get('gpu', '?')})")


def host_profile(gpu: DeviceProfile) -> DeviceProfile:
    """The CPU side of a GPU node: what its CPU-only jobs (prepare_data, diagnostics, ...) run on."""
    c = COSTS
    return replace(gpu, name=f"{gpu.name}-host", kind="cpu", label=f"host CPU of {gpu.label}",
                   fp32_flops=c.host_fp32_flops_per_core * gpu.threads,
                   fp64_flops=c.host_fp64_flops_per_core * gpu.threads, source="pntk.plan_devices.COSTS (assumed)")


# ----------------------------------------------------------------------------- CPU calibration
def _best_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _gemm_rate(dtype, threads: int, n: int = 1024) -> float:
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a = torch.randn(n, n, dtype=dtype)  # (n, n)
        return 2.0 * n**3 / _best_seconds(lambda: a @ a, 3)
    finally:
        torch.set_num_threads(old)


def _zarr_rates(tile: int = 2048) -> tuple[float, float]:
    """(write, read) bytes/s of float32 kernel tiles through pntk's own store code: a symmetric 2 × 2-tile
    store (uncompressed float32, as create_store makes it), `write_tile` (checksums, fsync, the mirrored
    chunk) and `read_tile` of every chunk. Noise stands in for kernel values."""
    import numpy as np

    from ..store import zarr_store as kstore

    n = 2 * tile
    block = np.random.default_rng(0).standard_normal((tile, tile), dtype=np.float32)  # (tile, tile)
    ids = np.arange(n)
    with tempfile.TemporaryDirectory(prefix="pntk-calibrate-") as tmp:
        path = Path(tmp) / "k.zarr"
        kstore.create_store(path, kind="pntk", row_ids=ids, col_ids=ids, row_labels=ids % 10, col_labels=ids % 10,
                            tile=tile, dtype="float32")
        t = time.perf_counter()
        for i, j in ((0, 0), (0, 1), (1, 1)):  # (0, 1) also writes its mirror (1, 0)
            kstore.write_tile(path, i, j, block)
        write = time.perf_counter() - t
        arr = kstore.kernel_array(path)
        t = time.perf_counter()
        for i, j in ((0, 0), (0, 1), (1, 0), (1, 1)):
            kstore.read_tile(arr, i, j)
        read = time.perf_counter() - t
    return 4 * block.nbytes / write, 4 * block.nbytes / read


def _copy_bandwidth(nbytes: int = 256 << 20) -> float:
    import torch

    a = torch.empty(nbytes // 4, dtype=torch.float32).fill_(1.0)
    b = torch.empty_like(a)
    return 2.0 * nbytes / _best_seconds(lambda: b.copy_(a), 3)  # read + write


# What a Snakemake script job imports before its work starts (its preamble loads snakemake, if installed).
_JOB_IMPORTS = ("import torch, numpy, zarr, pntk.store, pntk.kernels\n"
                "try:\n    import snakemake.script\nexcept ImportError:\n    pass\n")


def _job_start_seconds() -> float:
    """A fresh interpreter importing what every job imports (this package from its own source tree)."""
    path = os.pathsep.join(filter(None, [str(Path(__file__).parents[2]), os.environ.get("PYTHONPATH")]))
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", _JOB_IMPORTS], check=True, env={**os.environ, "PYTHONPATH": path})
    return time.perf_counter() - t


def _cpu_label() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def calibrate_cpu(threads: int) -> DeviceProfile:
    """Measure this CPU (a few seconds): GEMM rates at 1 and `threads` threads, copy bandwidth, Zarr
    write/read speed, job start-up. The machine may be shared: the numbers hold for the load of the moment."""
    import psutil
    import torch

    load = os.getloadavg()[0]
    write, read = _zarr_rates()
    return DeviceProfile(
        name="cpu", kind="cpu", label=_cpu_profile_label(threads), threads=threads,
        fp32_flops=_gemm_rate(torch.float32, threads), fp64_flops=_gemm_rate(torch.float64, threads),
        fp32_flops_1t=_gemm_rate(torch.float32, 1), fp64_flops_1t=_gemm_rate(torch.float64, 1),
        memory_bytes=float(psutil.virtual_memory().total), mem_bandwidth=_copy_bandwidth(),
        zarr_write_bps=write, zarr_read_bps=read, job_start_s=_job_start_seconds(),
        source=f"calibrated {time.strftime('%Y-%m-%d %H:%M')} on {platform.node()}, load average {load:.1f}")


def _cpu_profile_label(threads: int) -> str:
    return f"{_cpu_label()}, {threads} thread{'s' * (threads != 1)}"


def _cache_file() -> Path:
    base = os.environ.get("PNTK_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pntk"
    return Path(base) / "cpu-calibration.json"


def cpu_profile(threads: int | None = None, *, calibrate: bool = False) -> DeviceProfile:
    """This CPU: the cached calibration for this host, CPU and thread count, else a fresh one (then cached)."""
    import torch

    threads = threads or os.cpu_count() or 1
    key = {"host": platform.node(), "cpu": _cpu_label(), "threads": threads, "torch": torch.__version__}
    path = _cache_file()
    if not calibrate and path.is_file():
        try:
            rec = json.loads(path.read_text())
            if rec.get("key") == key:  # "1 threads" in a label cached by an older version reads "1 thread"
                label = str(rec["profile"].get("label", "")).replace(", 1 threads", ", 1 thread")
                return DeviceProfile(**{**rec["profile"], "label": label})
        except (ValueError, TypeError):
            pass  # unreadable or from another version: measure again
    profile = calibrate_cpu(threads)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"key": key, "profile": asdict(profile)}, indent=1))
    return profile


def device_profile(name: str, *, threads: int | None = None, calibrate: bool = False,
                   cpus_per_gpu: int = 8) -> DeviceProfile:
    """`--device` of `pntk plan`: "cpu" (calibrated) or a GPU name of GPUS/ALIASES."""
    if name.lower() == "cpu":
        return cpu_profile(threads, calibrate=calibrate)
    return gpu_profile(name, cpus_per_gpu)

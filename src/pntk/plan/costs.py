"""Cost of one job of each rule: FLOPs, bytes written, peak memory, seconds (used by `pntk.plan`).

FLOPs come from the code that does the work where it can say: the kernel engine's own FLOP model
(`pntk.kernels.flop_count`) for kernel tiles, timing and active learning; torch's FlopCounterMode on
the real model for training; textbook counts for dense LAPACK (Cholesky n³/3, eigvalsh 4/3 n³, eigh
≈ 4 n³). Seconds = job start + FLOPs / (profile rate × `COSTS` efficiency) + bytes / profile rates.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

from ..analysis.cntk import SECOND_WORKER_GAIN
from ..config_runs import memory_cap_bytes
from ..kernels import flop_count
from ..models import ModelSpec, init_model
from ..regression import choose_solver as regression_choice
from ..regression.linearized import NYSTROM_MAXITER
from ..regression.memory import (
    nystrom_rank,
    preconditioner_bytes,
    resident_plan,
    streaming_workers,
)
from ..regression.operator import STRIP_BYTES
from ..tiling import TileGrid
from .devices import COSTS, Costs, DeviceProfile

ENGINE_FEATURE_BYTES = 1 << 30  # the kernel engine's per-sample-gradient budget when batch_size is None
PROCESS_BASE_BYTES = 4e8        # RSS of a Python process with torch, numpy and zarr imported
# D·O × D·O float64 matrices alive at the diagnostics' peak (analysis.checkpoint.epoch_diagnostics): the eNTK block,
# its NO×NO, symmetrised and eigvalsh work copies (spectrum_differences), or block, Θ̂⊗I, difference: 4–5.
DIAGNOSTICS_DENSE_COPIES = 5


@dataclass
class Job:
    """`count` jobs of one rule that cost the same; flops/bytes/seconds are per job."""

    rule: str
    count: int
    flops: float = 0.0
    bytes_written: float = 0.0
    peak_bytes: float = 0.0
    seconds: float = 0.0
    device: str = "cpu"          # where its heavy work runs: "cpu" | "cuda"
    threads: int = 1
    notes: list[str] = field(default_factory=list)
    bytes_read: float = 0.0      # its inputs, fetched before it runs where there is no shared filesystem


@dataclass(frozen=True)
class ModelFacts:
    n_params: int
    state_bytes: int        # a checkpoint's tensors (state_dict)
    train_flops: float      # forward + backward of one example (loss included), torch FlopCounterMode
    forward_flops: float    # forward of one example
    activations: int        # values of every leaf module's output for one example (kept for backward)
    modules: int            # leaf modules: the per-step dispatch overhead scales with them


def _leaf_modules(model) -> list:
    return [m for m in model.modules() if not list(m.children())]


@lru_cache(maxsize=64)
def model_facts(spec: ModelSpec) -> ModelFacts:
    """Measure a model of `spec` once: parameter bytes, FLOPs per example, activations."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model = init_model(spec, 0)
    x = torch.zeros(2, *spec.in_shape)  # (2, C, H, W): two examples, so BatchNorm can train
    acts = []
    hooks = [m.register_forward_hook(lambda m, a, out: acts.append(out.numel() // 2)) for m in _leaf_modules(model)]
    with FlopCounterMode(display=False) as fc:
        torch.nn.functional.cross_entropy(model(x), torch.zeros(2, dtype=torch.long)).backward()
    for h in hooks:
        h.remove()
    train = fc.get_total_flops() / 2
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        model.eval()(x)
    state = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    return ModelFacts(n_params=sum(p.numel() for p in model.parameters()), state_bytes=state, train_flops=train,
                      forward_flops=fc.get_total_flops() / 2, activations=sum(acts), modules=len(hooks))


def kernel_flops(model, in_shape, n1: int, n2: int | None, kind: str) -> float:
    """The engine's own FLOP model (`pntk.kernels.flop_count`, the structured method that `auto` runs where
    it is cheaper) of a kernel between n1 and n2 samples (n2 None: symmetric n1 × n1). It reads only
    shapes, so zero inputs expanded from one sample stand in for the data (no memory, no data files)."""
    import torch


    p0 = next(model.parameters())
    x1 = torch.zeros(1, *in_shape, dtype=p0.dtype).expand(n1, *in_shape)  # (n1, *in_shape), one sample's memory
    x2 = None if n2 is None else x1[:1].expand(n2, *in_shape)  # (n2, *in_shape)
    return flop_count(model, x1, x2, kind=kind)["total"]


@lru_cache(maxsize=4096)
def kernel_flops_of(spec: ModelSpec, kind: str, n1: int, n2: int | None) -> float:
    return kernel_flops(_built(spec), spec.in_shape, n1, n2, kind)


@lru_cache(maxsize=64)
def _built(spec: ModelSpec):
    return init_model(spec, 0)


def prod(shape) -> int:
    return math.prod(int(s) for s in shape)


class CostModel:
    """Per-job costs on a device profile. `gpu` serves the rules whose config device is cuda; `cpu` the rest."""

    def __init__(self, cpu: DeviceProfile, gpu: DeviceProfile | None, costs: Costs = COSTS):
        self.cpu, self.gpu, self.costs = cpu, gpu, costs

    def profile(self, device: str) -> DeviceProfile:
        return self.gpu if device.startswith("cuda") and self.gpu is not None else self.cpu

    def start(self, device: str) -> float:
        p = self.profile(device)
        return p.job_start_s + self.costs.job_finish_s + (self.costs.cuda_init_s if p.kind == "cuda" else 0.0)

    def compute_s(self, device: str, flops: float, dtype: str, threads: int, efficiency: str) -> float:
        p = self.profile(device)
        eff = getattr(self.costs, f"{efficiency}_efficiency_{p.kind}")
        if efficiency == "kernel" and p.kernel_efficiency:  # measured on this GPU by device_check.sh
            eff = p.kernel_efficiency
        return flops / (p.flops(dtype, threads) * eff)

    def kind_of(self, device: str) -> str:
        return self.profile(device).kind

    # ------------------------------------------------------------------ rules
    def prepare(self, n_examples: int, in_shape) -> Job:
        values = n_examples * prod(in_shape)
        return Job("prepare_data", 1, bytes_written=values * 4 + n_examples * 24,
                   peak_bytes=PROCESS_BASE_BYTES + values * 9,  # raw pixels, float32 copy, normalised copy
                   seconds=self.start("cpu") + values * self.costs.prepare_s_per_value)

    def train(self, spec: ModelSpec, n_train: int, n_test: int, tcfg: dict, threads: int) -> Job:
        f = model_facts(spec)
        dev, epochs, batch = tcfg["device"], tcfg["epochs"], tcfg["batch_size"]
        flops = epochs * n_train * f.train_flops + (epochs + 1) * (n_train + n_test) * f.forward_flops
        steps = epochs * math.ceil(n_train / batch)
        per_module = getattr(self.costs, f"step_overhead_per_module_{self.kind_of(dev)}_s")
        compute = self.compute_s(dev, flops, "float32", threads, "train")
        secs = self.start(dev) + compute + steps * f.modules * per_module
        data = (n_train + n_test) * prod(spec.in_shape) * 4  # the whole split lives on the device
        peak = data + 4 * f.state_bytes + 2 * max(batch, 1024) * f.activations * 4  # weights, grads, momentum
        written = len(tcfg["checkpoint_epochs"]) * f.state_bytes + 2 * f.state_bytes  # + resume state
        return Job("train", 1, flops, written, peak + self._base(dev), secs, self.kind_of(dev), threads)

    def kernel_tile(self, spec: ModelSpec, kcfg: dict, kind: str, n1: int, n2: int, *, chunk: tuple[int, int],
                    diagonal: bool, mirrored: bool, out_values: int, threads: int, overlap: bool) -> Job:
        """One tile n1 × n2 (`diagonal`: on the diagonal of a symmetric store, computed as K(x, x) and
        written once; an off-diagonal tile of a symmetric store is written twice, mirrored). Each write
        is a whole chunk (`chunk`: ragged edge tiles are padded to it). `overlap`: a background writer
        stores it while the next tile computes (kernel_checkpoint). Seconds without the job start."""
        dev, dtype = kcfg["device"], kcfg["dtype"]
        item = 8 if dtype == "float64" else 4
        flops = kernel_flops_of(spec, kind, n1, None if diagonal else n2)
        block = n1 * n2 * out_values * item
        written = chunk[0] * chunk[1] * out_values * item * (2 if mirrored and not diagonal else 1)
        rows = (n1 + (0 if diagonal else n2)) * prod(spec.in_shape) * 4
        p = self.profile(dev)
        compute, write = self.compute_s(dev, flops, dtype, threads, "kernel"), written / p.zarr_write_bps
        secs = (max(compute, write) if overlap else compute + write) + rows / p.zarr_read_bps
        features = (kcfg["batch_size"] * model_facts(spec).n_params * item if kcfg["batch_size"]
                    else ENGINE_FEATURE_BYTES)
        peak = (3 if overlap else 2) * block + features + model_facts(spec).state_bytes + rows  # + a tile in flight
        notes = [] if kcfg["method"] in ("auto", "structured") else \
            [f"FLOPs of the structured method (the engine's model has none for {kcfg['method']!r})"]
        return Job("kernel_tile", 1, flops, written, peak + self._base(dev), secs, self.kind_of(dev), threads, notes)

    def light(self, rule: str, seconds: float) -> Job:
        """A CPU job that reads small tables and writes small files (tables, claims, figures, report): its
        script imports no torch, so it starts faster than the calibrated job start."""
        start = self.costs.torch_free_start_fraction * self.cpu.job_start_s + self.costs.job_finish_s
        return Job(rule, 1, bytes_written=1e6, peak_bytes=PROCESS_BASE_BYTES, seconds=start + seconds)

    def store_bookkeeping(self, rule: str, store_bytes: float, n_coords: int, in_process: bool = False) -> Job:
        """kernel_init (coordinates, metadata) or kernel_finalize (checksums every chunk: reads the store);
        seconds without the job start. `in_process`: a step of a running kernel_checkpoint or diagnose_on_D
        process, without a job's own script setup."""
        read = store_bytes / self.cpu.zarr_read_bps if rule == "kernel_finalize" else 0.0
        fixed = self.costs.store_in_process_s if in_process else self.costs.light_job_s
        return Job(rule, 1, bytes_written=n_coords * 16 + 4096, peak_bytes=PROCESS_BASE_BYTES + n_coords * 16,
                   seconds=fixed + read)

    def solve(self, n: int, rhs: int, m: int, solver: str, device: str, threads: int,
              store_bytes: float = 0.0, iterations: int | None = None, rank: int = 0,
              itemsize: int = 8, resident_bytes: float = 0.0) -> tuple[float, float, float]:
        """(FLOPs, seconds, dense bytes) of an n × n system with `rhs` columns, predicting m rows.
        Dense solvers read the store once; the iterative ones (in memory when store_bytes is 0) stream
        the upper triangle of Θ(D, D) once per iteration (pntk.regression.ZarrKernelOperator), or, with
        `resident_bytes` (its tiles kept in memory), read it once and multiply the kept tiles: a pass over
        memory at the device's resident pass rate (measured by device_check.sh on a GPU, else
        COSTS.resident_pass_efficiency × copy bandwidth)."""
        c, p = self.costs, self.profile(device)
        rate = p.flops("float64", threads)
        predict = 2.0 * m * n * rhs
        if solver in ("cholesky", "eigh"):
            flops = n**3 / 3 + 2.0 * n * n * rhs if solver == "cholesky" else 4.0 * n**3
            eff = c.cholesky_efficiency if solver == "cholesky" else c.eigh_efficiency
            secs = flops / (rate * eff) + store_bytes / p.zarr_read_bps
            return flops + predict, secs + predict / rate, (2 if solver == "cholesky" else 3) * 8.0 * n * n
        iterations = iterations or (c.nystrom_iterations if solver == "nystrom" else c.jacobi_cg_iterations)
        flops = iterations * 2.0 * n * n * rhs
        decode = store_bytes / 2 / p.zarr_read_bps  # one pass over the stored upper triangle
        if resident_bytes:
            bps = p.resident_pass_bps or p.mem_bandwidth * getattr(c, f"resident_pass_efficiency_{p.kind}")
            secs = decode + iterations * max(resident_bytes / bps, 2.0 * n * n * rhs / rate)  # read once, then memory
        else:
            secs = iterations * max(c.iteration_over_decode_pass * decode, 2.0 * n * n * rhs / rate)
        if solver == "nystrom":  # pntk.regression.rpcholesky
            # block updates n·k² (in the store's precision), FᵀF n·k² and one Cholesky k³/3 in float64
            update_rate = p.flops("float32" if itemsize == 4 else "float64", threads)
            sketch = 2.0 * n * rank**2 + float(rank) ** 3 / 3
            secs += (n * rank**2 / update_rate + (n * rank**2 + rank**3 / 3) / rate) / c.sketch_efficiency
            # P⁻¹ per iteration: two products with F (4·n·k·rhs flops) over float64 row panels of F
            apply = iterations * 4.0 * n * rank * rhs
            flops, secs = flops + sketch + apply, secs + apply / (rate * c.preconditioner_efficiency)
        return flops + predict, secs + predict / rate, 0.0

    def diagnostics(self, d: int, x: int, o: int, cap_bytes: float, solver: str, store_bytes_read: float) -> Job:
        """Figs 2–8 on D and X: two regressions in memory (eNTK on D·O, pNTK on D), eigvalsh of both,
        reading the covering stores (a subset of a larger store touches every chunk of it)."""
        c, dev = self.costs, "cpu"
        flops = secs = 0.0
        for n, rhs in ((d * o, 1), (d, o)):
            f, s, _ = self.solve(n, rhs, x * (o if rhs == 1 else 1), choose_solver(solver, n, cap_bytes), dev, 1)
            flops, secs = flops + f, secs + s
        eig = 4.0 / 3.0 * ((d * o) ** 3 + d**3)
        secs += eig / (self.cpu.flops("float64", 1) * c.eigvalsh_efficiency)
        secs += self.start(dev) + store_bytes_read / self.cpu.zarr_read_bps
        peak = PROCESS_BASE_BYTES + DIAGNOSTICS_DENSE_COPIES * 8.0 * (d * o) ** 2
        return Job("diagnostics", 1, flops + eig, 4096, peak, secs)

    def kernel_statistics(self, d: int, o: int) -> Job:
        """The statistics of Θ(D,D) and Θ̂(D,D) alone (diagnose_at_init): eigvalsh of both, no regression, no
        store read. Seconds without the job start."""
        eig = 4.0 / 3.0 * ((d * o) ** 3 + d**3)
        secs = eig / (self.cpu.flops("float64", 1) * self.costs.eigvalsh_efficiency)
        peak = PROCESS_BASE_BYTES + DIAGNOSTICS_DENSE_COPIES * 8.0 * (d * o) ** 2
        return Job("diagnose_at_init", 1, eig, 0.0, peak, secs)

    def regression(self, n: int, m: int, o: int, rcfg: dict, store: float, xd_store: float, forward_flops: float,
                   threads: int, kernel_dtype: str = "float64", *, tile: int = 0, input_values: int = 0) -> Job:
        """Full-data pNTK regression with the solver `pntk.regression.choose_solver` picks at this size and
        memory cap (+ an eigh for finite times); f0 by a float64 forward over train and test.
        tile: the stores' tile size (the streaming solvers hold one tile per worker); input_values: per
        example (the prepared inputs are in memory, as float32, while f0 is computed, then released)."""
        c, dev = self.costs, rcfg["device"]
        cap = memory_cap_bytes(rcfg)
        solver = choose_solver(rcfg["solver"], n, cap)
        regularised = rcfg.get("ridge_scale") == "mean_diagonal" and rcfg["ridge"] >= 0.01
        its = (c.nystrom_iterations_with_ridge if regularised else c.nystrom_iterations) if solver == "nystrom" \
            else c.jacobi_cg_iterations
        landmarks = rcfg.get("nystrom_landmarks", "rpcholesky")
        itemsize = 4 if kernel_dtype == "float32" and landmarks == "rpcholesky" else 8  # of the factor F
        resident, held, upper, overhead = False, 0.0, 0.0, 0.0
        side = min(tile, n) if tile else n
        if solver in ("nystrom", "cg"):  # pntk.regression.memory: the solver's own accounting
            tile_bytes = int(store / (n * n) * side * side) if n else 0
            n_tiles = TileGrid(n, n, max(side, 1), symmetric=True).n_tiles  # the upper tile triangle
            workers, overhead = streaming_workers(tile_bytes, threads, n_tiles, n, o, landmarks,
                                                  solver == "nystrom", int(cap))
        rank = nystrom_rank(n, rcfg.get("nystrom_rank"), int(cap), landmarks, itemsize, overhead)  # its own cut
        if solver in ("nystrom", "cg"):  # pntk.regression.linearized._make_resident_if_it_fits, by its own rule
            upper = store / (n * n) * (n * n + n * side) / 2 if n else 0.0  # the upper tile triangle as stored
            pre = preconditioner_bytes(n, rank, landmarks, itemsize, solver == "nystrom")
            resident, held = resident_plan(int(upper), n, o, pre, int(cap), workers)
        flops, secs, dense = self.solve(n, o, m, solver, dev, threads, store, iterations=its, rank=rank,
                                        itemsize=itemsize, resident_bytes=upper if resident else 0.0)
        p = self.profile(dev)
        notes = [f"solver {solver}"]
        if solver in ("nystrom", "cg"):
            cap_its = NYSTROM_MAXITER if solver == "nystrom" else min(10 * n, 2000)
            where = (f"resident: Θ(D,D) read once and kept in {'GPU ' if p.kind == 'cuda' else ''}memory "
                     f"({upper / 1e9:.3g} GB, {held / 1e9:.3g} GB held ≤ cap)" if resident else
                     f"streaming: {held / 1e9:.3g} GB to keep it > cap {cap / 1e9:.3g} GB; each iteration reads the "
                     f"{store / 1e9:.3g} GB store")
            notes = [f"solver {solver}, {where}: {its} iterations assumed "
                     f"({secs / its / 60:.3g} min each, all included; the solver stops at {cap_its})"]
        if rcfg["times"]:
            f2, s2, d2 = self.solve(n, o * len(rcfg["times"]), m, "eigh", dev, threads, store)
            flops, secs, dense = flops + f2, secs + s2, max(dense, d2)
            notes.append("+ eigh for regression.times")
        fwd = forward_flops * (n + m)
        secs += self.start(dev) + fwd / p.flops("float64", threads) + xd_store / p.zarr_read_bps
        stream = 0.0
        if resident:  # the kept tiles, each worker's float64 strip
            stream = upper + threads * STRIP_BYTES
        elif solver in ("nystrom", "cg"):  # ZarrKernelOperator.stream: each worker reads into one tile buffer
            side = min(tile, n) if tile else math.isqrt(int(min(max(cap / 4, 2**20), 256 * 2**20)) // 8)
            store_item = 4 if kernel_dtype == "float32" else 8
            workers = min(threads, math.ceil(n / side) * (math.ceil(n / side) + 1) // 2)
            if self.kind_of(dev) == "cuda":  # device memory: the tile moved there and its float64 copy
                per_worker = side * side * (store_item + 8.0)
            else:  # the tile buffer and its float64 row strip
                per_worker = side * side * store_item + STRIP_BYTES + 8.0 * side
            stream = workers * per_worker
        sketch = itemsize * n * rank + 8.0 * rank * rank if solver == "nystrom" else 0.0  # F (n, k), FᵀF (k, k)
        solve = dense + stream + sketch + 8.0 * 6 * n * o  # + CG vectors (Θ(X, D) streams from its store too)
        inputs = 2.0 * 4 * (n + m) * input_values  # all rows as float32 and the train rows' copy
        peak = max(solve, 0.0 if self.kind_of(dev) == "cuda" else inputs)
        return Job("regression", 1, flops + fwd, 8.0 * m * o * 3, peak + self._base(dev), secs, self.kind_of(dev),
                   threads, notes)

    def timing(self, models: list, in_shape, tcfg: dict, method: str, threads: int) -> Job:
        """Fig 1: per ResNet depth and kind, (repeats + 1) kernels of one input pair (+ warm-up)."""
        dev, calls, flops, overhead = tcfg["device"], tcfg["repeats"] + 1, 0.0, 0.0
        for model in models:
            n_out = model.fc.out_features  # torchvision ResNet readout
            for kind, rows in (("entk", n_out), ("pntk", 1)):
                flops += calls * kernel_flops(model, tuple(in_shape), 1, 1, kind)
                passes = len(_leaf_modules(model)) * (1 + rows)  # forward + R backward passes per module
                overhead += calls * passes * self.costs.kernel_call_s_per_module_pass
        secs = self.start(dev) + self.compute_s(dev, flops, "float32", threads, "kernel") + overhead
        return Job("timing", 1, flops, 4096, self._base(dev) + 2**30, secs, self.kind_of(dev), threads)

    def infinite(self, specs: list[ModelSpec], n_seeds: int, n_points: int, cntk_cpu_s=0.0, threads=1) -> Job:
        """Figs P1–P2: eNTK and pNTK (float64, symmetric) of NTK-parameterised FCNs per width × seed; §5: the
        ConvNets' analytic NTKs (`cntk_cpu_s` of one core) on `threads` threads (the FCN's is negligible)."""
        flops = n_seeds * sum(kernel_flops_of(s, k, n_points, None) for s in specs for k in ("entk", "pntk"))
        secs = self.start("cpu") + self.compute_s("cpu", flops, "float64", 1, "kernel") + cntk_cpu_s / (
            1 + SECOND_WORKER_GAIN * (threads - 1))
        peak = PROCESS_BASE_BYTES + 4 * 8.0 * (n_points * (specs[0].num_classes if specs else 1)) ** 2
        return Job("infinite_width", 1, flops, 4096, peak, secs, threads=threads)

    def active(self, spec: ModelSpec, acfg: dict, strategy: str, n_test: int) -> Job:
        """One strategy × seed: a fit per cycle, plus the acquisition (MLMOC kernel + look-ahead and its block
        check by direct solves, or `naive_pool` fine-tunings per cycle for the naive look-ahead), plus
        mlmoc-pntk's final labelled set trained the other way (warm_cold)."""
        f, dev = model_facts(spec), acfg["device"]
        per_module = getattr(self.costs, f"step_overhead_per_module_{self.kind_of(dev)}_s")
        per_value = getattr(self.costs, f"lookahead_s_per_kernel_value_{self.kind_of(dev)}")
        flops = lookahead_flops = overhead = 0.0

        def fits(n: int, points: int, epochs: int) -> None:  # n fits of `epochs` on `points` examples
            nonlocal flops, overhead
            flops += n * epochs * points * f.train_flops
            overhead += n * epochs * math.ceil(points / acfg["batch_size"]) * f.modules * per_module

        for cycle in range(acfg["cycles"] + 1):
            n_lab = acfg["initial"] + cycle * acfg["per_cycle"]
            fits(1, n_lab, acfg["epochs"])
            flops += n_test * f.forward_flops
            if cycle == acfg["cycles"]:
                continue
            if strategy == "naive":  # each candidate: a fine-tuned copy of f_L, then its outputs on all of S
                cand = min(acfg["naive_pool"], acfg["pool_subset"])
                fits(cand, n_lab + 1, acfg["naive_epochs"] or acfg["epochs"])
                flops += cand * acfg["pool_subset"] * f.forward_flops
            if strategy.startswith("mlmoc"):
                kind = strategy.split("-")[1]
                r = spec.num_classes if kind == "entk" else 1
                m, s = n_lab * r, acfg["pool_subset"] * r  # rows of L and of S in the flat kernel
                flops += kernel_flops_of(spec, kind, n_lab + acfg["pool_subset"], None)
                # float64 LookAhead: Cholesky of A, C⁻¹Θ(L, S), Σ(S, S) = Θ(S, S) − WᵀW, the scores (one per
                # solve: sequential MLMOC re-scores after each of its `per_cycle` block updates of Σ)
                solves = acfg["per_cycle"] if strategy.endswith("-seq") else 1
                lookahead_flops += m ** 3 / 3 + s * m ** 2 + 1.0 * s * s * m  # Σ: its lower triangle only
                lookahead_flops += solves * 2.0 * s * s + (solves - 1) * 2.0 * s * s * r
                overhead += (m + s) ** 2 * per_value
                # block check (batch only): per candidate checked, a Cholesky of Θ(L⁺, L⁺) and f_lin+ on S, and
                # the (m + r)² system assembled by copies, priced like the look-ahead's (default run 2026-12-07,
                # AMD EPYC, 1 thread: pNTK 2,500 candidates 0.44–0.65 s per seed, planned 0.7; eNTK best 20 of
                # 500, 100 candidates 1.9–2.3 s, planned 2.9)
                key = "block_check_entk" if kind == "entk" else "block_check"
                budget = 0 if strategy.endswith("-seq") else acfg[key]
                checked, c = min(budget, acfg["pool_subset"]), spec.num_classes // r
                lookahead_flops += checked * ((m + r) ** 3 / 3 + 2.0 * (m + r) ** 2 * c + 2.0 * s * (m + r) * c)
                overhead += checked * (m + r) ** 2 * per_value
        if strategy == "mlmoc-pntk":  # warm_cold: the final labelled set trained the other way
            final = acfg["initial"] + acfg["cycles"] * acfg["per_cycle"]
            if acfg["retrain"] == "warm":
                fits(1, final, acfg["epochs"])
            else:
                for cycle in range(acfg["cycles"] + 1):
                    fits(1, acfg["initial"] + cycle * acfg["per_cycle"], acfg["epochs"])
        secs = (self.start(dev) + self.compute_s(dev, flops, "float32", 1, "train") + overhead
                + lookahead_flops / self.profile(dev).flops("float64", 1))
        return Job("active_learning", 1, flops + lookahead_flops, 4096, self._base(dev) + ENGINE_FEATURE_BYTES, secs,
                   self.kind_of(dev))

    def _base(self, device: str) -> float:
        return 0.0 if self.kind_of(device) == "cuda" else PROCESS_BASE_BYTES


def choose_solver(solver: str, n: int, cap_bytes: float) -> str:
    """What `linearized_predict(solver=...)` runs for an n × n system at infinite time (its own rule)."""

    return regression_choice(solver, n, int(cap_bytes), finite_t=False, log=lambda msg: None).value

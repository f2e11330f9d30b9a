"""`pntk plan`: what a config costs before it runs — per rule: jobs, FLOPs, bytes written, peak memory
per job, time — on this CPU (calibrated) or a named GPU (datasheet), with totals.

Job counts come from the functions the rules themselves use (`pntk.config`: runs, store_specs,
tile_grid, has_full_pntk, active_runs, and the enabled flags that common.smk reads); the tests check
them against `snakemake -n`. Costs per job: `pntk.plan.costs`; rates and constants: `pntk.plan.devices`.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field

from .. import config as pcfg
from ..analysis import torchvision_resnet
from ..analysis.cntk import regression_cpu_hours
from ..data.prepared import CHUNK_ROWS
from ..models import DEFAULT_DEPTH, ModelSpec
from .costs import CostModel, Job, model_facts
from .devices import COSTS, DeviceProfile, host_profile

RULES = ("prepare_data", "train", "train_on_D", "diagnose_on_D", "diagnose_at_init", "kernel_checkpoint",
         "kernel_checkpoint_on_D", "kernel_init", "kernel_tile", "kernel_finalize", "diagnostics", "regression",
         "diagnostics_regression", "timing", "infinite_width", "tables", "claims", "figures", "active_learning",
         "active_learning_seed", "active_figures", "report", "all")


# What a second workflow folder with the same runs does not run under --cache: the rules Snakemake's output
# cache holds (`cache:` in data.smk, train.smk, kernels.smk, diagnostics.smk) and, with kernels.jobs: per_tile,
# the init and tile jobs of each store found in pntk's store cache (its lookup and finalize jobs still run).
CACHED_RULES = ("prepare_data", "train", "train_on_D", "diagnose_on_D", "kernel_checkpoint", "kernel_checkpoint_on_D",
                "kernel_init", "kernel_tile")


def job_counts(config: dict) -> dict[str, int]:
    """Jobs per rule of a run from scratch: what `snakemake -n` lists in its job stats."""
    counts = Counter({"prepare_data": 1})
    for on, suffix in (("train", ""), ("D", "_on_D")):
        runs = pcfg.runs(config, on)
        n_ckpt = len(runs) * len(pcfg.checkpoint_epochs(config, on))
        if on == "D" and pcfg.d_runs_in_one_job(config):
            counts["diagnose_on_D"] = len(runs)
            continue
        specs = pcfg.store_specs(config, on)
        counts[f"train{suffix}"] = len(runs)
        if config["kernels"]["jobs"] == "per_checkpoint":
            counts[f"kernel_checkpoint{suffix}"] = n_ckpt
        else:
            counts["kernel_init"] += n_ckpt * len(specs)
            counts["kernel_finalize"] += n_ckpt * len(specs)
            counts["kernel_tile"] += n_ckpt * sum(pcfg.store_grid(config, r, c).n_tiles for _, r, c in specs)
    counts["diagnose_at_init"] = len(pcfg.networks_at_init(config))
    n_ckpt = len(pcfg.runs(config)) * len(pcfg.checkpoint_epochs(config))
    n_diag = sum(len(pcfg.checkpoint_epochs(config, r.trained_on)) for r in pcfg.diagnostic_runs(config))
    if pcfg.analysis_in_one_job(config):
        counts["diagnostics_regression"] = n_ckpt
    else:
        counts["diagnostics"] = 0 if pcfg.d_runs_in_one_job(config) else n_diag
        counts["regression"] = n_ckpt if pcfg.has_full_pntk(config) else 0
    counts["timing"] = int(config["timing"]["enabled"])  # figure_inputs of common.smk
    counts["infinite_width"] = int(config["infinite"]["enabled"])
    counts["tables"] = counts["claims"] = counts["figures"] = 1
    n_active = len(pcfg.active_runs(config))
    if config["active"]["jobs"] == "per_seed":
        counts["active_learning_seed"] = n_active and len(config["active"]["seeds"])
    else:
        counts["active_learning"] = n_active
    counts["active_figures"] = int(bool(n_active))
    counts["report"] = counts["all"] = 1
    return {r: counts[r] for r in RULES if counts.get(r)}


@dataclass
class RulePlan:
    rule: str
    jobs: int = 0
    flops: float = 0.0           # all jobs
    bytes_written: float = 0.0   # all jobs
    bytes_read: float = 0.0      # all jobs: their inputs, fetched where there is no shared filesystem
    peak_bytes: float = 0.0      # the largest job
    job_seconds: float = 0.0     # sum over jobs (device-seconds)
    max_job_seconds: float = 0.0
    device: str = "cpu"
    threads: int = 1
    notes: list[str] = field(default_factory=list)

    def add(self, job: Job) -> None:
        self.jobs += job.count
        self.flops += job.count * job.flops
        self.bytes_written += job.count * job.bytes_written
        self.bytes_read += job.count * job.bytes_read
        self.peak_bytes = max(self.peak_bytes, job.peak_bytes)
        self.job_seconds += job.count * job.seconds
        self.max_job_seconds = max(self.max_job_seconds, job.seconds)
        self.device, self.threads = job.device, job.threads
        self.notes += [n for n in job.notes if n not in self.notes]


@dataclass
class WorkflowPlan:
    config_name: str
    device: DeviceProfile
    cores: int
    rules: list[RulePlan]
    store_bytes: float
    notes: list[str]

    def wall_seconds(self, gpus: int = 1) -> float:
        """A local run's wall time: stages one after the other, the jobs of a stage spread over the
        cores (CPU jobs, `threads` each) or GPUs."""
        total = 0.0
        for r in self.rules:
            slots = gpus if r.device == "cuda" else max(1, self.cores // max(1, r.threads))
            total += max(r.max_job_seconds, r.job_seconds / slots)
        return total

    def cache_hit(self) -> dict:
        """What a second workflow folder whose runs match takes from the output cache (--cache): jobs, job
        seconds and bytes it does not compute or write (the cache leaves links)."""
        hit = [r for r in self.rules if r.rule in CACHED_RULES]
        return {"rules": [r.rule for r in hit], "jobs": sum(r.jobs for r in hit),
                "job_seconds": sum(r.job_seconds for r in hit), "bytes": sum(r.bytes_written for r in hit)}

    def as_dict(self) -> dict:
        return {"config": self.config_name, "device": asdict(self.device), "cores": self.cores,
                "rules": [asdict(r) for r in self.rules], "jobs": sum(r.jobs for r in self.rules),
                "store_bytes": self.store_bytes, "bytes_written": sum(r.bytes_written for r in self.rules),
                "bytes_read": sum(r.bytes_read for r in self.rules),
                "gpu_hours": sum(r.job_seconds for r in self.rules if r.device == "cuda") / 3600,
                "cpu_core_hours": sum(r.job_seconds * r.threads for r in self.rules if r.device == "cpu") / 3600,
                "wall_seconds": self.wall_seconds(), "cache_hit": self.cache_hit(), "costs": asdict(COSTS),
                "notes": self.notes}


def plan_workflow(config: dict, device: DeviceProfile, *, cores: int | None = None,
                  config_name: str = "config") -> WorkflowPlan:
    """Plan a validated config on `device` (a GPU profile serves the rules whose device is cuda; its
    host CPU the rest). `cores`: Snakemake's --cores (heavy CPU rules use them all, as in common.smk)."""
    gpu = device if device.kind == "cuda" else None
    cm = CostModel(host_profile(device) if gpu else device, gpu)
    res = config["resources"]
    heavy = res["cpus_per_gpu"] if gpu else (cores or device.threads)
    notes = _device_notes(config, gpu)
    spec = pcfg.data_spec(config)
    n_train, n_test = pcfg.split_sizes(config)
    o, in_shape = spec.num_classes, tuple(spec.in_shape)
    epochs = len(config["train"]["checkpoint_epochs"])
    seeds = len(config["seeds"])
    models = [pcfg.model_spec(config, m["name"], w) for m in config["models"] for w in m["widths"]]
    prepare = cm.prepare(n_train + n_test, in_shape)
    jobs: list[Job] = [prepare]
    data_b = prepare.bytes_written  # what a job that reads the prepared data fetches without a shared filesystem
    diagnostics = _diagnostics_job(cm, config, o) if config["diagnostics"]["enabled"] else None
    if pcfg.diagnostics_on_d(config):
        jobs += _jobs_on_d(cm, config, models, diagnostics, n_test, o, res, heavy, data_b)
    jobs += [_reads(j, data_b) for j in _at_init_jobs(cm, config, o)]
    for ms in models:
        train = _reads(cm.train(ms, n_train, n_test, config["train"], heavy), data_b)
        ckpt_b = train.bytes_written / epochs  # one checkpoint (its share of the train log too)
        jobs.append(_times(train, seeds))
        jobs += [_times(j, seeds * epochs) for j in _kernel_jobs(cm, config, ms, o, res, (data_b, ckpt_b))]
        if pcfg.has_full_pntk(config):
            dd, xd = (store_bytes(config, "pntk", r, "train", o) for r in ("train", "test"))
            reg_threads = heavy if n_train >= pcfg.REGRESSION_ALL_CORES_FROM else 1  # as common.smk
            job = cm.regression(n_train, n_test, o, config["regression"], dd, xd, model_facts(ms).forward_flops,
                                reg_threads, config["kernels"]["dtype"], tile=config["kernels"]["tile_size"],
                                input_values=math.prod(in_shape))
            job.bytes_read = dd + xd + data_b + ckpt_b
            if pcfg.analysis_in_one_job(config):  # the subsets' stores too (data and checkpoint: once)
                job = _reads(_one_process("diagnostics_regression", [job, diagnostics], 1, cm.start("cpu")),
                             job.bytes_read + diagnostics.bytes_read)
            jobs.append(_times(job, seeds * epochs))
        if diagnostics and not pcfg.analysis_in_one_job(config) and not pcfg.diagnostics_on_d(config):
            jobs.append(_times(_with_inputs(diagnostics, data_b + ckpt_b), seeds * epochs))
    if config["timing"]["enabled"]:
        jobs.append(_reads(cm.timing(_timing_models(config, in_shape[0], o), in_shape, config["timing"],
                                     config["kernels"]["method"], config["timing"]["threads"]), data_b))
    if config["infinite"]["enabled"]:
        inf = config["infinite"]
        specs = [ModelSpec("fcn", w, in_shape, o, inf["depth"], "ntk") for w in inf["widths"]]
        hours = [regression_cpu_hours(n_train, n_test, tuple(in_shape), m["depth"] or DEFAULT_DEPTH["convnet"],
                                      inf["cntk_dtype"]) for m in config["models"] if m["arch"] == "convnet"]
        cntk_s = 3600 * sum(h for h in hours if h <= inf["max_cntk_cpu_hours"])  # as the job: beyond, skipped
        jobs.append(_reads(cm.infinite(specs, len(inf["seeds"]), min(inf["n_points"], n_train), cntk_s,
                                       heavy if hours else 1), data_b))  # threads as infinite_width.smk
    jobs += [cm.light("tables", COSTS.tables_s), cm.light("claims", COSTS.claims_s),
             _reads(cm.light("figures", COSTS.figures_s), _heatmap_bytes(config, o)),
             cm.light("report", 0.0)]  # reads the PNGs and small tables, writes one page: the start is all
    a = config["active"]
    aspec = ModelSpec(a["arch"], a["width"], in_shape, o, a["depth"])
    active = [_reads(cm.active(aspec, a, strategy, n_test), data_b) for strategy, _seed in pcfg.active_runs(config)]
    if a["jobs"] == "per_seed" and active:
        active = [_reads(_one_process("active_learning_seed", active, len(a["seeds"]), cm.start(a["device"])), data_b)]
    jobs += active
    if a["enabled"]:
        jobs.append(cm.light("active_figures", COSTS.figures_s / 4))
    jobs.append(Job("all", 1))
    rules = {r: RulePlan(r) for r in RULES}
    for j in jobs:
        rules[j.rule].add(j)
    stores = sum(store_bytes(config, k, r, c, o) * len(pcfg.runs(config, on)) * len(pcfg.checkpoint_epochs(config, on))
                 for on in ("train", "D") for k, r, c in pcfg.store_specs(config, on))
    return WorkflowPlan(config_name, device, heavy, [r for r in rules.values() if r.jobs], stores, notes)


def _jobs_on_d(cm: CostModel, config: dict, models: list, diagnostics: Job, n_test: int, o: int, res: dict,
               heavy: int, data_b: float) -> list[Job]:
    """The networks of Figs 2–8 trained on D: training on D, the four stores and the diagnostics of each
    checkpoint — separate jobs, or one diagnose_on_D process per network (diagnostics.jobs: per_run)."""
    d_cfg = {**config["train"], "epochs": pcfg.epochs_of(config, "D")}
    n_d, seeds = config["data"]["subset_train"], len(config["seeds"])
    epochs = len(pcfg.checkpoint_epochs(config, "D"))
    one = pcfg.d_runs_in_one_job(config)
    jobs = []
    for ms in models:
        train = _reads(cm.train(ms, n_d, n_test, d_cfg, 1 if one else heavy), data_b)
        train.rule = "train_on_D"
        ckpt_b = train.bytes_written / epochs
        kernels = _kernel_jobs(cm, config, ms, o, res, (data_b, ckpt_b), "D")
        for k in kernels:
            k.rule = k.rule.replace("kernel_checkpoint", "kernel_checkpoint_on_D")
        if not one:
            jobs += [_times(train, seeds)] + [_times(k, seeds * epochs) for k in kernels]
            if diagnostics:
                jobs.append(_times(_with_inputs(diagnostics, data_b + ckpt_b), seeds * epochs))
            continue
        parts = [train] + [_times(k, epochs) for k in kernels] + [_times(_copy(diagnostics), epochs)]
        one_job = _one_process("diagnose_on_D", parts, 1, cm.start(config["train"]["device"]))
        jobs.append(_times(_reads(one_job, data_b), seeds))  # the rest it computes itself
    return jobs


def _at_init_jobs(cm: CostModel, config: dict, o: int) -> list[Job]:
    """diagnose_at_init: per model and width, one process computing the eNTK and pNTK on D (one diagonal tile
    each, as a kernel job would, but kept in memory: nothing written) and their statistics for each network."""
    kcfg, d = config["kernels"], config["data"]["subset_train"]
    jobs = []
    for (name, width), nets in pcfg.networks_at_init(config).items():
        ms = pcfg.model_spec(config, name, width)
        parts = [cm.kernel_tile(ms, kcfg, kind, d, d, chunk=(d, d), diagonal=True, mirrored=True,
                                out_values=o * o if kind == "entk" else 1, threads=1, overlap=False)
                 for kind in ("entk", "pntk")] + [cm.kernel_statistics(d, o)]
        for p in parts:
            p.count, p.bytes_written = len(nets), 0.0
        jobs.append(_one_start("diagnose_at_init", parts, cm.start(kcfg["device"]), parts[0].device, 1))
    return jobs


def _one_start(rule: str, parts: list[Job], start_s: float, device: str, threads: int) -> Job:
    """One job of `rule` doing all of `parts` (Jobs without a start, each `count` times) after a single start."""
    one = Job(rule, 1, seconds=start_s, device=device, threads=threads)
    for j in parts:
        one.flops += j.count * j.flops
        one.bytes_written += j.count * j.bytes_written
        one.seconds += j.count * j.seconds
        one.peak_bytes = max(one.peak_bytes, j.peak_bytes)
    return one


def _copy(job: Job) -> Job:
    from dataclasses import replace

    return replace(job, notes=list(job.notes))


def _diagnostics_job(cm: CostModel, config: dict, o: int) -> Job:
    """One diagnostics job (the same for every run and checkpoint: the subsets have one size)."""
    d, x = config["data"]["subset_train"], config["data"]["subset_test"]
    on = "D" if pcfg.diagnostics_on_d(config) else "train"
    read = sum(store_bytes(config, k, *pcfg.find_store(config, k, r, "sub-train", on), o)
               for k in ("entk", "pntk") for r in ("sub-train", "sub-test"))
    cap = pcfg.memory_cap_bytes(config["regression"])
    return _reads(cm.diagnostics(d, x, o, cap, config["regression"]["solver"], read), read)  # + data, checkpoint


def _one_process(rule: str, parts: list[Job], count: int, start_s: float) -> Job:
    """`count` jobs of `rule`, each doing an equal share of `parts` (Jobs that each pay a process start
    `start_s`) in one process: their costs add, and every start but one is saved."""
    share = sum(p.count for p in parts) / count  # parts per process
    per = lambda attr: sum(p.count * getattr(p, attr) for p in parts) / count  # noqa: E731
    notes = [n for p in parts for n in p.notes]
    return Job(rule, count, flops=per("flops"), bytes_written=per("bytes_written"),
               peak_bytes=max(p.peak_bytes for p in parts), seconds=per("seconds") - (share - 1) * start_s,
               device=parts[0].device, threads=max(p.threads for p in parts), notes=list(dict.fromkeys(notes)))


def _reads(job: Job, nbytes: float) -> Job:
    """`job` with `bytes_read` set: the inputs it fetches where there is no shared filesystem."""
    job.bytes_read = nbytes
    return job


def _heatmap_bytes(config: dict, o: int) -> float:
    """The store Fig P4 (figures job) reads (pcfg.heatmap_store)."""
    where = pcfg.heatmap_store(config)
    return store_bytes(config, "pntk", *where[2], o) if where else 0.0


def _with_inputs(job: Job, nbytes: float) -> Job:
    """A copy of `job` that fetches `nbytes` more (the shared diagnostics Job: its stores, plus data and checkpoint)."""
    return _reads(_copy(job), job.bytes_read + nbytes)


def _times(job: Job, n: int) -> Job:
    job.count *= n
    return job


def store_bytes(config: dict, kind: str, rows: str, cols: str, o: int) -> float:
    """What one kernel store occupies uncompressed: every chunk whole (Zarr pads ragged edge chunks to the
    chunk shape; float32 stores are written uncompressed, so this is their size on disk) — N1 × N2
    (× O² for eNTK) values rounded up to whole tiles — plus its int64 coordinates, chunked the same way."""
    grid = pcfg.store_grid(config, rows, cols)
    item = 8 if config["kernels"]["dtype"] == "float64" else 4
    outs = o * o if kind == "entk" else 1
    padded = [t * c for t, c in zip(grid.shape, grid.chunks)]  # whole chunks (one tile, or the axis if shorter)
    coords = 2 * 8 * sum(padded) + (2 * 8 * o if kind == "entk" else 0)  # row/col ids and labels (+ out_row/col)
    return padded[0] * padded[1] * outs * item + coords


def _kernel_jobs(cm: CostModel, config: dict, ms: ModelSpec, o: int, res: dict, reads: tuple[float, float],
                 trained_on: str = "train") -> list[Job]:
    """Jobs of one run and checkpoint: per tile (tiles of equal shape share one Job) or one per checkpoint.
    `reads` (bytes of the prepared data, of one checkpoint): what they fetch without a shared filesystem — the
    data and the checkpoint; per tile (declared.smk, REMOTE_TILES) a tile job reads only its rows of the data
    where it lies, finalize its store and no data."""
    data_b, ckpt_b = reads
    row_b = 4 * math.prod(ms.in_shape)  # a float32 image of the prepared store
    kcfg = config["kernels"]
    threads = res["cpus_per_gpu"] if kcfg["device"].startswith("cuda") else 1  # device_threads of common.smk
    jobs = []
    for kind, rows, cols in pcfg.store_specs(config, trained_on):
        grid = pcfg.store_grid(config, rows, cols)
        shapes = Counter((*grid.extent(i, j), grid.is_diagonal(i, j)) for i, j in grid.tiles())
        for (r, c, diag), count in shapes.items():
            job = cm.kernel_tile(ms, kcfg, kind, r, c, chunk=grid.chunks, diagonal=diag,
                                 mirrored=grid.symmetric, out_values=o * o if kind == "entk" else 1, threads=threads,
                                 overlap=kcfg["jobs"] == "per_checkpoint")
            job.count = count
            job.bytes_read = min(data_b, _rows_read(rows, r, row_b) + _rows_read(cols, c, row_b)) + ckpt_b
            jobs.append(job)
        size = store_bytes(config, kind, rows, cols, o)
        inside = kcfg["jobs"] != "per_tile"  # one process per checkpoint: no script setup per step
        finalize = cm.store_bookkeeping("kernel_finalize", size, 0, inside)
        finalize.bytes_read = size + ckpt_b  # it checks every chunk where the store lies
        init = cm.store_bookkeeping("kernel_init", size, grid.n_rows + grid.n_cols, inside)
        init.bytes_read = data_b + ckpt_b
        jobs += [init, finalize]
    if kcfg["jobs"] == "per_tile":
        for j in jobs:  # a process per job
            j.seconds += cm.start(kcfg["device"] if j.rule == "kernel_tile" else "cpu")
        return jobs
    # one process: a single start, the work of every store, the data and the checkpoint fetched once
    return [_reads(_one_start("kernel_checkpoint", jobs, cm.start(kcfg["device"]), jobs[0].device, threads),
                   data_b + ckpt_b)]


def _rows_read(index_set: str, extent: int, row_b: float) -> float:
    """Bytes of the prepared images a tile job reads for `extent` rows of `index_set` where the data lies: whole
    chunks of CHUNK_ROWS rows; a split's rows are consecutive (at most one chunk more than they fill), a subset's
    scattered (a chunk per row at worst). The caller caps it at the data set."""
    chunks = math.ceil(extent / CHUNK_ROWS) + 1 if index_set in ("train", "test") else extent
    return chunks * CHUNK_ROWS * row_b


def _timing_models(config: dict, in_channels: int, o: int) -> list:

    return [torchvision_resnet(d, in_channels, o) for d in config["timing"]["resnet_depths"]]


def _device_notes(config: dict, gpu: DeviceProfile | None) -> list[str]:
    keys = [k for k in ("train", "kernels", "regression", "timing", "active") if config[k]["device"].startswith("cuda")]
    if gpu is None and keys:
        return [f"{', '.join(k + '.device' for k in keys)}: cuda in the config; estimated on this CPU "
                f"(pass --device a100, h100, ... for a GPU)"]
    if gpu is not None and not keys:
        return ["the config runs nothing on cuda: every rule is estimated on the GPU node's host CPU"]
    return []

"""`pntk plan`: job counts equal `snakemake -n`'s, kernel FLOPs are the engine's own model, store bytes are
what a real store holds, device profiles (named GPUs, cached CPU calibration), the CLI and its errors."""
from __future__ import annotations

import copy
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr
from dry_run import job_counts as dry_run_counts
from torch import nn

from pntk import config as pcfg
from pntk import kernel_jobs
from pntk.cli import main
from pntk.kernels import flop_count
from pntk.models import ModelSpec, init_model
from pntk.plan import devices as plan_devices
from pntk.plan import format_plan, job_counts, plan_workflow, store_bytes
from pntk.plan.check import compare, job_durations
from pntk.plan.costs import CostModel, choose_solver, kernel_flops, kernel_flops_of, model_facts
from pntk.regression import linearized_predict
from pntk.store.paths import StorePaths

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
CONFIGS = {"tiny": REPO / "tests" / "configs" / "tiny.yaml", "default": REPO / "config.yaml",
           "cifar10-fcn-cpu": REPO / "configs" / "cifar10-fcn-cpu.yaml",
           "paper-cifar10": REPO / "configs" / "paper-cifar10.yaml"}
# A fixed CPU profile: plans in tests do not depend on this machine's load (no calibration).
FIXED_CPU = plan_devices.DeviceProfile(
    name="cpu", kind="cpu", label="test CPU", fp32_flops=40e9, fp64_flops=20e9, fp32_flops_1t=20e9,
    fp64_flops_1t=10e9, memory_bytes=16e9, mem_bandwidth=10e9, zarr_write_bps=0.5e9, zarr_read_bps=1e9,
    job_start_s=3.0, threads=2, source="fixed for tests")


def load(name: str) -> dict:
    return pcfg.load_config(CONFIGS[name], check_files=False)


# ----------------------------------------------------------------------------- job counts
@pytest.mark.slow
@pytest.mark.parametrize("name", list(CONFIGS))
def test_job_counts_equal_snakemake_dry_run(name, tmp_path):
    """The real `snakemake -n` (the paper config's 8,217 jobs take about a minute)."""
    proc = subprocess.run([SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path), "-n",
                           "--quiet", "rules", "--configfile", str(CONFIGS[name]), "--cores", "2"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert job_counts(load(name)) == dry_run_counts(proc.stdout)


@pytest.mark.parametrize("name", ["tiny", "default"])
def test_plan_rules_carry_the_job_counts(name):
    cfg = load(name)
    plan = plan_workflow(cfg, FIXED_CPU, cores=2)
    assert {r.rule: r.jobs for r in plan.rules} == job_counts(cfg)


def test_switching_off_stages_removes_their_jobs():
    cfg = load("tiny")
    cfg["diagnostics"]["enabled"] = cfg["timing"]["enabled"] = cfg["infinite"]["enabled"] = False
    cfg["kernels"]["index_sets"]["pntk"] = [["sub-train", "sub-train"]]  # no full-data pNTK: no regression
    counts = job_counts(cfg)
    assert not {"diagnostics", "timing", "infinite_width", "regression"} & set(counts)
    assert counts["kernel_tile"] == 2 * 2 * (1 + 1 + 1)  # runs × epochs × one tile per store


def test_plan_says_what_an_output_cache_hit_saves():
    """--cache: prepare_data, train (both kinds of run) and the kernel stores come from the cache in a second
    folder: per checkpoint from Snakemake's, per tile from pntk's store cache (no init or tile job is run; the
    lookup and finalize jobs are)."""
    per_tile = load("tiny")  # kernels.jobs: per_tile
    plan = plan_workflow(per_tile, FIXED_CPU, cores=2)
    hit = plan.cache_hit()
    assert hit["rules"] == ["prepare_data", "train", "train_on_D", "kernel_init", "kernel_tile"]
    assert hit["jobs"] == sum(r.jobs for r in plan.rules if r.rule in hit["rules"])
    per_ckpt = load("tiny")
    per_ckpt["kernels"]["jobs"] = "per_checkpoint"
    plan = plan_workflow(per_ckpt, FIXED_CPU, cores=2)
    hit, rules = plan.cache_hit(), {r.rule: r for r in plan.rules}
    assert hit["rules"] == ["prepare_data", "train", "train_on_D", "kernel_checkpoint", "kernel_checkpoint_on_D"]
    assert hit["jobs"] == sum(rules[r].jobs for r in hit["rules"])
    assert hit["job_seconds"] == pytest.approx(sum(rules[r].job_seconds for r in hit["rules"]))
    assert hit["bytes"] > plan.store_bytes > 0  # every store, and the checkpoints and data
    assert "output cache (--cache): a second workflow folder with the same runs takes " in format_plan(plan)
    assert plan.as_dict()["cache_hit"] == hit


def test_plan_says_what_goes_to_the_bucket_and_what_jobs_fetch():
    """A default storage provider: every output to the bucket; each job fetches its inputs — a regression its
    two pNTK stores, the data and its checkpoint; a kernel job the data and the checkpoint, and per tile the
    finalize job reads every chunk of its store where it lies as well."""
    cfg = load("tiny")
    cfg["kernels"]["jobs"] = "per_checkpoint"
    plan = plan_workflow(cfg, FIXED_CPU, cores=2)
    rules, t, o = {r.rule: r for r in plan.rules}, plan.as_dict(), 10
    data = rules["prepare_data"].bytes_written
    ckpt = rules["train"].bytes_written / rules["train"].jobs / len(cfg["train"]["checkpoint_epochs"])
    stores = store_bytes(cfg, "pntk", "train", "train", o) + store_bytes(cfg, "pntk", "test", "train", o)
    assert rules["regression"].bytes_read == pytest.approx(rules["regression"].jobs * (stores + data + ckpt))
    assert rules["kernel_checkpoint"].bytes_read == pytest.approx(rules["kernel_checkpoint"].jobs * (data + ckpt))
    assert rules["prepare_data"].bytes_read == 0 and rules["train"].bytes_read == rules["train"].jobs * data
    assert t["bytes_read"] == pytest.approx(sum(r.bytes_read for r in plan.rules)) and t["bytes_read"] > stores
    assert "no shared filesystem (--default-storage-provider): " in format_plan(plan)
    per_tile = plan_workflow(load("tiny"), FIXED_CPU, cores=2)
    tile_rules = {r.rule: r for r in per_tile.rules}
    runs = len(pcfg.runs(cfg, "train")) * len(cfg["train"]["checkpoint_epochs"])
    on_d = len(pcfg.runs(cfg, "D")) * len(pcfg.checkpoint_epochs(cfg, "D"))
    all_stores = (runs * sum(store_bytes(cfg, *s, o) for s in pcfg.store_specs(cfg, "train"))
                  + on_d * sum(store_bytes(cfg, *s, o) for s in pcfg.store_specs(cfg, "D")))
    assert tile_rules["kernel_finalize"].jobs == (runs * len(pcfg.store_specs(cfg, "train"))
                                                  + on_d * len(pcfg.store_specs(cfg, "D")))
    finalize = tile_rules["kernel_finalize"]
    assert finalize.bytes_read == pytest.approx(all_stores + finalize.jobs * ckpt)  # its store, no data
    # a tile job reads its rows where the data lie, in whole chunks of 1,024 rows: here all 90 rows (one chunk)
    assert tile_rules["kernel_tile"].bytes_read == pytest.approx(tile_rules["kernel_tile"].jobs * (data + ckpt))
    paper = {r.rule: r for r in plan_workflow(pcfg.load_config(REPO / "configs" / "paper-cifar10.yaml",
                                                                check_files=False), FIXED_CPU, cores=2).rules}
    per_job = {k: paper[k].bytes_read / paper[k].jobs for k in ("kernel_init", "kernel_tile")}
    assert per_job["kernel_tile"] < 0.7 * per_job["kernel_init"], per_job  # CIFAR-10: its rows, not 60,000 images
    assert "no shared filesystem (--default-storage-provider): " in format_plan(per_tile)


def test_one_process_analysis_fetches_both_jobs_inputs():
    """regression.jobs: with_diagnostics: one diagnostics_regression job per checkpoint fetches the regression's
    stores, data and checkpoint and the diagnostics' stores (a bug dropped the first three)."""
    cfg = load("tiny")
    cfg["kernels"]["jobs"], cfg["diagnostics"]["train_on"] = "per_checkpoint", "train"
    cfg["regression"]["jobs"] = "with_diagnostics"
    plan = plan_workflow(cfg, FIXED_CPU, cores=2)
    rules = {r.rule: r for r in plan.rules}
    one = rules["diagnostics_regression"]
    stores = store_bytes(cfg, "pntk", "train", "train", 10) + store_bytes(cfg, "pntk", "test", "train", 10)
    subsets = sum(store_bytes(cfg, k, *pcfg.find_store(cfg, k, r, "sub-train"), 10)
                  for k in ("entk", "pntk") for r in ("sub-train", "sub-test"))
    data = rules["prepare_data"].bytes_written
    ckpt = rules["train"].bytes_written / rules["train"].jobs / len(cfg["train"]["checkpoint_epochs"])
    assert one.bytes_read / one.jobs == pytest.approx(stores + data + ckpt + subsets)


# ----------------------------------------------------------------------------- FLOPs
class Branchy(nn.Module):
    """A parameter used twice and a module without a layer rule: the engine's fallback path."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Linear(12, 7)
        self.scale = nn.Parameter(torch.ones(7))
        self.out = nn.Linear(7, 3)

    def forward(self, x):
        h = torch.tanh(self.emb(x.flatten(1)) * self.scale)
        return self.out(h * self.scale)


MODELS = {
    "fcn": (lambda: init_model(ModelSpec("fcn", 16, (1, 4, 4), 5), 0), (1, 4, 4)),
    "convnet": (lambda: init_model(ModelSpec("convnet", 4, (3, 8, 8), 5, depth=3), 0), (3, 8, 8)),
    "resnet18": (lambda: init_model(ModelSpec("resnet18", 4, (3, 8, 8), 5), 0), (3, 8, 8)),
    "branchy": (Branchy, (3, 2, 2)),
}


@pytest.mark.parametrize("arch", list(MODELS))
@pytest.mark.parametrize("kind", ["pntk", "entk", "trace"])
@pytest.mark.parametrize("n2", [None, 5])
def test_kernel_flops_from_shapes_are_the_engines_model_on_real_inputs(arch, kind, n2):
    """The plan probes zero inputs of the right shape (no data); the engine's flop_count on real data agrees."""
    build, shape = MODELS[arch]
    model = build().eval()
    gen = torch.Generator().manual_seed(0)
    x1 = torch.randn(7, *shape, generator=gen)
    x2 = None if n2 is None else torch.randn(n2, *shape, generator=gen)
    expected = flop_count(model, x1, x2, kind=kind)["total"]
    assert expected > 0
    assert kernel_flops(model, shape, 7, n2, kind) == expected


def test_plan_kernel_flops_are_the_sum_over_tiles():
    """Ragged tiles (tiny: 60 train, 30 test; tile 25), flop_count of every tile on real-shaped inputs, for the
    runs of the train split and the networks trained on D (each with its own stores and checkpoints)."""
    cfg = load("tiny")
    cfg["kernels"]["tile_size"] = 25
    plan = {r.rule: r for r in plan_workflow(cfg, FIXED_CPU, cores=2).rules}
    spec = pcfg.data_spec(cfg)
    expected = 0.0
    for on in ("train", "D"):
        per_checkpoint = 0.0
        for m in cfg["models"]:
            for w in m["widths"]:
                model = init_model(ModelSpec("fcn", w, spec.in_shape, spec.num_classes, m["depth"]), 0)
                for kind, rows, cols in pcfg.store_specs(cfg, on):
                    n1, n2 = pcfg.index_set_size(cfg, rows), pcfg.index_set_size(cfg, cols)
                    for i, j in pcfg.tile_grid(cfg, rows, cols):
                        r, c = min(25, n1 - 25 * i), min(25, n2 - 25 * j)
                        diag = rows == cols and i == j
                        x1, x2 = torch.randn(r, *spec.in_shape), torch.randn(c, *spec.in_shape)
                        per_checkpoint += flop_count(model, x1, None if diag else x2, kind=kind)["total"]
        expected += per_checkpoint * len(pcfg.checkpoint_epochs(cfg, on)) * len(cfg["seeds"])
    assert plan["kernel_tile"].flops == pytest.approx(expected, rel=1e-12)


def test_train_flops_of_an_fcn_match_the_count_by_hand():
    """FlopCounterMode on the real model: forward 2(Dw + w² + wO); backward twice that, less the input
    gradient of the first layer (the data need none)."""
    d, w, o = 64, 32, 10
    f = model_facts(ModelSpec("fcn", w, (1, 8, 8), o, 3))
    forward = 2 * (d * w + w * w + w * o)
    assert f.forward_flops == forward
    assert f.train_flops == 3 * forward - 2 * d * w
    assert f.n_params == d * w + w + w * w + w + w * o + o


def test_mlmoc_entk_is_priced_by_its_look_ahead_not_only_its_kernel():
    """The eNTK look-ahead holds Σ(S, S) of (|S|·O)² entries and forms its lower triangle by a GEMM with |L|·O
    inner dimension: (|S|O)²|L|O float64 flops per cycle, which the plan counts beside the kernel and the fits."""
    acfg = {"initial": 50, "per_cycle": 10, "cycles": 2, "pool_subset": 500, "epochs": 1, "batch_size": 32,
            "naive_pool": 30, "naive_epochs": 15, "retrain": "warm", "block_check": 0, "block_check_entk": 0,
            "device": "cpu"}
    spec = ModelSpec("fcn", 64, (1, 8, 8), 10, 3)
    cm = CostModel(FIXED_CPU, None)
    entk, pntk = cm.active(spec, acfg, "mlmoc-entk", 100), cm.active(spec, acfg, "mlmoc-pntk", 100)
    sigma = sum(1.0 * (500 * 10) ** 2 * (n_lab * 10) for n_lab in (50, 60))  # the two acquiring cycles
    kernels = sum(kernel_flops_of(spec, "entk", n_lab + 500, None) for n_lab in (50, 60))
    assert entk.flops - kernels > sigma
    assert entk.seconds - pntk.seconds > sigma / FIXED_CPU.fp64_flops_1t  # 2.5 s at the fixed profile's rate


def test_out_of_core_regression_peak_counts_a_stored_tile_per_worker():
    """The streaming solvers read each tile whole into one buffer per worker (ZarrKernelOperator.stream):
    at CIFAR-10 (10,000² float32 tiles, 2 workers) that is 0.8 GB beside F and FᵀF, measured in the
    N = 50,000 run; the plan counted a 256 MiB budget instead and under-estimated the job by 2 GB."""
    rcfg = {"solver": "auto", "memory_cap_gb": 8, "ridge": 0.01, "ridge_scale": "mean_diagonal",
            "nystrom_rank": 12000, "nystrom_landmarks": "rpcholesky", "times": [], "device": "cpu"}
    cm = CostModel(FIXED_CPU, None)
    n, m, o, tile = 50_000, 10_000, 10, 10_000
    one, two = (cm.regression(n, m, o, rcfg, 1e10, 2e9, 1e7, threads, "float32", tile=tile, input_values=3072)
                for threads in (1, 2))
    factor = 4 * n * 12000 + 8 * 12000**2  # F float32, FᵀF float64
    assert two.peak_bytes - one.peak_bytes >= 4 * tile * tile  # the second worker's tile
    assert two.peak_bytes >= factor + 2 * 4 * tile * tile
    small = cm.regression(n, m, o, rcfg, 1e10, 2e9, 1e7, 2, "float32", tile=1000, input_values=3072)
    assert two.peak_bytes - small.peak_bytes >= 2 * 4 * (tile * tile - 1000 * 1000)


# ----------------------------------------------------------------------------- bytes
def chunk_files(array_dir: Path) -> int:
    return sum(f.stat().st_size for f in (array_dir / "c").rglob("*") if f.is_file())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_store_bytes_are_what_a_real_store_holds(small_digits_store, fcn_checkpoint, tmp_path, dtype, one_thread):
    """Stores written by the real checkpoint job (80 × 40 and 10 × 10 × 10 × 10 in ragged tiles of 6): the
    plan's bytes are every chunk of every array decoded (Zarr pads edge chunks); float32 kernels are stored
    uncompressed, so their chunk files on disk add up to exactly the plan's kernel bytes."""
    cfg = pcfg.validate_config({
        "data": {"name": "digits", "train_size": 80, "test_size": 40, "subset_train": 10, "subset_test": 6},
        "models": [{"arch": "fcn", "widths": [8], "depth": 2}],
        "kernels": {"tile_size": 6, "dtype": dtype, "kinds": ["pntk", "entk"],
                    "index_sets": {"pntk": [["test", "train"]], "entk": [["sub-train", "sub-train"]]}},
        "diagnostics": {"enabled": False}})
    specs = pcfg.store_specs(cfg)
    manifests = [tmp_path / "kernels" / f"{k}-{r}-{c}.manifest.json" for k, r, c in specs]
    kcfg = {**cfg["kernels"], "device": "cpu"}
    kernel_jobs.checkpoint_job(manifests, specs, data_path=small_digits_store, checkpoint=fcn_checkpoint,
                               kernels_cfg=kcfg, data_cfg=cfg["data"])
    o = pcfg.num_classes(cfg)
    for (kind, rows, cols), manifest in zip(specs, manifests, strict=True):
        path = StorePaths.of(manifest).store
        arrays = dict(zarr.open_group(str(path), mode="r").arrays())
        decoded = {name: a.nchunks * math.prod(a.chunks) * a.dtype.itemsize for name, a in arrays.items()}
        planned = store_bytes(cfg, kind, rows, cols, o)
        assert planned == sum(decoded.values())
        on_disk = chunk_files(path / "kernel")
        if dtype == "float32":
            assert on_disk == decoded["kernel"]
        else:
            assert 0 < on_disk <= decoded["kernel"]


def test_checkpoint_bytes_are_the_saved_state():
    spec = ModelSpec("fcn", 16, (1, 8, 8), 10, 3)
    model = init_model(spec, 0)
    assert model_facts(spec).state_bytes == sum(t.numel() * t.element_size() for t in model.state_dict().values())


# ----------------------------------------------------------------------------- solver and devices
@pytest.mark.parametrize("cap_factor", [0.5, 1.0, 2.0])
def test_choose_solver_is_what_linearized_predict_runs(cap_factor):
    n, o = 40, 3
    rng = np.random.default_rng(0)
    a = rng.normal(size=(n + 5, 8))
    k = a @ a.T + np.eye(n + 5)
    cap = int(cap_factor * 16 * n * n)
    y = np.eye(o)[rng.integers(0, o, n)]  # (n, O) one-hot
    _, info = linearized_predict(k[:n, :n], k[n:, :n], None, None, y, solver="auto",
                                 memory_cap_bytes=cap, return_info=True, tol=1e-10)
    assert info["solver"] == choose_solver("auto", n, cap)


def test_named_gpu_profiles():
    a100 = plan_devices.device_profile("a100")
    assert (a100.name, a100.kind, a100.fp32_flops, a100.memory_bytes) == ("a100-40gb", "cuda", 19.5e12, 40e9)
    h100 = plan_devices.device_profile("H100")
    assert h100.fp32_flops > a100.fp32_flops and h100.flops("float64", 1) == 34e12
    cm_a, cm_h = CostModel(FIXED_CPU, a100), CostModel(FIXED_CPU, h100)
    secs = [cm.compute_s("cuda", 1e15, "float32", 8, "kernel") for cm in (cm_a, cm_h)]
    assert secs[0] / secs[1] == pytest.approx(67 / 19.5)
    assert cm_a.compute_s("cpu", 1e12, "float32", 1, "kernel") == cm_h.compute_s("cpu", 1e12, "float32", 1, "kernel")


def on_cuda(cfg: dict) -> dict:
    for key in ("train", "kernels", "regression"):
        cfg[key]["device"] = "cuda"
    return cfg


def test_gpu_plan_puts_cuda_rules_on_the_gpu():
    cfg = on_cuda(load("tiny"))
    rules = {r.rule: r for r in plan_workflow(cfg, plan_devices.device_profile("v100")).rules}
    assert {r for r, p in rules.items() if p.device == "cuda"} == {"train", "train_on_D", "kernel_tile", "regression"}
    assert rules["kernel_tile"].threads == cfg["resources"]["cpus_per_gpu"]
    cpu_plan = plan_workflow(cfg, FIXED_CPU, cores=2)
    assert any("cuda in the config; estimated on this CPU" in n for n in cpu_plan.notes)


def test_a_dense_solve_larger_than_the_gpu_is_flagged():
    """CIFAR-10 on a 32 GB V100 with memory_cap_gb 64: auto picks Cholesky (2 × 20 GB), which does not fit."""
    cfg = on_cuda(load("cifar10-fcn-cpu"))
    cfg["regression"]["memory_cap_gb"] = 64
    plan = plan_workflow(cfg, plan_devices.device_profile("v100"))
    regression = next(r for r in plan.rules if r.rule == "regression")
    assert regression.peak_bytes > 40e9 and "solver cholesky" in regression.notes
    assert "WARNING: peak memory above the device's 32 GB: regression" in format_plan(plan)


def test_bad_device_name_is_a_clear_error(capsys):
    with pytest.raises(ValueError, match="unknown device 'tpu'.*a100"):
        plan_devices.device_profile("tpu")
    with pytest.raises(SystemExit) as err:
        main(["plan", "--config", str(CONFIGS["tiny"]), "--device", "tpu"])
    assert err.value.code == 2
    msg = capsys.readouterr().err
    assert "unknown device 'tpu'" in msg and "h100" in msg


def test_cpu_calibration_is_cached_per_host_and_redone_on_request(tmp_path, monkeypatch):
    monkeypatch.setenv("PNTK_CACHE_DIR", str(tmp_path))
    calls = []

    def fake(threads):
        calls.append(threads)
        return FIXED_CPU

    monkeypatch.setattr(plan_devices, "calibrate_cpu", fake)
    assert plan_devices.cpu_profile(2) == FIXED_CPU
    assert plan_devices.cpu_profile(2) == FIXED_CPU and calls == [2]
    plan_devices.cpu_profile(2, calibrate=True)
    plan_devices.cpu_profile(1)  # another thread count is another calibration
    assert calls == [2, 2, 1]


def test_cli_json_plan_on_a_named_gpu(capsys):
    assert main(["plan", "--config", str(CONFIGS["tiny"]), "--device", "a100", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {r["rule"]: r["jobs"] for r in out["rules"]} == job_counts(load("tiny"))
    assert out["device"]["name"] == "a100-40gb" and out["jobs"] == sum(job_counts(load("tiny")).values())
    assert out["store_bytes"] > 0 and math.isfinite(out["wall_seconds"])


def test_cli_text_plan_is_an_aligned_table(capsys):
    assert main(["plan", "--config", str(CONFIGS["tiny"]), "--device", "h200"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("rule "))
    rows = lines[header:header + 2 + len(job_counts(load("tiny"))) + 2]
    assert len({line.index("jobs") + 4 for line in rows[:1]}) == 1
    assert all(len(line.split()) >= 2 for line in rows)
    tiles = job_counts(load("tiny"))["kernel_tile"]
    assert any(line.startswith("kernel_tile") and f" {tiles} " in line for line in rows)


# ----------------------------------------------------------------------------- a run's log
LOG = """Building DAG of jobs...
[Mon Nov 30 19:54:47 2026]
localrule prepare_data:
    output: results/data/digits.zarr
    jobid: 1
    resources: tmpdir=/tmp

[Mon Nov 30 19:54:52 2026]
Finished jobid: 1 (Rule: prepare_data)
[Mon Nov 30 19:54:52 2026]
rule train:
    jobid: 4
[Mon Nov 30 19:54:53 2026]
rule train:
    jobid: 5
[Mon Nov 30 19:55:52 2026]
Finished jobid: 5 (Rule: train)
[Mon Nov 30 19:56:02 2026]
Finished jobid: 4 (Rule: train)
"""


def test_job_durations_and_comparison_from_a_snakemake_log():
    durations = job_durations(LOG)
    assert durations == {"prepare_data": [5.0], "train": [59.0, 70.0]}
    cfg = load("tiny")
    plan = plan_workflow(cfg, FIXED_CPU, cores=2)
    rows = {r["rule"]: r for r in compare(plan, durations)}
    assert set(rows) == {"prepare_data", "train"}
    train = next(r for r in plan.rules if r.rule == "train")
    assert rows["train"]["ratio"] == pytest.approx(train.job_seconds / 129.0)
    assert rows["train"]["jobs_measured"] == 2


def test_compare_takes_the_logs_of_a_glob(tmp_path, capsys):
    """After `make run`, .snakemake/log/*.log is the workflow's log and the --report run's (no job)."""
    run_log, report_log = tmp_path / "2026-11-30T195447.1.snakemake.log", tmp_path / "2026-11-30T200101.2.snakemake.log"
    run_log.write_text(LOG)
    report_log.write_text("Building DAG of jobs...\nCreating report...\n")
    assert main(["plan", "--config", str(CONFIGS["tiny"]), "--device", "a100", "--compare", str(report_log),
                 str(run_log)]) == 0
    out = capsys.readouterr().out
    assert f"against {run_log} (of the 2 logs given, the newest with finished jobs):" in out
    assert main(["plan", "--config", str(CONFIGS["tiny"]), "--device", "a100", "--compare", str(report_log)]) == 2
    assert "no finished job" in capsys.readouterr().err


def test_plans_configs_with_model_kwargs():
    """ModelSpec carries kwargs (a dict): the plan's per-spec caches hash it (they raised TypeError)."""
    cfg = load("tiny")
    cfg["models"] = [{"arch": "fcn", "widths": [16], "depth": 2, "name": "fcn-a"},
                     {"arch": "fcn", "widths": [16], "depth": 3, "name": "fcn-b"}]
    cfg = pcfg.validate_config(cfg)
    spec = pcfg.model_spec(cfg, "fcn-a", 16)
    with_kwargs = ModelSpec("tests.nowhere:f", 16, spec.in_shape, spec.num_classes, kwargs={"depth": 2})
    assert hash(with_kwargs) == hash(ModelSpec("tests.nowhere:f", 16, spec.in_shape, spec.num_classes,
                                               kwargs={"depth": 2}))
    assert model_facts(spec) is model_facts(pcfg.model_spec(cfg, "fcn-a", 16))  # cached per spec
    plan = plan_workflow(cfg, FIXED_CPU, cores=2)
    assert {r.rule: r.jobs for r in plan.rules}["train"] == 2


def test_the_plan_does_not_change_the_config():
    cfg = load("tiny")
    before = copy.deepcopy(cfg)
    plan_workflow(cfg, FIXED_CPU, cores=2)
    assert cfg == before


def _threads_by_rule(output: str) -> dict[str, set[int]]:
    """{rule: thread counts of its jobs} from `snakemake -n` (a job prints 'threads: N' when N > 1)."""
    out: dict[str, set[int]] = {}
    rule = None
    for line in output.splitlines():
        m = re.match(r"^(?:local)?rule (\w+):", line)
        if m:
            rule = m.group(1)
            out.setdefault(rule, set()).add(1)
            continue
        m = re.match(r"^\s+threads: (\d+)", line)
        if m and rule:
            out[rule].discard(1)
            out[rule].add(int(m.group(1)))
    return out


@pytest.mark.slow
def test_small_regressions_take_one_core_large_ones_all(tmp_path):
    """A job asking for every core waits until all are free: the default run's 20 small regressions must
    take one core (else they ran last, one at a time); the CIFAR-10 one streams 10 GB and takes both."""
    threads = {}
    for name in ("default", "cifar10-fcn-cpu"):
        proc = subprocess.run([SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path), "-n",
                               "--configfile", str(CONFIGS[name]), "--cores", "2"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)
        assert proc.returncode == 0, proc.stdout[-4000:]
        threads[name] = _threads_by_rule(proc.stdout)
    assert threads["default"]["regression"] == {1} and threads["default"]["train"] == {2}
    assert threads["default"]["diagnose_on_D"] == {1}  # a network on D: small, one core beside the others
    assert threads["cifar10-fcn-cpu"]["regression"] == {2}


def test_comparison_allows_the_logs_one_second_resolution():
    """Snakemake stamps whole seconds: a job logged as 0 s took up to 1 s; minutes-long jobs keep ±50 %."""
    from types import SimpleNamespace

    def within(planned: float, measured: list[float]) -> bool:
        plan = SimpleNamespace(rules=[SimpleNamespace(rule="r", jobs=len(measured), job_seconds=planned)])
        return compare(plan, {"r": measured})[0]["within"]

    assert within(1.3, [0.0]) and not within(1.6, [0.0])  # (1 + 50 %) × 1 s
    assert within(2.5, [2.0]) and not within(4.6, [2.0])  # ±50 % of [1 s, 3 s]
    assert within(140.0, [100.0]) and not within(152.0, [100.0])  # ±50 % of [99, 101] s
    assert not within(40.0, [100.0])


def test_gpu_lines_use_what_device_check_recorded(tmp_path, monkeypatch):
    """A device-<gpu>.json written by device_check.sh replaces COSTS' kernel efficiency and the resident pass
    rate for that GPU, and the rates line says so; an unreadable record is ignored and said."""
    monkeypatch.setenv("PNTK_CACHE_DIR", str(tmp_path))
    before = plan_devices.gpu_profile("h100")
    assert before.kernel_efficiency is None and "no device_check record" in before.source
    slow = CostModel(FIXED_CPU, before).compute_s("cuda", 1e15, "float32", 1, "kernel")
    (tmp_path / "device-h100.json").write_text(json.dumps({"kernel_efficiency": 0.25, "date": "2026-12-07 03:00",
                                                           "regression_resident_bps": 2.0e12, "gpu": "NVIDIA H100"}))
    after = plan_devices.gpu_profile("h100")
    assert after.kernel_efficiency == 0.25 and after.resident_pass_bps == 2.0e12
    assert "kernel efficiency 0.25, resident pass 2000 GB/s measured by device_check.sh on 2026-12-07" in after.source
    measured = CostModel(FIXED_CPU, after).compute_s("cuda", 1e15, "float32", 1, "kernel")
    assert measured == pytest.approx(2 * slow)  # 0.25 instead of COSTS' 0.5
    (tmp_path / "device-h100.json").write_text("{not json")
    assert "unreadable, ignored" in plan_devices.gpu_profile("h100").source


def test_sizes_that_round_up_take_the_next_prefix():
    from pntk.plan.text import _si

    assert _si(999.6e6, "B") == "1 GB" and _si(999.4e6, "B") == "999 MB"  # not "1e+03 MB"
    assert _si(1234, "B") == "1.23 kB" and _si(0, "B") == "–"

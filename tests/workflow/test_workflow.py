"""The real Snakemake workflow on tests/configs/tiny.yaml, in a temporary folder.

One full run is shared by the tests of this module (module-scoped fixture): outputs exist and are
readable, a second `snakemake -n` has nothing to do, adding a width schedules only that width's jobs,
a run killed with SIGKILL while tile jobs run resumes to a bitwise-identical kernel store, and
`kernels.jobs: per_checkpoint` writes the same stores with one job per checkpoint.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from dry_run import job_counts

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
TINY = REPO / "tests" / "configs" / "tiny.yaml"

pytestmark = pytest.mark.slow


def snakemake(workdir: Path, *args: str, config: Path | None = None, check: bool = True, timeout: int = 900):
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(config or workdir / "config.yaml"), "--cores", "2", *args]
    # Snakemake logs to stderr: merge it into stdout so callers can parse one stream.
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-6000:]}")
    return proc


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("tiny")
    shutil.copy(TINY, work / "config.yaml")
    t0 = time.perf_counter()
    snakemake(work)
    print(f"tiny workflow: {time.perf_counter() - t0:.1f} s")
    return work


def test_outputs_exist_and_are_readable(tiny_run):
    import xarray as xr

    from pntk.report.figure_table import FIGURES

    res = tiny_run / "results"
    cfg = yaml.safe_load(TINY.read_text())
    runs = sorted((res / "runs" / "digits").iterdir())
    on_d = [r for r in runs if r.name.endswith("-onD")]  # the networks of Figs 2–8, trained on D
    n_runs = len(cfg["models"][0]["widths"]) * len(cfg["seeds"])
    assert len(runs) == 2 * n_runs and len(on_d) == n_runs
    for run in runs:
        key = "diagnostics" if run in on_d else "train"
        for e in cfg[key]["checkpoint_epochs"]:
            assert (run / "checkpoints" / f"epoch{e:03d}.pt").is_file()
        log = (run / "train_log.csv").read_text().splitlines()
        assert len(log) == 1 + cfg[key]["epochs"] + 1, run  # header, epoch 0 .. epochs
    manifests = sorted(res.glob("runs/*/*/epoch*/kernels/*.manifest.json"))
    n_train_stores = sum(len(v) for v in cfg["kernels"]["index_sets"].values())
    assert len(manifests) == n_runs * (len(cfg["train"]["checkpoint_epochs"]) * n_train_stores
                                       + len(cfg["diagnostics"]["checkpoint_epochs"]) * 4)
    store = manifests[0].with_name(manifests[0].name.replace(".manifest.json", ".zarr"))
    da = xr.open_zarr(store)["kernel"]
    assert not np.isnan(da.values).any()
    assert {"row", "col", "row_label", "col_label"} <= set(da.coords)
    for table in ("diagnostics", "regression", "training", "rate", "infinite"):
        assert (res / "tables" / f"{table}.csv").stat().st_size > 0
    assert json.loads((res / "tables" / "infinite_regression.json").read_text())["test_acc"]["fcn"] > 0.5
    pngs = sorted(p.name for p in (res / "figures").glob("*.png"))
    assert len(pngs) == len(FIGURES), pngs
    for stage in ("timing", "frobenius-norm", "frobenius-distance", "flin", "sgd", "data-samples", "kernel-heatmap",
                  "infinite", "rate"):
        assert any(stage in p for p in pngs), stage


def test_claims_and_warnings_tables(tiny_run):
    """claims.csv has a verdict per claim (tiny: 2 widths × 1 seed, so width trends cannot be decided), every
    tidy table says per run whether it learned, and warnings.csv names each run that did not."""
    import pandas as pd

    from pntk.cli import main
    from pntk.report.claims import COLUMNS, VERDICTS
    from pntk.report.verdicts import WARNING_COLUMNS
    from pntk.runs import Run

    tables = tiny_run / "results" / "tables"
    claims = pd.read_csv(tables / "claims.csv", keep_default_na=False)
    assert list(claims.columns) == COLUMNS and set(claims.verdict) <= set(VERDICTS)
    assert {"fig3-norm-width:fcn", "thm1-rate:fcn", "fig8-always", "first-logit", "sec5-infinite:fcn",
            "infinite-rate:pntk"} <= set(claims.id)
    width = claims.set_index("id").loc["fig3-norm-width:fcn"]
    assert width.verdict == "inconclusive" and "even a perfect ordering" in width.detail, width.to_dict()
    assert (claims.quote != "").all() and (claims.source != "").all()
    warnings = pd.read_csv(tables / "warnings.csv", keep_default_na=False)
    assert list(warnings.columns) == WARNING_COLUMNS
    diag = pd.read_csv(tables / "diagnostics.csv")
    assert set(diag.trained_on) == {"D"}  # Figs 2–8 read the networks trained on D
    for name in ("diagnostics", "regression", "training"):
        df = pd.read_csv(tables / f"{name}.csv")
        assert df.learned.dtype == bool, name
        not_learned = {Run.of_row(r).name for r in df[~df.learned].itertuples()}
        assert not_learned <= set(warnings[warnings.source == "train"].run), name
    assert main(["claims", str(tables / "claims.csv")]) == 0


def test_kernel_store_symmetric_and_matches_engine(tiny_run):
    """The tiled train×train pNTK equals the one-shot engine result on the same checkpoint."""
    import torch
    import xarray as xr

    from pntk.data import open_prepared
    from pntk.kernels import empirical_kernel
    from pntk.train import load_checkpoint

    run = tiny_run / "results" / "runs" / "digits" / "fcn-w16-s0"
    k = xr.open_zarr(run / "epoch002" / "kernels" / "pntk-train-train.zarr")["kernel"]
    data = open_prepared(tiny_run / "results" / "data" / "digits")
    model, _ = load_checkpoint(run / "checkpoints" / "epoch002.pt")
    x = torch.as_tensor(data.x[k.row.values], dtype=torch.float64)
    ref = empirical_kernel(model.double(), x, kind="pntk", method="reference").numpy()
    np.testing.assert_allclose(k.values, ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(k.values, k.values.T)


def test_rerun_has_nothing_to_do(tiny_run):
    out = snakemake(tiny_run, "-n").stdout
    assert job_counts(out) == {}, out[-2000:]


def test_adding_a_width_schedules_only_that_width(tiny_run, tmp_path):
    cfg = yaml.safe_load(TINY.read_text())
    cfg["models"][0]["widths"].append(48)
    new = tmp_path / "wider.yaml"
    new.write_text(yaml.safe_dump(cfg))
    out = snakemake(tiny_run, "-n", config=new).stdout
    counts = job_counts(out)
    assert counts.get("train") == counts.get("train_on_D") == len(cfg["seeds"]), counts
    assert "prepare_data" not in counts and "timing" not in counts and "infinite_width" not in counts
    outputs = "\n".join(line for line in out.splitlines() if line.strip().startswith("output:"))
    scheduled = set(re.findall(r"runs/digits/(fcn-w\d+-s\d+(?:-onD)?)/", outputs))
    assert scheduled == {f"fcn-w48-s{s}{on}" for s in cfg["seeds"] for on in ("", "-onD")}, scheduled
    train_epochs = len(cfg["seeds"]) * len(cfg["train"]["checkpoint_epochs"])
    d_epochs = len(cfg["seeds"]) * len(cfg["diagnostics"]["checkpoint_epochs"])
    assert counts["kernel_init"] == counts["kernel_finalize"] == 4 * train_epochs + 4 * d_epochs, counts
    assert counts["diagnostics"] == d_epochs and counts["regression"] == train_epochs, counts
    assert {"tables", "figures"} <= set(counts)


def test_networks_at_init_join_the_epoch_zero_rows(tiny_run, tmp_path):
    """diagnostics.at_init on a finished run: only diagnose_at_init jobs and the aggregating ones are scheduled
    (one per width left with a network: seed 0 of w16/w32 is the trained runs' epoch 0), and the diagnostics
    table gets their epoch-0 rows (trained_on init, learned) with readout widths, which the rate fit reads."""
    import pandas as pd

    work = tmp_path / "w"
    shutil.copytree(tiny_run, work, symlinks=True)  # copy2: mtimes kept, so nothing upstream is out of date
    cfg = yaml.safe_load(TINY.read_text())
    cfg["diagnostics"]["at_init"] = {"seeds": [0, 1], "widths": {"fcn": [16, 64]}}
    (work / "config.yaml").write_text(yaml.safe_dump(cfg))
    tables = ["results/tables/diagnostics.csv", "results/tables/rate.csv"]
    counts = job_counts(snakemake(work, "-n", *tables).stdout)
    assert counts == {"diagnose_at_init": 2, "tables": 1}, counts
    snakemake(work, *tables)
    diag = pd.read_csv(work / tables[0])
    init = diag[diag.trained_on == "init"]
    assert sorted({(int(w), int(s)) for w, s in zip(init.width, init.seed)}) == [(16, 1), (64, 0), (64, 1)]
    assert set(init.epoch) == {0} and init.learned.all() and init.readout_width.notna().all()
    assert "pred_rel_diff" not in set(init.statistic)  # statistics on D only: no X, no regression
    rate = pd.read_csv(work / tables[1])
    assert rate[rate.arch == "fcn"].readout_widths.iloc[0] == "16 32 64"


def _small_tile_config(path: Path) -> Path:
    cfg = yaml.safe_load(TINY.read_text())
    cfg["kernels"]["tile_size"] = 16  # 60 train examples: 4 ragged row tiles, 10 tile jobs (i <= j)
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_sigkill_during_tiles_resumes_bitwise_equal(tmp_path):
    """Kill Snakemake and its jobs (SIGKILL) once a tile flag exists; the rerun recomputes only the
    missing tiles and the store is bitwise equal to an uninterrupted run's."""
    import zarr

    stem = "results/runs/digits/fcn-w16-s0/epoch002/kernels/pntk-train-train"
    clean, work = tmp_path / "clean", tmp_path / "killed"
    for d in (clean, work):
        d.mkdir()
        _small_tile_config(d / "config.yaml")
    snakemake(clean, f"{stem}.manifest.json")

    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(work), "--configfile",
           str(work / "config.yaml"), "--cores", "2", f"{stem}.manifest.json"]  # same threads as the clean run
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    flags = work / f"{stem}.tiles"
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if flags.is_dir() and len(list(flags.glob("*.json"))) >= 4:
            break
        time.sleep(0.1)
    assert proc.poll() is None, "workflow finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = {p.name.removesuffix(".json") for p in flags.glob("*.json")}
    assert done_before and not (work / f"{stem}.manifest.json").exists()

    snakemake(work, "--unlock")  # the killed Snakemake left its lock, as after a power loss
    out = snakemake(work, "--rerun-incomplete", f"{stem}.manifest.json").stdout
    outputs = "\n".join(line for line in out.splitlines() if line.strip().startswith("output:"))
    rerun = set(re.findall(r"\.tiles/(\d+_\d+)\.json", outputs))
    # A tile job whose flag was written but whose end Snakemake had not yet registered (at most one per
    # core, 2 here) counts as incomplete and is redone; every other finished tile must be kept.
    assert rerun and len(done_before - rerun) >= len(done_before) - 2, (rerun, done_before)
    assert len(rerun | done_before) == 10
    a = zarr.open_group(str(clean / f"{stem}.zarr"), mode="r")["kernel"][...]
    b = zarr.open_group(str(work / f"{stem}.zarr"), mode="r")["kernel"][...]
    assert a.tobytes() == b.tobytes()
    ma = json.loads((clean / f"{stem}.manifest.json").read_text())["tiles"]
    mb = json.loads((work / f"{stem}.manifest.json").read_text())["tiles"]
    assert ma == mb and len(ma) == 16


def test_per_checkpoint_jobs_write_the_same_stores(tiny_run, tmp_path):
    """kernels.jobs: per_checkpoint plans one kernel_checkpoint job per checkpoint instead of init/tile/
    finalize jobs per store, and leaves the same finalized stores as the per-tile run (bitwise)."""
    import zarr

    from pntk.provenance import sha256_file
    from pntk.store import tiles
    from pntk.store.paths import StorePaths

    cfg = yaml.safe_load(TINY.read_text())
    cfg["kernels"]["jobs"] = "per_checkpoint"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    run = "results/runs/digits/fcn-w16-s0"
    stores = [f"{k}-{r}-{c}" for k, pairs in cfg["kernels"]["index_sets"].items() for r, c in pairs]
    epochs = cfg["train"]["checkpoint_epochs"]
    targets = [f"{run}/epoch{e:03d}/kernels/{s}.manifest.json" for e in epochs for s in stores]

    assert job_counts(snakemake(tmp_path, "-n", *targets).stdout) == {
        "prepare_data": 1, "train": 1, "kernel_checkpoint": len(epochs)}
    snakemake(tmp_path, *targets)
    for e in epochs:  # training is deterministic on CPU: the same checkpoints as the per-tile run
        ckpt = f"{run}/checkpoints/epoch{e:03d}.pt"
        assert sha256_file(tmp_path / ckpt) == sha256_file(tiny_run / ckpt)
    for target in targets:
        store = StorePaths.of(tmp_path / target).store
        assert tiles.verify(store)["ok"], target
        ours = zarr.open_group(str(store), mode="r")["kernel"][...]
        theirs = zarr.open_group(str(StorePaths.of(tiny_run / target).store), mode="r")["kernel"][...]
        assert ours.tobytes() == theirs.tobytes(), target
    out = snakemake(tmp_path, "-n", *targets).stdout
    assert job_counts(out) == {}, out[-2000:]


def test_fewer_processes_write_the_same_results(tiny_run, tmp_path):
    """regression.jobs: with_diagnostics runs diagnostics and regression in one job per checkpoint, and
    active.jobs: per_seed every strategy of a seed in one job: the same files, with the same numbers as the
    separate jobs (the tiny run's; active learning: each strategy run on its own, as per_strategy does)."""
    import pandas as pd

    from pntk.active.loop import ALConfig, run_from_store

    cfg = yaml.safe_load(TINY.read_text())
    cfg["regression"]["jobs"] = "with_diagnostics"  # diagnostics and regression of the same (train) runs
    cfg["diagnostics"]["train_on"] = "train"
    cfg["active"] = {"enabled": True, "jobs": "per_seed", "strategies": ["random", "mlmoc-pntk"], "seeds": [0],
                     "initial": 10, "per_cycle": 5, "cycles": 1, "pool_subset": 20, "width": 16, "epochs": 3}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    epoch = f"results/runs/digits/fcn-w16-s0/epoch{cfg['train']['checkpoint_epochs'][-1]:03d}"
    analysis = [f"{epoch}/diagnostics.json", f"{epoch}/regression.json"]
    active = [f"results/active/digits/{s}-s0.csv" for s in cfg["active"]["strategies"]]

    counts = job_counts(snakemake(tmp_path, "-n", *analysis, *active).stdout)
    assert counts["diagnostics_regression"] == 1 and counts["active_learning_seed"] == 1
    assert not {"diagnostics", "regression", "active_learning"} & set(counts)
    snakemake(tmp_path, *analysis, *active)

    name = f"{epoch}/regression.json"
    ours, theirs = (json.loads((w / name).read_text()) for w in (tmp_path, tiny_run))
    for key in ("flin_test_acc", "model_test_acc"):
        assert ours[key] == pytest.approx(theirs[key], rel=1e-9), key
    assert json.loads((tmp_path / analysis[0]).read_text())["meta"]["trained_on"] == "train"
    logs = {n: (tmp_path / epoch / f"{n}.log").read_text() for n in ("diagnostics", "regression")}
    assert "diagnostics of" in logs["diagnostics"] and "f_lin test acc" not in logs["diagnostics"]
    assert "f_lin test acc" in logs["regression"] and "job usage" in logs["regression"]

    al = ALConfig.from_dict(cfg["active"])
    for strategy, csv in zip(cfg["active"]["strategies"], active, strict=True):
        alone, _ = run_from_store(tmp_path / "results" / "data" / "digits", strategy, 0, al)
        assert pd.read_csv(tmp_path / csv).test_acc.tolist() == pytest.approx([r["test_acc"] for r in alone])
    assert job_counts(snakemake(tmp_path, "-n", *analysis, *active).stdout) == {}


def test_one_job_per_network_on_d_writes_the_same_files(tiny_run, tmp_path):
    """diagnostics.jobs: per_run trains a network on D and computes every checkpoint's stores and diagnostics in
    one diagnose_on_D job: the same checkpoints, stores and statistics as the separate train_on_D, per-tile
    kernel and diagnostics jobs of the tiny run (bitwise at initialisation, to float32 rounding after)."""
    import torch
    import zarr

    from pntk.provenance import sha256_file

    cfg = yaml.safe_load(TINY.read_text())
    cfg["kernels"]["jobs"] = "per_checkpoint"
    cfg["diagnostics"]["jobs"] = "per_run"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    run = "results/runs/digits/fcn-w16-s0-onD"
    epochs = cfg["diagnostics"]["checkpoint_epochs"]
    targets = [f"{run}/epoch{e:03d}/diagnostics.json" for e in epochs]
    assert job_counts(snakemake(tmp_path, "-n", *targets).stdout) == {"prepare_data": 1, "diagnose_on_D": 1}
    snakemake(tmp_path, *targets)
    # Epoch 0 is bitwise the same. Later ones differ by float32 rounding only: the separate train_on_D job
    # trains with the cores it is given (-c 2), diagnose_on_D with one thread, and a matmul split over two
    # threads sums in another order (weights ~1e-8 apart after 10 steps).
    for e in epochs:
        ckpt = f"{run}/checkpoints/epoch{e:03d}.pt"
        if e == 0:
            assert sha256_file(tmp_path / ckpt) == sha256_file(tiny_run / ckpt)
        ours, theirs = (torch.load(w / ckpt, weights_only=False)["model"] for w in (tmp_path, tiny_run))
        assert ours.keys() == theirs.keys()
        for k in ours:
            torch.testing.assert_close(ours[k], theirs[k], rtol=1e-5, atol=1e-6, msg=f"{ckpt}: {k}")
        for store in ("entk-sub-train-sub-train", "pntk-sub-test-sub-train"):
            path = f"{run}/epoch{e:03d}/kernels/{store}.zarr"
            ours, theirs = (zarr.open_group(str(w / path), mode="r")["kernel"][...] for w in (tmp_path, tiny_run))
            if e == 0:
                assert ours.tobytes() == theirs.tobytes(), path
            np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-8 * np.abs(theirs).max(), err_msg=path)
        ours, theirs = (json.loads((w / targets[epochs.index(e)]).read_text()) for w in (tmp_path, tiny_run))
        assert ours["stats"] == pytest.approx(theirs["stats"], rel=1e-9 if e == 0 else 1e-3, nan_ok=True)
    assert job_counts(snakemake(tmp_path, "-n", *targets).stdout) == {}

"""The real workflow on the user's own model modules and .npz file, both outside the repository, and every
`pntk` command of README on its runs.

examples/my_models.py is copied to a folder beside the working directory, and examples/digits-small.npz is
written there as 3-channel images (so that a torchvision classifier runs too). The config is the shipped
examples/my-models.yaml, shrunk (`python_path: [../elsewhere]`), plus a `torchvision:` model: import-path
models with and without kwargs and names (a GroupNorm residual CNN, an nn.MultiheadAttention net), a built-in
under a name of its own, and torchvision's ShuffleNet. One run serves every test here: stores verify, equal
the reference engine and record their model, method and versions; `pntk ls/info/verify/plan [--compare]`
work on the runs; an archive packed here imports into a fresh checkout whose `snakemake -n` then schedules
no train or kernel job (also right after the clone); job logs hold no library warnings; an edit of the model
file re-runs the training that used it.
"""
from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml
from dry_run import job_counts

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
KINDS = {"pntk": [["train", "train"], ["test", "train"]],  # symmetric and rectangular stores of every kind
         "entk": [["sub-train", "sub-train"], ["sub-test", "sub-train"]],
         "first_logit": [["sub-test", "sub-train"]], "trace": [["sub-train", "sub-train"]]}
TORCHVISION = {"arch": "torchvision:shufflenet_v2_x0_5", "widths": [8]}  # 0.35 M parameters; width: a label
RUNS = ["attn-w8-s0", "cnn-w2-s0", "fcn-d2-w32-s0", "layernorm_mlp-w16-s0", "layernorm_mlp-w8-s0", "resgn-w8-s0",
        "tv-shufflenet_v2_x0_5-w8-s0"]
ON_D = [f"{r}-onD" for r in RUNS]  # the example's diagnostics.train_on: D: each network also trained on D
D_EPOCHS = [0, 30]  # their checkpoints (30 steps on 20 points: layernorm_mlp fits D, so rate.csv has it)
HEAVY_RULES = {"prepare_data", "train", "kernel_checkpoint", "kernel_init", "kernel_tile", "kernel_finalize"}

pytestmark = pytest.mark.slow


def snakemake(work: Path, *args: str, snakefile: Path = REPO / "Snakefile") -> subprocess.CompletedProcess:
    cmd = [SNAKEMAKE, "-s", str(snakefile), "--directory", str(work), "--configfile",
           str(work / "config.yaml"), "--cores", "2", *args]
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)


def pntk_cli(cwd: Path, *args: str, src: Path = REPO / "src") -> subprocess.CompletedProcess:
    """`pntk ARGS` in its own process, importing pntk from `src` (a checkout's library)."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run([sys.executable, "-m", "pntk.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def write_rgb_digits(path: Path) -> None:
    """examples/digits-small.npz with three differently scaled channels: (N, 8, 8) → (N, 3, 8, 8) uint8."""
    d = dict(np.load(EXAMPLES / "digits-small.npz"))
    for split in ("train", "test"):
        x = d[f"x_{split}"]
        d[f"x_{split}"] = np.stack([x, 255 - x, x // 2 + 64], axis=1).astype(np.uint8)
    np.savez(path, **d)


@pytest.fixture(scope="module")
def user_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("own")
    elsewhere, work = root / "elsewhere", root / "work"
    elsewhere.mkdir()
    work.mkdir()
    shutil.copy(EXAMPLES / "my_models.py", elsewhere / "my_models.py")
    write_rgb_digits(elsewhere / "digits.npz")
    cfg = yaml.safe_load((EXAMPLES / "my-models.yaml").read_text())  # the shipped example, shrunk
    cfg.update(results="results", python_path=["../elsewhere"], figures={"formats": ["png"]})
    cfg["data"].update(path="../elsewhere/digits.npz", subset_train=20, subset_test=10)
    names = [m.get("name") or m["arch"].split(":")[1] for m in cfg["models"]]
    assert names == ["cnn", "layernorm_mlp", "resgn", "attn", "fcn-d2"], names  # what RUNS expects
    cfg["models"][0].update(widths=[2], kwargs={"depth": 1})
    cfg["models"][1].update(widths=[8, 16])
    cfg["models"].append(TORCHVISION)
    cfg["train"].update(epochs=1, checkpoint_epochs=[0])  # kernels at init: the width-rate fit of Theorem 1
    cfg["diagnostics"].update(epochs=D_EPOCHS[-1], checkpoint_epochs=D_EPOCHS)
    cfg["kernels"].update(kinds=list(KINDS), index_sets=KINDS, tile_size=64)
    (work / "config.yaml").write_text(yaml.safe_dump(cfg))
    t0 = time.perf_counter()
    proc = snakemake(work)
    assert proc.returncode == 0, proc.stdout[-6000:]
    print(f"own models workflow: {time.perf_counter() - t0:.1f} s")
    return work


def stores_of(work: Path) -> list[Path]:
    return sorted((work / "results" / "runs").glob("*/*/epoch*/kernels/*.zarr"))


def test_every_store_verifies_and_equals_the_reference_engine(user_run):
    import torch

    import pntk
    from pntk.cli import main
    from pntk.data import open_prepared
    from pntk.kernels import empirical_kernel
    from pntk.train import load_checkpoint

    stores = stores_of(user_run)
    runs = sorted({s.parents[2].name for s in stores})
    assert runs == sorted(RUNS + ON_D)
    assert len(stores) == len(RUNS) * 6 + len(ON_D) * len(D_EPOCHS) * 4
    assert main(["verify", *map(str, stores)]) == 0
    data = open_prepared(user_run / "results" / "data" / "npz")
    for store in stores:
        da = pntk.open_kernel(store)
        model, meta = load_checkpoint(store.parents[2] / "checkpoints" / f"{store.parents[1].name}.pt")
        assert meta["spec"]["arch"].startswith(("my_models:", "torchvision:", "fcn"))
        assert bool(meta.get("model_source")) == (":" in meta["spec"]["arch"])
        run = store.parents[2].name
        if run not in ("cnn-w2-s0", "layernorm_mlp-w8-s0") and da.attrs["kind"] not in ("first_logit", "trace"):
            continue  # the other models: a rectangular and a symmetric store each (the reference takes minutes)
        # brute force: the autograd loop; for ShuffleNet's 0.35 M parameters torch.func's per-sample Jacobians
        method = "jacobian" if run.startswith("tv-") else "reference"
        x1 = torch.as_tensor(data.x[da.row.values], dtype=torch.float64)
        x2 = None if da.attrs["symmetric"] else torch.as_tensor(data.x[da.col.values], dtype=torch.float64)
        ref = empirical_kernel(model.double(), x1, x2, kind=da.attrs["kind"], method=method).numpy()
        np.testing.assert_allclose(da.values, ref, rtol=1e-10, atol=1e-12, err_msg=str(store))


def test_ls_lists_every_store_with_its_tiles(user_run, capsys):
    from pntk.cli import main

    assert main(["ls", "--json", str(user_run / "results")]) == 0
    rows = json.loads(capsys.readouterr().out)
    listed = {Path(r["path"]) for r in rows if r["tiles"] != "-"}
    assert listed == set(stores_of(user_run))
    for r in rows:
        if r["tiles"] != "-":
            done, total = r["tiles"].split("/")
            assert done == total and r["status"] == "verified", r
    assert sum(r["item"] == "checkpoint" for r in rows) == len(RUNS) + len(ON_D) * len(D_EPOCHS)
    assert any(r["kind"] == "data" for r in rows)


def test_every_store_opens_without_a_warning(user_run):
    import xarray as xr
    import zarr

    import pntk
    from pntk.data import open_prepared, prepared_folder, prepared_store

    res = user_run / "results"
    folder, data_store = prepared_folder(res, "npz"), prepared_store(res, "npz")
    assert (folder / ".snakemake_timestamp").is_file()  # Snakemake marks its directory output here,
    assert not list(data_store.rglob(".snakemake_timestamp"))  # not inside the Zarr group
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        open_prepared(folder)
        xr.open_zarr(data_store).load()
        zarr.open_group(str(data_store), mode="r").members()
        for store in stores_of(user_run):
            assert pntk.open_kernel(store).attrs["finalized"] is True
            assert xr.open_zarr(store)["kernel"].attrs["checkpoint_sha256"]
            zarr.open_group(str(store), mode="r").members()


def test_tables_read_readout_widths_from_the_models(user_run):
    import pandas as pd

    diag = pd.read_csv(user_run / "results" / "tables" / "diagnostics.csv")
    widths = diag.groupby(["arch", "width"]).readout_width.unique().to_dict()
    assert {k: list(v) for k, v in widths.items()} == {
        ("cnn", 2): [2 * 64], ("layernorm_mlp", 8): [8], ("layernorm_mlp", 16): [16], ("resgn", 8): [8],
        ("attn", 8): [8], ("fcn-d2", 32): [32], ("tv-shufflenet_v2_x0_5", 8): [1024]}
    # Theorem 1's slope needs a residual degree of freedom: 2 widths × 1 seed (with a per-seed intercept) have
    # none, so rate.csv has no row for layernorm_mlp rather than an interval it cannot back.
    rate = pd.read_csv(user_run / "results" / "tables" / "rate.csv")
    assert "layernorm_mlp" not in set(rate.arch)


def test_predictions_carry_their_provenance(user_run):
    import xarray as xr

    import pntk
    from pntk.provenance import sha256_file

    ncs = sorted((user_run / "results" / "runs").glob("*/*/epoch*/predictions.nc"))
    assert len(ncs) == len(RUNS)
    for nc in ncs:
        with xr.open_dataset(nc, engine="scipy") as ds:
            a = ds.attrs
            assert (a["kernel_kind"], a["ridge"], a["t"], a["pntk_version"]) == ("pntk", 0.0, "inf", pntk.__version__)
            assert a["solver"] in ("cholesky", "eigh", "cg") and a["solver_n_train"] == 120
            assert a["checkpoint_sha256"] == sha256_file(nc.parents[1] / "checkpoints" / f"{nc.parent.name}.pt")
            for key, store in (("dd", "pntk-train-train"), ("xd", "pntk-test-train")):
                manifest = nc.parent / "kernels" / f"{store}.manifest.json"
                assert a[f"manifest_{key}"] == str(manifest.relative_to(user_run))
                assert a[f"manifest_{key}_sha256"] == sha256_file(manifest)
            assert all(ds[v].attrs["description"] for v in ("flin", "f0", "label"))


def test_nothing_to_do_until_the_model_file_changes(user_run):
    out = snakemake(user_run, "-n").stdout
    assert "Nothing to be done" in out, out[-3000:]
    module = user_run.parent / "elsewhere" / "my_models.py"
    original = module.read_text()
    try:
        module.write_text(original + "\n# edited\n")
        out = snakemake(user_run, "-n").stdout
        assert "train" in out and "params" in out.lower(), out[-3000:]
        assert "cnn-w2-s0/train_log.csv" in out and "layernorm_mlp-w8-s0/train_log.csv" in out
    finally:
        module.write_text(original)


# ----------------------------------------------------------------------------- every command on these runs
def test_stores_record_model_method_and_versions(user_run):
    """Provenance a reader can act on: the model's name, the arch or import path and kwargs that rebuild it,
    the method that ran (not "auto"), and the pntk and torch versions."""
    from importlib.metadata import version

    import torch

    import pntk
    from pntk.models import init_model
    from pntk.models.spec import ModelSpec

    seen = {}
    for store in stores_of(user_run):
        a = pntk.open_kernel(store).attrs
        assert store.parents[2].name.removesuffix("-onD") == f"{a['model']}-w{a['width']}-s{a['seed']}"
        assert (a["pntk_version"], a["torch_version"]) == (pntk.__version__, version("torch"))
        assert a["method_requested"] == "auto" and a["method"] in ("structured", "jacobian", "jacobian+structured")
        tile_methods = json.loads(StoreManifest(store).read_text())["tile_methods"]
        assert "+".join(sorted(set(tile_methods.values()))) == a["method"]
        assert a["model_spec"]["arch"] == a["arch"] and a["model_kwargs"] == (a["model_spec"]["kwargs"] or {})
        seen[a["model"]] = a
    assert {m: (a["arch"], a["model_kwargs"]) for m, a in seen.items()} == {
        "cnn": ("my_models:small_cnn", {"depth": 1}), "layernorm_mlp": ("my_models:layernorm_mlp", {}),
        "resgn": ("my_models:resgn", {"blocks": 1, "groups": 4}),
        "attn": ("my_models:patch_attention", {"patch": 2, "heads": 2}), "fcn-d2": ("fcn", {}),
        "tv-shufflenet_v2_x0_5": ("torchvision:shufflenet_v2_x0_5", {})}
    assert seen["fcn-d2"]["model_spec"]["depth"] == 2
    # what a reader does with them: rebuild the network and load the checkpoint the store names
    a = seen["attn"]
    model = init_model(ModelSpec.from_dict(a["model_spec"]), a["seed"])
    ck = torch.load(Path(a["store"]).parents[2] / "checkpoints" / a["checkpoint"], weights_only=True)
    model.load_state_dict(ck["model"])


def StoreManifest(store: Path) -> Path:  # reads like the path it returns
    from pntk.store.paths import StorePaths

    return StorePaths.of(store).manifest


def test_ls_info_verify_check_and_plan_on_every_kind_of_model(user_run, tmp_path):
    stores = stores_of(user_run)
    out = pntk_cli(user_run, "ls", "results")
    assert out.returncode == 0, out.stderr
    assert all(f"npz/{run}" in out.stdout for run in RUNS)
    assert f"{len(stores)} kernel stores ({len(stores)} verified, 0 not)" in out.stdout
    attn = next(s for s in stores if s.parents[2].name == "attn-w8-s0" and s.name == "pntk-train-train.zarr")
    out = pntk_cli(user_run, "info", str(attn))
    assert out.returncode == 0, out.stderr
    info = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in out.stdout.splitlines())
    assert (info["model"], info["arch"], ast.literal_eval(info["model kwargs"])) == (
        "attn", "my_models:patch_attention", {"patch": 2, "heads": 2})
    assert info["method requested"] == "auto" and info["method"] in ("structured", "jacobian")
    assert info["pntk version"] and info["torch version"]
    assert pntk_cli(user_run, "verify", *map(str, stores)).returncode == 0
    out = pntk_cli(user_run, "check", "config.yaml")
    assert out.returncode == 0 and all(run in out.stdout for run in RUNS), out.stdout + out.stderr
    # pntk plan counts the jobs `snakemake -n` schedules from scratch
    fresh = user_run.parent / "fresh"
    fresh.mkdir(exist_ok=True)
    shutil.copy(user_run / "config.yaml", fresh / "config.yaml")
    dry = snakemake(fresh, "-n", "--quiet", "rules")
    assert dry.returncode == 0, dry.stdout[-3000:]
    out = pntk_cli(user_run, "plan", "--config", "config.yaml", "--device", "a100", "--json")
    assert out.returncode == 0, out.stderr
    planned = {r["rule"]: r["jobs"] for r in json.loads(out.stdout)["rules"]}
    assert planned == job_counts(dry.stdout)
    # --compare with a glob of logs, as after `make run`: the run's, and the one of its --report (no job)
    report = snakemake(user_run, "--report", str(tmp_path / "snakemake-report.html"))
    assert report.returncode == 0, report.stdout[-3000:]
    logs = sorted(map(str, (user_run / ".snakemake" / "log").glob("*.log")))
    assert len(logs) >= 2
    out = pntk_cli(user_run, "plan", "--config", "config.yaml", "--device", "a100", "--compare", *logs)
    assert out.returncode == 0, out.stderr
    assert "against" in out.stdout and "kernel_checkpoint" in out.stdout.split("against", 1)[1]


def test_cli_output_survives_a_closed_pipe(user_run):
    stores = " ".join(map(str, stores_of(user_run)))
    for args in (f"info {stores}", "ls results"):
        proc = subprocess.run(f"{sys.executable} -m pntk.cli {args} | head -2", shell=True, cwd=user_run,
                              capture_output=True, text=True, timeout=300)
        assert len(proc.stdout.splitlines()) == 2 and proc.stderr == "", proc.stderr


def test_job_logs_hold_no_library_warnings(user_run):
    """nn.MultiheadAttention under vmap warns of "a performance drop" on every call; no log shows it."""
    logs = sorted((user_run / "results").rglob("*.log"))
    assert any("attn-w8-s0" in str(p) for p in logs)
    found = {str(p): [ln for ln in p.read_text().splitlines() if "Warning" in ln] for p in logs}
    assert not {k: v for k, v in found.items() if v}


def test_archive_imports_into_a_fresh_checkout_without_rerunning(user_run, tmp_path):
    """Pack here; import into another folder right after a fresh clone of the workflow (its scripts as new as
    the clone): `snakemake -n` there schedules no prepare_data, train or kernel job, and says no code changed."""
    archive = tmp_path / "own-models.zip"
    out = pntk_cli(user_run, "archive", "pack", "--config", "config.yaml", "-o", str(archive))
    assert out.returncode == 0, out.stderr
    assert f"packed {len(stores_of(user_run))} kernel stores of {len(RUNS + ON_D)} runs" in out.stdout
    clone = user_run.parent / "clone"
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for d in ("workflow", "scripts", "src"):  # copies, not copy2: new modification times, as in a clone
        shutil.copytree(REPO / d, clone / d, copy_function=shutil.copy, ignore=skip)
    shutil.copy(REPO / "Snakefile", clone / "Snakefile")
    work2 = user_run.parent / "work2"
    work2.mkdir()
    shutil.copy(user_run / "config.yaml", work2 / "config.yaml")
    out = pntk_cli(work2, "archive", "import", str(archive), "--config", "config.yaml", src=clone / "src")
    assert out.returncode == 0, out.stderr
    dry = snakemake(work2, "-n", snakefile=clone / "Snakefile").stdout
    assert not HEAVY_RULES & set(job_counts(dry)), dry[-4000:]
    assert "Code has changed" not in dry
    # the same run names for another network: refused, naming the model and the key
    cfg = yaml.safe_load((user_run / "config.yaml").read_text())
    cfg["models"][0]["kwargs"] = {"depth": 2}
    work3 = user_run.parent / "work3"
    work3.mkdir()
    (work3 / "config.yaml").write_text(yaml.safe_dump(cfg))
    out = pntk_cli(work3, "archive", "import", str(archive), "--config", "config.yaml")
    assert out.returncode == 1 and "models[cnn].kwargs: archive {'depth': 1}, config {'depth': 2}" in out.stderr

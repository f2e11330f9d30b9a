"""Kernel stores in Snakemake's output cache (`kernels.jobs: per_checkpoint`, `SNAKEMAKE_OUTPUT_CACHE`, `--cache`).

Workflow folder A computes the stores of one run of tests/configs/tiny.yaml and fills the cache; folder B,
whose jobs match, takes them from it: no kernel job computes a tile there and every file of every store is
bitwise A's. Both directions of the key: a changed kernel setting, data setting, checkpoint (training
setting) or library module the kernel job imports (however indirectly) gives a new key and the job runs; an
unchanged copy of the workflow keeps the key. The per-tile rules are never cached (workflow/rules/kernels.smk).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from dry_run import job_counts

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
TINY = REPO / "tests" / "configs" / "tiny.yaml"
RUN = "results/runs/digits/fcn-w16-s0"
CACHE_LINE = re.compile(r"Output file (\S+) will be (obtained from|written to) global between-workflow cache")

pytestmark = pytest.mark.slow


def _config(path: Path, change=None) -> dict:
    cfg = yaml.safe_load(TINY.read_text())
    cfg["kernels"]["jobs"] = "per_checkpoint"
    if change:
        change(cfg)
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.yaml").write_text(yaml.safe_dump(cfg))
    return cfg


def _targets(cfg: dict) -> list[str]:
    """Every store of the run at each checkpoint, and a regression that reads two of them."""
    stores = [f"{k}-{r}-{c}" for k, pairs in cfg["kernels"]["index_sets"].items() for r, c in pairs]
    epochs = cfg["train"]["checkpoint_epochs"]
    return ([f"{RUN}/epoch{e:03d}/kernels/{s}.manifest.json" for e in epochs for s in stores]
            + [f"{RUN}/epoch{epochs[-1]:03d}/regression.json"])


def snakemake(workdir: Path, cache: Path, *args: str, snakefile: Path = REPO / "Snakefile", timeout: int = 900):
    """Snakemake with the output cache at `cache`; `--cache` last (it takes rule names: none = the rules that
    declare `cache:`)."""
    cmd = [SNAKEMAKE, "-s", str(snakefile), "--directory", str(workdir), "--configfile",
           str(workdir / "config.yaml"), "--cores", "2", *args, "--cache"]
    env = {**os.environ, "SNAKEMAKE_OUTPUT_CACHE": str(cache)}
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout,
                          env=env)
    if proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-6000:]}")
    return proc.stdout


def cache_plan(dry: str) -> dict[str, str]:
    """{first output of each cached job: "obtained from" or "written to"} from a dry run."""
    return dict(CACHE_LINE.findall(dry))


def kernel_plan(dry: str) -> set[str]:
    """What the dry run says of the kernel_checkpoint jobs (their first output is a store under kernels/)."""
    return {how for out, how in cache_plan(dry).items() if "/kernels/" in out}


def store_bytes(work: Path) -> dict[str, bytes]:
    """Every file of every kernel store under work/results (links into the cache followed), by relative path."""
    from pntk.store.paths import StorePaths

    out = {}
    for manifest in sorted((work / "results").glob("runs/*/*/epoch*/kernels/*.manifest.json")):
        for f in StorePaths.of(manifest).files():
            out[str(Path(f).relative_to(work))] = Path(f).read_bytes()
    return out


def assert_b_has_a_stores(p: dict, n_stores: int) -> None:
    """Folder B's stores are A's bitwise (links into the cache followed) and verify; the regression downstream,
    which read them through the links, gives A's numbers; a rerun in B has nothing to do."""
    from pntk.store import tiles
    from pntk.store.paths import StorePaths

    ours, theirs = store_bytes(p["b"]), store_bytes(p["a"])
    assert ours.keys() == theirs.keys() and len(ours) > 10 * n_stores
    assert all(ours[k] == theirs[k] for k in ours), [k for k in ours if ours[k] != theirs[k]]
    for manifest in (p["b"] / RUN).glob("epoch*/kernels/*.manifest.json"):
        assert tiles.verify(StorePaths.of(manifest).store)["ok"], manifest
    reg = p["targets"][-1]
    ra, rb = (json.loads((w / reg).read_text()) for w in (p["a"], p["b"]))
    assert rb["flin_test_acc"] == ra["flin_test_acc"] and rb["model_test_acc"] == ra["model_test_acc"]
    assert job_counts(snakemake(p["b"], p["cache"], "-n", *p["targets"])) == {}


def kernel_logs(work: Path) -> list[str]:
    return [p.read_text() for p in sorted((work / RUN).glob("epoch*/kernels/kernel_checkpoint.log"))]


@pytest.fixture(scope="module")
def cached_pair(tmp_path_factory):
    """Folders A then B, the same config and one output cache: A computes, B takes from the cache."""
    root = tmp_path_factory.mktemp("kernel-cache")
    cache, a, b = root / "cache", root / "A", root / "B"
    cache.mkdir()
    cfg = _config(a)
    _config(b)
    targets = _targets(cfg)
    dry_a = snakemake(a, cache, "-n", *targets)
    t0 = time.perf_counter()
    out_a = snakemake(a, cache, *targets)
    t_a = time.perf_counter() - t0
    dry_b = snakemake(b, cache, "-n", *targets)
    t0 = time.perf_counter()
    out_b = snakemake(b, cache, *targets)
    t_b = time.perf_counter() - t0
    print(f"kernel cache: A (computes) {t_a:.1f} s, B (from the cache) {t_b:.1f} s")
    return {"cache": cache, "a": a, "b": b, "cfg": cfg, "targets": targets, "dry_a": dry_a, "out_a": out_a,
            "dry_b": dry_b, "out_b": out_b}


def test_a_second_folder_takes_the_stores_from_the_cache(cached_pair):

    p = cached_pair
    epochs = p["cfg"]["train"]["checkpoint_epochs"]
    assert job_counts(p["dry_a"])["kernel_checkpoint"] == len(epochs)
    assert kernel_plan(p["dry_a"]) == {"written to"}
    assert job_counts(p["dry_b"])["kernel_checkpoint"] == len(epochs)
    assert kernel_plan(p["dry_b"]) == {"obtained from"} and set(cache_plan(p["dry_b"]).values()) == {"obtained from"}
    # A computed every tile; in B no kernel job ran its script (Snakemake creates the log, nothing writes it)
    assert all("computed in" in log for log in kernel_logs(p["a"])) and len(kernel_logs(p["a"])) == len(epochs)
    assert kernel_logs(p["b"]) == [""] * len(epochs)
    assert f"{RUN}/epoch{epochs[-1]:03d}/kernels/pntk-train-train.manifest.json from cache" in p["out_b"]
    n_stores = sum(len(v) for v in p["cfg"]["kernels"]["index_sets"].values()) * len(epochs)
    assert len(list((p["b"] / RUN).glob("epoch*/kernels/*.manifest.json"))) == n_stores
    assert_b_has_a_stores(p, n_stores)


@pytest.mark.parametrize("what, change, train_too", [
    ("kernel setting", lambda c: c["kernels"].update(dtype="float32"), False),
    ("kernel index sets", lambda c: c["kernels"]["index_sets"].update(entk=[["sub-train", "sub-train"]]), False),
    ("data", lambda c: c["data"].update(seed=1), True),
    ("checkpoint (training)", lambda c: c["train"].update(lr=0.05), True),
])
def test_the_key_changes_with_settings_data_and_checkpoint(cached_pair, tmp_path, what, change, train_too):
    """A changed setting: new kernel keys (the jobs would be written to the cache, not taken from it); training
    keeps its key where only kernel settings changed."""
    cfg = _config(tmp_path, change)
    dry = snakemake(tmp_path, cached_pair["cache"], "-n", *_targets(cfg))
    assert kernel_plan(dry) == {"written to"}, (what, dry[-3000:])
    trains = {how for out, how in cache_plan(dry).items() if "/checkpoints/" in out}
    assert trains == {"written to" if train_too else "obtained from"}, what


def test_a_changed_kernel_setting_runs_the_kernel_jobs(cached_pair, tmp_path):
    """Not only a new key: the jobs compute (float32 here), training still comes from the cache."""
    import zarr

    cfg = _config(tmp_path, lambda c: c["kernels"].update(dtype="float32"))
    targets = [t for t in _targets(cfg) if t.endswith(".manifest.json")]
    out = snakemake(tmp_path, cached_pair["cache"], *targets)
    assert "checkpoints/epoch002.pt from cache" in out
    assert all("computed in" in log for log in kernel_logs(tmp_path)) and kernel_logs(tmp_path)
    store = f"{RUN}/epoch002/kernels/pntk-train-train.zarr"
    assert zarr.open_group(str(tmp_path / store), mode="r")["kernel"].dtype == "float32"
    assert zarr.open_group(str(cached_pair["a"] / store), mode="r")["kernel"].dtype == "float64"


def _copy_workflow(dest: Path) -> Path:
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for d in ("workflow", "scripts", "src", "envs"):
        shutil.copytree(REPO / d, dest / d, ignore=skip)
    shutil.copy(REPO / "Snakefile", dest / "Snakefile")
    return dest / "Snakefile"


def test_a_changed_module_changes_the_key(cached_pair, tmp_path):
    """The key covers every pntk module the kernel job imports, however indirectly (pntk.code_closure): a copy
    of the workflow keeps the key; a comment added to the kernel engine's pntk/kernels/_pairs.py (imported
    through pntk.kernel_jobs → pntk.store.tiles → pntk.kernels) changes it, not training's."""
    snakefile = _copy_workflow(tmp_path / "checkout")
    cfg = _config(tmp_path / "work")
    targets = _targets(cfg)
    dry = snakemake(tmp_path / "work", cached_pair["cache"], "-n", *targets, snakefile=snakefile)
    assert kernel_plan(dry) == {"obtained from"}, dry[-3000:]
    engine = tmp_path / "checkout" / "src" / "pntk" / "kernels" / "_pairs.py"
    engine.write_text(engine.read_text() + "\n# edited\n")
    dry = snakemake(tmp_path / "work", cached_pair["cache"], "-n", *targets, snakefile=snakefile)
    assert kernel_plan(dry) == {"written to"}, dry[-3000:]
    assert {how for out, how in cache_plan(dry).items() if "/checkpoints/" in out} == {"obtained from"}


def test_a_run_without_cache_never_writes_into_the_cache(cached_pair, tmp_path):
    """A folder whose stores are links into the cache, run again without --cache (the kernel jobs' params then
    differ: they re-run): the jobs replace the links by stores of their own, the same bitwise, and leave
    every file in the cache as it was."""
    def snapshot(folder: Path) -> dict:
        return {str(f): (f.read_bytes(), f.stat().st_mtime_ns) for f in sorted(folder.rglob("*")) if f.is_file()}

    cfg = _config(tmp_path)
    targets = [t for t in _targets(cfg) if t.endswith(".manifest.json")]
    snakemake(tmp_path, cached_pair["cache"], *targets)
    assert (tmp_path / RUN / "epoch002/kernels/pntk-train-train.manifest.json").is_symlink()
    before = snapshot(cached_pair["cache"])
    proc = subprocess.run([SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path), "--configfile",
                           str(tmp_path / "config.yaml"), "--cores", "2", *targets], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert job_counts(proc.stdout)["kernel_checkpoint"] == len(cfg["train"]["checkpoint_epochs"])
    assert snapshot(cached_pair["cache"]) == before
    assert all("output cache; computing it here" in log for log in kernel_logs(tmp_path))
    kernels = tmp_path / RUN / "epoch002/kernels"
    assert not [p for p in kernels.rglob("*") if p.is_symlink()]
    ours, theirs = store_bytes(tmp_path), store_bytes(cached_pair["a"])
    assert ours.keys() == theirs.keys() and all(ours[k] == theirs[k] for k in ours if "/kernel/c/" in k)


def ran(out: str) -> dict[str, int]:
    """{rule: jobs run} from a real run's log (the job stats of a run with checkpoints are only its start)."""
    return dict(Counter(re.findall(r"^(?:local)?(?:rule|checkpoint) (\w+):$", out, re.M)))


def lookup_records(work: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((work / RUN).glob("epoch*/kernels/*.cache.json"))]


@pytest.fixture(scope="module")
def per_tile_pair(tmp_path_factory):
    """kernels.jobs: per_tile under --cache (pntk's store cache beside Snakemake's): A computes and deposits,
    B, whose runs match, takes every store."""
    root = tmp_path_factory.mktemp("per-tile-cache")
    cache, a, b = root / "cache", root / "A", root / "B"
    cache.mkdir()
    per_tile = lambda c: c["kernels"].update(jobs="per_tile")  # noqa: E731
    cfg = _config(a, per_tile)
    _config(b, per_tile)
    targets = _targets(cfg)
    t0 = time.perf_counter()
    out_a = snakemake(a, cache, *targets)
    t_a = time.perf_counter() - t0
    t0 = time.perf_counter()
    out_b = snakemake(b, cache, *targets)
    t_b = time.perf_counter() - t0
    print(f"per-tile store cache: A (computes) {t_a:.1f} s, B (from the cache) {t_b:.1f} s")
    return {"cache": cache, "a": a, "b": b, "cfg": cfg, "targets": targets, "out_a": out_a, "out_b": out_b,
            "per_tile": per_tile}


def test_per_tile_a_second_folder_computes_no_tile(per_tile_pair):
    """B runs no kernel_init and no kernel_tile; its stores are A's bitwise (links into the store cache), they
    verify, and the regression downstream gives A's numbers. A rerun has nothing to do."""
    from pntk.store.shared_cache import ENTRIES

    p = per_tile_pair
    epochs = p["cfg"]["train"]["checkpoint_epochs"]
    n_stores = sum(len(v) for v in p["cfg"]["kernels"]["index_sets"].values()) * len(epochs)
    ran_a, ran_b = ran(p["out_a"]), ran(p["out_b"])
    assert ran_a["kernel_lookup"] == ran_a["kernel_init"] == ran_a["kernel_finalize"] == n_stores, ran_a
    assert ran_a["kernel_tile"] >= n_stores, ran_a
    assert ran_b["kernel_lookup"] == ran_b["kernel_finalize"] == n_stores, ran_b
    assert "kernel_tile" not in ran_b and "kernel_init" not in ran_b, ran_b
    assert [r["hit"] for r in lookup_records(p["a"])] == [False] * n_stores
    assert [r["hit"] for r in lookup_records(p["b"])] == [True] * n_stores
    assert len(list((p["cache"] / ENTRIES).iterdir())) == n_stores
    assert_b_has_a_stores(p, n_stores)


def _lookup_hit(work: Path, cache: Path, cfg: dict, snakefile: Path = REPO / "Snakefile") -> bool:
    """Run one store's lookup job only (data and training come from Snakemake's cache): a hit?"""
    record = f"{RUN}/epoch002/kernels/pntk-train-train.cache.json"
    snakemake(work, cache, record, snakefile=snakefile)
    return json.loads((work / record).read_text())["hit"]


def test_per_tile_the_key_changes_with_settings_and_modules(per_tile_pair, tmp_path):
    """A copy of the workflow keeps the key; a comment in the kernel engine's pntk/kernels/_pairs.py (imported
    through pntk.kernel_jobs), another dtype, other data or another checkpoint (training setting) give new keys."""
    p = per_tile_pair
    snakefile = _copy_workflow(tmp_path / "checkout")
    assert _lookup_hit(tmp_path / "same", p["cache"], _config(tmp_path / "same", p["per_tile"]), snakefile)
    engine = tmp_path / "checkout" / "src" / "pntk" / "kernels" / "_pairs.py"
    engine.write_text(engine.read_text() + "\n# edited\n")
    assert not _lookup_hit(tmp_path / "edited", p["cache"], _config(tmp_path / "edited", p["per_tile"]), snakefile)
    for what, change in [("dtype", lambda c: c["kernels"].update(dtype="float32")),
                         ("data", lambda c: c["data"].update(seed=1)),
                         ("checkpoint", lambda c: c["train"].update(lr=0.05))]:
        cfg = _config(tmp_path / what, lambda c, change=change: (p["per_tile"](c), change(c)))
        assert not _lookup_hit(tmp_path / what, p["cache"], cfg), what


def test_per_tile_without_cache_never_writes_into_the_cache(per_tile_pair, tmp_path):
    """B's stores are links into the store cache; run without --cache only finalize re-runs (its inputs
    change), copies the store into the folder (no link left) and leaves every file of the cache as it was."""
    def snapshot(folder: Path) -> dict:
        return {str(f): (f.read_bytes(), f.stat().st_mtime_ns) for f in sorted(folder.rglob("*")) if f.is_file()}

    p = per_tile_pair
    cfg = _config(tmp_path, p["per_tile"])
    targets = [t for t in _targets(cfg) if t.endswith(".manifest.json")]
    assert "kernel_tile" not in ran(snakemake(tmp_path, p["cache"], *targets))
    before = snapshot(p["cache"])
    proc = subprocess.run([SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path), "--configfile",
                           str(tmp_path / "config.yaml"), "--cores", "2", *targets], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert set(ran(proc.stdout)) == {"kernel_finalize"}, ran(proc.stdout)
    assert snapshot(p["cache"]) == before
    assert not [q for q in (tmp_path / RUN).rglob("*") if q.is_symlink() and "/kernels/" in str(q)]
    ours, theirs = store_bytes(tmp_path), store_bytes(p["a"])
    assert ours.keys() == theirs.keys() and all(ours[k] == theirs[k] for k in ours if "/kernel/c/" in k)


def test_the_networks_on_d_come_from_the_cache_whole(tmp_path):
    """diagnostics.jobs: per_run: one diagnose_on_D job per network trained on D (training, its stores, its
    diagnostics) is cached whole: a second folder runs none of it and gets every file bitwise; a changed kernel
    setting gives it a new key."""
    cache, a, b = tmp_path / "cache", tmp_path / "A", tmp_path / "B"
    cache.mkdir()
    per_run = lambda c: c["diagnostics"].update(jobs="auto")  # noqa: E731 (per_run with per_checkpoint kernels)
    cfg = _config(a, per_run)
    _config(b, per_run)
    on_d = "results/runs/digits/fcn-w16-s0-onD"
    last = cfg["diagnostics"]["checkpoint_epochs"][-1]
    target = f"{on_d}/epoch{last:03d}/diagnostics.json"
    assert job_counts(snakemake(a, cache, "-n", target)) == {"prepare_data": 1, "diagnose_on_D": 1}
    snakemake(a, cache, target)
    dry = snakemake(b, cache, "-n", target)
    assert {how for out, how in cache_plan(dry).items() if "-onD/" in out} == {"obtained from"}, dry[-3000:]
    snakemake(b, cache, target)
    assert (b / "results/logs/diagnose_on_D/digits/fcn-w16-s0-onD.log").read_text() == ""  # its script never ran
    def files(w: Path) -> dict[str, bytes]:  # every file of the run, links into the cache followed
        out = {}
        for root, _dirs, names in os.walk(w / on_d, followlinks=True):
            for n in names:
                f = Path(root) / n
                if ".resume" not in f.parts and n != ".snakemake_timestamp":
                    out[str(f.relative_to(w))] = f.read_bytes()
        return out

    ours, theirs = files(b), files(a)
    assert ours.keys() == theirs.keys() and any(k.endswith("/kernel/zarr.json") for k in ours)
    assert all(ours[k] == theirs[k] for k in ours), [k for k in ours if ours[k] != theirs[k]]
    changed = tmp_path / "C"
    _config(changed, lambda c: (per_run(c), c["kernels"].update(dtype="float32")))
    dry = snakemake(changed, cache, "-n", target)
    assert {how for out, how in cache_plan(dry).items() if "-onD/" in out} == {"written to"}, dry[-3000:]

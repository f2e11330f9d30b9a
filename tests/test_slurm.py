"""The workflow through the real profiles/slurm on a real (throw-away, one-node) SLURM cluster.

When munged, slurmctld, slurmd and the SLURM client commands are installed and we are root, a
module fixture starts a private cluster (tests/slurm/cluster.py: own slurm.conf via SLURM_CONF, munge
key and socket, state and logs in a temporary folder, free ports, partitions `cpu` and `gpu-sim`).
A small pNTK workflow (tests/configs/tiny.yaml, reduced) runs with
`--profile profiles/slurm --profile tests/slurm/profile` while the same config runs locally with
`--cores 2`; during the SLURM run one running tile job is killed with `scancel`. Then:

* every job went through sbatch (no local rule but `all`, a SLURM log per rule, all jobs COMPLETED
  in squeue apart from the cancelled one) and in the partition its rule asks for;
* the cancelled tile job was retried (profile `retries`) and the workflow completed;
* kernel stores are bitwise equal to the local run's, tables numerically equal;
* `pntk verify` passes on every store.

Elsewhere the module skips and says what is missing. The daemons are stopped (by pid) in a finalizer,
also when a test fails.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
TINY = REPO / "tests" / "configs" / "tiny.yaml"
PROFILE = REPO / "profiles" / "slurm"
TEST_PROFILE = REPO / "tests" / "slurm" / "profile"
RUN_TIMEOUT = 600  # seconds for the SLURM run; the whole module takes about 3-5 min on 2 slow cores

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def _load_cluster_module():
    spec = importlib.util.spec_from_file_location("pntk_test_slurm_cluster", REPO / "tests" / "slurm" / "cluster.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


cluster_mod = _load_cluster_module()

# GPU rules ask for a (simulated) GPU in the gpu-sim partition (tests/slurm/profile); the others go to
# config resources.cpu_partition.
GPU_RULES = {"train", "kernel_tile", "regression"}
STEM = "results/runs/digits/fcn-w16-s0/epoch002/kernels"
TARGETS = [f"results/tables/{t}.csv" for t in ("regression", "training")] + [
    f"{STEM}/pntk-train-train.manifest.json", f"{STEM}/pntk-test-train.manifest.json",
    "results/figures/fig10-sgd-accuracy.png"]


def small_config() -> dict:
    """tiny.yaml cut to one run, one checkpoint and the full-data pNTK (train×train 3 tiles, test×train 2)."""
    cfg = yaml.safe_load(TINY.read_text())
    cfg["models"][0]["widths"] = [16]
    cfg["train"]["checkpoint_epochs"] = [2]
    cfg["kernels"]["kinds"] = ["pntk"]
    cfg["kernels"]["index_sets"] = {"pntk": [["train", "train"], ["test", "train"]]}
    cfg["diagnostics"] = {"enabled": False}
    cfg["timing"] = {"enabled": False}
    cfg["infinite"] = {"enabled": False}
    cfg["figures"] = {"formats": ["png"]}
    # cpus_per_gpu = 2: the CPU-heavy rules get 2 threads on the cluster, as with the local --cores 2.
    cfg["resources"] = {"cpu_partition": "cpu", "gpu_partition": "gpu-sim", "cpus_per_gpu": 2}
    return cfg


def _tail(path: Path, n: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError as err:
        return f"({path}: {err})"


@pytest.fixture(scope="module")
def cluster(request):
    gone = cluster_mod.missing()
    if gone:
        pytest.skip(f"SLURM integration test needs {', '.join(gone)} "
                    "(as root: apt-get install slurm-wlm munge)")
    # Not under pytest's tmp_path: munged wants every folder above its socket to be searchable.
    root = Path(tempfile.mkdtemp(prefix="pntk-slurm-", dir="/tmp"))
    c = cluster_mod.Cluster(root, cpus=max(2, cluster_mod._cpus()))
    request.addfinalizer(lambda: (c.stop(), shutil.rmtree(root, ignore_errors=True)))
    try:
        c.start()
    except (RuntimeError, TimeoutError, OSError) as err:
        pytest.fail(f"could not start the test cluster: {err}")
    return c


class Canceller(threading.Thread):
    """Wait for a running kernel_tile (group) job of the SLURM run, let it work a moment, `scancel` it."""

    def __init__(self, cluster, after_s: float = 3.0, timeout: float = RUN_TIMEOUT):
        super().__init__(daemon=True)
        self.cluster, self.after_s, self.timeout = cluster, after_s, timeout
        self.cancelled: str | None = None
        self.stop_event = threading.Event()

    def run(self):
        deadline = time.monotonic() + self.timeout
        first_seen: dict[str, float] = {}
        while not self.stop_event.is_set() and time.monotonic() < deadline:
            for job in self.cluster.jobs():
                if "kernel_tile" in job["comment"] and job["state"] == "RUNNING":
                    t0 = first_seen.setdefault(job["id"], time.monotonic())
                    if time.monotonic() - t0 >= self.after_s:
                        self.cluster.run("scancel", job["id"], check=False)
                        self.cancelled = job["id"]
                        return
            time.sleep(0.5)


def _snakemake(workdir: Path, *args: str, env=None) -> subprocess.Popen:
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(workdir / "config.yaml"), *args, *TARGETS]
    out = open(workdir / "snakemake.out", "w")
    # cwd = workdir: the SLURM plugin puts .snakemake/slurm_logs under the current directory.
    return subprocess.Popen(cmd, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _wait(proc: subprocess.Popen, timeout: float, what: str, log: Path) -> None:
    try:
        rc = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        pytest.fail(f"{what} ran longer than {timeout:.0f} s:\n{_tail(log)}")
    if rc != 0:
        pytest.fail(f"{what} failed (rc {rc}):\n{_tail(log, 120)}")


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory):
    """The SLURM run (one tile job cancelled mid-way) and the local reference run, concurrently."""
    cfg = yaml.safe_dump(small_config())
    local, remote = tmp_path_factory.mktemp("local"), tmp_path_factory.mktemp("slurm")
    for d in (local, remote):
        (d / "config.yaml").write_text(cfg)
    env = {k: v for k, v in cluster.env.items() if not k.startswith(("SLURM_JOB", "SNAKEMAKE_PROFILE"))}
    t0 = time.perf_counter()
    slurm_proc = _snakemake(remote, "--profile", str(PROFILE), "--profile", str(TEST_PROFILE), env=env)
    canceller = Canceller(cluster)
    canceller.start()
    local_proc = _snakemake(local, "--cores", "2", "--profile", "none")
    try:
        _wait(local_proc, RUN_TIMEOUT, "local reference run", local / "snakemake.out")
        _wait(slurm_proc, RUN_TIMEOUT, "SLURM run", remote / "snakemake.out")
    except BaseException:
        for p in (local_proc, slurm_proc):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
        print(cluster.tail("slurmctld"), file=sys.stderr)
        raise
    finally:
        canceller.stop_event.set()
        canceller.join(5)
    print(f"SLURM and local runs: {time.perf_counter() - t0:.0f} s")
    return {"local": local, "slurm": remote, "log": (remote / "snakemake.out").read_text(),
            "cancelled": canceller.cancelled, "jobs": cluster.jobs(), "cluster": cluster}


def test_every_job_went_through_sbatch(runs):
    log, work = runs["log"], runs["slurm"]
    local_rules = re.findall(r"^localrule (\w+):", log, re.M)
    assert set(local_rules) <= {"all"}, f"rules run on the submit host: {local_rules}"
    submitted = re.findall(r"has been submitted with SLURM jobid (\d+)", log)
    assert submitted, log[-3000:]
    rules = set(re.findall(r"^\s*rule (\w+):", log, re.M))
    assert {"prepare_data", "train", "kernel_init", "kernel_tile", "kernel_finalize", "regression",
            "tables", "figures"} <= rules, rules
    logdirs = {p.name for p in (work / ".snakemake" / "slurm_logs").iterdir()}
    for rule in rules - {"kernel_tile"}:
        assert f"rule_{rule}" in logdirs, (rule, logdirs)
    assert any(d.startswith("group_") and d.endswith("kernel_tile") for d in logdirs), logdirs
    jobs = {j["id"]: j for j in runs["jobs"]}
    for jid in submitted:
        assert jid in jobs, f"SLURM job {jid} unknown to squeue: {sorted(jobs)}"
        job = jobs[jid]
        expected = "CANCELLED" if jid == runs["cancelled"] else "COMPLETED"
        assert job["state"] == expected, job
        # comment: rule_<rule>[_wildcards_<values>], or rule_<group id>_<rules> for a group job
        what = job["comment"].removeprefix("rule_").split("_wildcards_")[0]
        names = {r for r in rules if what == r or what.endswith(f"_{r}")}
        assert names, job
        want = "gpu-sim" if names & GPU_RULES else "cpu"
        assert job["partition"] == want, job


def test_cancelled_tile_job_was_retried(runs):
    jid, log = runs["cancelled"], runs["log"]
    assert jid, "no running kernel_tile job was seen to cancel"
    # Snakemake reports the failed (group) job with its SLURM log, then submits it once more
    failed = re.search(rf"Error in (?:group|rule) [^\n]*\n(?:.*\n){{0,3}}?.*/{jid}\.log", log)
    assert failed, log[-3000:]
    restarted = re.search(r"Trying to restart job ([\w-]+)\.", log[failed.end():])
    assert restarted, log[-3000:]
    assert re.search(rf"Job {re.escape(restarted.group(1))} has been submitted with SLURM jobid (?!{jid}\b)\d+",
                     log[failed.end():]), log[-3000:]
    slurm_log = next((runs["slurm"] / ".snakemake" / "slurm_logs").rglob(f"{jid}.log"))
    assert "CANCELLED" in slurm_log.read_text()
    assert "steps (100%) done" in log


def test_results_equal_local_run(runs):
    import pandas as pd
    import zarr

    local, remote = runs["local"], runs["slurm"]
    stores = sorted(p.relative_to(local) for p in local.glob("results/runs/*/*/epoch*/kernels/*.zarr"))
    assert len(stores) == 2, stores
    for rel in stores:
        a = zarr.open_group(str(local / rel), mode="r")["kernel"][...]
        b = zarr.open_group(str(remote / rel), mode="r")["kernel"][...]
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == b.tobytes(), rel
        ma = json.loads((local / str(rel).replace(".zarr", ".manifest.json")).read_text())["tiles"]
        mb = json.loads((remote / str(rel).replace(".zarr", ".manifest.json")).read_text())["tiles"]
        assert ma == mb, rel
    for table in ("regression", "training"):
        a = pd.read_csv(local / "results" / "tables" / f"{table}.csv")
        b = pd.read_csv(remote / "results" / "tables" / f"{table}.csv")
        assert list(a.columns) == list(b.columns) and len(a) == len(b) > 0, table
        for col in a.columns:
            if pd.api.types.is_numeric_dtype(a[col]) and not re.search(r"time|second|duration", col):
                np.testing.assert_allclose(b[col].to_numpy(float), a[col].to_numpy(float), rtol=1e-12,
                                           atol=0, equal_nan=True, err_msg=f"{table}.{col}")


def test_stores_verify_after_the_cancelled_tile(runs):
    stores = sorted(runs["slurm"].glob("results/runs/*/*/epoch*/kernels/*.zarr"))
    pntk = shutil.which("pntk", path=str(Path(sys.executable).parent))
    if pntk:
        proc = subprocess.run([pntk, "verify", *map(str, stores)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    else:  # the console script is not installed: the library call behind it
        from pntk.store import tiles

        for store in stores:
            result = tiles.verify(store)
            assert result["ok"], result

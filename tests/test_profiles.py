"""The Snakemake profiles: keys the installed Snakemake and SLURM plugin know, and the sbatch calls that
profiles/slurm makes for the paper config (configs/paper-cifar10.yaml) — no cluster needed.

The sbatch test runs the real workflow with the real profile and plugin against fake SLURM commands
(`sbatch` records its options and refuses the job, so nothing runs): prepared dummy inputs make one
job of each kind ready at once — train, a group of kernel tiles, kernel_init, regression, timing.
"""
from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
SLURM_PROFILE = REPO / "profiles" / "slurm"
PAPER = REPO / "configs" / "paper-cifar10.yaml"
PROFILES = [REPO / "profiles" / "local", SLURM_PROFILE, REPO / "tests" / "slurm" / "profile"]


def profile_yaml(path: Path) -> dict:
    return yaml.safe_load((path / "config.yaml").read_text())


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: str(p.relative_to(REPO)))
def test_profile_keys_are_snakemake_options(profile):
    """Every key is a long option of this Snakemake (plugin options included): a typo fails here."""
    pytest.importorskip("snakemake_executor_plugin_slurm")
    help_text = subprocess.run([SNAKEMAKE, "--help"], capture_output=True, text=True, check=True).stdout
    options = set(re.findall(r"--([a-z0-9][a-z0-9-]*)", help_text))
    unknown = sorted(set(profile_yaml(profile)) - options)
    assert not unknown, f"{profile}: not Snakemake options: {unknown}"


def test_slurm_profile_settings():
    import snakemake_executor_plugin_slurm as plugin

    prof = profile_yaml(SLURM_PROFILE)
    assert prof["executor"] == "slurm"
    assert prof["rerun-incomplete"] is True and prof["retries"] >= 1 and prof["latency-wait"] >= 30
    assert prof["group-components"]["tiles"] >= 1
    # Grouped tiles share one GPU: `gpu` is limited per submitted job, not across the cluster.
    assert prof["set-resource-scopes"] == {"gpu": "local"} and prof["resources"] == {"gpu": 1}
    fields = {f.name.replace("_", "-") for f in dataclasses.fields(plugin.ExecutorSettings)}
    for path in (SLURM_PROFILE, REPO / "tests" / "slurm" / "profile"):
        for key in profile_yaml(path):
            if key.startswith("slurm-"):
                assert key.removeprefix("slurm-") in fields, f"{path}: {key} is no setting of plugin {fields}"


# --- the sbatch calls of the real profile, with fake SLURM commands ----------------------------------

FAKE_SBATCH = """#!{python}
# Fake sbatch: record the options (not the --wrap'ed job), then refuse the job.
import json, os, shlex, sys
args = [a for a in sys.argv[1:] if not a.startswith("--wrap")]
with open(os.environ["FAKE_SBATCH_LOG"], "a") as f:
    f.write(json.dumps(args) + "\\n")
print("sbatch: error: fake cluster, job not submitted", file=sys.stderr)
sys.exit(1)
"""
# The plugin also calls sacct (account guess), scontrol (MinJobAge) and squeue/sinfo: answer "no".
FAKE_OTHER = "#!/bin/sh\nexit 1\n"

RUN = "results/runs/cifar10/fcn-w128-s0"
TARGETS = {
    "train": "results/runs/cifar10/fcn-w256-s0/train_log.csv",
    "kernel_tile": f"{RUN}/epoch000/kernels/pntk-train-train.manifest.json",  # 15 tiles of 10,000²
    "kernel_init": f"{RUN}/epoch000/kernels/entk-sub-train-sub-train.init.json",
    "regression": f"{RUN}/epoch050/regression.json",
    "timing": "results/timing/cifar10.csv",
}
EXISTING = [  # dummy inputs, oldest first
    "results/data/cifar10/cifar10.zarr/zarr.json",
    *[f"{RUN}/checkpoints/epoch{e:03d}.pt" for e in (0, 50, 100, 150, 200)],
    f"{RUN}/train_log.csv",
    f"{RUN}/epoch000/kernels/pntk-train-train.init.json",
    f"{RUN}/epoch050/kernels/pntk-train-train.manifest.json",
    f"{RUN}/epoch050/kernels/pntk-test-train.manifest.json",
]


def parse_sbatch(args: list[str]) -> dict:
    """{'comment', 'partition', 'gpus', 'cpus_per_gpu', 'cpus_per_task', 'time', 'mem'} of one sbatch call."""
    tokens, out = list(args), {}
    for key, flag in (("comment", "--comment"), ("partition", "-p"), ("time", "-t"), ("mem", "--mem"),
                      ("account", "-A")):
        if flag in tokens:
            out[key] = tokens[tokens.index(flag) + 1]
    for key, flag in (("gpus", "--gpus="), ("gres", "--gres="), ("cpus_per_gpu", "--cpus-per-gpu="),
                      ("cpus_per_task", "--cpus-per-task=")):
        found = [t[len(flag):] for t in tokens if t.startswith(flag)]
        if found:
            out[key] = found[0]
    return out


@pytest.fixture(scope="module")
def paper_sbatch_calls(tmp_path_factory):
    pytest.importorskip("snakemake_executor_plugin_slurm")
    work = tmp_path_factory.mktemp("paper")
    fake = work / "fake-slurm"
    fake.mkdir()
    (fake / "sbatch").write_text(FAKE_SBATCH.format(python=sys.executable))
    for tool in ("sacct", "sacctmgr", "sshare", "scontrol", "squeue", "sinfo", "scancel"):
        (fake / tool).write_text(FAKE_OTHER)
    for f in fake.iterdir():
        f.chmod(0o755)
    cfg = yaml.safe_load(PAPER.read_text())
    cfg["data"]["root"] = str(work / "data" / "cifar10")
    (work / "data" / "cifar10").mkdir(parents=True)
    (work / "config.yaml").write_text(yaml.safe_dump(cfg))
    for k, rel in enumerate(EXISTING):
        path = work / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")
        os.utime(path, (1_700_000_000 + k, 1_700_000_000 + k))
    os.utime(work / "results/data/cifar10", (1_700_000_000, 1_700_000_000))
    log = work / "sbatch.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SNAKEMAKE_PROFILE"))}
    env.update(PATH=f"{fake}{os.pathsep}{env.get('PATH', '')}", FAKE_SBATCH_LOG=str(log))
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--profile", str(SLURM_PROFILE), "--configfile",
           str(work / "config.yaml"), "--retries", "0",
           "--rerun-triggers", "mtime",  # the dummy inputs have no Snakemake metadata: judge by time only
           "--slurm-init-seconds-before-status-checks", "1",  # nothing to wait for: sbatch refuses every job
           "--", *TARGETS.values()]
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert log.exists(), f"no sbatch call (rc {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    calls = [parse_sbatch(yaml.safe_load(line)) for line in log.read_text().splitlines()]
    by_rule = {}
    for call in calls:
        what = call.get("comment", "").removeprefix("rule_").split("_wildcards_")[0]
        rule = next((r for r in TARGETS if what == r or what.endswith(f"_{r}")), what)
        by_rule.setdefault(rule, []).append(call)
    return by_rule


def test_every_kind_of_job_is_submitted(paper_sbatch_calls):
    assert set(paper_sbatch_calls) == set(TARGETS), paper_sbatch_calls
    # 15 tiles (5 × 5 grid, symmetric: upper triangle) in groups of group-components = 4
    assert len(paper_sbatch_calls["kernel_tile"]) == 4


@pytest.mark.parametrize("rule,runtime", [("train", "720"), ("regression", "180"), ("timing", "240")])
def test_gpu_rules_ask_for_one_gpu_of_the_configured_model(paper_sbatch_calls, rule, runtime):
    (call,) = paper_sbatch_calls[rule]
    assert call["gpus"] == "a100:1", call  # resources.gpu_model, one GPU
    assert call["partition"] == "gpu" and call["cpus_per_gpu"] == "8", call
    assert "cpus_per_task" not in call and call["time"] == runtime, call


def test_grouped_tiles_share_one_gpu(paper_sbatch_calls):
    for call in paper_sbatch_calls["kernel_tile"]:
        assert call["gpus"] == "a100:1" and call["partition"] == "gpu" and call["cpus_per_gpu"] == "8", call
    # the tiles of a group run one after another: runtime adds up (tile_runtime_min = 120)
    times = sorted(int(c["time"]) for c in paper_sbatch_calls["kernel_tile"])
    assert times == [360, 480, 480, 480], times


def test_cpu_rules_go_to_the_cpu_partition_without_gpu(paper_sbatch_calls):
    (call,) = paper_sbatch_calls["kernel_init"]
    assert call["partition"] == "cpu" and "gpus" not in call and "gres" not in call, call
    assert call["cpus_per_task"] == "1" and call["time"] == "60" and call["mem"] == "8000", call


def test_regression_memory_scales_with_the_kernel(paper_sbatch_calls):
    (call,) = paper_sbatch_calls["regression"]
    # pNTK train×train + test×train, float32: 50,000 × 60,000 × 4 B = 11.2 GiB at 1024 MB per GiB
    assert int(call["mem"]) >= 11_000, call


@pytest.mark.slow
def test_dry_run_of_the_paper_config(tmp_path):
    """`snakemake --profile profiles/slurm -n --configfile configs/paper-cifar10.yaml` works without the data."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SNAKEMAKE_PROFILE"))}
    proc = subprocess.run([SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path), "--profile",
                           str(SLURM_PROFILE), "-n", "--configfile", str(PAPER)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    resources = {}
    for block in re.split(r"\n(?=\s*\[\w{3} \w{3} )", out):
        rule = re.search(r"^\s*(?:local)?rule (\w+):", block, re.M)
        res = re.search(r"^\s*resources: (.*)$", block, re.M)
        if rule and res:
            resources.setdefault(rule.group(1), dict(kv.split("=", 1) for kv in res.group(1).split(", ")))
    for rule in ("train", "kernel_tile", "regression", "timing"):
        r = resources[rule]
        assert (r["gpu"], r["gpu_model"], r["slurm_partition"], r["cpus_per_gpu"]) == ("1", "a100", "gpu", "8"), r
    for rule in ("prepare_data", "kernel_init", "kernel_finalize", "diagnostics", "infinite_width", "tables",
                 "figures"):
        r = resources[rule]
        assert r["slurm_partition"] == "cpu" and "gpu" not in r, (rule, r)
    assert resources["train"]["runtime"] == "720" and resources["kernel_tile"]["runtime"] == "120"

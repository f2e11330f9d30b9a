"""The workflow without a shared filesystem: Snakemake's S3 storage plugin as default storage, moto's server.

tests/configs/tiny.yaml with `kernels.jobs: per_checkpoint` runs end to end with `--default-storage-provider
s3`. Two workflow folders stand for two machines that share nothing but the bucket: folder A trains and
computes every kernel store (`--until kernel_checkpoint diagnose_on_D`); folder B, empty, runs the rest
(regressions, tables, claims, figures, report) and fetches what it reads from the bucket. A job that reads a
store declares the store folder as well as its manifest, or in B it finds the manifest without the store
(checked by hand on 2026-12-07: with that declaration removed, B's regressions fail). Afterwards every output
is in the bucket, every store there verifies where it lies, an empty third folder has nothing to do, and no
object holds the credentials. `kernels.jobs: per_tile` (many jobs writing into one store folder) is refused
before any job runs, naming the key.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dry_run import job_counts
from servers import SECRET

from pntk import config as pcfg
from pntk.plan import device_profile, plan_workflow

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TINY = REPO / "tests" / "configs" / "tiny.yaml"

pytestmark = pytest.mark.slow


def _folder(path: Path, **kernels) -> Path:
    cfg = yaml.safe_load(TINY.read_text())
    cfg["kernels"].update(jobs="per_checkpoint", **kernels)
    cfg["diagnostics"]["jobs"] = "auto"  # per_run: the networks on D, one job each, their stores declared
    path.mkdir(parents=True)
    (path / "config.yaml").write_text(yaml.safe_dump(cfg))
    return path


def snakemake(work: Path, prefix: str, *args: str, check: bool = True) -> str:
    """Snakemake with the bucket as default storage; endpoint and credentials from the AWS environment that the
    `s3` fixture sets (AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), never on the command line."""
    cmd = [str(BIN / "snakemake"), "-s", str(REPO / "Snakefile"), "--directory", str(work), "--configfile",
           str(work / "config.yaml"), "--cores", "2", "--default-storage-provider", "s3",
           "--default-storage-prefix", prefix, *args]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-6000:]}")
    return proc.stdout


def bucket_objects(url: str) -> dict[str, bytes]:
    from pntk.store import remote

    fs = remote.RemotePath(url).fs
    root = url.removeprefix("s3://")
    return {key.removeprefix(root + "/"): fs.cat_file(key) for key in fs.find(root)}


@pytest.fixture(scope="module")
def remote_run(s3_server, tmp_path_factory):
    """Folder A up to the kernel stores, then an empty folder B for the rest, sharing only the bucket."""
    from servers import KEY_ID

    from pntk.store import remote

    env = {"AWS_ENDPOINT_URL_S3": s3_server, "AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET,
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        remote.RemotePath("s3://pntk-workflow").fs.mkdir("pntk-workflow")
        root = tmp_path_factory.mktemp("remote-workflow")
        prefix = "s3://pntk-workflow/tiny"
        a, b = _folder(root / "A"), _folder(root / "B")
        out_a = snakemake(a, prefix, "--until", "kernel_checkpoint", "diagnose_on_D")
        out_b = snakemake(b, prefix)
        yield {"root": root, "a": a, "b": b, "prefix": prefix, "out_a": out_a, "out_b": out_b}
    finally:
        for k, v in old.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def test_two_folders_sharing_only_the_bucket_run_the_whole_workflow(remote_run):
    r = remote_run
    ran_a, ran_b = job_counts(r["out_a"]), job_counts(r["out_b"])
    assert ran_a["kernel_checkpoint"] == 4 and ran_a["diagnose_on_D"] == 2 and "regression" not in ran_a
    assert ran_b["regression"] == 4 and ran_b["figures"] == 1 and ran_b["report"] == 1
    assert "kernel_checkpoint" not in ran_b and "train" not in ran_b  # B fetched what A wrote
    objects = bucket_objects(r["prefix"])
    for name in ("results/report.html", "results/tables/claims.csv", "results/tables/regression.csv",
                 "results/figures/figP4-kernel-heatmap.png"):
        assert name in objects, name
    manifests = sorted(k for k in objects if k.endswith(".manifest.json"))
    assert len(manifests) == 32  # train runs: 2 widths × 2 checkpoints × 4 stores; networks on D: as many
    for m in manifests:  # every store with its tiles, flags and sentinel, beside its manifest
        stem = m.removesuffix(".manifest.json")
        assert f"{stem}.init.json" in objects and f"{stem}.zarr/zarr.json" in objects, stem
        assert any(k.startswith(f"{stem}.tiles/") for k in objects), stem
    regressions = [json.loads(v) for k, v in objects.items() if k.endswith("/regression.json")]
    assert len(regressions) == 4 and all(0.0 <= x["flin_test_acc"] <= 1.0 for x in regressions)
    planned = plan_workflow(pcfg.load_config(r["b"] / "config.yaml"), device_profile("cpu"), cores=2)
    sent = sum(len(v) for v in objects.values())
    assert 0.5 < planned.as_dict()["bytes_written"] / sent < 1.5, (planned.as_dict()["bytes_written"], sent)
    secret = SECRET.encode()
    assert not [k for k, v in objects.items() if secret in v]  # no object holds the credentials
    local = [p for p in r["root"].rglob("*") if p.is_file() and secret in p.read_bytes()]
    assert not local, local


def test_every_store_in_the_bucket_verifies_where_it_lies(remote_run):
    proc = subprocess.run([str(BIN / "pntk"), "verify", "--json", f"{remote_run['prefix']}/results/runs"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    records = json.loads(proc.stdout)
    assert len(records) == 32 and all(rec["ok"] for rec in records), records


def test_an_empty_folder_has_nothing_to_do(remote_run):
    c = _folder(remote_run["root"] / "C")
    assert job_counts(snakemake(c, remote_run["prefix"], "-n")) == {}


def test_per_tile_kernel_jobs_are_refused_under_default_storage(remote_run):
    d = _folder(remote_run["root"] / "D")
    cfg = yaml.safe_load((d / "config.yaml").read_text())
    cfg["kernels"]["jobs"] = "per_tile"
    (d / "config.yaml").write_text(yaml.safe_dump(cfg))
    out = snakemake(d, remote_run["prefix"] + "-tiles", "-n", check=False)
    assert "kernels.jobs: per_tile" in out and "kernels.jobs: per_checkpoint" in out

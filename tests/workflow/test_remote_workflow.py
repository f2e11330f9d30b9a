"""The workflow without a shared filesystem: Snakemake's S3 storage plugin as default storage, moto's server.

tests/configs/tiny.yaml with `kernels.jobs: per_checkpoint` runs end to end with `--default-storage-provider
s3`. Two workflow folders stand for two machines that share nothing but the bucket: folder A trains and
computes every kernel store (`--until kernel_checkpoint diagnose_on_D`); folder B, empty, runs the rest
(regressions, tables, claims, figures, report) and fetches what it reads from the bucket. A job that reads a
store declares the store folder as well as its manifest, or in B it finds the manifest without the store
(checked by hand on 2026-12-07: with that declaration removed, B's regressions fail). Afterwards every output
is in the bucket, every store there verifies where it lies, an empty third folder has nothing to do, and no
object holds the credentials. The tiny config as shipped (`kernels.jobs: per_tile`) runs so too: kernel_init
declares the store folder, each tile job writes its chunk into the store where it lies in the bucket and
declares its flag; its stores equal kernel_checkpoint's bitwise.
"""
from __future__ import annotations

import json
import os
import re
import shutil
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
def aws(s3_server):
    """The AWS environment pointing at moto's server for this module's Snakemake runs (a module-scoped
    `servers.s3`), and the bucket."""
    from servers import aws_environment

    from pntk.store import remote

    env = aws_environment(s3_server)
    old = {k: os.environ.get(k) for k in env}
    for k, v in env.items():
        os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    try:
        remote.RemotePath("s3://pntk-workflow").fs.mkdir("pntk-workflow")
        yield "s3://pntk-workflow"
    finally:
        for k, v in old.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


@pytest.fixture(scope="module")
def remote_run(aws, tmp_path_factory):
    """Folder A up to the kernel stores, then an empty folder B for the rest, sharing only the bucket."""
    root = tmp_path_factory.mktemp("remote-workflow")
    prefix = f"{aws}/tiny"
    a, b = _folder(root / "A"), _folder(root / "B")
    out_a = snakemake(a, prefix, "--until", "kernel_checkpoint", "diagnose_on_D")
    out_b = snakemake(b, prefix)
    return {"root": root, "a": a, "b": b, "prefix": prefix, "out_a": out_a, "out_b": out_b}


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


@pytest.fixture(scope="module")
def tiles_run(aws, tmp_path_factory):
    """tests/configs/tiny.yaml as shipped (`kernels.jobs: per_tile`, the networks on D through the same tile
    rules): the tile jobs write their chunks into the stores where they lie in the bucket; folder A runs every
    store, an empty folder B the rest."""
    root = tmp_path_factory.mktemp("remote-tiles")
    prefix = f"{aws}/tiles"
    a, b = root / "A", root / "B"
    for f in (a, b):
        f.mkdir()
        shutil.copy(TINY, f / "config.yaml")
    out_a = snakemake(a, prefix, "--until", "kernel_finalize")
    out_b = snakemake(b, prefix)
    return {"root": root, "prefix": prefix, "out_a": out_a, "out_b": out_b}


def test_the_tiny_config_as_shipped_runs_per_tile_without_a_shared_filesystem(tiles_run, remote_run):
    """Every store in the bucket verifies where it lies; its chunks are bitwise those kernel_checkpoint wrote
    under the other prefix (same runs, same tiles); B computed no tile and fetched what it read; an empty
    folder has nothing to do."""
    r = tiles_run
    ran_a, ran_b = job_counts(r["out_a"]), job_counts(r["out_b"])
    assert ran_a["kernel_tile"] >= 32 and ran_a["kernel_finalize"] == 32 and "regression" not in ran_a
    assert not {"kernel_init", "kernel_tile", "train"} & set(ran_b) and ran_b["report"] == 1, ran_b
    # a tile job fetches its checkpoint, not the data set (it reads its rows where they lie), nor does finalize
    inputs = re.findall(r"^(?:local)?rule (kernel_tile|kernel_finalize):\n\s+input: (.*)$", r["out_a"], re.M)
    assert len(inputs) >= 64 and not [i for _, i in inputs if "results/data" in i], inputs[:3]
    proc = subprocess.run([str(BIN / "pntk"), "verify", "--json", f"{r['prefix']}/results/runs"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert len(json.loads(proc.stdout)) == 32
    tiles, ckpt = bucket_objects(r["prefix"]), bucket_objects(remote_run["prefix"])
    chunks = [k for k in tiles if "/kernel/c/" in k and "-onD/" not in k]
    assert len(chunks) >= 16 and all(tiles[k] == ckpt[k] for k in chunks)
    regressions = {k: json.loads(v) for k, v in tiles.items() if k.endswith("/regression.json")}
    assert len(regressions) == 4
    assert all(v["flin_test_acc"] == json.loads(ckpt[k])["flin_test_acc"] for k, v in regressions.items())
    assert "results/report.html" in tiles
    assert not [k for k, v in tiles.items() if SECRET.encode() in v]
    c = r["root"] / "C"
    c.mkdir()
    shutil.copy(TINY, c / "config.yaml")
    assert job_counts(snakemake(c, r["prefix"], "-n")) == {}


def test_per_tile_needs_an_s3_prefix(tmp_path):
    shutil.copy(TINY, tmp_path / "config.yaml")
    out = snakemake(tmp_path, "gs://bucket/x", "-n", check=False)
    assert "kernels.jobs: per_tile under --default-storage-provider" in out and "got 'gs://bucket/x'" in out

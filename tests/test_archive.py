"""Archives: pack finished stores in checkout A, import them into a fresh checkout B, and check that
`snakemake -n` in B schedules no train/kernel job; tampered archives are refused, each for its own reason.

The workflow test runs the real Snakefile on a tiny digits config (one FCN, 2 epochs, 2 kernel stores).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from dry_run import job_counts

from pntk import archive
from pntk.archive import ArchiveError
from pntk.cli import main
from pntk.config import REPO_ROOT, validate_config

RUN = "digits/fcn-w16-s0"
STORES = ("pntk-sub-train-sub-train", "entk-sub-test-sub-train")  # symmetric 2 × 2 tiles, 1 × 2 tiles
TINY = {
    "results": "results",
    "data": {"name": "digits", "subset_train": 20, "subset_test": 10, "seed": 0},
    "models": [{"arch": "fcn", "depth": 2, "widths": [16]}],
    "seeds": [0],
    "train": {"epochs": 1, "checkpoint_epochs": [0, 1], "batch_size": 64, "lr": 0.1},
    "kernels": {"kinds": ["pntk", "entk"], "tile_size": 10, "method": "reference", "dtype": "float64",
                "jobs": "per_tile",  # the tile protocol's own jobs: the targets are two of the four stores
                "index_sets": {"pntk": [["sub-train", "sub-train"], ["sub-test", "sub-train"]],
                               "entk": [["sub-train", "sub-train"], ["sub-test", "sub-train"]]}},
    "diagnostics": {"enabled": False}, "timing": {"enabled": False}, "infinite": {"enabled": False},
}
TARGETS = [f"results/runs/{RUN}/epoch001/kernels/{s}.manifest.json" for s in STORES]
HEAVY_RULES = {"prepare_data", "train", "kernel_init", "kernel_tile", "kernel_finalize"}


class Evil:  # an arbitrary class: pickled inside a checkpoint it must be refused
    pass


def write_config(path: Path, **changes) -> Path:
    cfg = json.loads(json.dumps(TINY))
    for k, v in changes.items():
        cfg[k] = v
    path.write_text(yaml.safe_dump(cfg))
    return path


def snakemake(workdir: Path, configfile: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO_ROOT / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(configfile), "--cores", "2", *args, *TARGETS]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def checkout_a(tmp_path_factory) -> tuple[Path, Path]:
    """Checkout A after the real workflow computed the two kernel stores: (results dir, config file)."""
    base = tmp_path_factory.mktemp("checkouts")
    cfg = write_config(base / "tiny.yaml")
    res = snakemake(base / "A", cfg)
    logs = "\n".join(f"--- {p}\n{p.read_text()[-3000:]}" for p in (base / "A/results").rglob("*.log")
                     if "Error" in p.read_text() or "Traceback" in p.read_text())
    assert res.returncode == 0, res.stderr[-5000:] + logs
    return base / "A" / "results", cfg


@pytest.fixture(scope="module")
def packed(checkout_a, tmp_path_factory) -> Path:
    results, cfg = checkout_a
    out = tmp_path_factory.mktemp("zip") / "a.zip"
    assert main(["archive", "pack", "--config", str(cfg), "--results", str(results), "-o", str(out)]) == 0
    return out


def rewrite(src: Path, dst: Path, replace: dict[str, bytes] | None = None, add: dict[str, bytes] | None = None) -> Path:
    """Copy archive `src` to `dst` with entries replaced/added, their sha256 updated in the manifest."""
    replace, add = replace or {}, add or {}
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        man = json.loads(zin.read(archive.MANIFEST))
        for name in zin.namelist():
            if name != archive.MANIFEST:
                zout.writestr(name, replace.get(name, zin.read(name)))
        for name, data in add.items():
            zout.writestr(name, data)
        for name, data in {**replace, **add}.items():
            man["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        zout.writestr(archive.MANIFEST, json.dumps(man))
    return dst


def files_under(path: Path) -> list[Path]:
    return [p for p in path.rglob("*") if p.is_file()] if path.exists() else []


@pytest.mark.slow
def test_two_checkouts_import_schedules_no_recomputation(checkout_a, packed, tmp_path):
    results_a, cfg = checkout_a
    with zipfile.ZipFile(packed) as zf:
        man = json.loads(zf.read(archive.MANIFEST))
        names = set(zf.namelist())
    assert {s["key"] for s in man["stores"]} == {f"{RUN}/epoch001/{s}" for s in STORES}
    assert set(man["files"]) | {archive.MANIFEST} == names
    assert f"runs/{RUN}/checkpoints/epoch000.pt" in names  # every output of the train job travels
    assert man["data"]["included"] and any(n.startswith("data/digits/digits.zarr/") for n in names)
    assert man["config"]["models"][0]["widths"] == [16] and man["pntk_version"]

    b = tmp_path / "B"
    cfg_b = write_config(tmp_path / "config-b.yaml")  # another file, same contents
    assert main(["archive", "import", str(packed), "--config", str(cfg_b), "--results", str(b / "results")]) == 0
    for s in STORES:
        assert main(["verify", str(b / f"results/runs/{RUN}/epoch001/kernels/{s}.zarr")]) == 0
    dry = snakemake(b, cfg_b, "-n")
    assert dry.returncode == 0, dry.stderr
    jobs = job_counts(dry.stdout + dry.stderr)
    assert not HEAVY_RULES & set(jobs), jobs

    # importing twice is harmless, and changes no modification time
    before = {p: p.stat().st_mtime for p in files_under(b / "results")}
    assert main(["archive", "import", str(packed), "--config", str(cfg_b), "--results", str(b / "results")]) == 0
    assert {p: p.stat().st_mtime for p in files_under(b / "results")} == before

    # control: the order of modification times is what keeps Snakemake quiet
    os.utime(b / "results/data/digits/.snakemake_timestamp")
    jobs = job_counts((lambda r: r.stdout + r.stderr)(snakemake(b, cfg_b, "-n")))
    assert {"train", "kernel_init", "kernel_tile", "kernel_finalize"} <= set(jobs), jobs


@pytest.mark.slow
def test_refuses_store_attrs_with_changed_width(packed, tmp_path, capsys):
    name = f"runs/{RUN}/epoch001/kernels/{STORES[0]}.zarr/zarr.json"
    with zipfile.ZipFile(packed) as zf:
        meta = json.loads(zf.read(name))
    meta["attributes"]["width"] = 32
    bad = rewrite(packed, tmp_path / "width.zip", replace={name: json.dumps(meta).encode()})
    b = tmp_path / "B"
    rc = main(["archive", "import", str(bad), "--config", str(write_config(tmp_path / "c.yaml")),
               "--results", str(b / "results")])
    err = capsys.readouterr().err
    assert rc == 1
    assert "store attrs do not match: width 32 (its path/checkpoint/config say 16)" in err
    assert files_under(b) == []


@pytest.mark.slow
def test_refuses_entry_leaving_the_target_folder(packed, tmp_path):
    bad = rewrite(packed, tmp_path / "dotdot.zip", add={"runs/../../evil.txt": b"pwned"})
    b = tmp_path / "sub" / "B"
    with pytest.raises(ArchiveError, match=r"runs/\.\./\.\./evil\.txt'?: path leaves the target folder"):
        archive.import_archive(bad, b / "results", validate_config(json.loads(json.dumps(TINY))))
    assert files_under(tmp_path / "sub") == [] and not (tmp_path / "evil.txt").exists()


@pytest.mark.slow
def test_refuses_pickled_object_in_checkpoint(packed, tmp_path):
    import torch

    name = f"runs/{RUN}/checkpoints/epoch001.pt"
    with zipfile.ZipFile(packed) as zf:
        ck = torch.load(io.BytesIO(zf.read(name)), weights_only=True)
    ck["extra"] = Evil()
    buf = io.BytesIO()
    torch.save(ck, buf)
    bad = rewrite(packed, tmp_path / "pickle.zip", replace={name: buf.getvalue()})
    b = tmp_path / "B"
    with pytest.raises(ArchiveError, match=rf"checkpoint {name} holds a pickled Python object.*Evil"):
        archive.import_archive(bad, b / "results", validate_config(json.loads(json.dumps(TINY))))
    assert files_under(b) == []


@pytest.mark.slow
def test_refuses_other_config_naming_the_difference(packed, tmp_path):
    cfg = validate_config(json.loads(json.dumps({**TINY, "models": [{"arch": "fcn", "depth": 2, "widths": [64]}],
                                                 "train": {**TINY["train"], "lr": 0.05}})))
    with pytest.raises(ArchiveError) as info:
        archive.import_archive(packed, tmp_path / "results", cfg)
    assert "width: archive 16, config 64" in str(info.value)
    assert "train.lr: archive 0.1, config 0.05" in str(info.value)
    assert files_under(tmp_path / "results") == []


@pytest.mark.slow
def test_pack_refuses_unfinished_or_absent_stores(checkout_a, tmp_path):
    results, cfg = checkout_a
    config = validate_config(yaml.safe_load(cfg.read_text()))
    with pytest.raises(ArchiveError, match="nothing to pack: none of the 4 selected kernel stores is computed"):
        archive.pack(config, results, tmp_path / "x.zip", selectors=["epoch000"])
    copy = tmp_path / "results"
    shutil.copytree(results, copy, ignore=shutil.ignore_patterns("*.log", ".resume"))
    (copy / f"runs/{RUN}/epoch001/kernels/{STORES[1]}.manifest.json").unlink()
    with pytest.raises(ArchiveError, match=rf"epoch001/{STORES[1]}: not finalized \(no manifest; 2/2 tiles"):
        archive.pack(config, copy, tmp_path / "x.zip")
    man = archive.pack(config, copy, tmp_path / "y.zip", selectors=["pntk-*"], with_data=False)
    assert [s["key"] for s in man["stores"]] == [f"{RUN}/epoch001/{STORES[0]}"]
    assert not any(f.startswith("data/") for f in man["files"]) and man["data"]["fingerprint"]
    (copy / f"runs/{RUN}/epoch001/kernels/{STORES[0]}.tiles/0_1.json").unlink()
    with pytest.raises(ArchiveError, match=rf"epoch001/{STORES[0]}: tile flags missing"):
        archive.pack(config, copy, tmp_path / "x.zip", selectors=["pntk-*"])
    assert not (tmp_path / "x.zip").exists()


def test_unsafe_names_are_named():
    def info(name: str, mode: int = 0o100644) -> zipfile.ZipInfo:
        zi = zipfile.ZipInfo(name)
        zi.external_attr = mode << 16
        return zi

    assert archive.unsafe_name(info("runs/d/fcn-w1-s0/train_log.csv")) is None
    assert archive.unsafe_name(info("/etc/passwd")) == "absolute path"
    assert archive.unsafe_name(info("C:/x")) == "absolute path"
    assert "leaves the target folder" in archive.unsafe_name(info("data/../../x"))
    assert "leaves the target folder" in archive.unsafe_name(info("data\\..\\x"))
    assert archive.unsafe_name(info("runs/link", 0o120777)) == "symbolic link"
    assert archive.unsafe_name(info("somewhere/else.txt")) == "outside data/ and runs/"


def test_selectors_and_levels():
    key = "digits/fcn-w16-s0/epoch001/pntk-sub-train-sub-train"
    for sel in ("fcn-w16-s0", "digits/fcn-w16-s0", "epoch001", "pntk-*", "*/epoch001/pntk-sub-train-*", key):
        assert archive.matches(key, sel), sel
    for sel in ("fcn-w1", "epoch000", "entk-*", "w16"):
        assert not archive.matches(key, sel), sel
    stem = "runs/digits/fcn-w16-s0/epoch001/kernels/pntk-sub-train-sub-train"
    levels = [archive.level_of(p) for p in ("data/digits/digits.zarr/x/c/0",
                                            "runs/digits/fcn-w16-s0/checkpoints/epoch001.pt", f"{stem}.init.json",
                                            f"{stem}.zarr/kernel/c/0/0", f"{stem}.tiles/0_1.json",
                                            f"{stem}.manifest.json")]
    assert levels == list(archive.LEVELS)


def test_code_floor_counts_the_working_directory_checkout(tmp_path, monkeypatch):
    """One venv serving several checkouts: the rule scripts of the checkout in the working directory (the
    workflow that will read the import) count too, so a fresh clone's newer scripts never look changed."""
    import os
    import time

    from pntk.archive.exchange import _code_floor

    (tmp_path / "scripts").mkdir()
    script = tmp_path / "scripts" / "train.py"
    script.write_text("")
    future = time.time() + 3600
    os.utime(script, (future, future))
    monkeypatch.chdir(tmp_path)
    assert _code_floor() == future


def test_folder_sources_name_unsafe_entries(tmp_path):
    """A published archive's staged folder: the same names refused as in a zip, symlinks by what they are."""
    from pntk.archive.checks import DirSource, unsafe_rel

    assert unsafe_rel("runs/d/fcn-w1-s0/train_log.csv") is None and unsafe_rel(archive.MANIFEST) is None
    assert unsafe_rel("/etc/passwd") == "absolute path"
    assert "leaves the target folder" in unsafe_rel("runs/../../x")
    assert unsafe_rel("elsewhere/x") == "outside data/ and runs/"
    (tmp_path / "runs" / "d").mkdir(parents=True)
    (tmp_path / "runs" / "d" / "a.csv").write_text("x")
    (tmp_path / "runs" / "d" / "link.csv").symlink_to(tmp_path / "runs" / "d" / "a.csv")
    (tmp_path / "runs" / "dirlink").symlink_to(tmp_path / "runs" / "d")
    (tmp_path / "other.txt").write_text("y")
    assert DirSource(tmp_path).entries() == [("other.txt", "outside data/ and runs/"), ("runs/d/a.csv", None),
                                             ("runs/d/link.csv", "symbolic link"), ("runs/dirlink", "symbolic link")]


def test_import_of_a_folder_without_manifest_is_refused(tmp_path):
    with pytest.raises(ArchiveError, match="not a pntk archive: no pntk-archive.json at"):
        archive.import_published(tmp_path, tmp_path / "results", validate_config(json.loads(json.dumps(TINY))))
    (tmp_path / archive.MANIFEST).write_text('{"format": "other"}')
    with pytest.raises(ArchiveError, match="format 'other' version None"):
        archive.import_published(tmp_path, tmp_path / "results", validate_config(json.loads(json.dumps(TINY))))
    assert not (tmp_path / "results").exists()

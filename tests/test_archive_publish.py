"""Published archives: `pntk archive publish` to a folder and to S3 (moto), `pntk ls` of what was published,
`pntk archive import` from a folder, s3:// and http:// (nginx serving the published folder), resumable
after an interruption, and the tampered archives of tests/test_archive.py refused from a published tree
too (locally and over http/S3), leaving nothing behind.

Checkout A is the real workflow's tiny digits run of tests/test_archive.py (one FCN, 2 kernel stores).
"""
from __future__ import annotations

import hashlib
import io
import json
import shutil
import time
from pathlib import Path

import pytest
from dry_run import job_counts
from test_archive import HEAVY_RULES, RUN, STORES, TINY, Evil, checkout_a, files_under, snakemake, write_config

from pntk import archive
from pntk.archive import ArchiveError
from pntk.archive import published as pub
from pntk.cli import main
from pntk.config import validate_config
from pntk.store import remote

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
assert checkout_a  # the module fixture, imported: the workflow runs once for this module
STORE0 = f"runs/{RUN}/epoch001/kernels/{STORES[0]}"
CHUNK0 = f"{STORE0}.zarr/kernel/c/0/0"
CKPT1 = f"runs/{RUN}/checkpoints/epoch001.pt"


def tiny_config(**changes) -> dict:
    return validate_config(json.loads(json.dumps({**TINY, **changes})))


@pytest.fixture(scope="module")
def published(checkout_a, tmp_path_factory) -> Path:
    """Checkout A's stores published to a folder with the command line."""
    results, cfg = checkout_a
    out = tmp_path_factory.mktemp("pub") / "archive"
    t0 = time.perf_counter()
    assert main(["archive", "publish", "--config", str(cfg), "--results", str(results), "-o", str(out)]) == 0
    print(f"publish to a folder: {time.perf_counter() - t0:.2f} s")
    return out


def manifest_of(tree: Path) -> dict:
    return json.loads((tree / archive.MANIFEST).read_text())


def tree_files(tree: Path) -> set[str]:
    return {p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_file()}


def tamper(src: Path, dst: Path, replace: dict[str, bytes] | None = None, add: dict[str, bytes] | None = None,
           update_sha: bool = True) -> Path:
    """Copy published tree `src` to `dst` with files replaced/added (sha256 updated in the manifest unless
    `update_sha` is false: the manifest then lies about them)."""
    shutil.copytree(src, dst)
    man = manifest_of(dst)
    for name, data in {**(replace or {}), **(add or {})}.items():
        if ".." not in name:
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            (dst / name).write_bytes(data)
        if update_sha or name not in man["files"]:
            man["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    (dst / archive.MANIFEST).write_text(json.dumps(man))
    return dst


def same_bytes(a: Path, b: Path, rels) -> bool:
    return all((a / r).read_bytes() == (b / r).read_bytes() for r in rels)


# -- publish ------------------------------------------------------------------------------------------------
def test_published_tree_is_the_results_hierarchy_with_its_index(checkout_a, published, capsys):
    results, _ = checkout_a
    man = manifest_of(published)
    assert tree_files(published) == set(man["files"]) | {archive.MANIFEST}
    assert same_bytes(results, published, man["files"])  # byte for byte what results/ holds
    assert {s["key"] for s in man["stores"]} == {f"{RUN}/epoch001/{s}" for s in STORES}
    for s in man["stores"]:  # Zarr with consolidated metadata: one read opens a store over http
        assert json.loads((published / f"{s['stem']}.zarr/zarr.json").read_text())["consolidated_metadata"]
    assert json.loads((published / man["data"]["path"] / "zarr.json").read_text())["consolidated_metadata"]
    capsys.readouterr()
    assert main(["ls", str(published), "--verify"]) == 0
    out = capsys.readouterr().out
    assert all(s in out for s in STORES) and "checkpoint" in out
    # a second publish to the same place is refused unless asked for
    _, cfg = checkout_a
    assert main(["archive", "publish", "--config", str(cfg), "--results", str(results), "-o", str(published)]) == 1
    assert "holds a published archive already" in capsys.readouterr().err


def test_import_from_folder_round_trip(checkout_a, published, tmp_path, capsys):
    results_a, _ = checkout_a
    b = tmp_path / "B" / "results"
    cfg_b = write_config(tmp_path / "config-b.yaml")
    assert main(["archive", "import", str(published), "--config", str(cfg_b), "--results", str(b)]) == 0
    out = capsys.readouterr().out
    man = manifest_of(published)
    assert f"{len(man['files'])} files written" in out and f"{len(man['files'])} files, " in out
    assert same_bytes(results_a, b, man["files"])
    for s in STORES:
        assert main(["verify", str(b / f"runs/{RUN}/epoch001/kernels/{s}.zarr")]) == 0
    assert not list(tmp_path.glob("B/.results.pntk-import-*"))  # the stage is gone
    # again: everything is there already, nothing is fetched or written, no modification time changes
    before = {p: p.stat().st_mtime for p in files_under(b)}
    res = archive.import_published(published, b, tiny_config())
    assert (res["fetched"], res["written"], res["linked"]) == (0, 0, len(man["files"]))
    assert {p: p.stat().st_mtime for p in files_under(b)} == before


def test_publish_to_s3_ls_and_import_from_s3(checkout_a, s3, tmp_path, capsys):
    results_a, cfg = checkout_a
    url = f"{s3}/shared/tiny"
    t0 = time.perf_counter()
    assert main(["archive", "publish", "--config", str(cfg), "--results", str(results_a), "-o", url]) == 0
    t_publish = time.perf_counter() - t0
    root = remote.as_path(url)
    man = json.loads((root / archive.MANIFEST).read_text())
    assert {p.relative_to(root) for p in root.rglob("*")} == set(man["files"]) | {archive.MANIFEST}
    capsys.readouterr()
    assert main(["ls", url, "--verify"]) == 0  # from the index; every store verified where it lies
    out = capsys.readouterr().out
    assert all(s in out for s in STORES), out

    b = tmp_path / "B" / "results"
    t0 = time.perf_counter()
    res = archive.import_published(url, b, tiny_config())
    t_import = time.perf_counter() - t0
    assert res["fetched"] == len(man["files"]) and res["written"] == len(man["files"])
    assert res["bytes"] == sum(f["size"] for f in man["files"].values())
    assert same_bytes(results_a, b, man["files"])
    print(f"S3 (moto): publish {t_publish:.2f} s, import {t_import:.2f} s, {res['fetched']} files, "
          f"{res['bytes']} bytes")


def test_import_over_http_then_snakemake_schedules_nothing(checkout_a, published, nginx, tmp_path, capsys):
    results_a, _ = checkout_a
    shutil.copytree(published, nginx.root / "tiny")
    url = f"{nginx.url}/tiny"
    man = manifest_of(published)
    capsys.readouterr()
    assert main(["ls", url, "--verify"]) == 0  # over http: the index names the stores (no listing)
    out = capsys.readouterr().out
    assert all(s in out for s in STORES), out

    b = tmp_path / "B"
    cfg_b = write_config(tmp_path / "config-b.yaml")
    start = nginx.mark()
    t0 = time.perf_counter()
    assert main(["archive", "import", url, "--config", str(cfg_b), "--results", str(b / "results")]) == 0
    t_import = time.perf_counter() - t0
    reqs = nginx.requests()[start:]
    gets = [r for r in reqs if r[0] == "GET"]
    # one GET per file and one for the manifest; a HEAD only where a file is empty (no size to pass)
    assert sorted(r[1] for r in gets) == sorted(f"/tiny/{f}" for f in [*man["files"], archive.MANIFEST])
    assert all(r[2] == 200 for r in reqs)
    empty = [f for f, m in man["files"].items() if m["size"] == 0]
    assert len(reqs) - len(gets) == len(empty)
    sent = sum(r[3] for r in gets)
    print(f"http import: {len(reqs)} requests, {sent} bytes, {t_import:.2f} s")
    assert same_bytes(results_a, b / "results", man["files"])
    dry = snakemake(b, cfg_b, "-n")
    assert dry.returncode == 0, dry.stderr
    jobs = job_counts(dry.stdout + dry.stderr)
    assert not HEAVY_RULES & set(jobs), jobs


def test_interrupted_import_resumes_without_refetching(published, nginx, tmp_path, monkeypatch):
    shutil.copytree(published, nginx.root / "resume")
    url = f"{nginx.url}/resume"
    n_files = len(manifest_of(published)["files"])
    b = tmp_path / "B" / "results"
    fetched, real_fetch = [], pub.fetch

    def dies_after(n):
        def fetch(root, rel, dst, size):
            if len(fetched) == n:
                raise ConnectionResetError("the network went away")
            fetched.append(rel)
            return real_fetch(root, rel, dst, size)
        return fetch

    monkeypatch.setattr(pub, "fetch", dies_after(n_files // 2))
    with pytest.raises(ConnectionResetError):
        archive.import_published(url, b, tiny_config())
    assert not b.exists()  # nothing written into results before every check passed
    stage = pub.staging_dir(b, url)
    assert stage.is_dir() and len(list(p for p in stage.rglob("*") if p.is_file())) == n_files // 2 + 1
    # a partial download left in the stage is dropped, not trusted
    (stage / "runs" / ".half.part").write_bytes(b"partial")
    first = list(fetched)
    fetched.clear()
    monkeypatch.setattr(pub, "fetch", dies_after(10**9))
    res = archive.import_published(url, b, tiny_config())
    assert res["fetched"] == len(fetched) == n_files - len(first) and res["staged"] == len(first)
    assert not set(first) & set(fetched)
    assert res["written"] == n_files and not stage.exists()


# -- tampered archives, refused from a folder, over http and from S3 ----------------------------------------
def _chunk_changed(published: Path) -> dict[str, bytes]:
    """Tile (0, 0) holding tile (1, 1)'s values: a valid chunk, other numbers."""
    return {CHUNK0: (published / CHUNK0.replace("c/0/0", "c/1/1")).read_bytes()}


def _chunk_flipped(published: Path) -> dict[str, bytes]:
    raw = bytearray((published / CHUNK0).read_bytes())
    raw[-1] ^= 0xFF
    return {CHUNK0: bytes(raw)}


def _pickled_checkpoint(published: Path) -> dict[str, bytes]:
    import torch

    ck = torch.load(published / CKPT1, weights_only=True)
    ck["extra"] = Evil()
    buf = io.BytesIO()
    torch.save(ck, buf)
    return {CKPT1: buf.getvalue()}


def _width_attrs(published: Path) -> dict[str, bytes]:
    meta = json.loads((published / f"{STORE0}.zarr/zarr.json").read_text())
    meta["attributes"]["width"] = 32
    return {f"{STORE0}.zarr/zarr.json": json.dumps(meta).encode()}


def _without(tree: Path, rel: str) -> Path:
    (tree / rel).unlink()
    return tree


TAMPERED = {  # name: (make the tampered copy, what the refusal says)
    "changed-chunk": (lambda p, d: tamper(p, d, replace=_chunk_changed(p)),
                      rf"{STORE0} fails verification: .*chunks differing from the manifest \[[^\]]"),
    "wrong-sha": (lambda p, d: tamper(p, d, replace=_chunk_flipped(p), update_sha=False),
                  rf"sha256 of {CHUNK0} differs from pntk-archive.json"),
    "pickled-checkpoint": (lambda p, d: tamper(p, d, replace=_pickled_checkpoint(p)),
                           rf"checkpoint {CKPT1} holds a pickled Python object.*Evil"),
    "path-escapes": (lambda p, d: tamper(p, d, add={"runs/../../evil.txt": b"pwned"}),
                     r"runs/\.\./\.\./evil\.txt'?: path leaves the target folder"),
    "store-attrs": (lambda p, d: tamper(p, d, replace=_width_attrs(p)),
                    r"store attrs do not match: width 32 \(its path/checkpoint/config say 16\)"),
    "listed-absent": (lambda p, d: _without(tamper(p, d), CKPT1),
                      rf"listed but absent \['{CKPT1}'\]"),
}


@pytest.mark.parametrize("where", ["folder", "http"])
@pytest.mark.parametrize("case", sorted(TAMPERED))
def test_tampered_published_archives_are_refused(published, nginx, tmp_path, where, case):
    make, message = TAMPERED[case]
    tree = make(published, nginx.root / f"{case}-{where}-{tmp_path.name}" if where == "http" else tmp_path / "t")
    source = f"{nginx.url}/{tree.name}" if where == "http" else tree
    b = tmp_path / "sub" / "B" / "results"
    with pytest.raises(ArchiveError, match=message):
        archive.import_published(source, b, tiny_config())
    assert files_under(tmp_path / "sub") == [] and not (tmp_path / "evil.txt").exists()


def test_other_config_refused_before_any_download(published, nginx, tmp_path):
    shutil.copytree(published, nginx.root / "config")
    start = nginx.mark()
    cfg = tiny_config(models=[{"arch": "fcn", "depth": 2, "widths": [64]}], train={**TINY["train"], "lr": 0.05})
    with pytest.raises(ArchiveError) as info:
        archive.import_published(f"{nginx.url}/config", tmp_path / "results", cfg)
    assert "width: archive 16, config 64" in str(info.value) and "train.lr: archive 0.1, config 0.05" in str(info.value)
    assert [r[1] for r in nginx.requests()[start:]] == [f"/config/{archive.MANIFEST}"]  # the manifest only
    assert files_under(tmp_path) == []


def test_symlink_in_a_published_folder_is_refused(published, tmp_path):
    tree = tamper(published, tmp_path / "t")
    (tree / CKPT1).unlink()
    (tree / CKPT1).symlink_to(published / CKPT1)
    with pytest.raises(ArchiveError, match=rf"'{CKPT1}': symbolic link"):
        archive.import_published(tree, tmp_path / "sub" / "results", tiny_config())
    assert files_under(tmp_path / "sub") == []


def test_tampered_chunk_refused_from_s3(published, s3, tmp_path):
    tree = tamper(published, tmp_path / "t", replace=_chunk_changed(published))
    root = remote.as_path(f"{s3}/bad")
    for p in (p for p in tree.rglob("*") if p.is_file()):
        (root / p.relative_to(tree).as_posix()).write_bytes(p.read_bytes())
    with pytest.raises(ArchiveError, match=TAMPERED["changed-chunk"][1]):
        archive.import_published(str(root), tmp_path / "sub" / "results", tiny_config())
    assert files_under(tmp_path / "sub") == []

"""pntk's store cache (kernels.jobs: per_tile under --cache): entries whole or absent, links per file, and no
job writing through a link into an entry. The workflow around it: tests/workflow/test_kernel_cache.py."""
from __future__ import annotations

from pathlib import Path

import pytest

from pntk.store import shared_cache, tiles
from pntk.store.paths import StorePaths

KEY = "ab" * 32


def _store(folder: Path) -> StorePaths:
    """A store's files as the tile protocol lays them out (their contents do not matter here)."""
    paths = StorePaths.in_epoch(folder, "pntk", "train", "train")
    (paths.store / "kernel" / "c" / "0").mkdir(parents=True)
    (paths.store / "zarr.json").write_text('{"attributes": {}}')
    (paths.store / "kernel" / "c" / "0" / "0").write_bytes(b"\x01\x02")
    paths.tiles_dir.mkdir()
    paths.flag(0, 0).write_text('{"chunks": {}}')
    paths.sentinel.write_text("{}")
    paths.manifest.write_text('{"tiles": {}}')
    return paths


def _contents(paths: StorePaths) -> dict[str, bytes]:
    return {str(f.relative_to(paths.stem.parent)): f.read_bytes() for f in paths.files()}


def test_deposit_then_a_hit_elsewhere_gives_the_same_files_as_links(tmp_path):
    a = _store(tmp_path / "A")
    want = _contents(a)
    assert not shared_cache.has(tmp_path / "cache", KEY, a.name)
    assert shared_cache.deposit(a, tmp_path / "cache", KEY)
    assert shared_cache.has(tmp_path / "cache", KEY, a.name)
    assert _contents(a) == want and tiles.linked_parts(a)  # A's files are now links into the entry
    assert not list((tmp_path / "cache" / shared_cache.ENTRIES).glob(".*partial"))
    b = StorePaths.in_epoch(tmp_path / "B", "pntk", "train", "train")
    shared_cache.link_from(b, tmp_path / "cache", KEY, manifest=False)
    assert not b.manifest.exists() and b.sentinel.is_symlink() and b.flag(0, 0).is_symlink()
    assert not b.store.is_symlink() and (b.store / "kernel" / "c" / "0" / "0").is_symlink()  # a link per file
    shared_cache.link_from(b, tmp_path / "cache", KEY, manifest=True)
    assert _contents(b) == want
    assert not shared_cache.deposit(_store(tmp_path / "C"), tmp_path / "cache", KEY)  # the entry is there


def test_removing_an_output_or_writing_a_store_never_touches_the_entry(tmp_path):
    a = _store(tmp_path / "A")
    shared_cache.deposit(a, tmp_path / "cache", KEY)
    entry = shared_cache.entry_of(tmp_path / "cache", KEY)
    before = {f: f.read_bytes() for f in entry.rglob("*") if f.is_file()}
    a.flag(0, 0).unlink()  # what Snakemake does to a tile job's output before it runs the job
    assert tiles.materialize_links(a)
    assert not tiles.linked_parts(a) and not tiles.materialize_links(a)
    (a.store / "kernel" / "c" / "0" / "0").write_bytes(b"new")
    (a.store / "zarr.json").write_text("changed")
    assert {f: f.read_bytes() for f in entry.rglob("*") if f.is_file()} == before


def test_a_missing_entry_or_a_bad_key_is_refused(tmp_path):
    b = StorePaths.in_epoch(tmp_path / "B", "pntk", "train", "train")
    with pytest.raises(FileNotFoundError, match="missing from the store cache entry"):
        shared_cache.link_from(b, tmp_path / "cache", KEY, manifest=False)
    with pytest.raises(ValueError, match="hex digest"):
        shared_cache.entry_of(tmp_path, "../x")
    with pytest.raises(RuntimeError, match="no finalized store"):
        shared_cache.deposit(b, tmp_path / "cache", KEY)

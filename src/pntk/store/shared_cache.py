"""Finished kernel stores in a content-addressed folder on a shared filesystem, for `kernels.jobs: per_tile` under
Snakemake's `--cache`.

Snakemake asks its output cache only when a cached job is about to run, which for a per-tile store is after
every tile job upstream of it. So the per-tile rules use this folder instead, beside Snakemake's own entries
in `$SNAKEMAKE_OUTPUT_CACHE`: a lookup job (a Snakemake checkpoint) runs before any tile, and on a hit the
workflow schedules no init and no tile job for that store.

    {root}/pntk-kernel-stores/{key}/{stem}.zarr, .tiles/, .init.json, .manifest.json

An entry appears whole (a folder renamed into place) and only after finalize has checked every flag against
its chunk. Like Snakemake's local cache, a deposit leaves links into the entry where the files were (it copies
them in, then replaces them), and a hit links to them: no job writes through those links
(tiles.detach_links), so an entry never changes.
The key is the caller's (pntk.kernel_jobs.store_cache_key): the store's content is whatever the key names.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from .paths import StorePaths
from .tiles import detach_links

ENTRIES = "pntk-kernel-stores"


def entry_of(root: str | Path, key: str) -> Path:
    """The folder an entry with this key has (or would have) under the cache root."""
    if not key or any(c not in "0123456789abcdef" for c in key):
        raise ValueError(f"store cache key {key!r}: expected a lowercase hex digest")
    return Path(root) / ENTRIES / key


def _parts(paths: StorePaths) -> list[Path]:
    """The store's files and folders that an entry holds, manifest last."""
    return [paths.store, paths.tiles_dir, paths.sentinel, paths.manifest]


def has(root: str | Path, key: str, name: str) -> bool:
    """Whether a complete entry for store `name` (`{kind}-{rows}-{cols}`) is there."""
    return (entry_of(root, key) / f"{name}.manifest.json").is_file()


def _remove(p: Path) -> None:
    """A local file, folder or link of a store (a link is removed, never what it points to)."""
    if p.is_symlink() or p.is_file():
        p.unlink()
    elif p.is_dir():
        shutil.rmtree(p)


def _link_tree(target: Path, p: Path) -> None:
    """`p` a link to file `target`, or a folder tree like folder `target` with a link per file: Snakemake
    removes a job's outputs before it runs it (a tile flag), which then removes a link, never the entry's
    file, and pntk.store.tiles.materialize_links replaces links one by one where a job writes."""
    if not target.is_dir():
        os.symlink(target, p)
        return
    for d, _dirs, names in os.walk(target):
        here = p / Path(d).relative_to(target)
        here.mkdir(parents=True, exist_ok=True)
        for n in names:
            os.symlink(Path(d, n), here / n)


def link_from(paths: StorePaths, root: str | Path, key: str, *, manifest: bool) -> None:
    """Replace the store's files by links into the entry: sentinel, flags and store, and the manifest too
    if `manifest` (the lookup job links the first three; finalize, whose output the manifest is, the last).
    What was there (a partial store, older links) is removed: the entry is the same store, complete. The
    sentinel first and the flags after it: a link's own time is its creation's."""
    entry = entry_of(root, key)
    detach_links(paths)
    store, tiles_dir, sentinel, manifest_path = _parts(paths)
    for p in [sentinel, store, tiles_dir] + ([manifest_path] if manifest else []):
        target = entry / p.name
        if not target.exists():
            raise FileNotFoundError(f"{target}: missing from the store cache entry {entry}")
        _remove(p)
        p.parent.mkdir(parents=True, exist_ok=True)
        _link_tree(target, p)


def deposit(paths: StorePaths, root: str | Path, key: str) -> bool:
    """Copy a finalized store into a new entry and leave links in its place. False (and the store left as it
    is) if an entry for the key appeared meanwhile (another workflow folder deposited the same store)."""
    entry = entry_of(root, key)
    if not paths.manifest.is_file() or paths.manifest.is_symlink():
        raise RuntimeError(f"{paths.manifest}: no finalized store of this folder's own to deposit")
    if has(root, key, paths.name):
        return False
    entry.parent.mkdir(parents=True, exist_ok=True)
    staging = entry.parent / f".{key}.{os.getpid()}.partial"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    for p in _parts(paths):
        if p.exists():
            shutil.copytree(p, staging / p.name) if p.is_dir() else shutil.copy2(p, staging / p.name)
    try:
        os.rename(staging, entry)  # atomic: an entry is whole or absent
    except OSError:  # another folder's deposit won the race: keep ours as it is
        shutil.rmtree(staging, ignore_errors=True)
        return False
    link_from(paths, root, key, manifest=True)
    return True

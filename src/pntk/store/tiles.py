"""Tile protocol: init an empty store, compute tiles in independent jobs, finalize with a manifest.

    init      create `{stem}.zarr` (all NaN) and the sentinel `{stem}.init.json`
    tile      compute block (i, j) with the kernel engine, write its chunk (and the transposed chunk of
              a symmetric store), then atomically write the flag `{stem}.tiles/{i}_{j}.json` holding the
              chunk checksums and timing. A job killed before the flag exists is simply recomputed.
    finalize  check every flag against the chunks, check no tile is missing, consolidate metadata and
              write `{stem}.manifest.json` (all tile checksums). Downstream rules read the manifest.
The store directory is deliberately not a declared Snakemake output: tile jobs write into it, and its
modification time must not make finished tiles look stale.
"""
from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import numpy as np

from ..provenance import provenance
from . import zarr_store as kstore
from .paths import StorePaths
from .remote import as_path, sha256_of, write_json


def detach_links(paths: StorePaths) -> bool:
    """Remove the links a store's files are when they came from Snakemake's output cache (the store, the flag
    folder, sentinel, manifest: links into the cache, or folders of links), never what they point to, so no
    job writes into a store other folders share. True if there were any. Local stores only."""
    import os
    import shutil

    found = False
    for p in (paths.store, paths.tiles_dir, paths.sentinel, paths.manifest):
        if not isinstance(p, Path):
            continue
        if p.is_symlink():
            p.unlink()
            found = True
        elif p.is_dir() and any(e.is_symlink() for e in os.scandir(p)):
            shutil.rmtree(p)  # removes the links, does not follow them
            found = True
    return found


def linked_parts(paths: StorePaths) -> list[Path]:
    """The links among the store's files (into an output or store cache): the sentinel, the store or flag
    folder itself, or any file below them (a store taken from pntk's store cache is folders of links). Local
    stores only."""
    import os

    out = []
    for p in (paths.store, paths.tiles_dir, paths.sentinel):
        if not isinstance(p, Path):
            continue
        if p.is_symlink():
            out.append(p)
        elif p.is_dir():
            out += [Path(d, n) for d, dirs, names in os.walk(p) for n in names + dirs if Path(d, n).is_symlink()]
    return out


def materialize_links(paths: StorePaths) -> bool:
    """Replace the store's links into a cache by copies of what they point to, so that a job that writes into
    the store (finalize's attributes, a tile) never writes into the cache. Under a lock: the tile jobs of one
    store may do this at once. True if there were any. Local stores only."""
    import fcntl
    import shutil

    if not isinstance(paths.stem, Path) or not linked_parts(paths):
        return False
    paths.stem.parent.mkdir(parents=True, exist_ok=True)
    with open(paths.stem.with_name(paths.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = linked_parts(paths)  # again, under the lock: another job may have done it
        for p in found:
            target = p.resolve()
            p.unlink()
            shutil.copytree(target, p, symlinks=False) if target.is_dir() else shutil.copy2(target, p)
    return bool(found)


def init_store(sentinel: str | Path, *, kind: str, row_ids, col_ids, row_labels, col_labels, tile: int,
               dtype: str, out_dim: int | None, attrs: dict) -> None:
    paths = StorePaths.of(sentinel)
    detach_links(paths)  # a store taken from the output cache is made again here, not written through the links
    kstore.create_store(paths.store, kind=kind, row_ids=row_ids, col_ids=col_ids,
                        row_labels=row_labels, col_labels=col_labels, tile=tile, dtype=dtype,
                        out_dim=out_dim, attrs=attrs)
    write_json(sentinel, {"store": paths.store.name, "kind": kind, "tile_size": tile,
                                 "shape": [len(row_ids), len(col_ids)], **provenance()})


def compute_tile(model, x_rows, x_cols, *, same_inputs: bool, kind: str, method: str,
                 batch_size: int | None, dtype, allow_tf32: bool = False) -> np.ndarray:
    """Kernel block of one tile: x_rows (R, C, H, W), x_cols (S, C, H, W) → (R, S[, O, O]).

    same_inputs: the tile's cols are its rows (tile (i, i) of a symmetric store), so the engine is called
    with x2=None and computes K(x, x), symmetric by construction and cheaper."""
    import torch

    from ..kernels import empirical_kernel

    model = model.to(dtype)
    x1 = torch.as_tensor(x_rows, dtype=dtype)
    x2 = None if same_inputs else torch.as_tensor(x_cols, dtype=dtype)
    k = empirical_kernel(model, x1, x2, kind=kind, method=method, batch_size=batch_size, allow_tf32=allow_tf32)
    return k.detach().cpu().numpy()


def tile_method(model, x_rows, x_cols, *, same_inputs: bool, kind: str, method: str, dtype) -> str:
    """The method `compute_tile` runs for this tile ("auto" resolved for these shapes: pntk.kernels.chosen_method)."""
    import torch

    from ..kernels import chosen_method

    if method != "auto":
        return method
    model = model.to(dtype)
    x1 = torch.as_tensor(x_rows, dtype=dtype)
    x2 = None if same_inputs else torch.as_tensor(x_cols, dtype=dtype)
    return chosen_method(model, x1, x2, kind=kind, method=method).value


def write_tile_and_flag(flag: str | Path, block: np.ndarray, i: int, j: int, seconds: float,
                        extra: dict | None = None) -> dict:
    """Write the chunk(s) of tile (i, j), then its flag. The flag is written only after write_tile returned,
    i.e. after the chunks are fsynced (or PUT): a crash leaves at worst a chunk without a flag (recomputed)."""
    store = StorePaths.of(flag).store
    t0 = time.perf_counter()
    if not np.isfinite(block).all():
        raise FloatingPointError(f"tile ({i},{j}) of {store} has non-finite values; no flag written")
    sums = kstore.write_tile(store, i, j, block)
    record = {"tile": [i, j], "chunks": sums, "seconds": seconds, "write_seconds": time.perf_counter() - t0,
              "host": platform.node(), "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **(extra or {})}
    write_json(flag, record)
    return record


def finalize(manifest: str | Path, flags: list[str | Path], inputs: dict | None = None) -> dict:
    """Check every flag against the stored chunks and write the manifest; raise naming bad tiles."""
    materialize_links(StorePaths.of(manifest))  # finalize writes attributes: never through a link into a cache
    spath = StorePaths.of(manifest).store
    expected: dict[str, str] = {}
    timing, methods = {}, {}
    for f in flags:
        rec = json.loads(as_path(f).read_text())
        expected.update(rec["chunks"])
        timing[f"{rec['tile'][0]}_{rec['tile'][1]}"] = rec["seconds"]
        methods[f"{rec['tile'][0]}_{rec['tile'][1]}"] = rec.get("method")
    actual = kstore.chunk_checksums(spath)
    missing = sorted(k for k, v in actual.items() if k not in expected)
    bad = sorted(k for k, v in expected.items() if actual.get(k) != v)
    if missing or bad:
        raise RuntimeError(f"{spath}: cannot finalize: tiles without a flag {missing}, "
                           f"tiles whose chunk does not match its flag {bad}")
    ran = sorted({m for m in methods.values() if m})
    # The method that ran, from the flags (several when "auto" picked differently for differently shaped
    # tiles; None when the flags predate this record). Attributes only: no chunk changes.
    kstore.update_attrs(spath, {"method": "+".join(ran) or None})
    info = kstore.store_info(spath)
    record = {"store": spath.name, "tiles": dict(sorted(expected.items())), "tile_seconds": timing,
              "tile_methods": dict(sorted(methods.items())),
              "shape": info["shape"], "kind": info["kind"], "dtype": info["dtype"],
              "attrs": {k: v for k, v in info.items() if k not in ("path", "shape", "chunks", "dtype")},
              "inputs": {k: sha256_of(v) for k, v in (inputs or {}).items()}, **provenance()}
    write_json(manifest, record)
    return record


def verify(store: str | Path, manifest: str | Path | None = None) -> dict:
    """Recompute every chunk checksum and compare with the manifest and the tile flags.

    Returns {"ok", "missing": tiles never written or absent from the manifest, "mismatch": tiles whose
    chunk differs from the manifest, "bad_flags": flag files unreadable or disagreeing with the manifest,
    "unflagged": tiles in the manifest whose flag file is gone}.
    Without a manifest (store not finalized) the flags are the reference and "ok" is False.
    """
    paths = StorePaths.of(store)
    spath = paths.store
    mpath = as_path(manifest) if manifest else paths.manifest
    actual = kstore.chunk_checksums(spath)
    flags: dict[str, dict | None] = {}
    for f in paths.flag_files():
        try:
            flags[f.name] = json.loads(f.read_text())["chunks"]
        except (json.JSONDecodeError, KeyError, TypeError):
            flags[f.name] = None
    from_flags = {k: v for sums in flags.values() if sums for k, v in sums.items()}
    expected = json.loads(mpath.read_text())["tiles"] if mpath.exists() else from_flags
    result = {"store": str(spath), "manifest": str(mpath), "n_tiles": len(actual),
              "manifest_missing": not mpath.exists(), **compare_checksums(actual, expected, flags)}
    result["ok"] = not (result["missing"] or result["mismatch"] or result["bad_flags"] or result["unflagged"]
                        or result["manifest_missing"])
    return result


def compare_checksums(actual: dict, expected: dict, flags: dict) -> dict[str, list[str]]:
    """Tiles as stored (`actual`, "i_j" → sha256 or None if never written) against the manifest's
    (`expected`) and the flag files' (`flags`: file name → their chunk checksums, None if unreadable):
    "missing" (not written, or absent from the manifest), "mismatch" (chunk differs from the manifest),
    "bad_flags" (unreadable or disagreeing with the manifest), "unflagged" (no flag file names the tile)."""
    flagged = {k for sums in flags.values() if sums for k in sums}
    return {"missing": sorted(k for k, v in actual.items() if v is None or k not in expected),
            "mismatch": sorted(k for k, v in expected.items()
                               if k not in actual or (actual[k] is not None and actual[k] != v)),
            "bad_flags": sorted(name for name, sums in flags.items()
                                if sums is None or any(expected.get(k) != v for k, v in sums.items())),
            "unflagged": sorted(set(expected) - flagged)}

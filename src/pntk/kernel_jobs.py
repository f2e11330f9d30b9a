"""What the kernel rules do, as plain functions: shared by scripts/kernel_*.py, the CLI and the tests."""
from __future__ import annotations

import hashlib
import json
import logging
import time
from functools import partial
from pathlib import Path

import numpy as np

from .data import PreparedData, index_set, open_images, open_prepared, read_rows
from .models.spec import ModelSpec
from .provenance import atomic_write_json, provenance, sha256_file
from .runs import checkpoint_meta
from .store import remote, shared_cache, tiles
from .store.paths import StorePaths
from .store.tile_io import RowCache, TileWriter, tile_ids, write_now
from .store.zarr_store import chunk_checksums
from .tiling import TileGrid, is_symmetric
from .train import load_checkpoint

log = logging.getLogger(__name__)


def index_sets_for(data: PreparedData, rows: str, cols: str, data_cfg: dict) -> tuple[np.ndarray, np.ndarray]:
    kw = dict(subset_train=data_cfg["subset_train"], subset_test=data_cfg["subset_test"], seed=data_cfg["seed"])
    return index_set(data, rows, **kw), index_set(data, cols, **kw)


def store_attrs(kind: str, rows: str, cols: str, kernels_cfg: dict, checkpoint: str | Path,
                data: PreparedData, model_spec: dict) -> dict:
    """Provenance of a store: index sets, the method asked for (`method`, the one that ran, is added by
    finalize from the tile flags), the checkpoint (name, sha256, run, epoch), its model (name in run names,
    arch or import path, kwargs, the whole spec), the data, and the pntk/torch versions that made it."""
    meta = checkpoint_meta(checkpoint)
    model = ModelSpec.from_dict(model_spec).provenance()
    if model["model"] != meta["arch"]:
        raise RuntimeError(f"{checkpoint}: its model is named {model['model']!r}, its run folder says "
                           f"{meta['arch']!r}; the checkpoint is not in its own run folder")
    del meta["arch"]  # the folder's model name is `model`; `arch` is what builds it
    return {"rows": rows, "cols": cols, "symmetric": is_symmetric(rows, cols),
            "method_requested": kernels_cfg["method"], "method": None,
            "allow_tf32": bool(kernels_cfg.get("allow_tf32", False)),
            "checkpoint": Path(checkpoint).name, "checkpoint_sha256": sha256_file(checkpoint),
            "data_fingerprint": data.fingerprint, **meta, **model, "dataset": data.attrs["name"], **provenance()}


def checkpoint_spec(checkpoint: str | Path) -> dict:
    """The ModelSpec dict a checkpoint records (torch.load with weights_only: plain containers only)."""
    import torch

    return torch.load(checkpoint, weights_only=True, map_location="cpu")["spec"]


def init_job(sentinel: str | Path, *, kind: str, rows: str, cols: str, data_path, checkpoint,
             kernels_cfg: dict, data_cfg: dict, model_spec: dict | None = None) -> None:
    """Create the empty store; `model_spec` (the checkpoint's, read from it when None) goes into its attrs."""
    data = open_prepared(data_path, lazy=True)  # labels and split only: the images are not needed here
    r_ids, c_ids = index_sets_for(data, rows, cols, data_cfg)
    spec = model_spec if model_spec is not None else checkpoint_spec(checkpoint)
    attrs = store_attrs(kind, rows, cols, kernels_cfg, checkpoint, data, spec)
    tiles.init_store(sentinel, kind=kind, row_ids=r_ids, col_ids=c_ids, row_labels=data.y[r_ids],
                     col_labels=data.y[c_ids], tile=kernels_cfg["tile_size"], dtype=kernels_cfg["dtype"],
                     out_dim=data.num_classes if kind == "entk" else None, attrs=attrs)
    log.info("initialised %s: %d × %d, tile %d", StorePaths.of(sentinel).store, len(r_ids),
             len(c_ids), kernels_cfg["tile_size"])


def tile_job(flag: str | Path, *, kind: str, rows: str, cols: str, i: int, j: int, data_path, checkpoint,
             kernels_cfg: dict, data_cfg: dict) -> dict:
    """Compute tile (i, j). Memory is bounded by the tile: its row/col indices come from the store's
    coordinates, only its rows of the images are read, and no per-example array (labels, split) is loaded."""
    paths = StorePaths.of(flag)
    tiles.materialize_links(paths)  # a tile job never writes into a store that other folders share
    x, fingerprint = _images(data_path)  # x stays where it lies: only this tile's rows are read
    _check_inputs(paths, checkpoint, fingerprint)
    r_sel, c_sel = tile_ids(paths.store, i, j)
    model, _ = load_checkpoint(checkpoint, device=kernels_cfg["device"])
    return _run_tile(flag, model, partial(read_rows, x), r_sel, c_sel, i, j, kind=kind,
                     same_inputs=is_symmetric(rows, cols) and i == j, kernels_cfg=kernels_cfg, write=write_now)


def _run_tile(flag, model, read, r_sel: np.ndarray, c_sel: np.ndarray, i: int, j: int, *, kind: str,
              same_inputs: bool, kernels_cfg: dict, write) -> dict | None:
    """Compute tile (i, j) from the images ``read(ids)`` returns (rows ``r_sel``, cols ``c_sel``) and hand
    it to ``write`` (``write_now``, or a TileWriter's ``submit`` that writes it while the next tile computes).
    ``same_inputs``: a diagonal tile of a symmetric store (``TileGrid.is_diagonal``), computed as K(x, x)."""
    import torch

    dtype = getattr(torch, kernels_cfg["dtype"])
    device = kernels_cfg["device"]
    t0 = time.perf_counter()
    x_rows = torch.as_tensor(read(r_sel), device=device)  # (R, C, H, W)
    x_cols = torch.as_tensor(read(c_sel), device=device)  # (S, C, H, W)
    # "auto" resolved here and passed on, so the flag names the method that computed this tile
    method = tiles.tile_method(model, x_rows, x_cols, same_inputs=same_inputs, kind=kind, method=kernels_cfg["method"],
                               dtype=dtype)
    block = tiles.compute_tile(model, x_rows, x_cols, same_inputs=same_inputs, kind=kind, method=method,
                               batch_size=kernels_cfg["batch_size"], dtype=dtype,
                               allow_tf32=kernels_cfg.get("allow_tf32", False))
    seconds = time.perf_counter() - t0
    log.info("tile (%d,%d) %s: %d × %d computed in %.2f s (%s)", i, j, kind, len(r_sel), len(c_sel), seconds,
             method)
    return write(flag, block, i, j, seconds, {"n_rows": len(r_sel), "n_cols": len(c_sel), "device": device,
                                              "method": method})


def checkpoint_job(manifests: list[str | Path], specs: list[tuple[str, str, str]], *, data_path, checkpoint,
                   kernels_cfg: dict, data_cfg: dict) -> list[dict]:
    """Every kernel store of one checkpoint in one process (`kernels.jobs: per_checkpoint`).

    For each (kind, rows, cols) in `specs` with its manifest path: init the store unless one made for this
    very checkpoint, data and tile size is already there, compute every tile of the grid without a flag
    that matches its chunk, then finalize. The files are those of the per-tile rules (store, sentinel,
    flags, manifest), so a killed job resumes at the first missing tile, and `pntk verify`, archives and
    the cache treat both modes alike. What it saves is process starts: init + tiles + finalize cost one
    Python and torch import each (≈2–3 s on a laptop core), far more than a tile of a small data set.
    """
    if len(manifests) != len(specs):
        raise ValueError(f"checkpoint_job: {len(manifests)} manifests for {len(specs)} store specs")
    data = open_prepared(data_path, lazy=True)
    model, meta = load_checkpoint(checkpoint, device=kernels_cfg["device"])
    records = []
    with TileWriter() as writer:  # tile k is written while tile k + 1 computes
        for manifest, spec in zip(manifests, specs):
            records.append(_checkpoint_store(manifest, spec, writer, model, data, data_path=data_path,
                                             checkpoint=checkpoint, kernels_cfg=kernels_cfg, data_cfg=data_cfg,
                                             model_spec=meta["spec"]))
    return records


def _checkpoint_store(manifest, spec: tuple[str, str, str], writer: TileWriter, model, data: PreparedData, *,
                      data_path, checkpoint, kernels_cfg: dict, data_cfg: dict, model_spec: dict) -> dict:
    """checkpoint_job for one store: init or resume, every tile without a matching flag, finalize."""
    kind, rows, cols = spec
    paths = StorePaths.of(manifest)
    r_ids, c_ids = index_sets_for(data, rows, cols, data_cfg)
    if tiles.detach_links(paths):  # links into Snakemake's output cache: computed afresh, the cache untouched
        log.info("%s: was a link into the output cache; computing it here", paths.store)
    if _resumable(paths, checkpoint, data, kind, r_ids, c_ids, kernels_cfg):
        done = chunk_checksums(paths.store)  # {"i_j": sha256 or None}
        log.info("resuming %s: %d tiles written", paths.store, sum(v is not None for v in done.values()))
    else:
        init_job(paths.sentinel, kind=kind, rows=rows, cols=cols, data_path=data_path, checkpoint=checkpoint,
                 kernels_cfg=kernels_cfg, data_cfg=data_cfg, model_spec=model_spec)
        done = {}
    flags = []
    grid = TileGrid(len(r_ids), len(c_ids), kernels_cfg["tile_size"], symmetric=is_symmetric(rows, cols))
    tiles_ij = grid.tiles()
    start, computed, read = time.perf_counter(), 0, RowCache(data.x)
    for n, (i, j) in enumerate(tiles_ij, 1):
        flag = paths.flag(i, j)
        if not _flag_matches(flag, done):
            rs, cs = grid.slices(i, j)
            _run_tile(flag, model, read, r_ids[rs], c_ids[cs], i, j, kind=kind, same_inputs=grid.is_diagonal(i, j),
                      kernels_cfg=kernels_cfg, write=writer.submit)
            computed += 1
        else:
            log.info("tile (%d,%d) %s: kept (flag matches its chunk)", i, j, kind)
        eta = (time.perf_counter() - start) / computed * (len(tiles_ij) - n) if computed else 0.0
        log.info("%s: %d/%d tiles, ETA %.0f s", paths.name, n, len(tiles_ij), eta)
        flags.append(flag)
    writer.wait()  # every flag of this store is on disk before it is finalized
    record = tiles.finalize(manifest, flags, inputs={"checkpoint": checkpoint, "sentinel": paths.sentinel})
    log.info("finalized %s: %d tiles", paths.store, len(flags))
    return record


def _resumable(paths: StorePaths, checkpoint, data: PreparedData, kind: str, r_ids: np.ndarray,
               c_ids: np.ndarray, kernels_cfg: dict) -> bool:
    """A store left by an earlier (killed) job that init_job would create again identically: same
    checkpoint and data, kind, dtype, method, tile size and the same row/col examples in the same order."""
    import zarr

    spath = paths.store
    if not paths.sentinel.exists() or not spath.exists():
        return False
    want = {"kind": kind, "dtype": kernels_cfg["dtype"], "tile_size": kernels_cfg["tile_size"],
            "method_requested": kernels_cfg["method"], "checkpoint_sha256": sha256_file(checkpoint),
            "data_fingerprint": data.fingerprint}
    try:
        g = zarr.open_group(str(spath), mode="r")
        same = ({k: g.attrs.get(k) for k in want} == want and np.array_equal(g["row"][:], r_ids)
                and np.array_equal(g["col"][:], c_ids))
    except (OSError, ValueError, KeyError) as err:
        log.info("re-initialising %s: %s", spath, err)
        return False
    if not same:
        log.info("re-initialising %s: made for another checkpoint, data, settings or examples", spath)
    return same


def _flag_matches(flag: Path, checksums: dict) -> bool:
    """A flag is kept only when every chunk it lists holds exactly the values it was written with."""
    try:
        chunks = json.loads(flag.read_text())["chunks"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return bool(chunks) and all(checksums.get(k) == v for k, v in chunks.items())


def _images(data_path):
    """(images, fingerprint) of the prepared data: `pntk.data.open_images` on a local folder or store, or the
    prepared store at an s3:// URL (a per-tile job without a shared filesystem reads only its rows there)."""
    if not remote.is_url(str(data_path)):
        return open_images(data_path)
    import zarr

    g = zarr.open_group(remote.zarr_store(str(data_path), read_only=True), mode="r", use_consolidated=False)
    return g["x"], str(g.attrs["fingerprint"])


def _check_inputs(paths: StorePaths, checkpoint, data_fingerprint: str) -> None:
    """Refuse to write into a store initialised for another checkpoint or data set."""
    import zarr

    attrs = zarr.open_group(str(paths.store), mode="r").attrs
    if attrs.get("checkpoint_sha256") != sha256_file(checkpoint):
        raise RuntimeError(f"{checkpoint}: checksum differs from the one {paths.store} was "
                           "initialised with; rerun kernel_init")
    if attrs.get("data_fingerprint") != data_fingerprint:
        raise RuntimeError(f"{paths.store}: initialised for other data (fingerprint differs)")


# --- kernels.jobs: per_tile under --cache (pntk.store.shared_cache)
def store_cache_key(*, kind: str, rows: str, cols: str, checkpoint, data_path, settings: dict) -> str:
    """sha256 naming a finished store: its kind and index sets, the checkpoint's and the data's content
    (checkpoint sha256, data fingerprint) and `settings` (kernel and data settings, run, epoch, the digest
    of the code the kernel jobs import: the workflow's kernel_cache_params)."""
    _, fingerprint = open_images(data_path)
    parts = {"store": [kind, rows, cols], "checkpoint_sha256": sha256_file(checkpoint),
             "data_fingerprint": fingerprint, "settings": settings}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def lookup_job(record: str | Path, *, cache_root, **key_parts) -> dict:
    """Look the store up in the store cache: on a hit, link its store, flags and sentinel into place.
    Writes `record` ({"key", "entry", "hit"}), which tells the workflow whether to schedule the tiles."""
    if not cache_root or not Path(cache_root).is_dir():
        raise RuntimeError(f"SNAKEMAKE_OUTPUT_CACHE={cache_root!r}: --cache with kernels.jobs: per_tile needs it "
                           "to name an existing folder on the shared filesystem")
    paths = StorePaths.of(record)
    key = store_cache_key(**key_parts)
    hit = shared_cache.has(cache_root, key, paths.name)
    if hit:
        shared_cache.link_from(paths, cache_root, key, manifest=False)
    entry = shared_cache.entry_of(cache_root, key)
    log.info("%s: %s the store cache (%s)", paths.name, "taken from" if hit else "not in", entry)
    rec = {"store": paths.name, "key": key, "entry": str(entry), "hit": hit}
    atomic_write_json(record, rec)
    return rec


def finalize_job(manifest: str | Path, flags: list, *, record: str | Path, cache_root, inputs: dict) -> None:
    """kernel_finalize under --cache: on a hit link the entry's manifest; otherwise finalize the tiles as
    always, then deposit the store into the cache (links left in place)."""
    rec = json.loads(Path(record).read_text())
    paths = StorePaths.of(manifest)
    if rec["hit"]:
        shared_cache.link_from(paths, cache_root, rec["key"], manifest=True)
        log.info("%s: manifest linked from the store cache %s", paths.name, rec["entry"])
        return
    tiles.finalize(manifest, flags, inputs=inputs)
    new = shared_cache.deposit(paths, cache_root, rec["key"])
    log.info("finalized %s: %d tiles; %s the store cache %s", paths.store, len(flags),
             "deposited in" if new else "already in", rec["entry"])

"""Zarr v3 kernel stores: one group per kernel, one chunk per tile, labelled for xarray.

Layout of `{kind}-{rows}-{cols}.zarr`:
    kernel   (row, col) or (row, col, out_row, out_col), chunks = one tile, fill NaN
    row, col             global data-set indices of the rows / cols        (coordinates)
    row_label, col_label class labels of those examples                    (coordinates)
    out_row, out_col     output indices 0..O-1 (eNTK only)                 (coordinates)
Group attributes hold kind, dtype, tile size, symmetric flag, the method asked for and the one that ran,
the model (its name in run names, arch or import path, kwargs, whole spec), checkpoint sha256, data
fingerprint, and the pntk and torch versions (`pntk.kernel_jobs.store_attrs`). `xr.open_zarr(path)["kernel"]`
is a labelled DataArray.

A chunk's checksum is the sha256 of its decoded values (C order, stored dtype), so it does not depend on
the codec; `tile_sha256` is the one definition used by tile jobs, finalize and `pntk verify`.

`path` may be a URL everywhere here: `s3://…` to read and write, `http(s)://…` to read (`.remote`).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import zarr

from ..tiling import TileGrid
from .remote import RemotePath, as_path, zarr_store

KINDS_4D = ("entk",)


def create_store(path: str | Path, *, kind: str, row_ids: np.ndarray, col_ids: np.ndarray,
                 row_labels: np.ndarray, col_labels: np.ndarray, tile: int, dtype: str,
                 out_dim: int | None = None, attrs: dict | None = None) -> zarr.Group:
    """Create an empty store (every value NaN) at `path`, replacing whatever was there."""
    path = as_path(path)
    if isinstance(path, RemotePath):
        path.check_reachable(write=True)  # before anything is deleted: a read-only URL, a missing bucket
        path.remove_tree()
    elif path.exists():
        shutil.rmtree(path)
    g = zarr.open_group(zarr_store(path, read_only=False), mode="w", zarr_format=3)
    shape: tuple[int, ...] = (len(row_ids), len(col_ids))
    # One chunk per tile; a kernel smaller than a tile gets a chunk of its own size, because Zarr encodes
    # whole chunks: a 200 × 200 × 10 × 10 eNTK in 1400² chunks would be padded to 1.6 GB per write.
    chunks: tuple[int, ...] = TileGrid(len(row_ids), len(col_ids), tile).chunks
    dims = ["row", "col"]
    if kind in KINDS_4D:
        if not out_dim:
            raise ValueError("create_store: eNTK stores need out_dim (number of outputs O)")
        shape, chunks, dims = shape + (out_dim, out_dim), chunks + (out_dim, out_dim), dims + ["out_row", "out_col"]
    # float32 kernels are stored uncompressed: zstd shrinks them only to 0.84 (pNTK) / 0.93 (eNTK) of
    # their size (FCN on digits, benchmarks/BENCHMARKS.md) while decoding dominated an out-of-core CG
    # pass. float64 keeps zarr's default (zstd): float32-computed values in float64 halve. Either
    # way the codec is in the array's metadata, so stores written before this change read as before.
    codec = {"compressors": None} if np.dtype(dtype) == np.float32 else {}
    arr = g.create_array("kernel", shape=shape, chunks=chunks, dtype=dtype, fill_value=np.nan,
                         dimension_names=dims, **codec)
    coord_names = ["row_label", "col_label"]
    for name, values, dim in (("row", row_ids, "row"), ("col", col_ids, "col"),
                              ("row_label", row_labels, "row"), ("col_label", col_labels, "col")):
        values = np.asarray(values, dtype=np.int64)
        # chunked like the kernel, so a tile job reads its own rows' coordinates, not all N
        a = g.create_array(name, shape=values.shape, dtype="int64", dimension_names=[dim],
                           chunks=(max(1, min(tile, len(values))),))
        a[:] = values
    if kind in KINDS_4D:
        for name in ("out_row", "out_col"):
            a = g.create_array(name, shape=(out_dim,), dtype="int64", dimension_names=[name])
            a[:] = np.arange(out_dim)
    provenance = {"kind": kind, "dtype": dtype, "tile_size": tile,
                  "symmetric": bool(np.array_equal(row_ids, col_ids)), **(attrs or {})}
    g.attrs.update(provenance)
    # Also on the array: xr.open_zarr(store)["kernel"].attrs then carry kind, checkpoint, data, ...
    arr.attrs.update({**provenance, "coordinates": " ".join(coord_names)})
    # Consolidated from the start (tiles change no metadata): xarray opens even an unfinished store
    # without its "failed to open with consolidated metadata" warning.
    consolidate(path)
    return zarr.open_group(zarr_store(path, read_only=False), mode="r+")


def kernel_array(path: str | Path) -> zarr.Array:
    """The kernel values of a store as a read-only zarr array (`pntk.open_kernel` gives the labelled view)."""
    return zarr.open_group(zarr_store(path, read_only=True), mode="r")["kernel"]


def kernel_dataarray(path: str | Path):
    """`pntk.open_kernel`: a kernel store as a labelled, lazily read ``xarray.DataArray``.

    Dims (row, col) or, for the eNTK, (row, col, out_row, out_col); coordinates row/col = data-set
    indices and row_label/col_label = class labels; attrs = the store's provenance (kind, rows, cols;
    `method` that ran and `method_requested`; `model` (the name in run names), `arch` (built-in or import
    path), `model_kwargs` and `model_spec` (``ModelSpec.from_dict`` rebuilds it); width, seed, epoch,
    checkpoint and its sha256, data fingerprint; pntk_version, torch_version, git_describe) plus
    `store` (its path) and `finalized` (a manifest exists: every tile checked). `path` may be the
    `….zarr` store, its `….manifest.json`, `….init.json`, a tile flag, or the common stem.
    """
    import xarray as xr

    from .paths import StorePaths

    paths = StorePaths.of(path)
    if isinstance(paths.store, RemotePath):
        ds = _open_remote(paths.store)
    else:
        meta = paths.store / "zarr.json"
        if not meta.is_file():
            raise FileNotFoundError(f"{paths.store}: no kernel store there (expected a Zarr group with zarr.json)")
        consolidated = bool(json.loads(meta.read_text()).get("consolidated_metadata"))
        ds = xr.open_dataset(paths.store, engine="zarr", consolidated=consolidated, chunks=None)
    da = ds["kernel"]
    da.attrs = {**ds.attrs, **da.attrs, "store": str(paths.store), "finalized": paths.manifest.is_file()}
    return da


def _open_remote(store: RemotePath):
    """A store at a URL opened with one metadata read: its zarr.json holds the consolidated metadata
    (written by create_store and again by finalize), so no array's metadata is fetched on its own and no
    Zarr v2 file is probed. Values are read when indexed, chunk by chunk."""
    import xarray as xr

    try:
        return xr.open_dataset(zarr_store(store, read_only=True), engine="zarr", consolidated=True,
                               zarr_format=3, chunks=None)
    except (FileNotFoundError, KeyError) as err:
        raise FileNotFoundError(f"{store}: no kernel store there (expected a Zarr group with consolidated "
                                f"metadata in zarr.json): {err}") from None
    except Exception as err:
        from .remote import RemoteStoreError, where

        if isinstance(err, RemoteStoreError):
            raise
        raise RemoteStoreError(f"{where(str(store))}: cannot open the store: {type(err).__name__}: {err}") from err


def tile_sha256(block: np.ndarray) -> str:
    """Checksum of decoded tile values (dtype and shape included, so a reshaped block differs)."""
    block = np.ascontiguousarray(block)
    h = hashlib.sha256(f"{block.dtype.str}{block.shape}".encode())
    h.update(block)  # the C-order bytes through the buffer protocol: no copy of the tile
    return h.hexdigest()


def read_tile(arr: zarr.Array, i: int, j: int) -> np.ndarray:
    rs, cs = TileGrid.of_store(arr, symmetric=False).slices(i, j)
    return arr[rs, cs]


def transposed(block: np.ndarray, step: int = 64) -> np.ndarray:
    """C-contiguous (b, a[, O, O]ᵀ) of block (a, b[, O, O]), copied in step × step squares: a plain
    transposed copy of a 4096² tile strides through memory and costs several plain copies."""
    a, b = block.shape[:2]
    out = np.empty((b, a) + block.shape[2:], dtype=block.dtype)
    swap = (1, 0, 3, 2) if block.ndim == 4 else (1, 0)
    for i in range(0, a, step):
        for j in range(0, b, step):
            out[j:j + step, i:i + step] = block[i:i + step, j:j + step].transpose(swap)
    return out


def write_tile(path: str | Path, i: int, j: int, block: np.ndarray) -> dict[str, str]:
    """Write tile (i, j) and, for a symmetric store, its transpose (j, i); return {"i_j": sha256}.

    Returns once the chunk files are durable (fsynced, with their directories), so a flag written after
    this call never names a chunk that a crash could still lose (at a URL: an object store's PUT has
    returned once the object is durable)."""
    g = zarr.open_group(zarr_store(path, read_only=False), mode="r+")
    arr = g["kernel"]
    grid = TileGrid.of_store(arr, symmetric=bool(g.attrs.get("symmetric")))
    rs, cs = grid.slices(i, j)
    if block.shape[:2] != (rs.stop - rs.start, cs.stop - cs.start):
        raise ValueError(f"tile ({i},{j}) of {path}: block shape {block.shape[:2]} does not fit "
                         f"rows {rs} cols {cs}")
    block = np.ascontiguousarray(block, dtype=arr.dtype)
    arr[rs, cs] = block
    sums = {f"{i}_{j}": tile_sha256(block)}
    written = [(i, j)]
    if grid.symmetric and i != j:
        # Θ(x', x)_{ba} = Θ(x, x')_{ab}: swap samples and, for eNTK, outputs; one contiguous copy
        # serves both the chunk and its checksum.
        block_t = transposed(block)  # (cols, rows[, O, O])
        arr[cs, rs] = block_t
        sums[f"{j}_{i}"] = tile_sha256(block_t)
        written.append((j, i))
    if isinstance(as_path(path), RemotePath):
        return sums
    for ti, tj in written:
        sync_chunk(path, arr, (ti, tj) + (0,) * (arr.ndim - 2))
    return sums


def sync_chunk(path: str | Path, arr: zarr.Array, coords: tuple[int, ...]) -> None:
    """fsync a chunk file of a local store and the directory holding it (its name is durable too)."""
    chunk = Path(path) / arr.path / arr.metadata.encode_chunk_key(coords)
    for target, flags in ((chunk, os.O_RDONLY), (chunk.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))):
        fd = os.open(target, flags)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def chunk_checksums(path: str | Path) -> dict[str, str | None]:
    """sha256 of every tile as stored now; None for a tile that was never written (still NaN)."""
    return checksums_of(kernel_array(path))


def checksums_of(arr: zarr.Array) -> dict[str, str | None]:
    """:func:`chunk_checksums` of an open kernel array (any zarr store, e.g. inside a zip). An uncompressed
    local store is read chunk file by chunk file into one reused buffer (no allocation per tile: this pass
    re-reads the whole store when a job finalizes)."""
    from .raw_chunks import RawChunks

    raw = RawChunks.of(arr) if arr.ndim == 2 else None
    buffer = raw.buffer() if raw is not None else None
    out: dict[str, str | None] = {}
    grid = TileGrid.of_store(arr, symmetric=False)  # every chunk, mirrored ones included
    for i, j in grid.all_tiles():
        if raw is not None:
            rows, cols = grid.extent(i, j)
            block = raw.read_chunk((i, j), buffer)[:rows, :cols]
        else:
            block = read_tile(arr, i, j)
        out[f"{i}_{j}"] = None if _all_nan(block) else tile_sha256(block)
    return out


def _all_nan(block: np.ndarray) -> bool:
    """Never written (the NaN fill value)? A written tile is told apart by its first value, without a full
    boolean temporary of the tile's size."""
    return block.size == 0 or (bool(np.isnan(block.flat[0])) and bool(np.isnan(block).all()))


def read_block(path: str | Path, row_ids: np.ndarray, col_ids: np.ndarray) -> np.ndarray:
    """Kernel values for global data-set indices (rows × cols), looked up through the coordinates."""
    g = zarr.open_group(zarr_store(path, read_only=True), mode="r")
    rpos = _positions(g["row"][:], row_ids, path, "row")
    cpos = _positions(g["col"][:], col_ids, path, "col")
    arr = g["kernel"]
    # Orthogonal selection decodes one chunk at a time: memory bounded by the result, not by N.
    r_order, c_order = np.argsort(rpos), np.argsort(cpos)
    block = arr.oindex[rpos[r_order], cpos[c_order]]
    return block[np.ix_(np.argsort(r_order), np.argsort(c_order))]


def _positions(stored: np.ndarray, wanted: np.ndarray, path, axis: str) -> np.ndarray:
    lookup = {int(v): k for k, v in enumerate(stored)}
    try:
        return np.array([lookup[int(v)] for v in wanted], dtype=np.int64)
    except KeyError as err:
        raise KeyError(f"{path}: data-set index {err.args[0]} is not among the store's {axis}s") from None


def update_attrs(path: str | Path, attrs: dict) -> None:
    """Set attributes on the store's group and its kernel array (as create_store does), then consolidate."""
    g = zarr.open_group(zarr_store(path, read_only=False), mode="r+")
    g.attrs.update(attrs)
    g["kernel"].attrs.update(attrs)
    consolidate(path)


def consolidate(path: str | Path) -> None:
    with warnings.catch_warnings():  # consolidated metadata is not (yet) in the v3 spec; xarray uses it
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        zarr.consolidate_metadata(zarr_store(path, read_only=False))


def store_info(path: str | Path) -> dict:
    g = zarr.open_group(zarr_store(path, read_only=True), mode="r")
    arr = g["kernel"]
    return {"path": str(path), "shape": list(arr.shape), "chunks": list(arr.chunks),
            "dtype": str(arr.dtype), **dict(g.attrs)}

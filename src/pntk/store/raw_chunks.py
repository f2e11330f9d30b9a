"""Direct reads of the chunk files of an uncompressed Zarr v3 array, into buffers the caller reuses.

Kernel stores are float32 without compression (zstd kept 0.84 of the size and decoded 3× slower), so a
chunk file is the tile's bytes in C order. zarr-python reads such a chunk into a fresh bytes object and
copies it into a fresh output array: two page-faulting allocations of the tile's size (400 MB for a
10,000² float32 tile) per read, which made 39 % of an out-of-core CG's time system time. Here a chunk is
read with one ``readinto`` into a buffer the caller keeps, and single rows with ``pread`` (what a
pivoted Cholesky needs: a few rows of Θ, not whole tiles).

Only the layout this package writes qualifies: a local store, the ``bytes`` codec alone (little-endian),
default chunk keys with "/" and a regular chunk grid. ``RawChunks.of`` returns None for anything else
(compressed, sharded, remote, in memory), and callers then read through zarr as before.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np


class RawChunks:
    """Chunk files of one array: ``path_of((i, j))`` → file; reads fill caller-owned buffers."""

    def __init__(self, root: Path, chunk_shape: tuple[int, ...], dtype: np.dtype, fill_value, encode_key):
        self.root, self.chunk_shape, self.dtype = root, chunk_shape, np.dtype(dtype).newbyteorder("<")
        self.fill_value, self._encode_key = fill_value, encode_key
        self.chunk_nbytes = int(np.prod(chunk_shape)) * self.dtype.itemsize

    @classmethod
    def of(cls, arr) -> RawChunks | None:
        """A reader for the zarr.Array ``arr`` when its chunk files hold raw little-endian C-order bytes."""
        meta = getattr(arr, "metadata", None)
        store_root = getattr(getattr(arr, "store", None), "root", None)
        if meta is None or store_root is None or getattr(meta, "zarr_format", None) != 3:
            return None
        codecs = list(getattr(meta, "codecs", ()))
        if len(codecs) != 1 or type(codecs[0]).__name__ != "BytesCodec":
            return None
        endian = getattr(codecs[0], "endian", None)
        if endian is not None and getattr(endian, "value", endian) != "little":
            return None
        key = getattr(meta, "chunk_key_encoding", None)
        grid = getattr(meta, "chunk_grid", None)
        if type(key).__name__ != "DefaultChunkKeyEncoding" or getattr(key, "separator", None) != "/" \
                or type(grid).__name__ != "RegularChunkGrid" or not np.dtype(arr.dtype).kind == "f":
            return None
        root = Path(str(store_root)) / (arr.path or "")
        return cls(root, tuple(int(c) for c in grid.chunk_shape), np.dtype(arr.dtype), meta.fill_value,
                   meta.encode_chunk_key)

    def path_of(self, index: tuple[int, ...]) -> Path:
        return self.root / self._encode_key(tuple(int(i) for i in index))

    def buffer(self) -> np.ndarray:
        """A chunk-shaped buffer for ``read_chunk``: allocate once per worker, reuse for every tile."""
        return np.empty(self.chunk_shape, dtype=self.dtype)

    def read_chunk(self, index: tuple[int, ...], out: np.ndarray) -> np.ndarray:
        """Chunk ``index`` (its full chunk shape: edge chunks are stored padded) into ``out``; a chunk
        never written reads as the fill value (NaN for kernel stores), as through zarr."""
        if out.shape != self.chunk_shape or out.dtype != self.dtype or not out.flags.c_contiguous:
            raise ValueError(f"read_chunk: buffer {out.shape} {out.dtype} does not match chunk "
                             f"{self.chunk_shape} {self.dtype} (C order)")
        path = self.path_of(index)
        try:
            with open(path, "rb", buffering=0) as f:
                got = f.readinto(memoryview(out).cast("B"))
        except FileNotFoundError:
            out.fill(self.fill_value)
            return out
        if got != self.chunk_nbytes:
            raise OSError(f"{path}: {got} bytes, expected {self.chunk_nbytes} (a truncated chunk file)")
        return out

    def read_rows(self, index: tuple[int, int], local_rows: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Rows ``local_rows`` (positions inside chunk ``index`` of a 2-D array) → out (len, chunk cols)."""
        cols = self.chunk_shape[1]
        row_bytes = cols * self.dtype.itemsize
        if out.shape != (len(local_rows), cols) or out.dtype != self.dtype or not out.flags.c_contiguous:
            raise ValueError(f"read_rows: buffer {out.shape} {out.dtype} does not match ({len(local_rows)}, {cols})")
        path = self.path_of(index)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            out.fill(self.fill_value)
            return out
        try:
            for k, r in enumerate(np.asarray(local_rows, dtype=np.int64)):
                got = os.preadv(fd, [memoryview(out[k]).cast("B")], int(r) * row_bytes)
                if got != row_bytes:
                    raise OSError(f"{path}: row {int(r)}: {got} bytes, expected {row_bytes} (truncated chunk)")
        finally:
            os.close(fd)
        return out

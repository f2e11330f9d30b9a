"""A tile job's inputs and outputs with memory bounded by the tile, and writes that overlap compute.

Inputs: ``open_images`` opens the prepared images lazily and reads nothing with one entry per example
(labels, split), ``tile_ids`` reads a tile's global row/col indices from the kernel store's coordinates
(chunked like the kernel), so a tile job holds its tile, the model and its own data rows whatever N is;
``RowCache`` lets a job that walks a grid read each block of rows once per row of tiles.

Outputs: ``TileWriter`` hands finished tiles to one background thread that checks, checksums, encodes and
writes them (``tiles.write_tile_and_flag``: chunk fsynced, then the flag written atomically) while the
caller computes the next tile. At most one tile is in flight, so memory stays at two tiles; a failed
write is raised by the next ``submit`` or by ``close``, and no flag is ever written for a tile whose
chunk is not durably on disk.
"""
from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..data import read_rows
from ..tiling import TileGrid
from . import tiles

log = logging.getLogger(__name__)


class RowCache:
    """``read_rows`` that keeps the last ``size`` blocks: in a grid walked row by row, tile (i, j + 1)
    reads only its new cols, and a symmetric store's rows and cols are the same examples. Memory: ``size``
    tile-sized blocks. The blocks are shared, not copied: the kernel engine does not write to its inputs."""

    def __init__(self, x, size: int = 2):
        self.x, self.size = x, size
        self._blocks: dict[bytes, np.ndarray] = {}

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        key = np.asarray(ids, dtype=np.int64).tobytes()
        block = self._blocks.pop(key, None)
        if block is None:
            if len(self._blocks) >= self.size:
                self._blocks.pop(next(iter(self._blocks)))  # the least recently used block
            block = read_rows(self.x, ids)
        self._blocks[key] = block  # most recently used last
        return block


def tile_ids(store: str | Path, i: int, j: int) -> tuple[np.ndarray, np.ndarray]:
    """Global data-set indices of the rows and cols of tile (i, j), read from the store's coordinates."""
    import zarr

    from .remote import zarr_store

    g = zarr.open_group(zarr_store(store, read_only=True), mode="r")
    rs, cs = TileGrid.of_store(g["kernel"], symmetric=False).slices(i, j)
    return np.asarray(g["row"][rs]), np.asarray(g["col"][cs])


class TileWriter:
    """Write tiles and their flags on a background thread (see the module docstring).

        with TileWriter() as writer:
            for i, j in grid:
                writer.submit(flag, compute(i, j), i, j, seconds, extra)
    """

    def __init__(self):
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tile-writer")
        self._pending: Future | None = None
        self.records: list[dict] = []

    def submit(self, flag: str | Path, block: np.ndarray, i: int, j: int, seconds: float,
               extra: dict | None = None) -> None:
        """Queue tile (i, j); waits first for the previous tile's write (and raises its error)."""
        self.wait()
        self._pending = self._pool.submit(self._write, flag, block, i, j, seconds, extra)

    def wait(self) -> None:
        """Block until the tile in flight is written; raise the error of a failed write."""
        pending, self._pending = self._pending, None
        if pending is not None:
            self.records.append(pending.result())

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self._pool.shutdown(wait=True)

    def __enter__(self) -> TileWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
            return
        try:  # the body failed: still finish the tile in flight (it is complete), keep the body's error
            self.close()
        except Exception:
            log.exception("a tile write failed while the job was stopping")

    @staticmethod
    def _write(flag, block, i, j, seconds, extra) -> dict:
        rec = tiles.write_tile_and_flag(flag, block, i, j, seconds, extra)
        log.info("tile (%d,%d) written in %.2f s (checksum, encode, fsync, flag)", i, j, rec["write_seconds"])
        return rec


def write_now(flag: str | Path, block: np.ndarray, i: int, j: int, seconds: float, extra: dict | None = None) -> dict:
    """The synchronous counterpart of ``TileWriter.submit`` (a job with a single tile)."""
    return TileWriter._write(flag, block, i, j, seconds, extra)

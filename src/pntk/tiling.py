"""Tile geometry, owned here once: how an n_rows × n_cols kernel is cut into tiles, which tiles a symmetric
kernel computes, and the chunk shape of its store. Stdlib only, at the bottom of the layers: the config's
grid (pntk.config_runs), the stores (pntk.store), the kernel jobs, the regression's operator and `pntk plan`
all ask a TileGrid, so they cut a kernel alike by construction.

Tile (i, j) holds rows ``i·tile ≤ r < min((i+1)·tile, n_rows)`` and cols likewise (``col_tile``: a store's
chunk per axis, which differs when one side is shorter than a tile). A symmetric kernel (K = Kᵀ: its rows and
cols are one index set) computes only the tiles i ≤ j; each off-diagonal one is mirrored on write.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


def is_symmetric(rows: str, cols: str) -> bool:
    """A store of index sets rows × cols is symmetric when both are the same index set."""
    return rows == cols


@dataclass(frozen=True)
class TileGrid:
    """Tiles of an ``n_rows × n_cols`` kernel of ``tile``-sized tiles (``col_tile`` along the cols; None: ``tile``)."""

    n_rows: int
    n_cols: int
    tile: int
    symmetric: bool = False
    col_tile: int | None = None

    def __post_init__(self):
        if self.col_tile is None:
            object.__setattr__(self, "col_tile", self.tile)
        if self.tile < 1 or self.col_tile < 1:
            raise ValueError(f"TileGrid: tile sizes must be ≥ 1, got {self.tile} × {self.col_tile}")
        if self.symmetric and (self.n_rows != self.n_cols or self.tile != self.col_tile):
            raise ValueError(f"TileGrid: a symmetric kernel is square with square tiles; got {self.n_rows} × "
                             f"{self.n_cols} in {self.tile} × {self.col_tile} tiles")

    @classmethod
    def of_store(cls, arr, symmetric: bool | None = None) -> TileGrid:
        """The grid of a kernel array (zarr or anything with ``shape`` and ``chunks``): one tile per chunk;
        ``symmetric`` from its attrs unless given."""
        if symmetric is None:
            symmetric = bool(getattr(arr, "attrs", {}).get("symmetric", False))
        return cls(int(arr.shape[0]), int(arr.shape[1]), int(arr.chunks[0]), symmetric, int(arr.chunks[1]))

    @property
    def shape(self) -> tuple[int, int]:
        """Tiles along the rows and along the cols."""
        return math.ceil(self.n_rows / self.tile), math.ceil(self.n_cols / self.col_tile)

    @property
    def chunks(self) -> tuple[int, int]:
        """A store's chunk shape: one tile, or the axis length where that is shorter (Zarr encodes whole
        chunks, so a kernel smaller than a tile gets a chunk of its own size)."""
        return min(self.tile, max(1, self.n_rows)), min(self.col_tile, max(1, self.n_cols))

    def tiles(self) -> list[tuple[int, int]]:
        """Tiles (i, j) computed, row by row: every one, or for a symmetric kernel only i ≤ j."""
        nr, nc = self.shape
        return [(i, j) for i in range(nr) for j in range(i if self.symmetric else 0, nc)]

    def all_tiles(self) -> list[tuple[int, int]]:
        """Every tile (i, j) of the grid (every chunk of a store), mirrored ones included."""
        nr, nc = self.shape
        return [(i, j) for i in range(nr) for j in range(nc)]

    @property
    def n_tiles(self) -> int:
        """How many tiles are computed (``len(tiles())``)."""
        nr, nc = self.shape
        return nr * (nr + 1) // 2 if self.symmetric else nr * nc

    def row_range(self, i: int) -> slice:
        return slice(i * self.tile, min((i + 1) * self.tile, self.n_rows))

    def col_range(self, j: int) -> slice:
        return slice(j * self.col_tile, min((j + 1) * self.col_tile, self.n_cols))

    def slices(self, i: int, j: int) -> tuple[slice, slice]:
        """Rows and cols of tile (i, j)."""
        return self.row_range(i), self.col_range(j)

    def extent(self, i: int, j: int) -> tuple[int, int]:
        """(rows, cols) of tile (i, j): a whole tile, or less at the last row or col."""
        rs, cs = self.slices(i, j)
        return rs.stop - rs.start, cs.stop - cs.start

    def bounds(self) -> list[tuple[int, int, int, int]]:
        """(r0, r1, c0, c1) of every tile computed (``tiles()``)."""
        out = []
        for i, j in self.tiles():
            rs, cs = self.slices(i, j)
            out.append((rs.start, rs.stop, cs.start, cs.stop))
        return out

    def is_diagonal(self, i: int, j: int) -> bool:
        """Tile (i, i) of a symmetric kernel: its cols are its rows (K(x, x), written once, not mirrored)."""
        return self.symmetric and i == j

"""pntk.tiling.TileGrid: the one owner of tile geometry and symmetry (config grids, stores, jobs, operator, plan)."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pntk.tiling import TileGrid, is_symmetric


def test_symmetric_grid_keeps_the_upper_triangle():
    g = TileGrid(10, 10, 4, symmetric=True)
    assert g.shape == (3, 3) and g.n_tiles == 6
    assert g.tiles() == [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)]
    assert len(g.all_tiles()) == 9
    assert g.slices(2, 1) == (slice(8, 10), slice(4, 8)) and g.extent(2, 2) == (2, 2)
    assert g.is_diagonal(1, 1) and not g.is_diagonal(0, 1)
    assert g.bounds()[1] == (0, 4, 4, 8)


def test_rectangular_grid_and_chunks_shorter_than_a_tile():
    g = TileGrid(9, 4, 6)
    assert g.shape == (2, 1) and g.tiles() == [(0, 0), (1, 0)] and g.n_tiles == 2
    assert g.chunks == (6, 4)  # one tile, or the axis where it is shorter
    assert not g.is_diagonal(0, 0)
    # a store's chunks per axis: the cols' chunk is 4, the same slices
    s = TileGrid(9, 4, 6, col_tile=4)
    assert [s.slices(i, j) for i, j in s.tiles()] == [g.slices(i, j) for i, j in g.tiles()]


def test_of_store_reads_shape_chunks_and_symmetry():
    class Arr:
        shape, chunks, attrs = (7, 7, 2, 2), (3, 3, 2, 2), {"symmetric": True}

    g = TileGrid.of_store(Arr())
    assert (g.n_rows, g.n_cols, g.tile, g.col_tile, g.symmetric) == (7, 7, 3, 3, True)
    assert not TileGrid.of_store(Arr(), symmetric=False).symmetric


def test_symmetric_needs_a_square_grid():
    with pytest.raises(ValueError, match="square"):
        TileGrid(4, 5, 2, symmetric=True)
    with pytest.raises(ValueError, match="≥ 1"):
        TileGrid(4, 4, 0)


def test_is_symmetric_names_one_index_set():
    assert is_symmetric("train", "train") and not is_symmetric("test", "train")


@given(st.integers(1, 40), st.integers(1, 40), st.integers(1, 12), st.booleans())
def test_tiles_cover_the_kernel_once(n_rows, n_cols, tile, symmetric):
    n_cols = n_rows if symmetric else n_cols
    g = TileGrid(n_rows, n_cols, tile, symmetric)
    hits = np.zeros((n_rows, n_cols), dtype=int)
    for i, j in g.tiles():
        rs, cs = g.slices(i, j)
        hits[rs, cs] += 1
        if symmetric and i != j:
            hits[cs, rs] += 1  # mirrored on write
    assert (hits == 1).all()
    assert g.n_tiles == len(g.tiles()) and set(g.tiles()) <= set(g.all_tiles())
    assert g.all_tiles() == list(itertools.product(range(g.shape[0]), range(g.shape[1])))

"""pntk.store: Zarr v3 kernel stores (one chunk per tile, labelled coordinates, codec-independent checksums)."""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st

from pntk.store import zarr_store as S
from pntk.tiling import TileGrid


def make_store(path, *, kind="pntk", n_rows=7, n_cols=5, tile=3, out_dim=None, symmetric=False, seed=0,
               fill=True):
    """A store with row ids 100.. (shuffled) and col ids 200.. (or the row ids when symmetric), filled from `full`."""
    rng = np.random.default_rng(seed)
    row_ids = 100 + rng.permutation(n_rows)
    col_ids = row_ids.copy() if symmetric else 200 + rng.permutation(n_cols)
    n_cols = len(col_ids)
    S.create_store(path, kind=kind, row_ids=row_ids, col_ids=col_ids, row_labels=row_ids % 10,
                   col_labels=col_ids % 10, tile=tile, dtype="float64", out_dim=out_dim, attrs={"method": "test"})
    full = rng.standard_normal((n_rows, n_cols) + ((out_dim, out_dim) if out_dim else ()))
    if symmetric:
        full = full + (full.transpose(1, 0, 3, 2) if out_dim else full.T)
    if fill:
        arr = zarr.open_group(str(path), mode="r+")["kernel"]
        arr[...] = full
    return row_ids, col_ids, full


def test_create_store_layout(tmp_path):
    p = tmp_path / "pntk-test-train.zarr"
    row_ids, col_ids, _ = make_store(p, n_rows=7, n_cols=5, tile=3, fill=False)
    arr = S.kernel_array(p)
    assert arr.shape == (7, 5) and arr.chunks == (3, 3) and arr.dtype == np.float64
    assert np.isnan(arr[...]).all()
    g = zarr.open_group(str(p), mode="r")
    assert np.array_equal(g["row"][:], row_ids) and np.array_equal(g["col"][:], col_ids)
    assert np.array_equal(g["row_label"][:], row_ids % 10)
    assert dict(g.attrs) == {"kind": "pntk", "dtype": "float64", "tile_size": 3, "symmetric": False, "method": "test"}
    assert S.store_info(p)["shape"] == [7, 5] and S.store_info(p)["chunks"] == [3, 3]
    assert TileGrid.of_store(arr).all_tiles() == [(i, j) for i in range(3) for j in range(2)]


def test_axis_shorter_than_a_tile_gets_a_chunk_of_its_length(tmp_path):
    """Zarr encodes whole chunks: a small eNTK in tile-sized chunks would be padded to the tile² size."""
    p = tmp_path / "entk.zarr"
    make_store(p, kind="entk", n_rows=9, n_cols=4, tile=6, out_dim=2, fill=False)
    arr = S.kernel_array(p)
    grid = TileGrid.of_store(arr)
    assert arr.chunks == (6, 4, 2, 2) and grid.all_tiles() == [(0, 0), (1, 0)] and grid.chunks == (6, 4)
    assert grid.slices(1, 0) == (slice(6, 9), slice(0, 4))
    block = np.arange(3 * 4 * 2 * 2, dtype=np.float64).reshape(3, 4, 2, 2)
    S.write_tile(p, 1, 0, block)
    np.testing.assert_array_equal(S.read_tile(arr, 1, 0), block)
    sums = S.chunk_checksums(p)
    assert sums["0_0"] is None and sums["1_0"] == S.tile_sha256(block)


def test_entk_store_layout_and_xarray_view(tmp_path):
    p = tmp_path / "entk.zarr"
    row_ids, col_ids, full = make_store(p, kind="entk", n_rows=4, n_cols=6, tile=4, out_dim=3)
    arr = S.kernel_array(p)
    assert arr.shape == (4, 6, 3, 3) and arr.chunks == (4, 4, 3, 3)
    S.consolidate(p)
    da = xr.open_zarr(p)["kernel"]
    assert da.dims == ("row", "col", "out_row", "out_col")
    assert np.array_equal(da["row"], row_ids) and np.array_equal(da["col"], col_ids)
    assert np.array_equal(da["row_label"], row_ids % 10) and np.array_equal(da["out_col"], np.arange(3))
    np.testing.assert_array_equal(da.values, full)
    np.testing.assert_array_equal(da.sel(row=row_ids[2], col=col_ids[5]).values, full[2, 5])


def test_entk_store_needs_out_dim(tmp_path):
    with pytest.raises(ValueError, match="out_dim"):
        make_store(tmp_path / "e.zarr", kind="entk", out_dim=None)


def test_symmetric_flag_and_replacing_an_existing_store(tmp_path):
    p = tmp_path / "s.zarr"
    make_store(p, symmetric=True)
    assert zarr.open_group(str(p), mode="r").attrs["symmetric"] is True
    (p / "stray-file").write_text("left over from a killed job")
    make_store(p, n_rows=2, n_cols=9, fill=False)
    assert not (p / "stray-file").exists() and S.kernel_array(p).shape == (2, 9)


def test_write_tile_rejects_wrong_shape(tmp_path):
    p = tmp_path / "k.zarr"
    make_store(p, n_rows=7, n_cols=5, tile=3, fill=False)
    S.write_tile(p, 2, 1, np.ones((1, 2)))  # ragged last tile fits
    with pytest.raises(ValueError, match=r"tile \(2,1\)"):
        S.write_tile(p, 2, 1, np.ones((3, 3)))


@pytest.mark.parametrize("out_dim", [None, 3], ids=["pntk", "entk"])
def test_symmetric_write_tile_also_writes_the_transpose(tmp_path, out_dim):
    p = tmp_path / "k.zarr"
    make_store(p, kind="entk" if out_dim else "pntk", n_rows=5, tile=3, out_dim=out_dim, symmetric=True, fill=False)
    block = np.random.default_rng(1).standard_normal((3, 2) + ((3, 3) if out_dim else ()))
    sums = S.write_tile(p, 0, 1, block)
    arr = S.kernel_array(p)
    np.testing.assert_array_equal(arr[0:3, 3:5], block)
    expected_t = block.transpose(1, 0, 3, 2) if out_dim else block.T  # swap samples and outputs
    np.testing.assert_array_equal(arr[3:5, 0:3], expected_t)
    assert sums == {"0_1": S.tile_sha256(block), "1_0": S.tile_sha256(expected_t)}
    cs = S.chunk_checksums(p)
    assert cs["0_1"] == sums["0_1"] and cs["1_0"] == sums["1_0"] and cs["0_0"] is None and cs["1_1"] is None


def test_tile_sha256_depends_on_values_dtype_and_shape_not_layout():
    a = np.arange(12, dtype=np.float64).reshape(3, 4)
    assert S.tile_sha256(a) == S.tile_sha256(np.asfortranarray(a)) == S.tile_sha256(a.copy())
    assert S.tile_sha256(a) != S.tile_sha256(a.reshape(4, 3))
    assert S.tile_sha256(a) != S.tile_sha256(a.astype(np.float32))
    b = a.copy()
    b[2, 3] = np.nextafter(b[2, 3], np.inf)
    assert S.tile_sha256(a) != S.tile_sha256(b)


def test_read_block_unknown_id_is_named(tmp_path):
    p = tmp_path / "k.zarr"
    row_ids, col_ids, _ = make_store(p)
    with pytest.raises(KeyError, match="data-set index 999 is not among the store's rows"):
        S.read_block(p, np.array([row_ids[0], 999]), col_ids)
    with pytest.raises(KeyError, match="cols"):
        S.read_block(p, row_ids, np.array([7]))


@settings(max_examples=15, deadline=None)
@given(data=st.data(), n_rows=st.integers(1, 11), n_cols=st.integers(1, 11), tile=st.integers(1, 5),
       entk=st.booleans())
def test_read_block_any_order(data, n_rows, n_cols, tile, entk):
    """read_block(ids) == the stored values at those ids, for any order, subsets and repeated ids."""
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "k.zarr"
        row_ids, col_ids, full = make_store(p, kind="entk" if entk else "pntk", n_rows=n_rows, n_cols=n_cols,
                                            tile=tile, out_dim=2 if entk else None)
        r_pos = data.draw(st.lists(st.integers(0, n_rows - 1), min_size=1, max_size=15), label="row positions")
        c_pos = data.draw(st.lists(st.integers(0, n_cols - 1), min_size=1, max_size=15), label="col positions")
        got = S.read_block(p, row_ids[r_pos], col_ids[c_pos])
        np.testing.assert_array_equal(got, full[np.ix_(r_pos, c_pos)])

"""Direct chunk-file reads equal zarr's own reads, for the layout kernel stores use, and refuse others."""
import numpy as np
import pytest
import zarr

from pntk.store import zarr_store as kstore
from pntk.store.raw_chunks import RawChunks
from pntk.tiling import TileGrid


@pytest.fixture
def store(tmp_path):
    ids = np.arange(150)
    g = kstore.create_store(tmp_path / "k.zarr", kind="pntk", row_ids=ids, col_ids=ids[:130], row_labels=ids % 3,
                            col_labels=ids[:130] % 3, tile=64, dtype="float32")
    arr = g["kernel"]
    values = np.random.default_rng(0).normal(size=(150, 130)).astype(np.float32)
    arr[:128, :] = values[:128]  # the last tile row is never written: it must read as NaN
    return arr, values


def test_chunks_and_rows_equal_zarr(store):
    arr, values = store
    raw = RawChunks.of(arr)
    assert raw is not None and raw.chunk_shape == (64, 64)
    buf = raw.buffer()
    for i in range(3):
        for j in range(3):
            r0, c0 = 64 * i, 64 * j
            got = raw.read_chunk((i, j), buf)[: min(64, 150 - r0), : min(64, 130 - c0)]
            want = arr[r0 : r0 + 64, c0 : c0 + 64]
            assert np.array_equal(got, want, equal_nan=True)
    assert np.isnan(raw.read_chunk((2, 0), buf)).all()  # unwritten chunk: the fill value, as through zarr
    rows = np.array([0, 7, 63])
    out = np.empty((3, 64), dtype=np.float32)
    assert np.array_equal(raw.read_rows((1, 2), rows, out)[:, :2], values[64 + rows, 128:130])


def test_truncated_chunk_file_is_an_error(store):
    arr, _ = store
    raw = RawChunks.of(arr)
    path = raw.path_of((0, 1))
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(OSError, match="truncated"):
        raw.read_chunk((0, 1), raw.buffer())


def test_other_layouts_are_read_through_zarr(tmp_path):
    compressed = zarr.open_group(tmp_path / "z.zarr", mode="w").create_array("kernel", shape=(10, 10), chunks=(5, 5),
                                                                            dtype="f4")
    assert len(compressed.compressors) == 1 and RawChunks.of(compressed) is None
    assert RawChunks.of(np.zeros((3, 3))) is None
    with pytest.raises(ValueError, match="does not match"):
        ids = np.arange(10)
        g = kstore.create_store(tmp_path / "k.zarr", kind="pntk", row_ids=ids, col_ids=ids, row_labels=ids,
                                col_labels=ids, tile=5, dtype="float32")
        RawChunks.of(g["kernel"]).read_chunk((0, 0), np.empty((4, 5), dtype=np.float32))


def test_checksums_by_raw_reads_equal_those_through_zarr(store):
    arr, _ = store
    want = {}
    for i, j in TileGrid.of_store(arr).all_tiles():
        block = kstore.read_tile(arr, i, j)
        want[f"{i}_{j}"] = None if np.isnan(block).all() else kstore.tile_sha256(block)
    assert kstore.checksums_of(arr) == want
    assert want["2_0"] is None and want["0_0"] is not None and want["1_2"] is not None  # edge tiles included

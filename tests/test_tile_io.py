"""pntk.store.tile_io: tile inputs without N-sized arrays, background tile writes, flags only after durable chunks."""
from __future__ import annotations

import json
import os
import threading

import numpy as np
import pytest
import zarr

from pntk.data import open_images, read_rows
from pntk.store import tile_io, tiles
from pntk.store import zarr_store as S
from pntk.store.paths import StorePaths


def make_store(tmp_path, n: int = 10, tile: int = 4, symmetric: bool = True):
    stem = tmp_path / "pntk-train-train"
    ids = np.arange(100, 100 + n)
    cols = ids if symmetric else ids + 1000
    tiles.init_store(StorePaths(stem).sentinel, kind="pntk", row_ids=ids, col_ids=cols,
                     row_labels=ids % 3, col_labels=cols % 3, tile=tile, dtype="float64", out_dim=None, attrs={})
    return stem


def block(seed: int, shape=(4, 4)) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


# ----------------------------------------------------------------------------- inputs
def test_tile_ids_come_from_the_stores_tile_sized_coordinate_chunks(tmp_path):
    stem = make_store(tmp_path, n=10, tile=4, symmetric=False)
    g = zarr.open_group(str(StorePaths(stem).store), mode="r")
    assert g["row"].chunks == (4,) and g["col"].chunks == (4,)  # reading one tile's ids reads one chunk
    rows, cols = tile_io.tile_ids(StorePaths(stem).store, 2, 1)
    assert rows.tolist() == [108, 109] and cols.tolist() == list(range(1104, 1108))


def test_open_images_names_a_missing_store(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'nope.zarr'}.*prepare_data"):
        open_images(tmp_path / "nope.zarr")


def test_open_images_reads_no_per_example_array(small_digits_store):
    from pntk.data import open_prepared

    x, fingerprint = open_images(small_digits_store)
    full = open_prepared(small_digits_store)
    assert isinstance(x, zarr.Array) and fingerprint == full.fingerprint
    np.testing.assert_array_equal(read_rows(x, np.array([3, 0, 7])), full.x[[3, 0, 7]])


# ----------------------------------------------------------------------------- durability
def test_flag_is_written_only_after_its_chunks_are_fsynced(tmp_path, monkeypatch):
    stem = make_store(tmp_path)
    events = []
    real_fsync = os.fsync

    def spy(fd):
        events.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    flag = StorePaths(stem).flag(0, 1)
    tiles.write_tile_and_flag(flag, block(0), 0, 1, 1.0)
    chunks = [str(StorePaths(stem).store / "kernel" / "c" / a / b) for a, b in (("0", "1"), ("1", "0"))]
    flag_sync = next(k for k, path in enumerate(events) if f".{flag.name}.tmp" in path)
    for chunk in chunks:  # the tile and its mirror (symmetric store), each with its directory
        assert events.index(chunk) < flag_sync and events.index(os.path.dirname(chunk)) < flag_sync


def test_a_crash_before_the_chunk_is_durable_leaves_no_flag(tmp_path, monkeypatch):
    stem = make_store(tmp_path)

    def crash(*args):
        raise OSError("disk gone")

    monkeypatch.setattr(S, "sync_chunk", crash)
    flag = StorePaths(stem).flag(0, 1)
    with pytest.raises(OSError, match="disk gone"):
        tiles.write_tile_and_flag(flag, block(0), 0, 1, 1.0)
    assert not flag.exists()


# ----------------------------------------------------------------------------- background writer
def test_writer_gives_the_same_store_and_flags_as_synchronous_writes(tmp_path):
    grid = [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)]
    shapes = {0: 4, 1: 4, 2: 2}
    stores = {}
    for mode in ("sync", "background"):
        stem = make_store(tmp_path / mode)
        blocks = [block(k, (shapes[i], shapes[j])) for k, (i, j) in enumerate(grid)]
        blocks = [b @ b.T if i == j else b for b, (i, j) in zip(blocks, grid)]
        if mode == "sync":
            recs = [tile_io.write_now(StorePaths(stem).flag(i, j), b, i, j, 1.0) for b, (i, j) in zip(blocks, grid)]
        else:
            with tile_io.TileWriter() as writer:
                for b, (i, j) in zip(blocks, grid):
                    writer.submit(StorePaths(stem).flag(i, j), b, i, j, 1.0)
            recs = writer.records
        stores[mode] = (S.kernel_array(StorePaths(stem).store)[...], [r["chunks"] for r in recs])
        assert [r["tile"] for r in recs] == [list(t) for t in grid]
        assert tiles.verify(StorePaths(stem).store)["missing"] == []
    np.testing.assert_array_equal(stores["sync"][0], stores["background"][0])
    assert stores["sync"][1] == stores["background"][1]


def test_submit_returns_while_the_previous_tile_is_still_being_written(tmp_path, monkeypatch):
    go, seen = threading.Event(), []

    def slow_write(flag, block, i, j, seconds, extra=None):
        seen.append(go.wait(timeout=20))  # True only if the caller went on while this write waited
        return {"tile": [i, j], "write_seconds": 0.0}

    monkeypatch.setattr(tiles, "write_tile_and_flag", slow_write)
    with tile_io.TileWriter() as writer:
        writer.submit(tmp_path / "a.json", block(0), 0, 0, 1.0)
        go.set()  # reached at once: submit did not wait for the write
    assert seen == [True]


def test_a_failed_write_is_raised_and_leaves_no_flag(tmp_path):
    stem = make_store(tmp_path)
    bad = block(1)
    bad[1, 2] = np.nan
    writer = tile_io.TileWriter()
    writer.submit(StorePaths(stem).flag(0, 0), block(0) @ block(0).T, 0, 0, 1.0)
    writer.submit(StorePaths(stem).flag(0, 1), bad, 0, 1, 1.0)
    with pytest.raises(FloatingPointError, match=r"tile \(0,1\).*non-finite"):
        writer.submit(StorePaths(stem).flag(1, 1), block(2) @ block(2).T, 1, 1, 1.0)
    writer.close()
    assert StorePaths(stem).flag(0, 0).exists() and not StorePaths(stem).flag(0, 1).exists()
    assert not StorePaths(stem).flag(1, 1).exists()  # never queued: the error came first


def test_an_error_in_the_job_still_finishes_the_tile_in_flight(tmp_path):
    stem = make_store(tmp_path)
    with pytest.raises(RuntimeError, match="next tile failed"):
        with tile_io.TileWriter() as writer:
            writer.submit(StorePaths(stem).flag(0, 1), block(0), 0, 1, 1.0)
            raise RuntimeError("next tile failed")
    rec = json.loads(StorePaths(stem).flag(0, 1).read_text())
    assert S.chunk_checksums(StorePaths(stem).store)["0_1"] == rec["chunks"]["0_1"]


@pytest.mark.parametrize("shape", [(130, 70), (70, 130, 3, 3), (1, 5)])
def test_transposed_copy_swaps_samples_and_outputs(shape):
    b = np.random.default_rng(0).standard_normal(shape)
    t = S.transposed(b, step=32)
    want = b.transpose(1, 0, 3, 2) if b.ndim == 4 else b.T
    assert t.flags.c_contiguous and np.array_equal(t, want)


def test_row_cache_keeps_the_row_block_of_a_row_of_tiles():
    reads = []

    class Images:
        oindex = None

    class Recorder:
        def __getitem__(self, ids):
            reads.append(list(ids))
            return np.asarray(ids, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)

    x = Images()
    x.oindex = Recorder()
    read = tile_io.RowCache(x)
    a, b, c, d = (np.arange(k, k + 4) for k in range(0, 16, 4))
    for ids in (a, a, a, b, a, c, a, d, b, b):  # (rows, cols) of tiles (0,0) (0,1) (0,2) (0,3) (1,1)
        np.testing.assert_array_equal(read(ids)[:, 0], ids)
    assert reads == [a.tolist(), b.tolist(), c.tolist(), d.tolist(), b.tolist()]  # rows a read once

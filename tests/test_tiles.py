"""pntk.store.tiles / pntk.kernel_jobs: a store assembled tile by tile equals the one-shot kernel; verify/finalize."""
from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st

from pntk import kernel_jobs
from pntk.kernels import empirical_kernel
from pntk.models import ModelSpec, init_model
from pntk.store import tiles
from pntk.store import zarr_store as S
from pntk.store.paths import StorePaths
from pntk.tiling import TileGrid

METHOD = "reference"  # the oracle; the property is about tiling, not about the engine's fast paths
SPEC = ModelSpec(arch="fcn", width=6, in_shape=(1, 2, 2), num_classes=3, depth=3)
X_ALL = np.random.default_rng(0).standard_normal((60, 1, 2, 2))  # the "data set": 60 tiny images, float64


def model():
    return init_model(SPEC, 0).double()


def manifest_of(stem: Path) -> Path:
    return StorePaths(stem).manifest


def init(stem: Path, kind: str, row_ids, col_ids, tile: int) -> None:
    tiles.init_store(StorePaths(stem).sentinel, kind=kind, row_ids=row_ids, col_ids=col_ids,
                     row_labels=row_ids % 10, col_labels=col_ids % 10, tile=tile, dtype="float64",
                     out_dim=SPEC.num_classes if kind == "entk" else None, attrs={"method": METHOD})


def grid(n_rows: int, n_cols: int, tile: int, symmetric: bool) -> list[tuple[int, int]]:
    """The tiles jobs compute: for a symmetric store only i <= j (as pntk.config.tile_grid)."""
    nr, nc = math.ceil(n_rows / tile), math.ceil(n_cols / tile)
    return [(i, j) for i in range(nr) for j in range(nc) if not symmetric or i <= j]


def run_tile(stem: Path, net, kind, row_ids, col_ids, tile, i, j, symmetric) -> Path:
    """What one tile job does: compute block (i, j) (x2=None on a symmetric diagonal), write chunk + flag."""
    rs, cs = TileGrid(len(row_ids), len(col_ids), tile).slices(i, j)
    block = tiles.compute_tile(net, X_ALL[row_ids[rs]], X_ALL[col_ids[cs]], same_inputs=symmetric and i == j,
                               kind=kind, method=METHOD, batch_size=None, dtype=torch.float64)
    flag = StorePaths(stem).flag(i, j)
    tiles.write_tile_and_flag(flag, block, i, j, seconds=0.0)
    return flag


def build(stem: Path, kind: str, row_ids, col_ids, tile: int, skip=()) -> list[Path]:
    symmetric = np.array_equal(row_ids, col_ids)
    init(stem, kind, row_ids, col_ids, tile)
    net = model()
    return [run_tile(stem, net, kind, row_ids, col_ids, tile, i, j, symmetric)
            for i, j in grid(len(row_ids), len(col_ids), tile, symmetric) if (i, j) not in skip]


def one_shot(kind, row_ids, col_ids) -> np.ndarray:
    x1 = torch.as_tensor(X_ALL[row_ids])
    x2 = None if np.array_equal(row_ids, col_ids) else torch.as_tensor(X_ALL[col_ids])
    return empirical_kernel(model(), x1, x2, kind=kind, method=METHOD).numpy()


@st.composite
def tilings(draw):
    symmetric = draw(st.booleans(), label="symmetric")
    n1 = draw(st.integers(1, 23), label="N1")
    n2 = n1 if symmetric else draw(st.integers(1, 23), label="N2")
    # at most 6 tiles per side keeps an example under a second; tile 1 is still drawn for N <= 6
    tile = draw(st.integers(max(1, math.ceil(max(n1, n2) / 6)), 9), label="tile")
    kind = draw(st.sampled_from(["pntk", "entk"]), label="kind")
    ids = draw(st.permutations(range(len(X_ALL))), label="id order")
    row_ids = np.array(ids[:n1], dtype=np.int64)
    col_ids = row_ids.copy() if symmetric else np.array(ids[n1:n1 + n2] if draw(st.booleans(), label="disjoint")
                                                        else ids[-n2:], dtype=np.int64)
    return kind, row_ids, col_ids, tile


@settings(max_examples=15, deadline=None)
@given(tilings())
def test_tiled_store_equals_one_shot_kernel(case):
    kind, row_ids, col_ids, tile = case
    symmetric = np.array_equal(row_ids, col_ids)
    with tempfile.TemporaryDirectory() as tmp:
        stem = Path(tmp) / f"{kind}-rows-cols"
        flags = build(stem, kind, row_ids, col_ids, tile)
        record = tiles.finalize(manifest_of(stem), flags)
        assert len(record["tiles"]) == math.ceil(len(row_ids) / tile) * math.ceil(len(col_ids) / tile)
        expected = one_shot(kind, row_ids, col_ids)
        stored = S.kernel_array(StorePaths(stem).store)[...]
        assert stored.shape == expected.shape
        assert np.isfinite(stored).all()
        assert np.abs(stored - expected).max() <= 1e-12 * np.abs(expected).max()
        if symmetric:
            np.testing.assert_allclose(stored, stored.transpose(1, 0, 3, 2) if kind == "entk" else stored.T,
                                       rtol=1e-12, atol=1e-12 * np.abs(expected).max())
        ds = xr.open_zarr(StorePaths(stem).store)
        da = ds["kernel"]
        assert da.dims[:2] == ("row", "col")
        assert np.array_equal(da["row"], row_ids) and np.array_equal(da["col"], col_ids)
        assert np.array_equal(da["row_label"], row_ids % 10) and np.array_equal(da["col_label"], col_ids % 10)
        np.testing.assert_array_equal(da.values, stored)
        assert ds.attrs["symmetric"] is bool(symmetric) and ds.attrs["kind"] == kind
        assert tiles.verify(StorePaths(stem).store)["ok"]
        # read_block through the coordinates, in an arbitrary order
        r_sel, c_sel = row_ids[::-1][: 5], np.roll(col_ids, 2)[: 4]
        pos_r = [list(row_ids).index(v) for v in r_sel]
        pos_c = [list(col_ids).index(v) for v in c_sel]
        np.testing.assert_array_equal(S.read_block(StorePaths(stem).store, r_sel, c_sel),
                                      stored[np.ix_(pos_r, pos_c)])


# ------------------------------------------------------------------------------------------------
# init / flags / finalize / verify on one small store


ROWS = np.array([7, 3, 11, 20, 5, 8, 1], dtype=np.int64)  # 7 examples, tile 3: tiles 0..2, ragged last


@pytest.fixture(params=["symmetric", "rectangular"])
def built(request, tmp_path):
    """A symmetric (rows == cols) or rectangular (7 × 5) pntk store, every tile written, not finalized."""
    cols = ROWS if request.param == "symmetric" else np.array([30, 2, 40, 6, 9], dtype=np.int64)
    stem = tmp_path / "epoch003" / "kernels" / "pntk-rows-cols"
    flags = build(stem, "pntk", ROWS, cols, 3)
    return stem, flags, cols


def _corrupt_chunk(stem: Path, i: int, j: int) -> None:
    arr = zarr.open_group(str(StorePaths(stem).store), mode="r+")["kernel"]
    rs, cs = TileGrid.of_store(arr).slices(i, j)
    arr[rs, cs] = arr[rs, cs] + 1.0


def _corrupt_flag(flag: Path) -> None:
    rec = json.loads(flag.read_text())
    key = next(iter(rec["chunks"]))
    rec["chunks"][key] = "0" * 64
    flag.write_text(json.dumps(rec))


def test_init_store_writes_sentinel_and_empty_store(tmp_path):
    stem = tmp_path / "entk-sub-test-sub-train"
    init(stem, "entk", ROWS, ROWS[:4], 3)
    sentinel = json.loads(StorePaths(stem).sentinel.read_text())
    assert sentinel["store"] == "entk-sub-test-sub-train.zarr" and sentinel["shape"] == [7, 4]
    assert sentinel["tile_size"] == 3 and "git_describe" in sentinel
    arr = S.kernel_array(StorePaths(stem).store)
    assert arr.shape == (7, 4, 3, 3) and np.isnan(arr[...]).all()


def test_flags_record_the_chunk_checksums(built):
    stem, flags, cols = built
    symmetric = np.array_equal(ROWS, cols)
    assert len(flags) == 6  # 3 × 3 upper triangle (symmetric), or 3 × 2
    rec = json.loads(flags[1].read_text())
    actual = S.chunk_checksums(StorePaths(stem).store)
    for key, sha in rec["chunks"].items():
        assert actual[key] == sha
    if symmetric and rec["tile"][0] != rec["tile"][1]:
        assert len(rec["chunks"]) == 2  # the transposed chunk too


def test_finalize_then_verify_ok(built):
    stem, flags, _ = built
    rec = tiles.finalize(manifest_of(stem), flags)
    assert manifest_of(stem).exists()
    assert rec["tiles"] == S.chunk_checksums(StorePaths(stem).store)
    result = tiles.verify(StorePaths(stem).store)
    assert result["ok"], result
    assert result["missing"] == result["mismatch"] == result["bad_flags"] == []


def test_verify_names_corrupt_chunk_and_corrupt_flag(built):
    stem, flags, _ = built
    tiles.finalize(manifest_of(stem), flags)
    _corrupt_chunk(stem, 1, 1)
    _corrupt_flag(StorePaths(stem).flag(0, 1))
    result = tiles.verify(StorePaths(stem).store)
    assert not result["ok"]
    assert result["mismatch"] == ["1_1"]
    assert result["bad_flags"] == ["0_1.json"]
    assert result["missing"] == []


def test_verify_without_manifest_is_not_ok(built):
    stem, _, _ = built
    result = tiles.verify(StorePaths(stem).store)
    assert not result["ok"] and result["manifest_missing"]


def test_finalize_refuses_missing_tile(built, tmp_path):
    stem, flags, _ = built
    flags[-1].unlink()  # a tile job that never ran: chunk written by nobody / flag absent
    with pytest.raises(FileNotFoundError):
        tiles.finalize(manifest_of(stem), flags)
    with pytest.raises(RuntimeError, match=r"tiles without a flag \['2_"):
        tiles.finalize(manifest_of(stem), flags[:-1])
    assert not manifest_of(stem).exists()


def test_finalize_refuses_unwritten_tile(tmp_path):
    stem = tmp_path / "pntk-a-b"
    flags = build(stem, "pntk", ROWS, ROWS[:5], 3, skip={(1, 0)})
    with pytest.raises(RuntimeError, match=r"without a flag \['1_0'\]"):
        tiles.finalize(manifest_of(stem), flags)
    assert not manifest_of(stem).exists()


def test_finalize_refuses_chunk_that_does_not_match_its_flag(built):
    stem, flags, _ = built
    _corrupt_chunk(stem, 2, 1)
    with pytest.raises(RuntimeError, match=r"does not match its flag \['2_1'\]"):
        tiles.finalize(manifest_of(stem), flags)
    assert not manifest_of(stem).exists()


def test_nonfinite_block_writes_no_flag(tmp_path):
    stem = tmp_path / "pntk-x-y"
    init(stem, "pntk", ROWS, ROWS[:5], 3)
    flag = StorePaths(stem).flag(0, 0)
    block = np.ones((3, 3))
    block[1, 2] = np.nan
    with pytest.raises(FloatingPointError, match=r"tile \(0,0\)"):
        tiles.write_tile_and_flag(flag, block, 0, 0, seconds=0.0)
    assert not flag.exists()
    assert S.chunk_checksums(StorePaths(stem).store)["0_0"] is None


def test_recomputed_tile_gives_the_same_flag(built):
    """A tile job that is rerun (e.g. killed after writing its chunk) reproduces chunk and checksums."""
    stem, flags, cols = built
    before = json.loads(flags[0].read_text())["chunks"]
    run_tile(stem, model(), "pntk", ROWS, cols, 3, 0, 0, np.array_equal(ROWS, cols))
    assert json.loads(flags[0].read_text())["chunks"] == before


# ------------------------------------------------------------------------------------------------
# kernel_jobs on a real prepared data store and checkpoint


class RowRecorder:
    """Stands in for the lazily opened Zarr array `x`: records every row read, refuses whole-array reads."""

    def __init__(self, arr):
        self._arr, self.reads = arr, []
        self.oindex = self

    def __getitem__(self, ids):
        ids = np.asarray(ids)
        assert ids.ndim == 1, "tile jobs should read whole rows by index"
        self.reads.append(ids.copy())
        return self._arr.oindex[ids]

    def __array__(self, *a, **k):
        raise AssertionError("the tile job read the whole data array")

    def __getattr__(self, name):
        raise AssertionError(f"the tile job used x.{name}")


@pytest.mark.parametrize("kind, rows, cols, subset_train, tile", [
    ("pntk", "sub-train", "sub-train", 10, 4),
    ("entk", "sub-test", "sub-train", 10, 4),
    # sub-train is all 80 train rows here: same ids on both axes, yet not a symmetric (i <= j) tiling
    ("pntk", "train", "sub-train", 80, 40),
], ids=["symmetric", "rectangular-entk", "equal-ids-different-sets"])
def test_kernel_jobs_end_to_end_read_only_their_rows(small_digits_store, fcn_checkpoint, tmp_path, monkeypatch, kind,
                                                      rows, cols, subset_train, tile):
    from pntk.data import open_images, open_prepared
    from pntk.train import load_checkpoint

    kernels_cfg = {"tile_size": tile, "dtype": "float64", "method": METHOD, "batch_size": None, "device": "cpu"}
    data_cfg = {"subset_train": subset_train, "subset_test": 6, "seed": 0}
    checkpoint = fcn_checkpoint
    stem = checkpoint.parent.parent / "epoch001" / "kernels" / f"{kind}-{rows}-{cols}"
    kernel_jobs.init_job(StorePaths(stem).sentinel, kind=kind, rows=rows, cols=cols,
                         data_path=small_digits_store, checkpoint=checkpoint, kernels_cfg=kernels_cfg,
                         data_cfg=data_cfg)
    attrs = S.store_info(StorePaths(stem).store)
    assert attrs["arch"] == "fcn" and attrs["width"] == 8 and attrs["epoch"] == 1 and attrs["rows"] == rows

    recorders = []

    def recording_open(path):
        x, fingerprint = open_images(path)
        recorders.append(RowRecorder(x))
        return recorders[-1], fingerprint

    def no_open_prepared(*args, **kwargs):
        raise AssertionError("a tile job loaded the labels and split (N-sized) through open_prepared")

    monkeypatch.setattr(kernel_jobs, "open_images", recording_open)
    monkeypatch.setattr(kernel_jobs, "open_prepared", no_open_prepared)
    full = open_prepared(small_digits_store)
    r_ids, c_ids = kernel_jobs.index_sets_for(full, rows, cols, data_cfg)
    symmetric = rows == cols
    flags = []
    assert S.store_info(StorePaths(stem).store)["symmetric"] is symmetric
    for i, j in grid(len(r_ids), len(c_ids), tile, symmetric):  # the grid pntk.config.tile_grid gives
        flag = StorePaths(stem).flag(i, j)
        kernel_jobs.tile_job(flag, kind=kind, rows=rows, cols=cols, i=i, j=j, data_path=small_digits_store,
                             checkpoint=checkpoint, kernels_cfg=kernels_cfg, data_cfg=data_cfg)
        rec = recorders[-1]
        rs, cs = TileGrid(len(r_ids), len(c_ids), tile).slices(i, j)
        want = np.concatenate([r_ids[rs], c_ids[cs]])
        assert np.array_equal(np.concatenate(rec.reads), want)  # exactly this tile's rows and cols, nothing else
        flags.append(flag)
    assert len(recorders) == len(flags)

    tiles.finalize(manifest_of(stem), flags)
    assert tiles.verify(StorePaths(stem).store)["ok"]
    net, _ = load_checkpoint(checkpoint)
    x2 = None if symmetric else torch.as_tensor(full.x[c_ids], dtype=torch.float64)
    expected = empirical_kernel(net.double(), torch.as_tensor(full.x[r_ids], dtype=torch.float64), x2, kind=kind,
                                method=METHOD).numpy()
    stored = S.kernel_array(StorePaths(stem).store)[...]
    assert np.abs(stored - expected).max() <= 1e-12 * np.abs(expected).max()
    da = xr.open_zarr(StorePaths(stem).store)["kernel"]
    assert np.array_equal(da["row"], r_ids) and np.array_equal(da["row_label"], full.y[r_ids])


def test_detach_links_removes_links_into_a_cache_never_their_targets(tmp_path):
    """A store taken from Snakemake's output cache (links, or folders of links) is unlinked before a job makes
    it again: the files in the cache stay as they were; a store of real files is left alone."""
    cache = tmp_path / "cache"
    (cache / "z" / "kernel").mkdir(parents=True)
    (cache / "z" / "zarr.json").write_text("{}")
    (cache / "t").mkdir()
    (cache / "t" / "0_0.json").write_text("{}")
    (cache / "m.json").write_text("{}")
    paths = StorePaths(tmp_path / "work" / "pntk-train-train")
    paths.store.mkdir(parents=True)  # a folder of links (Snakemake's fetch) ...
    for entry in (cache / "z").iterdir():
        (paths.store / entry.name).symlink_to(entry)
    paths.tiles_dir.symlink_to(cache / "t")  # ... or a link (the folder that filled the cache)
    paths.manifest.symlink_to(cache / "m.json")
    assert tiles.detach_links(paths)
    assert not any(p.exists() or p.is_symlink() for p in (paths.store, paths.tiles_dir, paths.manifest))
    assert sorted(p.relative_to(cache).as_posix() for p in cache.rglob("*")) == [
        "m.json", "t", "t/0_0.json", "z", "z/kernel", "z/zarr.json"]
    real = StorePaths(tmp_path / "real" / "pntk-train-train")
    (real.store / "kernel").mkdir(parents=True)
    real.manifest.write_text("{}")
    assert not tiles.detach_links(real) and real.manifest.is_file() and (real.store / "kernel").is_dir()

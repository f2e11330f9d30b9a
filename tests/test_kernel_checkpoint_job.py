"""kernels.jobs: per_checkpoint — pntk.kernel_jobs.checkpoint_job writes, for every store of a checkpoint,
the same store, flags and manifest as the per-tile jobs (bitwise), equals the one-shot kernel, and a
rerun after a crash recomputes only the tiles without a matching flag."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

from pntk import kernel_jobs
from pntk.data import open_prepared
from pntk.kernels import empirical_kernel
from pntk.store import tiles
from pntk.store import zarr_store as S
from pntk.store.paths import StorePaths
from pntk.tiling import TileGrid, is_symmetric
from pntk.train import load_checkpoint

# D = 10 train, X = 6 test examples; tile 6 makes ragged tiles everywhere (80 train → 14 col tiles).
DATA_CFG = {"subset_train": 10, "subset_test": 6, "seed": 0}
SPECS = [("pntk", "sub-train", "sub-train"), ("entk", "sub-test", "sub-train"), ("pntk", "test", "train")]


def kernels_cfg(tile: int = 6) -> dict:
    return {"tile_size": tile, "dtype": "float64", "method": "auto", "batch_size": None, "device": "cpu"}


def manifests(root: Path) -> list[Path]:
    return [root / "kernels" / f"{k}-{r}-{c}.manifest.json" for k, r, c in SPECS]


def run_job(root: Path, data, checkpoint, tile: int = 6) -> list[Path]:
    paths = manifests(root)
    kernel_jobs.checkpoint_job(paths, SPECS, data_path=data, checkpoint=checkpoint, kernels_cfg=kernels_cfg(tile),
                               data_cfg=DATA_CFG)
    return paths


def values(manifest: Path) -> np.ndarray:
    return S.kernel_array(StorePaths.of(manifest).store)[...]


def test_same_stores_as_per_tile_jobs_and_equal_to_one_shot(small_digits_store, fcn_checkpoint, tmp_path, one_thread):
    one_job = run_job(tmp_path / "one-job", small_digits_store, fcn_checkpoint)

    full = open_prepared(small_digits_store)
    net, _ = load_checkpoint(fcn_checkpoint)
    net = net.double()
    for (kind, rows, cols), manifest in zip(SPECS, one_job):
        assert tiles.verify(StorePaths.of(manifest).store, manifest)["ok"]
        # The per-tile rules on the same inputs: init job, one job per tile, finalize.
        stem = tmp_path / "per-tile" / "kernels" / f"{kind}-{rows}-{cols}"
        kernel_jobs.init_job(StorePaths(stem).sentinel, kind=kind, rows=rows, cols=cols,
                             data_path=small_digits_store, checkpoint=fcn_checkpoint, kernels_cfg=kernels_cfg(),
                             data_cfg=DATA_CFG)
        r_ids, c_ids = kernel_jobs.index_sets_for(full, rows, cols, DATA_CFG)
        flags = []
        for i, j in TileGrid(len(r_ids), len(c_ids), 6, is_symmetric(rows, cols)).tiles():
            flags.append(StorePaths(stem).flag(i, j))
            kernel_jobs.tile_job(flags[-1], kind=kind, rows=rows, cols=cols, i=i, j=j, data_path=small_digits_store,
                                 checkpoint=fcn_checkpoint, kernels_cfg=kernels_cfg(), data_cfg=DATA_CFG)
        per_tile = tiles.finalize(manifest_path := StorePaths(stem).manifest, flags)
        assert json.loads(manifest.read_text())["tiles"] == per_tile["tiles"]
        assert values(manifest).tobytes() == values(manifest_path).tobytes()

        x1 = torch.as_tensor(full.x[r_ids], dtype=torch.float64)
        x2 = None if rows == cols else torch.as_tensor(full.x[c_ids], dtype=torch.float64)
        expected = empirical_kernel(net, x1, x2, kind=kind, method="reference").numpy()
        np.testing.assert_allclose(values(manifest), expected, rtol=1e-10, atol=1e-12 * np.abs(expected).max())


@pytest.fixture
def recorded_tiles(monkeypatch):
    """Names ("{store}/{i}_{j}") of the tiles checkpoint_job computes, in order."""
    seen, compute = [], kernel_jobs._run_tile

    def recording(flag, *args, **kwargs):
        seen.append(f"{StorePaths.of(flag).stem.name}/{Path(flag).stem}")
        return compute(flag, *args, **kwargs)

    monkeypatch.setattr(kernel_jobs, "_run_tile", recording)
    return seen


def test_rerun_after_crash_recomputes_only_unflagged_or_corrupt_tiles(small_digits_store, fcn_checkpoint, tmp_path,
                                                                     one_thread, recorded_tiles):
    paths = run_job(tmp_path, small_digits_store, fcn_checkpoint)
    first = [values(m).tobytes() for m in paths]
    n_first = len(recorded_tiles)
    assert n_first == 3 + 2 + 7 * 14  # symmetric 2×2 grid keeps i <= j; 1×2; 7×14

    # A crash: no manifests yet, one tile's flag never written, another tile's chunk torn (flag stale).
    for m in paths:
        m.unlink()
    stem = StorePaths.of(paths[2]).stem
    StorePaths(stem).flag(3, 5).unlink()
    torn = S.kernel_array(StorePaths(stem).store)
    arr = zarr.open_array(str(StorePaths(stem).store / "kernel"), mode="r+")
    arr[0:6, 6:12] = torn[0:6, 6:12] * 2.0
    recorded_tiles.clear()

    run_job(tmp_path, small_digits_store, fcn_checkpoint)
    assert sorted(recorded_tiles) == ["pntk-test-train/0_1", "pntk-test-train/3_5"]
    assert [values(m).tobytes() for m in paths] == first
    assert all(tiles.verify(StorePaths.of(m).store, m)["ok"] for m in paths)


def test_a_store_of_another_checkpoint_or_tiling_is_recomputed_whole(small_digits_store, fcn_checkpoint, tmp_path,
                                                                  one_thread, recorded_tiles):
    paths = run_job(tmp_path, small_digits_store, fcn_checkpoint)
    first = [values(m) for m in paths]
    # The store claims another checkpoint (as after retraining): nothing of it may be kept.
    g = zarr.open_group(str(StorePaths.of(paths[0]).store), mode="r+")
    g.attrs["checkpoint_sha256"] = "0" * 64
    recorded_tiles.clear()
    run_job(tmp_path, small_digits_store, fcn_checkpoint)
    assert recorded_tiles == ["pntk-sub-train-sub-train/0_0", "pntk-sub-train-sub-train/0_1",
                              "pntk-sub-train-sub-train/1_1"]  # the other stores are kept
    assert values(paths[0]).tobytes() == first[0].tobytes()

    recorded_tiles.clear()
    run_job(tmp_path, small_digits_store, fcn_checkpoint, tile=32)  # another tiling: 1 + 1 + 2×3 tiles
    assert len(recorded_tiles) == 1 + 1 + 2 * 3
    for m, before in zip(paths, first):
        np.testing.assert_allclose(values(m), before, rtol=1e-12, atol=1e-12 * np.abs(before).max())
    assert S.store_info(StorePaths.of(paths[2]).store)["tile_size"] == 32


def test_other_examples_or_method_rebuild_the_store(small_digits_store, fcn_checkpoint, tmp_path, one_thread,
                                                    recorded_tiles):
    """After a config change Snakemake reruns the job: tiles of the old settings must not be kept."""
    paths = run_job(tmp_path, small_digits_store, fcn_checkpoint)
    recorded_tiles.clear()
    other = {**DATA_CFG, "seed": 1}  # other D and X subsets; the full train/test sets stay the same
    kernel_jobs.checkpoint_job(paths, SPECS, data_path=small_digits_store, checkpoint=fcn_checkpoint,
                               kernels_cfg=kernels_cfg(), data_cfg=other)
    assert sorted({t.split("/")[0] for t in recorded_tiles}) == ["entk-sub-test-sub-train", "pntk-sub-train-sub-train"]
    assert len(recorded_tiles) == 3 + 2
    full = open_prepared(small_digits_store)
    r_ids, _ = kernel_jobs.index_sets_for(full, "sub-train", "sub-train", other)
    net, _ = load_checkpoint(fcn_checkpoint)
    expected = empirical_kernel(net.double(), torch.as_tensor(full.x[r_ids], dtype=torch.float64), kind="pntk",
                                method="reference").numpy()
    np.testing.assert_allclose(values(paths[0]), expected, rtol=1e-10, atol=1e-12 * np.abs(expected).max())

    recorded_tiles.clear()
    kernel_jobs.checkpoint_job(paths, SPECS, data_path=small_digits_store, checkpoint=fcn_checkpoint,
                               kernels_cfg={**kernels_cfg(), "method": "jacobian"}, data_cfg=other)
    assert len(recorded_tiles) == 3 + 2 + 7 * 14


def test_manifests_and_specs_must_pair_up(small_digits_store, fcn_checkpoint, tmp_path):
    with pytest.raises(ValueError, match="2 manifests for 3 store specs"):
        kernel_jobs.checkpoint_job(manifests(tmp_path)[:2], SPECS, data_path=small_digits_store,
                                   checkpoint=fcn_checkpoint, kernels_cfg=kernels_cfg(), data_cfg=DATA_CFG)


def test_stores_record_their_model_the_method_that_ran_and_the_versions(small_digits_store, fcn_checkpoint,
                                                                        tmp_path, one_thread):
    """Provenance a reader can act on: `method` is what computed the tiles ("auto" resolved), `arch` and
    `model_spec` rebuild the network, and the versions that made the store."""
    from importlib.metadata import version

    import pntk

    manifest = run_job(tmp_path / "auto", small_digits_store, fcn_checkpoint)[0]
    a = pntk.open_kernel(manifest).attrs
    assert (a["model"], a["arch"], a["model_kwargs"], a["model_spec"]["depth"]) == ("fcn", "fcn", {}, 2)
    assert (a["method_requested"], a["method"]) == ("auto", "structured")
    assert set(json.loads(manifest.read_text())["tile_methods"].values()) == {"structured"}
    assert (a["pntk_version"], a["torch_version"]) == (pntk.__version__, version("torch"))

"""pntk.runs.Run and pntk.store.paths.StorePaths: the one place run names and store files are spelled."""
from pathlib import Path

import pytest

from pntk.runs import Run, checkpoint_meta, epoch_of
from pntk.store.paths import StorePaths


def test_store_paths_from_any_file_of_the_store(tmp_path):
    stem = tmp_path / "pntk-sub-test-sub-train"
    expected = {"store": "pntk-sub-test-sub-train.zarr", "sentinel": "pntk-sub-test-sub-train.init.json",
                "manifest": "pntk-sub-test-sub-train.manifest.json", "tiles_dir": "pntk-sub-test-sub-train.tiles"}
    for given in (stem, f"{stem}.zarr", f"{stem}.init.json", f"{stem}.manifest.json", f"{stem}.tiles",
                  f"{stem}.tiles/3_11.json", f"{stem}.tiles/3_11.log"):
        paths = StorePaths.of(given)
        assert paths.stem == stem, given
        assert {k: getattr(paths, k).name for k in expected} == expected
    assert StorePaths(stem).flag(2, 10) == tmp_path / "pntk-sub-test-sub-train.tiles" / "2_10.json"
    assert StorePaths(stem).index_sets() == ("pntk", "sub-test", "sub-train")
    assert StorePaths(tmp_path / "first_logit-train-test").index_sets() == ("first_logit", "train", "test")
    with pytest.raises(ValueError, match="not {kind}-{rows}-{cols}"):
        StorePaths(tmp_path / "pntk-train-validation").index_sets()


def test_store_paths_in_an_epoch_folder_and_as_snakemake_patterns():
    p = StorePaths.in_epoch("results/runs/{dataset}/{arch}-w{width}-s{seed}/epoch{epoch}", "{kind}", "{rows}",
                            "{cols}")
    assert str(p.manifest) == "results/runs/{dataset}/{arch}-w{width}-s{seed}/epoch{epoch}/kernels/" \
                              "{kind}-{rows}-{cols}.manifest.json"
    assert str(p.flag("{i}", "{j}")).endswith("kernels/{kind}-{rows}-{cols}.tiles/{i}_{j}.json")
    assert str(p.log("init")).endswith("kernels/{kind}-{rows}-{cols}.init.log")


def test_store_files_lists_what_exists_in_dependency_order(tmp_path):
    paths = StorePaths(tmp_path / "pntk-train-train")
    assert paths.files() == []
    paths.sentinel.write_text("{}")
    (paths.store / "kernel").mkdir(parents=True)
    (paths.store / "zarr.json").write_text("{}")
    (paths.store / "kernel" / "zarr.json").write_text("{}")
    paths.tiles_dir.mkdir()
    for i, j in ((0, 1), (0, 0)):
        paths.flag(i, j).write_text("{}")
    paths.manifest.write_text("{}")
    names = [p.relative_to(tmp_path).as_posix() for p in paths.files()]
    assert names == ["pntk-train-train.init.json", "pntk-train-train.zarr/kernel/zarr.json",
                     "pntk-train-train.zarr/zarr.json", "pntk-train-train.tiles/0_0.json",
                     "pntk-train-train.tiles/0_1.json", "pntk-train-train.manifest.json"]


def test_store_files_follow_links_into_snakemake_output_cache(tmp_path):
    """A store taken from Snakemake's output cache is a folder of links into the cache, with Snakemake's
    .snakemake_timestamp beside them: the files are those behind the links, without the timestamp."""
    cached = tmp_path / "cache" / "0123_pntk_train_train_zarr.zarr"
    (cached / "kernel" / "c" / "0").mkdir(parents=True)
    (cached / "zarr.json").write_text("{}")
    (cached / "kernel" / "zarr.json").write_text("{}")
    (cached / "kernel" / "c" / "0" / "0").write_bytes(b"tile")
    paths = StorePaths(tmp_path / "work" / "pntk-train-train")
    paths.store.mkdir(parents=True)
    for entry in cached.iterdir():
        (paths.store / entry.name).symlink_to(entry)
    (paths.store / ".snakemake_timestamp").touch()
    names = [p.relative_to(paths.store).as_posix() for p in paths.files()]
    assert names == ["kernel/c/0/0", "kernel/zarr.json", "zarr.json"]


def test_run_name_round_trip_and_paths():
    run = Run("cifar10", "my-net", 1024, 2)  # a user model name with '-' in it
    assert run.name == "cifar10/my-net-w1024-s2"
    assert Run.parse(run.name) == run
    assert run.checkpoint("res", 7) == Path("res/runs/cifar10/my-net-w1024-s2/checkpoints/epoch007.pt")
    assert run.epoch_dir("res", 0) == Path("res/runs/cifar10/my-net-w1024-s2/epoch000")
    assert run.train_log("res").name == "train_log.csv"
    assert Run.of_path(run.checkpoint("res", 7)) == run
    assert Run.of_path(StorePaths.in_epoch(run.epoch_dir("/x/res", 3), "pntk", "train", "train").manifest) == run
    assert checkpoint_meta(run.checkpoint("res", 12)) == {"dataset": "cifar10", "arch": "my-net", "width": 1024,
                                                          "seed": 2, "trained_on": "train", "epoch": 12}
    assert epoch_of("res/runs/d/fcn-w8-s0/epoch010/regression.json") == 10


def test_a_network_trained_on_d_is_a_run_of_its_own():
    """The networks of Figs 2–8 (diagnostics.train_on: D) live beside the train split's runs, suffix -onD."""
    run = Run("digits", "my-net-w3-s1", 64, 0, "D")  # even a name that looks like a run name parses back
    assert run.leaf == "my-net-w3-s1-w64-s0-onD" and Run.parse(run.name) == run
    assert Run.of_path(run.epoch_dir("res", 50) / "diagnostics.json") == run
    assert checkpoint_meta(run.checkpoint("res", 50))["trained_on"] == "D"
    assert run.wildcards == {"dataset": "digits", "arch": "my-net-w3-s1", "width": 64, "seed": 0, "on": "-onD"}
    assert Run.of_row({"dataset": "digits", "arch": "fcn", "width": 8, "seed": 1}).trained_on == "train"
    with pytest.raises(ValueError, match="trained_on"):
        Run("digits", "fcn", 8, 0, "test")


@pytest.mark.parametrize("bad", ["fcn-w64-s0", "digits/fcn-w64", "digits/fcn-64-s0", "digits/fcn-w6.4-s0",
                                 "digits/fcn-w64-s0/x", "/fcn-w64-s0"])
def test_run_parse_rejects_what_is_not_a_run_name(bad):
    with pytest.raises(ValueError, match="not a run name"):
        Run.parse(bad)


def test_run_of_a_path_outside_any_run_folder_fails_naming_the_path(tmp_path):
    with pytest.raises(ValueError, match="not inside a run folder"):
        Run.of_path(tmp_path / "model.pt")
    with pytest.raises(ValueError, match="no epoch"):
        epoch_of(tmp_path / "model.pt")

"""Tests for pntk.data (prepared, datasets) on tiny files in the real on-disk formats.

Each fixture writes a miniature copy of a data set (same file names, keys, magic numbers and
layouts as the official releases) and the real torchvision loaders read it through
``prepare_dataset``. The tiny files cannot match torchvision's official md5s, so the torchvision data
sets are prepared with ``verify_md5=False`` here; ``test_md5_mismatch_is_named`` checks the default.
"""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from pntk import data as D
from pntk.data.datasets import DATASETS

TV_DATASETS = ("mnist", "fashion_mnist", "cifar10", "cifar100", "svhn")
N_TRAIN, N_TEST = 40, 20  # CIFAR-10: 5 batches of 8


# ----------------------------------------------------------------------------------------------
# writers for the real formats; each returns the expected (images NCHW uint8, labels) per split


def _labels(n: int, k: int, rng) -> np.ndarray:
    return (np.arange(n) % k)[rng.permutation(n)].astype(np.int64)  # every class present, shuffled


def _write_idx(path: Path, arr: np.ndarray, magic: int, gz: bool = False) -> None:
    header = struct.pack(">i", magic) + b"".join(struct.pack(">i", s) for s in arr.shape)  # big-endian
    payload = header + arr.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


def write_mnist(root: Path, folder: str, rng, gz: bool = False) -> dict:
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    out = {}
    for split, prefix, n in (("train", "train", N_TRAIN), ("test", "t10k", N_TEST)):
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = _labels(n, 10, rng)
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", x, 2051, gz)  # 0x803: ubyte, 3 dims
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", y, 2049, gz)  # 0x801: ubyte, 1 dim
        out[split] = (x[:, None], y)
    return out


def _pickle(path: Path, obj: dict) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f)


def write_cifar10(root: Path, rng) -> dict:
    base = root / "cifar-10-batches-py"
    base.mkdir(parents=True)
    x = rng.integers(0, 256, (N_TRAIN, 3072), dtype=np.uint8)  # row: R(32x32), G, B, row-major
    y = _labels(N_TRAIN, 10, rng)
    per = N_TRAIN // 5
    for b in range(5):
        sl = slice(b * per, (b + 1) * per)
        _pickle(base / f"data_batch_{b + 1}", {"batch_label": f"training batch {b + 1} of 5",
                                               "labels": y[sl].tolist(), "data": x[sl],
                                               "filenames": [f"img{i}.png" for i in range(per)]})
    xt = rng.integers(0, 256, (N_TEST, 3072), dtype=np.uint8)
    yt = _labels(N_TEST, 10, rng)
    _pickle(base / "test_batch", {"batch_label": "testing batch 1 of 1", "labels": yt.tolist(), "data": xt,
                                  "filenames": [f"t{i}.png" for i in range(N_TEST)]})
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    _pickle(base / "batches.meta", {"label_names": names, "num_cases_per_batch": per, "num_vis": 3072})
    return {"train": (x.reshape(-1, 3, 32, 32), y), "test": (xt.reshape(-1, 3, 32, 32), yt)}


def write_cifar100(root: Path, rng) -> dict:
    base = root / "cifar-100-python"
    base.mkdir(parents=True)
    out = {}
    for split, n in (("train", N_TRAIN), ("test", N_TEST)):
        x = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        y = rng.integers(0, 100, n).astype(np.int64)
        _pickle(base / split, {"filenames": [f"{i}.png" for i in range(n)], "batch_label": split,
                               "fine_labels": y.tolist(), "coarse_labels": (y // 5).tolist(), "data": x})
        out[split] = (x.reshape(-1, 3, 32, 32), y)
    _pickle(base / "meta", {"fine_label_names": [f"fine{i}" for i in range(100)],
                            "coarse_label_names": [f"coarse{i}" for i in range(20)]})
    return out


def write_svhn(root: Path, rng) -> dict:
    from scipy.io import savemat

    root.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n in (("train", N_TRAIN), ("test", N_TEST)):
        x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)  # (H, W, C, N) as in the .mat files
        y = _labels(n, 10, rng)
        y_mat = np.where(y == 0, 10, y).astype(np.uint8)[:, None]  # SVHN stores digit 0 as label 10
        savemat(root / f"{split}_32x32.mat", {"X": x, "y": y_mat})
        out[split] = (x.transpose(3, 2, 0, 1), y)
    return out


def write_dataset(name: str, root: Path, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    if name == "mnist":
        return write_mnist(root, "MNIST", rng)
    if name == "fashion_mnist":
        return write_mnist(root, "FashionMNIST", rng)
    if name == "cifar10":
        return write_cifar10(root, rng)
    if name == "cifar100":
        return write_cifar100(root, rng)
    return write_svhn(root, rng)


@pytest.fixture(params=TV_DATASETS)
def raw_dataset(request, tmp_path):
    """(name, root, expected {split: (uint8 NCHW, labels)}) for each torchvision data set."""
    root = tmp_path / "raw"
    return request.param, root, write_dataset(request.param, root)


@pytest.fixture(scope="module")
def digits_store(tmp_path_factory):
    out = tmp_path_factory.mktemp("digits") / "digits.zarr"
    attrs = D.prepare_dataset("digits", None, out, seed=0)
    return out, attrs


# ----------------------------------------------------------------------------------------------
# torchvision data sets


def test_prepare_reads_real_formats(raw_dataset, tmp_path):
    name, root, expected = raw_dataset
    attrs = D.prepare_dataset(name, root, tmp_path / f"{name}.zarr", verify_md5=False)
    data = D.open_prepared(tmp_path / f"{name}.zarr", verify=True)
    c, h, w = D.SPECS[name][1]
    assert data.x.shape == (N_TRAIN + N_TEST, c, h, w) and data.x.dtype == np.float32
    assert data.y.dtype == np.int64 and data.split.dtype == np.int8
    assert data.in_shape == (c, h, w) and data.num_classes == (100 if name == "cifar100" else 10)
    assert attrs["n_train"] == N_TRAIN and attrs["n_test"] == N_TEST
    assert data.attrs == attrs
    assert set(D.ATTR_KEYS) <= set(attrs)
    np.testing.assert_array_equal(data.train_indices, np.arange(N_TRAIN))
    np.testing.assert_array_equal(data.test_indices, np.arange(N_TRAIN, N_TRAIN + N_TEST))
    # labels and pixel layout survive exactly: undo the normalisation and compare with the raw bytes
    x_raw = np.concatenate([expected["train"][0], expected["test"][0]])
    np.testing.assert_array_equal(data.y, np.concatenate([expected["train"][1], expected["test"][1]]))
    mean = np.asarray(attrs["mean"], np.float32)[None, :, None, None]
    std = np.asarray(attrs["std"], np.float32)[None, :, None, None]
    np.testing.assert_allclose(data.x * std + mean, x_raw / 255.0, atol=1e-5)
    # train statistics per channel
    xt = data.x[data.train_indices].astype(np.float64)
    np.testing.assert_allclose(xt.mean(axis=(0, 2, 3)), 0.0, atol=1e-5)
    np.testing.assert_allclose(xt.std(axis=(0, 2, 3)), 1.0, atol=1e-5)
    if name in ("cifar10", "cifar100"):
        assert attrs["classes"][:2] == (["airplane", "automobile"] if name == "cifar10" else ["fine0", "fine1"])


def test_subsample_sizes_and_determinism(raw_dataset, tmp_path):
    name, root, expected = raw_dataset
    kw = dict(train_size=20, test_size=10, verify_md5=False)
    a1 = D.prepare_dataset(name, root, tmp_path / "a.zarr", seed=3, **kw)
    a2 = D.prepare_dataset(name, root, tmp_path / "b.zarr", seed=3, **kw)
    a3 = D.prepare_dataset(name, root, tmp_path / "c.zarr", seed=4, **kw)
    assert a1["fingerprint"] == a2["fingerprint"] != a3["fingerprint"]
    d = D.open_prepared(tmp_path / "a.zarr")
    assert (d.attrs["n_train"], d.attrs["n_test"]) == (20, 10) and len(d.y) == 30
    # rows are the official rows named by source_index, in file order
    src = d.source_index
    assert np.all(np.diff(src[d.train_indices]) > 0) and np.all(np.diff(src[d.test_indices]) > 0)
    np.testing.assert_array_equal(d.y[d.train_indices], expected["train"][1][src[d.train_indices]])
    if name != "cifar100":  # every class has 4 train rows -> stratified 20 takes 2 of each
        assert np.all(np.bincount(d.y[d.train_indices], minlength=10) == 2)
    with pytest.raises(ValueError, match="data.train_size"):
        D.prepare_dataset(name, root, tmp_path / "d.zarr", train_size=N_TRAIN + 1, verify_md5=False)
    with pytest.raises(ValueError, match="data.test_size"):
        D.prepare_dataset(name, root, tmp_path / "d.zarr", test_size=N_TEST + 1, verify_md5=False)
    assert not (tmp_path / "d.zarr").exists()


@pytest.mark.parametrize("name", TV_DATASETS)
def test_missing_files_name_the_path(name, tmp_path):
    root = tmp_path / "empty"
    root.mkdir()
    with pytest.raises(FileNotFoundError) as err:
        D.prepare_dataset(name, root, tmp_path / "out.zarr")
    msg = str(err.value)
    expected = {"mnist": ("MNIST/raw", "train-images-idx3-ubyte", "IDX"),
                "fashion_mnist": ("FashionMNIST/raw", "t10k-labels-idx1-ubyte", "IDX"),
                "cifar10": ("cifar-10-batches-py", "data_batch_5", "pickle"),
                "cifar100": ("cifar-100-python", "meta", "pickle"),
                "svhn": ("test_32x32.mat", "train_32x32.mat", ".mat")}[name]
    assert str(root) in msg and all(e in msg for e in expected), msg
    assert "data.download" in msg
    assert not (tmp_path / "out.zarr").exists()


def test_one_missing_file_is_named(tmp_path):
    root = tmp_path / "raw"
    write_dataset("cifar10", root)
    os.remove(root / "cifar-10-batches-py" / "data_batch_3")
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        D.prepare_dataset("cifar10", root, tmp_path / "out.zarr", verify_md5=False)


def test_mnist_gz_only(tmp_path):
    root = tmp_path / "raw"
    expected = write_mnist(root, "MNIST", np.random.default_rng(1), gz=True)
    D.prepare_dataset("mnist", root, tmp_path / "m.zarr")  # MNIST raw files have no md5 check
    d = D.open_prepared(tmp_path / "m.zarr")
    np.testing.assert_array_equal(d.y[d.test_indices], expected["test"][1])


@pytest.mark.parametrize("name", ["cifar10", "svhn"])
def test_md5_mismatch_is_named(name, tmp_path):
    root = tmp_path / "raw"
    write_dataset(name, root)
    with pytest.raises(ValueError, match="md5") as err:
        D.prepare_dataset(name, root, tmp_path / "out.zarr")  # default verify_md5=True
    assert ("data_batch_1" if name == "cifar10" else "train_32x32.mat") in str(err.value)
    assert not (tmp_path / "out.zarr").exists()


def test_root_required(tmp_path):
    with pytest.raises(ValueError, match="data.root"):
        D.prepare_dataset("cifar10", None, tmp_path / "out.zarr")


# ----------------------------------------------------------------------------------------------
# digits, fingerprints, names


def test_digits_defaults(digits_store):
    path, attrs = digits_store
    d = D.open_prepared(path, verify=True)
    assert d.x.shape == (1797, 1, 8, 8) and d.num_classes == 10 and d.in_shape == (1, 8, 8)
    assert (attrs["n_train"], attrs["n_test"]) == (1347, 450)
    assert np.all(np.bincount(d.y[d.test_indices]) >= 43)  # stratified: ~45 of each digit
    xt = d.x[d.train_indices].astype(np.float64)
    assert abs(xt.mean()) < 1e-5 and abs(xt.std() - 1) < 1e-5
    assert D.prepare_dataset("digits", None, path.parent / "again.zarr", seed=0)["fingerprint"] == attrs["fingerprint"]
    assert D.prepare_dataset("digits", None, path.parent / "s1.zarr", seed=1)["fingerprint"] != attrs["fingerprint"]


def test_fingerprint_exact_bytes():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 1, 2, 2)).astype(np.float32)
    y = np.arange(6, dtype=np.int64)
    s = np.array([0, 0, 0, 0, 1, 1], np.int8)
    f = D.fingerprint(x, y, s)
    assert f == D.fingerprint(x.copy(), y.copy(), s.copy()) and len(f) == 64
    x2 = x.copy()
    x2[3, 0, 1, 1] += 1e-6
    assert D.fingerprint(x2, y, s) != f
    assert D.fingerprint(x.astype(np.float64), y, s) != f  # dtype counts
    assert D.fingerprint(x.reshape(6, 1, 4, 1), y, s) != f  # shape counts
    assert D.fingerprint(x, y, s[::-1].copy()) != f


def test_unknown_name(tmp_path):
    with pytest.raises(ValueError, match="data.name") as err:
        D.prepare_dataset("imagenet", tmp_path, tmp_path / "out.zarr")
    assert all(n in str(err.value) for n in DATASETS)
    assert D.DATASETS == ("digits", "mnist", "fashion_mnist", "cifar10", "cifar100", "svhn", "npz", "folder")


# ----------------------------------------------------------------------------------------------
# index sets


@pytest.mark.parametrize("which,size", [("sub-train", 100), ("sub-test", 37)])
def test_index_set_subsets(digits_store, which, size):
    d = D.open_prepared(digits_store[0])
    kw = dict(subset_train=100, subset_test=37)
    a = D.index_set(d, which, seed=5, **kw)
    assert np.array_equal(a, D.index_set(d, which, seed=5, **kw))
    assert not np.array_equal(a, D.index_set(d, which, seed=6, **kw))
    assert len(a) == size and len(np.unique(a)) == size and np.all(np.diff(a) > 0) and a.dtype == np.int64
    assert np.all(d.split[a] == (0 if which == "sub-train" else 1))
    counts = np.bincount(d.y[a], minlength=10)
    assert counts.max() - counts.min() <= 1  # class-balanced


def test_index_set_full_and_errors(digits_store):
    d = D.open_prepared(digits_store[0])
    kw = dict(subset_train=10, subset_test=10, seed=0)
    np.testing.assert_array_equal(D.index_set(d, "train", **kw), d.train_indices)
    np.testing.assert_array_equal(D.index_set(d, "test", **kw), d.test_indices)
    with pytest.raises(ValueError, match="data.subset_train"):
        D.index_set(d, "sub-train", subset_train=1348, subset_test=10, seed=0)
    with pytest.raises(ValueError, match="data.subset_test"):
        D.index_set(d, "sub-test", subset_train=10, subset_test=451, seed=0)
    with pytest.raises(ValueError, match="index set"):
        D.index_set(d, "val", **kw)
    full = D.index_set(d, "sub-test", subset_train=10, subset_test=450, seed=0)
    np.testing.assert_array_equal(full, d.test_indices)


def test_balanced_subset_with_a_small_class():
    labels = np.array([0] * 50 + [1] * 3 + [2] * 50)
    idx = D.balanced_subset(labels, 30, np.random.default_rng(0))
    assert np.bincount(labels[idx]).tolist() == [14, 3, 13] or np.bincount(labels[idx]).tolist() == [13, 3, 14]


# ----------------------------------------------------------------------------------------------
# store integrity


def test_atomic_write_keeps_old_store_on_failure(digits_store, tmp_path, monkeypatch):
    out = tmp_path / "d.zarr"
    good = D.prepare_dataset("digits", None, out, train_size=50, test_size=20)

    from pntk.data import prepared as P

    real = P._write_store

    def write_then_crash(path, *args):
        real(path, *args)  # the temporary store is complete ...
        raise RuntimeError("crash before the rename")

    monkeypatch.setattr(P, "_write_store", write_then_crash)
    with pytest.raises(RuntimeError, match="crash"):
        D.prepare_dataset("digits", None, out, train_size=60, test_size=20)
    assert D.open_prepared(out, verify=True).attrs["fingerprint"] == good["fingerprint"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.zarr"]  # no tmp / old leftovers
    monkeypatch.setattr(P, "_write_store", real)
    new = D.prepare_dataset("digits", None, out, train_size=60, test_size=20)  # replaces the old store
    assert D.open_prepared(out).attrs["n_train"] == 60 != good["n_train"] and new["n_train"] == 60
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.zarr"]


def test_open_missing_or_incomplete(tmp_path, digits_store):
    with pytest.raises(FileNotFoundError, match="nope.zarr"):
        D.open_prepared(tmp_path / "nope.zarr")
    import shutil

    broken = tmp_path / "broken.zarr"
    shutil.copytree(digits_store[0], broken)
    shutil.rmtree(broken / "split")
    with pytest.raises(FileNotFoundError, match="broken.zarr.*split"):
        D.open_prepared(broken)


def test_verify_detects_tampering(tmp_path):
    import zarr

    out = tmp_path / "d.zarr"
    D.prepare_dataset("digits", None, out, train_size=30, test_size=10)
    zarr.open_group(str(out), mode="r+")["x"][0, 0, 0, 0] = 123.0
    D.open_prepared(out)  # no verification by default
    with pytest.raises(ValueError, match="fingerprint"):
        D.open_prepared(out, verify=True)

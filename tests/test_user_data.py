"""The user's own data (pntk.data.user): npz files and ImageFolder-style folders, prepared end to end,
and bad files failing early — at config validation where the check is cheap — naming file and array."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from pntk import data as D
from pntk.config import ConfigError, data_spec, split_sizes, validate_config
from pntk.data import user as U

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_NPZ = REPO / "examples" / "digits-small.npz"
N_TR, N_TE, K = 30, 12, 3


def _labels(n: int, k: int, rng) -> np.ndarray:
    return (np.arange(n) % k)[rng.permutation(n)].astype(np.int64)  # every class present, shuffled


def _x(shape: tuple, dtype, rng) -> np.ndarray:
    if dtype == np.uint8:
        return rng.integers(0, 256, shape, dtype=np.uint8)
    return (rng.standard_normal(shape) * 3 + 1).astype(dtype)


LAYOUTS = {"nchw": ((2, 3, 4), (2, 3, 4)), "nhw": ((5, 6), (1, 5, 6)), "nd": ((7,), (7, 1, 1))}


def write_npz(path: Path, layout: str = "nchw", dtype=np.uint8, seed: int = 0, compressed: bool = False,
              **override) -> dict:
    rng = np.random.default_rng(seed)
    per_sample = LAYOUTS[layout][0]
    arrays = {"x_train": _x((N_TR,) + per_sample, dtype, rng), "y_train": _labels(N_TR, K, rng),
              "x_test": _x((N_TE,) + per_sample, dtype, rng), "y_test": _labels(N_TE, K, rng)}
    arrays.update(override)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    return arrays


def npz_config(path, **data) -> dict:
    return {"models": [{"arch": "fcn", "widths": [8]}], "train": {"epochs": 1, "checkpoint_epochs": [0, 1]},
            "data": {"name": "npz", "path": str(path), "subset_train": 6, "subset_test": 3, **data}}


# ----------------------------------------------------------------------------------------------
# npz end to end


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_npz_prepare_and_open(layout, dtype, tmp_path):
    raw = write_npz(tmp_path / "mine.npz", layout, dtype, compressed=dtype == np.float32)
    attrs = D.prepare_dataset("npz", None, tmp_path / "npz.zarr", path=tmp_path / "mine.npz")
    d = D.open_prepared(tmp_path / "npz.zarr", verify=True)
    chw = LAYOUTS[layout][1]
    assert d.x.shape == (N_TR + N_TE,) + chw and d.x.dtype == np.float32
    assert d.in_shape == chw and d.num_classes == K and attrs["n_train"] == N_TR and attrs["n_test"] == N_TE
    assert set(D.ATTR_KEYS) <= set(attrs) and d.attrs == attrs
    np.testing.assert_array_equal(d.y, np.concatenate([raw["y_train"], raw["y_test"]]))
    np.testing.assert_array_equal(d.split, np.repeat([0, 1], [N_TR, N_TE]))
    # undo the per-channel normalisation: the stored values come back (uint8 / 255, floats as stored)
    scale = 255.0 if dtype == np.uint8 else 1.0
    expect = np.concatenate([raw["x_train"], raw["x_test"]]).reshape(d.x.shape) / scale
    mean = np.asarray(attrs["mean"])[None, :, None, None]
    std = np.asarray(attrs["std"])[None, :, None, None]
    np.testing.assert_allclose(d.x * std + mean, expect, rtol=1e-5, atol=1e-5 * np.abs(expect).max())
    train = d.x[d.train_indices].astype(np.float64)
    np.testing.assert_allclose(train.mean(axis=(0, 2, 3)), 0.0, atol=1e-5)
    np.testing.assert_allclose(train.std(axis=(0, 2, 3)), 1.0, atol=1e-5)
    assert attrs["name"] == "npz" and "mine.npz" in attrs["source"] and "mine.npz" in attrs["split_rule"]
    assert attrs["normalisation"].startswith("pixels scaled" if dtype == np.uint8 else "values as stored")


def test_npz_subsample_like_builtin_sets(tmp_path):
    write_npz(tmp_path / "mine.npz")
    kw = dict(path=tmp_path / "mine.npz", train_size=12, test_size=6)
    a = D.prepare_dataset("npz", None, tmp_path / "a.zarr", seed=1, **kw)
    b = D.prepare_dataset("npz", None, tmp_path / "b.zarr", seed=1, **kw)
    c = D.prepare_dataset("npz", None, tmp_path / "c.zarr", seed=2, **kw)
    assert a["fingerprint"] == b["fingerprint"] != c["fingerprint"]
    d = D.open_prepared(tmp_path / "a.zarr")
    assert (d.attrs["n_train"], d.attrs["n_test"]) == (12, 6)
    assert np.bincount(d.y[d.train_indices]).tolist() == [4, 4, 4]  # stratified
    with pytest.raises(ValueError, match="data.train_size"):
        D.prepare_dataset("npz", None, tmp_path / "d.zarr", path=tmp_path / "mine.npz", train_size=N_TR + 1)


def test_example_npz_is_what_its_script_writes(tmp_path):
    subprocess.run([sys.executable, str(REPO / "examples" / "make_digits_npz.py"), str(tmp_path / "again.npz")],
                   check=True, capture_output=True)
    with np.load(EXAMPLE_NPZ) as committed, np.load(tmp_path / "again.npz") as fresh:
        assert sorted(committed.files) == sorted(fresh.files) == sorted(U.NPZ_KEYS)
        for k in U.NPZ_KEYS:
            np.testing.assert_array_equal(committed[k], fresh[k])
    assert EXAMPLE_NPZ.stat().st_size < 16_000
    spec = U.describe("npz", EXAMPLE_NPZ)
    assert (spec.n_train, spec.n_test, spec.num_classes, spec.in_shape) == (120, 60, 10, (1, 8, 8))


def test_example_config_validates():
    cfg = validate_config(yaml.safe_load((REPO / "examples" / "npz-digits.yaml").read_text()))
    cfg["data"]["path"] = str(EXAMPLE_NPZ)  # the config is relative to the repository root
    assert split_sizes(cfg) == (120, 60)


# ----------------------------------------------------------------------------------------------
# bad npz files: named file and array, at validation time when cheap


rng0 = np.random.default_rng(5)
BAD_NPZ = [
    # (id, overrides of write_npz, words the message must contain)
    ("missing-key", dict(y_test=None), ["y_test", "missing"]),
    ("x-1d", dict(x_train=np.zeros(N_TR, np.uint8)), ["x_train", "ndim 1"]),
    ("x-5d", dict(x_train=np.zeros((N_TR, 1, 2, 2, 2), np.uint8)), ["x_train", "ndim 5"]),
    ("x-int16", dict(x_test=np.zeros((N_TE, 2, 3, 4), np.int16)), ["x_test", "int16"]),
    ("x-object", dict(x_train=np.array([None] * N_TR, dtype=object)), ["x_train"]),
    ("y-float", dict(y_train=np.arange(N_TR) % K * 1.0), ["y_train", "float64", "integer"]),
    ("y-2d", dict(y_test=(np.arange(N_TE) % K)[:, None]), ["y_test", "shape"]),
    ("y-negative", dict(y_test=np.full(N_TE, -1)), ["y_test", "-1"]),
    ("class-absent", dict(y_train=np.arange(N_TR) % 2 * 2), ["y_train", "class(es) 1"]),
    ("test-label-beyond-train", dict(y_test=np.full(N_TE, K)), ["y_train", "class(es) 3"]),
    ("one-class", dict(y_train=np.zeros(N_TR, np.int64), y_test=np.zeros(N_TE, np.int64)), ["single class"]),
    ("y-length", dict(y_train=np.arange(N_TR - 1) % K), ["y_train", f"{N_TR - 1} labels", "x_train"]),
    ("shape-mismatch", dict(x_test=np.zeros((N_TE, 2, 3, 5), np.uint8)), ["x_train", "x_test", "differ"]),
    ("dtype-mismatch", dict(x_test=np.zeros((N_TE, 2, 3, 4), np.float32)), ["x_train", "x_test", "differ"]),
    ("channels-last", dict(x_train=np.zeros((N_TR, 8, 8, 3), np.uint8), x_test=np.zeros((N_TE, 8, 8, 3), np.uint8)),
     ["x_train", "channels-last"]),
    ("empty", dict(x_test=np.zeros((0, 2, 3, 4), np.uint8), y_test=np.zeros(0, np.int64)), ["x_test", "non-empty"]),
]


@pytest.mark.parametrize("override,words", [b[1:] for b in BAD_NPZ], ids=[b[0] for b in BAD_NPZ])
def test_bad_npz_fails_naming_file_and_array(override, words, tmp_path):
    path = tmp_path / "bad.npz"
    write_npz(path, **override)
    with pytest.raises(ValueError) as err:
        U.describe("npz", path)
    assert str(path) in str(err.value) and all(w in str(err.value) for w in words), str(err.value)
    with pytest.raises(ConfigError) as cerr:  # the same failure at config validation
        validate_config(npz_config(path))
    assert str(cerr.value).startswith("data.path: ") and str(path) in str(cerr.value)
    with pytest.raises(ValueError, match="bad.npz"):  # and when preparing
        D.prepare_dataset("npz", None, tmp_path / "out.zarr", path=path)
    assert not (tmp_path / "out.zarr").exists()


def test_not_an_npz_and_missing_file(tmp_path):
    (tmp_path / "x.npy").write_bytes(b"\x93NUMPY not a zip")
    with pytest.raises(ConfigError, match=r"data.path: .*x.npy: not an .npz archive"):
        validate_config(npz_config(tmp_path / "x.npy"))
    with pytest.raises(ConfigError, match=r"data.path: .*nope.npz: no such file"):
        validate_config(npz_config(tmp_path / "nope.npz"))
    with pytest.raises(ConfigError, match=r"data.path: .*nope.npz"):  # also in a dry run: sizes plan the jobs
        validate_config(npz_config(tmp_path / "nope.npz"), check_files=False)


def test_nonfinite_floats_fail_when_preparing(tmp_path):
    x = np.ones((N_TE, 2, 3, 4), np.float32)
    x[1, 0, 0, 0] = np.nan
    x[2, 1, 1, 1] = np.inf
    write_npz(tmp_path / "nan.npz", dtype=np.float32, x_test=x)
    validate_config(npz_config(tmp_path / "nan.npz"))  # headers are fine: values are read when preparing
    with pytest.raises(ValueError, match=r"nan.npz: array x_test has 2 NaN/inf"):
        D.prepare_dataset("npz", None, tmp_path / "out.zarr", path=tmp_path / "nan.npz")


def _truncate_member(src: Path, dst: Path, member: str, keep: int) -> None:
    """Copy an npz, cutting ``member`` to its first ``keep`` bytes (its header stays intact)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            zout.writestr(info, data[:keep] if info.filename == member else data)


def test_validation_reads_headers_not_pixels(tmp_path):
    """A file whose x_train payload is cut off passes the cheap check (only headers are read) and
    fails when the data are really loaded."""
    write_npz(tmp_path / "full.npz")
    _truncate_member(tmp_path / "full.npz", tmp_path / "cut.npz", "x_train.npy", keep=200)
    cfg = validate_config(npz_config(tmp_path / "cut.npz"))
    assert split_sizes(cfg) == (N_TR, N_TE) and data_spec(cfg).in_shape == (2, 3, 4)
    with pytest.raises(ValueError, match=r"cut.npz: array x_train could not be read"):
        D.prepare_dataset("npz", None, tmp_path / "out.zarr", path=tmp_path / "cut.npz")


# ----------------------------------------------------------------------------------------------
# config keys of user data


def test_config_sizes_come_from_the_file(tmp_path):
    write_npz(tmp_path / "mine.npz")
    cfg = validate_config(npz_config(tmp_path / "mine.npz", subset_train=None, subset_test=None))
    assert split_sizes(cfg) == (N_TR, N_TE)
    assert (cfg["data"]["subset_train"], cfg["data"]["subset_test"]) == (N_TR, N_TE)  # min(1000, n), min(500, n)
    spec = data_spec(cfg)
    assert (spec.num_classes, spec.in_shape) == (K, (2, 3, 4)) and len(spec.digest) == 64
    with pytest.raises(ConfigError, match="data.train_size: 31 exceeds the 30"):
        validate_config(npz_config(tmp_path / "mine.npz", train_size=N_TR + 1))
    with pytest.raises(ConfigError, match="data.subset_test: 13 exceeds the 12"):
        validate_config(npz_config(tmp_path / "mine.npz", subset_test=N_TE + 1))
    # the digest follows the file: rewriting it changes the prepare_data params
    os.utime(tmp_path / "mine.npz", ns=(1, 1))
    assert data_spec(cfg).digest != spec.digest


@pytest.mark.parametrize("data,key", [
    ({"name": "npz"}, "data.path"),
    ({"name": "folder"}, "data.path"),
    ({"name": "npz", "path": "EXAMPLE", "root": "/tmp"}, "data.root"),
    ({"name": "npz", "path": "EXAMPLE", "download": True}, "data.download"),
    ({"name": "npz", "path": "EXAMPLE", "resize": 16}, "data.resize"),
    ({"name": "digits", "path": "EXAMPLE"}, "data.path"),
    ({"name": "digits", "resize": 16}, "data.resize"),
    ({"name": "folder", "path": "EXAMPLE", "resize": [0, 4]}, "data.resize"),
    ({"name": "folder", "path": "EXAMPLE", "resize": [4, 4, 4]}, "data.resize"),
    ({"name": "folder", "path": "EXAMPLE", "resize": "32"}, "data.resize"),
])
def test_data_keys_misused(data, key):
    data = {k: str(EXAMPLE_NPZ) if v == "EXAMPLE" else v for k, v in data.items()}
    cfg = npz_config(None)
    cfg["data"] = {"subset_train": 6, "subset_test": 3, **data}
    with pytest.raises(ConfigError) as err:
        validate_config(cfg)
    assert key in str(err.value), str(err.value)


# ----------------------------------------------------------------------------------------------
# folders of images


def write_folder(root: Path, classes=("cat", "dog", "eel"), n=(4, 2), size=(6, 5), mode="RGB",
                 seed: int = 0) -> dict:
    """DIR/{train,test}/<class>/*.png; returns {split: (uint8 (N, C, H, W), labels)} in ImageFolder order."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = {}
    for split, count in zip(("train", "test"), n):
        xs, ys = [], []
        for label, name in enumerate(sorted(classes)):
            d = root / split / name
            d.mkdir(parents=True)
            for i in range(count):
                shape = size[::-1] + ((3,) if mode == "RGB" else ())  # (H, W[, 3]); size is (W, H)
                a = rng.integers(0, 256, shape, dtype=np.uint8)
                Image.fromarray(a).save(d / f"img{i:02d}.png")  # 2-D uint8 → mode L, (H, W, 3) → RGB
                xs.append(a[None] if mode == "L" else a.transpose(2, 0, 1))
                ys.append(label)
        out[split] = (np.stack(xs), np.array(ys))
    return out


def test_img_extensions_match_torchvision():
    from torchvision.datasets.folder import IMG_EXTENSIONS

    assert U.IMG_EXTENSIONS == IMG_EXTENSIONS


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_folder_prepare_and_open(mode, tmp_path):
    from torchvision.datasets import ImageFolder

    root = tmp_path / "imgs"
    raw = write_folder(root, mode=mode)
    (root / "train" / "cat" / "notes.txt").write_text("not an image")  # ignored, as torchvision does
    attrs = D.prepare_dataset("folder", None, tmp_path / "f.zarr", path=root)
    d = D.open_prepared(tmp_path / "f.zarr", verify=True)
    c = 3 if mode == "RGB" else 1
    assert d.x.shape == (12 + 6, c, 5, 6) and d.num_classes == 3 and attrs["classes"] == ["cat", "dog", "eel"]
    for split, idx in (("train", d.train_indices), ("test", d.test_indices)):
        tv = ImageFolder(str(root / split))
        np.testing.assert_array_equal(d.y[idx], tv.targets)  # same labels as torchvision's ImageFolder
        np.testing.assert_array_equal(d.y[idx], raw[split][1])
    mean = np.asarray(attrs["mean"])[None, :, None, None]
    std = np.asarray(attrs["std"])[None, :, None, None]
    x_raw = np.concatenate([raw["train"][0], raw["test"][0]])
    np.testing.assert_allclose(d.x * std + mean, x_raw / 255.0, atol=1e-5)
    spec = validate_config(npz_config(None) | {"data": {"name": "folder", "path": str(root)}})
    assert split_sizes(spec) == (12, 6) and data_spec(spec).in_shape == (c, 5, 6)


@pytest.mark.parametrize("resize,hw", [(4, (4, 4)), ([3, 7], (3, 7))])
def test_folder_resize_and_nested_files(resize, hw, tmp_path):
    from PIL import Image

    root = tmp_path / "imgs"
    write_folder(root, size=(6, 5))
    sub = root / "train" / "dog" / "more"
    sub.mkdir()
    Image.fromarray(np.zeros((9, 11, 3), np.uint8)).save(sub / "big.png")  # other size, nested: found, resized
    Image.fromarray(np.zeros((9, 11), np.uint8)).save(sub / "grey.jpg")  # greyscale in RGB set: replicated
    cfg = validate_config(npz_config(None) | {"data": {"name": "folder", "path": str(root), "resize": resize}})
    assert data_spec(cfg).in_shape == (3,) + hw and split_sizes(cfg) == (14, 6)
    attrs = D.prepare_dataset("folder", None, tmp_path / "f.zarr", path=root, resize=resize)
    d = D.open_prepared(tmp_path / "f.zarr")
    assert d.x.shape == (20, 3) + hw and attrs["in_shape"] == [3, *hw] and "resized" in attrs["source"]
    assert np.bincount(d.y[d.train_indices]).tolist() == [4, 6, 4]


def _mkimg(path: Path, shape=(5, 6, 3), dtype=np.uint8) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros(shape, dtype)).save(path)


BAD_FOLDERS = [
    # (id, damage done to a good folder, words the message must contain, cheap = caught at validation)
    ("empty-class", lambda r: [p.unlink() for p in (r / "test" / "dog").iterdir()], ["test/dog", "empty class"], True),
    ("test-class-missing", lambda r: shutil.rmtree(r / "test" / "eel"), ["only in train/", "eel"], True),
    ("extra-test-class", lambda r: _mkimg(r / "test" / "fox" / "a.png"), ["only in test/", "fox"], True),
    ("no-test-dir", lambda r: shutil.rmtree(r / "test"), ["test", "missing"], True),
    ("single-class", lambda r: [shutil.rmtree(r / s / c) for s in ("train", "test")
                                for c in ("dog", "eel")], ["single class"], True),
    ("size-differs", lambda r: _mkimg(r / "train" / "dog" / "zz.png", (7, 6, 3)), ["zz.png", "data.resize"], False),
    ("not-an-image", lambda r: (r / "test" / "cat" / "zz.png").write_bytes(b"garbage"), ["zz.png", "readable"], False),
    ("sixteen-bit", lambda r: _mkimg(r / "test" / "cat" / "zz.png", (5, 6), np.uint16), ["zz.png", "not supported"],
     False),
]


@pytest.mark.parametrize("damage,words,cheap", [b[1:] for b in BAD_FOLDERS], ids=[b[0] for b in BAD_FOLDERS])
def test_bad_folder_fails_naming_the_file(damage, words, cheap, tmp_path):
    root = tmp_path / "imgs"
    write_folder(root)
    damage(root)
    cfg = npz_config(None) | {"data": {"name": "folder", "path": str(root)}}
    if cheap:
        with pytest.raises(ConfigError) as err:
            validate_config(cfg)
        assert str(err.value).startswith("data.path: ")
    else:
        validate_config(cfg)
    with pytest.raises((ValueError, FileNotFoundError)) as err:
        D.prepare_dataset("folder", None, tmp_path / "out.zarr", path=root)
    assert all(w in str(err.value) for w in words), str(err.value)
    assert not (tmp_path / "out.zarr").exists()


def test_colour_image_in_greyscale_folder_is_an_error(tmp_path):
    root = tmp_path / "imgs"
    write_folder(root, mode="L")
    _mkimg(root / "test" / "eel" / "zz.png", (5, 6, 3))
    with pytest.raises(ValueError, match=r"zz.png: colour image .* greyscale"):
        D.prepare_dataset("folder", None, tmp_path / "out.zarr", path=root)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_data_samples_figure_draws_any_channel_count(layout, tmp_path):
    """Fig 15 shows user data whatever its channel count (feature vectors are (D, 1, 1))."""
    from pntk.report.figures_data import plot_data_samples

    write_npz(tmp_path / "mine.npz", layout)
    D.prepare_dataset("npz", None, tmp_path / "npz.zarr", path=tmp_path / "mine.npz")
    paths = plot_data_samples(tmp_path / "npz.zarr", tmp_path / "fig15").paths
    assert paths and all(Path(p).stat().st_size > 0 for p in paths)

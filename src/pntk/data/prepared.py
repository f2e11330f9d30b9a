"""Prepared data sets: one Zarr v3 store per data set, and the index sets the kernels are tiled over.

Where it lives: ``results/data/{dataset}/{dataset}.zarr``. The folder ``results/data/{dataset}/`` is the
prepare_data rule's declared output; Snakemake marks a directory output with a ``.snakemake_timestamp``
file, which inside the Zarr group made zarr warn on every open, so the store sits one level below it
(`prepared_store`, `store_of`). Its metadata is consolidated, so xarray opens it without warnings.

Store layout::

    x       float32 (N, C, H, W)  pixels in [0, 1], normalised per channel with TRAIN mean/std
    y       int64   (N,)          labels 0..num_classes-1
    split   int8    (N,)          0 = train, 1 = test (train rows first, then test rows)
    source_index int64 (N,)       row of the sample inside its official split (provenance)
    attrs   see ATTR_KEYS; ``fingerprint`` = :func:`fingerprint` (x, y, split)

Rows keep the order of the official split files; a ``train_size``/``test_size`` subsample keeps
its rows in that order too (its positions sorted ascending).  The store is written to
``<out>.tmp-<pid>`` and renamed into place, so a store at ``out_path`` is always complete.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .datasets import DATASETS, SPECS, load_splits

__all__ = ["DATASETS", "ATTR_KEYS", "INDEX_SETS", "PreparedData", "prepare_dataset", "open_prepared",
           "index_set", "fingerprint", "stratified_subset", "balanced_subset", "prepared_folder", "prepared_store",
           "store_in", "store_of"]

FORMAT_VERSION = 1
CHUNK_ROWS = 1024
INDEX_SETS = ("train", "test", "sub-train", "sub-test")
# keys every prepared store carries in its group attrs
ATTR_KEYS = ("format_version", "name", "num_classes", "in_shape", "layout", "mean", "std", "n_train",
             "n_test", "train_size", "test_size", "seed", "fingerprint", "source", "classes",
             "normalisation", "split_rule")
_REQUIRED = ("name", "num_classes", "in_shape", "mean", "std", "n_train", "n_test", "fingerprint")
# independent random streams derived from one seed (SeedSequence([seed, tag]))
_TAG_TRAIN_SIZE, _TAG_TEST_SIZE, _TAG_SUB = 11, 12, 13


# ----------------------------------------------------------------------------------------------
# where the store lives


def prepared_folder(results: str | Path, dataset: str) -> Path:
    """`{results}/data/{dataset}`: the prepare_data rule's output folder (Snakemake's timestamp goes here)."""
    return Path(results) / "data" / dataset


def store_in(folder: str | Path) -> Path:
    """The store inside a prepare_data output folder: `{folder}/{folder name}.zarr`."""
    return Path(folder) / f"{Path(folder).name}.zarr"


def prepared_store(results: str | Path, dataset: str) -> Path:
    """`{results}/data/{dataset}/{dataset}.zarr`: the prepared Zarr store itself."""
    return store_in(prepared_folder(results, dataset))


def store_of(path: str | Path) -> Path:
    """The store `path` names: a store itself, or the rule's output folder holding it."""
    path = Path(path)
    return store_in(path) if not (path / "zarr.json").exists() and (store_in(path) / "zarr.json").exists() else path


# ----------------------------------------------------------------------------------------------
# fingerprints and subsets


def fingerprint(x: np.ndarray, y: np.ndarray, split: np.ndarray) -> str:
    """sha256 hex over name, dtype, shape and the exact C-order bytes of x, y and split."""
    h = hashlib.sha256()
    for name, a in (("x", x), ("y", y), ("split", split)):
        a = np.ascontiguousarray(a)
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        flat = a.reshape(-1).view(np.uint8) if a.size else np.empty(0, np.uint8)  # (bytes,)
        step = 1 << 26  # hash 64 MiB at a time, no full copy
        for i in range(0, flat.size, step):
            h.update(memoryview(flat[i:i + step]))
    return h.hexdigest()


def _rng(seed: int, tag: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), tag]))


def stratified_subset(labels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` positions into ``labels`` keeping class proportions (largest remainders), sorted."""
    classes, counts = np.unique(labels, return_counts=True)
    exact = size * counts / counts.sum()
    quota = np.floor(exact).astype(np.int64)
    order = np.lexsort((rng.permutation(len(classes)), -(exact - quota)))  # largest remainder first
    quota[order[: size - quota.sum()]] += 1
    picked = [rng.choice(np.flatnonzero(labels == c), q, replace=False) for c, q in zip(classes, quota)]
    return np.sort(np.concatenate(picked)) if picked else np.empty(0, np.int64)


def balanced_subset(labels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` positions into ``labels``, as class-balanced as the class counts allow, sorted.

    Each class is shuffled; samples are taken rank by rank (every class's 1st, then every class's
    2nd, ...), ties at the last rank broken by a random class order. A class that runs out simply
    stops contributing, so the others fill its share."""
    labels = np.asarray(labels)
    rank = np.empty(len(labels), np.int64)
    class_pos = np.empty(len(labels), np.int64)
    classes = np.unique(labels)
    class_order = rng.permutation(len(classes))
    for k, c in enumerate(classes):
        members = rng.permutation(np.flatnonzero(labels == c))
        rank[members] = np.arange(len(members))
        class_pos[members] = class_order[k]
    order = np.lexsort((class_pos, rank))  # primary key rank, then class position
    return np.sort(order[:size])


def _channel_stats(x: np.ndarray, rows: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and (population) std of x (N, C, H, W) in float64, two passes over row
    chunks so no float64 copy of x is made; a constant channel gets std 1."""
    n, c = x.shape[:2]
    count = max(1, n * int(np.prod(x.shape[2:])))
    total = np.zeros(c)
    for i in range(0, n, rows):
        total += x[i:i + rows].sum(axis=(0, 2, 3), dtype=np.float64)
    mean = total / count
    sq = np.zeros(c)
    for i in range(0, n, rows):
        sq += ((x[i:i + rows] - mean[None, :, None, None]) ** 2).sum(axis=(0, 2, 3))  # float64 chunk
    std = np.sqrt(sq / count)
    return mean, np.where(std > 0, std, 1.0)


def _check_size(size: int | None, available: int, key: str) -> None:
    if size is None:
        return
    if int(size) != size or size < 1 or size > available:
        raise ValueError(f"{key}={size!r}: must be an integer in 1..{available} (rows available)")


# ----------------------------------------------------------------------------------------------
# prepare


def _write_store(path: Path, x: np.ndarray, y: np.ndarray, split: np.ndarray,
                 source_index: np.ndarray, attrs: dict) -> None:
    import zarr

    g = zarr.open_group(str(path), mode="w", zarr_format=3)
    rows = max(1, min(CHUNK_ROWS, len(y)))
    for name, a, dims in (("x", x, ("sample", "channel", "height", "width")), ("y", y, ("sample",)),
                          ("split", split, ("sample",)), ("source_index", source_index, ("sample",))):
        arr = g.create_array(name, shape=a.shape, dtype=a.dtype, chunks=(rows,) + a.shape[1:],
                             dimension_names=dims)
        arr[...] = a
    g.attrs.update(attrs)
    with warnings.catch_warnings():  # consolidated metadata is not (yet) in the v3 spec; xarray uses it
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        zarr.consolidate_metadata(str(path))


def _replace_atomically(tmp: Path, out: Path) -> None:
    """Move the finished ``tmp`` store to ``out``; an existing ``out`` is moved aside first and
    deleted only after the rename, so at every moment ``out`` is absent or complete."""
    old = None
    if out.exists() or out.is_symlink():
        old = out.with_name(f"{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old) if old.is_dir() and not old.is_symlink() else old.unlink()


def prepare_dataset(name: str, root: str | Path | None, out_path: str | Path, *,
                    download: bool = False, train_size: int | None = None,
                    test_size: int | None = None, seed: int = 0, verify_md5: bool = True,
                    path: str | Path | None = None, resize=None) -> dict:
    """Load raw data, subsample, normalise and write a Zarr v3 store at ``out_path``.

    ``train_size``/``test_size``: a seeded, class-stratified subset of that official split (rows kept
    in file order); ``None`` keeps the whole split. ``seed`` also drives the digits train/test split.
    ``verify_md5``: check CIFAR/SVHN files against torchvision's official md5s (see data.datasets).
    ``path``/``resize``: the user's own data (``name`` npz or folder, see pntk.data.user); ``root``
    is not used for them. Returns the attrs dict written.
    """
    if name not in DATASETS:
        raise ValueError(f"data.name: unknown data set {name!r}; expected one of {', '.join(DATASETS)}")
    raw = load_splits(name, root, download=download, seed=seed, verify_md5=verify_md5, path=path, resize=resize)
    _check_size(train_size, len(raw.y_train), "data.train_size")
    _check_size(test_size, len(raw.y_test), "data.test_size")
    pos_tr = (np.arange(len(raw.y_train)) if train_size is None
              else stratified_subset(raw.y_train, train_size, _rng(seed, _TAG_TRAIN_SIZE)))
    pos_te = (np.arange(len(raw.y_test)) if test_size is None
              else stratified_subset(raw.y_test, test_size, _rng(seed, _TAG_TEST_SIZE)))
    num_classes, in_shape = SPECS[name] if name in SPECS else (raw.num_classes, raw.x_train.shape[1:])
    for part, xs in (("train", raw.x_train), ("test", raw.x_test)):
        if xs.shape[1:] != in_shape:
            raise ValueError(f"data set {name!r}: {part} images have shape {xs.shape[1:]}, expected {in_shape}")
    y = np.concatenate([raw.y_train[pos_tr], raw.y_test[pos_te]]).astype(np.int64)
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"data set {name!r}: labels outside 0..{num_classes - 1}")

    n_tr = len(pos_tr)
    x = np.empty((n_tr + len(pos_te),) + in_shape, np.float32)  # (N, C, H, W)
    x[:n_tr] = raw.x_train if train_size is None else raw.x_train[pos_tr]
    x[n_tr:] = raw.x_test if test_size is None else raw.x_test[pos_te]
    x /= np.float32(raw.scale)  # pixels in [0, 1]; float user data stay as stored (scale 1)
    source, classes, split_rule, scale = raw.source, raw.classes, raw.split_rule, raw.scale
    del raw  # free the raw pixels before the statistics and the write
    mean, std = _channel_stats(x[:n_tr])  # (C,), (C,) train statistics, float64
    x -= mean.astype(np.float32)[None, :, None, None]
    x /= std.astype(np.float32)[None, :, None, None]
    split = np.concatenate([np.zeros(n_tr, np.int8), np.ones(len(pos_te), np.int8)])
    source_index = np.concatenate([pos_tr, pos_te]).astype(np.int64)

    attrs = {
        "format_version": FORMAT_VERSION,
        "name": name,
        "num_classes": num_classes,
        "in_shape": list(in_shape),
        "layout": "NCHW",
        "mean": [float(m) for m in mean],
        "std": [float(s) for s in std],
        "n_train": int(n_tr),
        "n_test": int(len(pos_te)),
        "train_size": train_size,
        "test_size": test_size,
        "seed": int(seed),
        "fingerprint": fingerprint(x, y, split),
        "source": source,
        "classes": classes,
        "normalisation": ("pixels scaled to [0, 1]" if scale != 1 else "values as stored")
                         + ", then (x - mean) / std per channel, train statistics",
        "split_rule": split_rule,
    }
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        _write_store(tmp, x, y, split, source_index, attrs)
        _replace_atomically(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return attrs


# ----------------------------------------------------------------------------------------------
# read


@dataclass
class PreparedData:
    x: np.ndarray  # (N, C, H, W) float32, normalised per channel with train mean/std
    y: np.ndarray  # (N,) int64
    split: np.ndarray  # (N,) int8: 0 = train, 1 = test
    attrs: dict
    source_index: np.ndarray | None = field(default=None, repr=False)  # (N,) row in official split

    @property
    def train_indices(self) -> np.ndarray:
        return np.flatnonzero(self.split == 0)

    @property
    def test_indices(self) -> np.ndarray:
        return np.flatnonzero(self.split == 1)

    @property
    def num_classes(self) -> int:
        return int(self.attrs["num_classes"])

    @property
    def in_shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.attrs["in_shape"])

    @property
    def fingerprint(self) -> str:
        return str(self.attrs["fingerprint"])


def open_prepared(path: str | Path, *, verify: bool = False, lazy: bool = False) -> PreparedData:
    """Read a store written by :func:`prepare_dataset` into memory (``path``: the store or its folder).

    Raises FileNotFoundError naming ``path`` when it is missing or incomplete; with ``verify=True``
    recomputes the fingerprint and raises ValueError on a mismatch. With ``lazy=True`` ``x`` stays a
    read-only Zarr array (read rows with ``x.oindex[ids]``), so a tile job holds only its own rows."""
    import zarr

    path = store_of(path)
    hint = "run prepare_dataset (the prepare_data rule) to create it"
    if not (path / "zarr.json").is_file():
        raise FileNotFoundError(f"prepared data store {path} not found or not a Zarr v3 group; {hint}")
    try:
        # Not the consolidated metadata (it is for xarray): an array deleted on disk must count as missing.
        g = zarr.open_group(str(path), mode="r", use_consolidated=False)
        attrs = dict(g.attrs)
        arrays = set(g.array_keys())
    except Exception as e:  # unreadable metadata counts as incomplete
        raise FileNotFoundError(f"prepared data store {path} is unreadable ({e}); {hint}") from e
    missing = [k for k in ("x", "y", "split") if k not in arrays] + [k for k in _REQUIRED if k not in attrs]
    if missing:
        raise FileNotFoundError(f"prepared data store {path} is incomplete (missing {', '.join(missing)}); {hint}")
    data = PreparedData(
        x=g["x"] if lazy and not verify else np.asarray(g["x"][...], dtype=np.float32),
        y=np.asarray(g["y"][...], dtype=np.int64),
        split=np.asarray(g["split"][...], dtype=np.int8), attrs=attrs,
        source_index=np.asarray(g["source_index"][...]) if "source_index" in arrays else None,
    )
    if verify and fingerprint(data.x, data.y, data.split) != attrs["fingerprint"]:
        raise ValueError(f"prepared data store {path}: fingerprint mismatch (arrays modified or corrupted)")
    return data


def index_set(data: PreparedData, name: str, *, subset_train: int, subset_test: int, seed: int) -> np.ndarray:
    """Global row indices (int64, ascending) of index set ``name``.

    'train' / 'test': every row of that split. 'sub-train' / 'sub-test': a seeded, class-balanced
    (as far as class counts allow, see :func:`balanced_subset`) subset of size ``subset_train`` /
    ``subset_test`` of that split; the same (data, name, size, seed) always gives the same rows."""
    if name == "train":
        return data.train_indices.astype(np.int64)
    if name == "test":
        return data.test_indices.astype(np.int64)
    if name not in INDEX_SETS:
        raise ValueError(f"index set {name!r}: expected one of {', '.join(INDEX_SETS)}")
    part, size, key, tag = (("train", subset_train, "data.subset_train", 0) if name == "sub-train"
                            else ("test", subset_test, "data.subset_test", 1))
    rows = data.train_indices if part == "train" else data.test_indices
    if int(size) != size or size < 1 or size > len(rows):
        raise ValueError(f"{key}={size!r}: must be an integer in 1..{len(rows)} "
                         f"(rows in the {part} split of {data.attrs.get('name', '?')})")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), _TAG_SUB, tag]))
    return rows[balanced_subset(data.y[rows], int(size), rng)].astype(np.int64)


def open_images(data_path: str | Path):
    """(images, fingerprint) of a prepared data store: images a read-only Zarr array (N, C, H, W), rows
    read on demand with ``read_rows``; only the group metadata is read here."""
    import zarr

    path = store_of(data_path)  # the store, or the prepare_data folder holding it
    try:
        # Not the consolidated metadata (it is for xarray): an array deleted on disk must count as missing.
        g = zarr.open_group(str(path), mode="r", use_consolidated=False)
        return g["x"], str(g.attrs["fingerprint"])
    except (FileNotFoundError, KeyError, ValueError) as err:
        raise FileNotFoundError(f"prepared data store {path}: cannot read its images 'x' and 'fingerprint' "
                                f"attribute ({err!r}); run prepare_dataset (the prepare_data rule)") from err


def read_rows(x, ids: np.ndarray) -> np.ndarray:
    """Rows ``ids`` of the images, whether ``x`` is in memory or a lazy Zarr array."""
    if isinstance(x, np.ndarray):
        return x[ids]
    return np.asarray(x.oindex[np.asarray(ids)])

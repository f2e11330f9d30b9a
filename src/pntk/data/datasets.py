"""Raw image data sets: read them from disk through torchvision's own loaders (or sklearn for digits),
or from the user's own files (``npz``, ``folder``: see :mod:`pntk.data.user`).

Every loader returns a :class:`RawSplits` of raw integer pixels in NCHW layout (``x / scale`` lies in
[0, 1]) plus int64 labels, one pair for the official train split and one for the official test split.

Nothing is downloaded unless ``download=True``.  Before torchvision is called we check that the
files it will read exist and, if not, raise :class:`FileNotFoundError` naming the expected paths and
their format, so a wrong ``data.root`` fails early with a message a person can act on.

Integrity (md5).  torchvision checks the md5 of the CIFAR batches, the CIFAR meta file and the SVHN
.mat files against the official releases (MNIST's raw IDX files are only checked for existence).
We keep that check by default (``verify_md5=True``) but do it ourselves first, so a mismatch names
the file instead of torchvision's generic "Dataset not found or corrupted".  After our check has
passed (or when the caller turned it off, e.g. for converted/trimmed copies or the tiny files the
tests write) the data are read by a subclass of the torchvision class whose md5 entries are ``None``:
``torchvision.datasets.utils.check_integrity(path, None)`` then only checks that the file exists, and
every byte is still parsed by torchvision's own code path.  The fingerprint of the prepared arrays is
recorded in the store either way, so provenance never depends on the md5 check.

Synthetic CIFAR-10 (``pntk synth cifar10``, :mod:`pntk.data.synthetic`) is read like the real files;
its meta file marks it, and that mark goes into ``RawSplits.source`` so no result passes for CIFAR-10.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from . import user as user_data
from .spec import USER_DATASETS, DataSpec, RawSplits

# name -> (number of classes, in_shape [C, H, W])
SPECS: dict[str, tuple[int, tuple[int, int, int]]] = {
    "digits": (10, (1, 8, 8)),
    "mnist": (10, (1, 28, 28)),
    "fashion_mnist": (10, (1, 28, 28)),
    "cifar10": (10, (3, 32, 32)),
    "cifar100": (100, (3, 32, 32)),
    "svhn": (10, (3, 32, 32)),
}
# name -> (train, test) examples in the raw splits (digits: stratified 25 % test split)
SPLIT_SIZES: dict[str, tuple[int, int]] = {
    "digits": (1347, 450),
    "mnist": (60000, 10000),
    "fashion_mnist": (60000, 10000),
    "cifar10": (50000, 10000),
    "cifar100": (50000, 10000),
    "svhn": (73257, 26032),
}
BUILTIN_DATASETS = tuple(SPECS)
DATASETS = BUILTIN_DATASETS + USER_DATASETS

DIGITS_TEST_FRACTION = 0.25


def dataset_spec(name: str, path: str | Path | None = None, resize=None) -> DataSpec:
    """:class:`DataSpec` of ``name``: a table for the built-in sets, the files' headers for user data."""
    if name in USER_DATASETS:
        return user_data.describe(name, path, resize)
    if name not in SPECS:
        raise ValueError(f"data.name: unknown data set {name!r}; expected one of {', '.join(DATASETS)}")
    return DataSpec(*SPLIT_SIZES[name], *SPECS[name])


# ----------------------------------------------------------------------------------------------
# digits (sklearn, embedded)


def load_digits_splits(seed: int) -> RawSplits:
    """sklearn's 1797 8x8 digits; values 0..16 (``scale`` 16).

    Split rule: ``train_test_split(arange(1797), test_size=0.25, stratify=y, random_state=seed)``,
    i.e. a stratified 1347/450 train/test split that depends on ``seed``; within each split the
    rows keep sklearn's original order (indices sorted ascending).
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = bunch.images.astype(np.uint8)[:, None]  # (N, 8, 8) -> (N, 1, 8, 8), integers 0..16
    labels = bunch.target.astype(np.int64)
    idx_train, idx_test = train_test_split(
        np.arange(len(labels)), test_size=DIGITS_TEST_FRACTION, stratify=labels, random_state=seed
    )
    idx_train, idx_test = np.sort(idx_train), np.sort(idx_test)
    return RawSplits(
        images[idx_train], labels[idx_train], images[idx_test], labels[idx_test], scale=16.0,
        source=f"sklearn.datasets.load_digits (stratified {DIGITS_TEST_FRACTION:.0%} test split, "
               f"random_state={seed})",
        classes=[str(i) for i in range(10)],
        split_rule=f"stratified {DIGITS_TEST_FRACTION:.0%} test split of sklearn digits, random_state=seed",
    )


# ----------------------------------------------------------------------------------------------
# expected files and their formats


def _mnist_files(tv_class) -> list[str]:
    return [os.path.splitext(os.path.basename(url))[0] for url, _ in tv_class.resources]


def _expected(name: str, root: Path) -> tuple[list[Path], str]:
    """Files torchvision will read for ``name`` under ``root`` and a sentence describing them."""
    import torchvision.datasets as tvd

    if name in ("mnist", "fashion_mnist"):
        cls = tvd.MNIST if name == "mnist" else tvd.FashionMNIST
        raw = root / cls.__name__ / "raw"
        files = _mnist_files(cls)
        fmt = (f"expected {cls.__name__} IDX files under {raw}/: " + ", ".join(files)
               + " (uncompressed, or the same names with .gz, which are decompressed in place)")
        return [raw / f for f in files], fmt
    if name in ("cifar10", "cifar100"):
        cls = tvd.CIFAR10 if name == "cifar10" else tvd.CIFAR100
        base = root / cls.base_folder
        files = [f for f, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]
        fmt = f"expected {base}/: " + ", ".join(files) + " (python pickle batches)"
        return [base / f for f in files], fmt
    if name == "svhn":
        files = [tvd.SVHN.split_list[s][1] for s in ("train", "test")]
        fmt = f"expected {root}/: " + ", ".join(files) + " (MATLAB .mat, X (32,32,3,N) uint8, y (N,1))"
        return [root / f for f in files], fmt
    raise ValueError(f"data.name: no files for {name!r}")


def _gunzip_if_needed(paths: list[Path]) -> None:
    """MNIST-style: torchvision reads only the uncompressed IDX files; decompress `<file>.gz` next to
    them (what torchvision's own download step does), writing to a temporary name first."""
    import gzip
    import shutil

    for p in paths:
        gz = p.with_name(p.name + ".gz")
        if not p.is_file() and gz.is_file():
            tmp = p.with_name(f"{p.name}.tmp-{os.getpid()}")
            with gzip.open(gz, "rb") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst)
            os.replace(tmp, p)


def check_files(name: str, root: str | Path) -> list[Path]:
    """Raise FileNotFoundError naming the missing files and expected format; return the files."""
    root = Path(root)
    paths, fmt = _expected(name, root)
    if name in ("mnist", "fashion_mnist"):
        _gunzip_if_needed(paths)
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"data set {name!r} not found under data.root={root}: missing {', '.join(missing)}; {fmt}. "
            "Set data.download: true to fetch it, or place the files there."
        )
    return paths


# ----------------------------------------------------------------------------------------------
# torchvision loaders


def _official_md5(name: str) -> dict[str, str]:
    import torchvision.datasets as tvd

    if name in ("cifar10", "cifar100"):
        cls = tvd.CIFAR10 if name == "cifar10" else tvd.CIFAR100
        md5 = dict(cls.train_list + cls.test_list)
        md5[cls.meta["filename"]] = cls.meta["md5"]
        return md5
    if name == "svhn":
        return {v[1]: v[2] for v in tvd.SVHN.split_list.values()}
    return {}  # MNIST raw files: torchvision checks existence only


def _verify_md5(name: str, paths: list[Path]) -> None:
    from torchvision.datasets.utils import check_md5

    md5 = _official_md5(name)
    bad = [str(p) for p in paths if p.name in md5 and not check_md5(str(p), md5[p.name])]
    if bad:
        synthetic = _synthetic_note(name, paths[0].parent)
        why = (f"these are synthetic files ({synthetic}), not the official release" if synthetic
               else "corrupted or modified file")
        raise ValueError(
            f"data set {name!r}: md5 of {', '.join(bad)} does not match the official release that "
            f"torchvision expects ({why}). Replace the files, or pass "
            "verify_md5=False (config data.verify_md5: false) to accept them as they are."
        )


def _synthetic_note(name: str, folder: Path) -> str | None:
    """The mark of ``pntk synth`` files in a CIFAR-10 folder, or None."""
    if name != "cifar10":
        return None
    from .synthetic import synthetic_marker

    return synthetic_marker(folder)


def _unchecked(cls):
    """Subclass of a torchvision data set with its md5 entries set to None (existence check only).

    Only used after :func:`check_files` (and :func:`_verify_md5` unless turned off) have run."""
    attrs: dict = {}
    if hasattr(cls, "train_list"):  # CIFAR10 / CIFAR100
        attrs["train_list"] = [[f, None] for f, _ in cls.train_list]
        attrs["test_list"] = [[f, None] for f, _ in cls.test_list]
        attrs["meta"] = {**cls.meta, "md5": None}
    if hasattr(cls, "split_list"):  # SVHN
        attrs["split_list"] = {k: [u, f, None] for k, (u, f, _) in cls.split_list.items()}
    attrs["__module__"] = __name__
    return type(cls.__name__, (cls,), attrs)  # same __name__: MNIST-style folders derive from it


def load_torchvision_splits(name: str, root: str | Path | None, *, download: bool = False,
                            verify_md5: bool = True) -> RawSplits:
    """Read the official train and test splits of ``name`` with torchvision's data set classes."""
    import torchvision.datasets as tvd

    if root is None:
        raise ValueError(f"data.root is required for data set {name!r} (a folder with its files)")
    root = Path(root)
    cls = {"mnist": tvd.MNIST, "fashion_mnist": tvd.FashionMNIST, "cifar10": tvd.CIFAR10,
           "cifar100": tvd.CIFAR100, "svhn": tvd.SVHN}[name]
    if download:  # the stock classes download and verify md5s of the archives themselves
        root.mkdir(parents=True, exist_ok=True)
        for split in ("train", "test"):
            kw = {"split": split} if name == "svhn" else {"train": split == "train"}
            cls(str(root), download=True, **kw)
    paths = check_files(name, root)
    if verify_md5:
        _verify_md5(name, paths)
    reader = _unchecked(cls)

    def split(train: bool) -> tuple[np.ndarray, np.ndarray, object]:
        if name == "svhn":
            ds = reader(str(root), split="train" if train else "test")
            return ds.data, np.asarray(ds.labels), ds  # data already (N, C, H, W); labels 10 -> 0
        ds = reader(str(root), train=train)
        data = np.asarray(ds.data)
        if data.ndim == 3:  # MNIST: (N, H, W) -> (N, 1, H, W)
            data = data[:, None]
        else:  # CIFAR: (N, H, W, C) -> (N, C, H, W)
            data = data.transpose(0, 3, 1, 2)
        return data, np.asarray(ds.targets), ds

    x_tr, y_tr, ds = split(True)
    x_te, y_te, _ = split(False)
    classes = [str(c) for c in ds.classes] if getattr(ds, "classes", None) else None
    if name == "svhn":  # torchvision's SVHN has no class names; label k is digit k
        classes = [str(i) for i in range(10)]
    synthetic = _synthetic_note(name, paths[0].parent)
    if synthetic:
        logging.getLogger(__name__).warning("%s holds %s: results computed on it say nothing about %s",
                                            paths[0].parent, synthetic, name)
    return RawSplits(
        x_tr, y_tr.astype(np.int64), x_te, y_te.astype(np.int64), scale=255.0,
        source=(f"{synthetic} — " if synthetic else "")
               + f"torchvision.datasets.{cls.__name__} from {root}"
               + (" (md5 verified)" if _official_md5(name) and verify_md5 else ""),
        classes=classes,
    )


def load_splits(name: str, root: str | Path | None, *, download: bool = False, seed: int = 0,
                verify_md5: bool = True, path: str | Path | None = None, resize=None) -> RawSplits:
    """Raw splits of ``name``: built-in sets from ``root`` (digits: sklearn), user data from ``path``."""
    if name in USER_DATASETS:
        user_data.describe(name, path, resize)  # every cheap check first, naming file and array
        return user_data.load_npz(path) if name == "npz" else user_data.load_folder(path, resize)
    if name not in SPECS:
        raise ValueError(f"data.name: unknown data set {name!r}; expected one of {', '.join(DATASETS)}")
    if name == "digits":
        return load_digits_splits(seed)
    return load_torchvision_splits(name, root, download=download, verify_md5=verify_md5)

"""The user's own data: an ``.npz`` file (``data.name: npz``) or a folder of images in torchvision's
ImageFolder layout (``data.name: folder``), both named by ``data.path``.

npz: arrays ``x_train``, ``y_train``, ``x_test``, ``y_test`` (other arrays are ignored). x is
(N, C, H, W), (N, H, W) (one channel) or (N, D) (stored as (N, D, 1, 1): every feature is a channel,
so the per-channel normalisation standardises each feature), uint8 pixels (scaled by 1/255) or
floats (used as stored) — an (N, H, W, C) array (last axis 1, 3 or 4, the others ≥ 8) is refused as
channels-last; y integer labels 0..K-1 with K = largest label + 1, every class present in
``y_train``. Written with ``numpy.savez`` or ``numpy.savez_compressed``.

folder: ``DIR/train/<class>/…/*.png`` and ``DIR/test/<class>/…/*.png`` (any of :data:`IMG_EXTENSIONS`,
found recursively as torchvision's ImageFolder does). The classes are the sorted folder names under
``train/``; ``test/`` must have the same folders, so label k means the same class in both splits (and
equals ``torchvision.datasets.ImageFolder``'s target). Channels: 1 when the first train image is greyscale
(mode 1/L/LA; a colour image later is an error, never silently dropped to grey), else 3 (RGB; alpha
dropped, greyscale images replicated). ``data.resize`` (an int or [H, W]) resizes every image
(bilinear); without it all images must have the first one's size.

:func:`describe` checks a source cheaply — npz: the zip listing, the .npy headers and the (small)
label arrays; folder: the file listing and the first image's header — so that config validation fails
early, naming the file and the array; :func:`load_npz` / :func:`load_folder` read everything.
"""
from __future__ import annotations

import functools
import hashlib
import os
import zipfile
from pathlib import Path

import numpy as np

from .spec import USER_DATASETS, DataSpec, RawSplits

__all__ = ["USER_DATASETS", "NPZ_KEYS", "IMG_EXTENSIONS", "describe", "load_npz", "load_folder", "resize_hw"]

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
# = torchvision.datasets.folder.IMG_EXTENSIONS (tests check it), copied so validation needs no torchvision
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
GREY_MODES = ("1", "L", "LA")
COLOUR_MODES = ("RGB", "RGBA", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV")


def resize_hw(resize) -> tuple[int, int] | None:
    """``data.resize`` (None, an int or [H, W]) → (H, W) or None."""
    if resize is None:
        return None
    hw = (resize, resize) if isinstance(resize, int) else tuple(resize)
    if len(hw) != 2 or not all(isinstance(v, int) and v >= 1 for v in hw):
        raise ValueError(f"data.resize: expected a positive int or [height, width], got {resize!r}")
    return int(hw[0]), int(hw[1])


def _digest(entries) -> str:
    """sha256 over (relative path, size, mtime) of the files read: changes when a file changes."""
    h = hashlib.sha256()
    for rel, st in entries:
        h.update(f"{rel}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


# ----------------------------------------------------------------------------------------------
# npz


def _npy_header(zf: zipfile.ZipFile, member: str) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) of one .npy inside the zip, from its header only."""
    fmt = np.lib.format
    with zf.open(member) as fh:
        version = fmt.read_magic(fh)
        reader = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}.get(version)
        if reader is None:
            raise ValueError(f"unsupported .npy format version {version}")
        shape, _fortran, dtype = reader(fh)
    return tuple(int(s) for s in shape), np.dtype(dtype)


def _check_x(path: Path, key: str, shape: tuple, dtype: np.dtype) -> None:
    where = f"{path}: array {key}"
    if dtype != np.uint8 and dtype.kind != "f":
        raise ValueError(f"{where} has dtype {dtype}; expected uint8 pixels or floats")
    if len(shape) not in (2, 3, 4):
        raise ValueError(f"{where} has shape {shape} (ndim {len(shape)}); expected (N, C, H, W), (N, H, W) or (N, D)")
    if shape[0] < 1 or 0 in shape:
        raise ValueError(f"{where} has shape {shape}; expected at least one non-empty sample")
    if len(shape) == 4 and shape[3] in (1, 3, 4) and min(shape[1:3]) >= 8:  # ≥ 8 "channels" of width ≤ 4: no
        raise ValueError(f"{where} has shape {shape}, which looks channels-last (N, H, W, C); store it as "
                         f"(N, C, H, W), e.g. x.transpose(0, 3, 1, 2)")


def _check_y_header(path: Path, key: str, shape: tuple, dtype: np.dtype, n: int) -> None:
    where = f"{path}: array {key}"
    if dtype.kind not in "iu":
        raise ValueError(f"{where} has dtype {dtype}; expected integer class labels 0..K-1 (e.g. y.astype(int))")
    if len(shape) != 1:
        raise ValueError(f"{where} has shape {shape}; expected one label per sample, shape ({n},)")
    if shape[0] != n:
        raise ValueError(f"{where} has {shape[0]} labels but x_{key[2:]} has {n} samples")


def _nchw(shape: tuple) -> tuple[int, int, int]:
    """Per-sample shape of x → (C, H, W): (H, W) → (1, H, W); (D,) → (D, 1, 1)."""
    rest = shape[1:]
    return {3: lambda: rest, 2: lambda: (1,) + rest, 1: lambda: rest + (1, 1)}[len(rest)]()


def _check_labels(path: Path, y_train: np.ndarray, y_test: np.ndarray) -> int:
    """Number of classes K; labels must be 0..K-1 with every class in y_train."""
    for key, y in (("y_train", y_train), ("y_test", y_test)):
        if y.min() < 0:
            raise ValueError(f"{path}: array {key} has label {int(y.min())}; expected labels 0..K-1")
    k = int(max(y_train.max(), y_test.max())) + 1
    absent = np.setdiff1d(np.arange(k), y_train)
    if absent.size:
        shown = ", ".join(map(str, absent[:10])) + (" …" if absent.size > 10 else "")
        raise ValueError(f"{path}: array y_train has no example of class(es) {shown}; labels must be 0..K-1 "
                         f"(K = largest label + 1 = {k}) with every class present in y_train")
    if k < 2:
        raise ValueError(f"{path}: arrays y_train/y_test hold a single class; expected at least 2")
    return k


def _describe_npz(path: Path) -> DataSpec:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (data.path of data.name npz: an .npz with "
                                f"{', '.join(NPZ_KEYS)})")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: not an .npz archive; write it with numpy.savez(path, {'=..., '.join(NPZ_KEYS)}=...)")
    with zipfile.ZipFile(path) as zf:
        members = {n[:-4]: n for n in zf.namelist() if n.endswith(".npy")}
        missing = [k for k in NPZ_KEYS if k not in members]
        if missing:
            found = ", ".join(sorted(members)) or "none"
            raise ValueError(f"{path}: missing array(s) {', '.join(missing)} (found: {found}); "
                             f"expected {', '.join(NPZ_KEYS)}")
        headers = {k: _npy_header(zf, members[k]) for k in NPZ_KEYS}
    for part in ("train", "test"):
        _check_x(path, f"x_{part}", *headers[f"x_{part}"])
        _check_y_header(path, f"y_{part}", *headers[f"y_{part}"], n=headers[f"x_{part}"][0][0])
    (s_tr, d_tr), (s_te, d_te) = headers["x_train"], headers["x_test"]
    if s_tr[1:] != s_te[1:] or d_tr != d_te:
        raise ValueError(f"{path}: arrays x_train {d_tr} {s_tr} and x_test {d_te} {s_te} differ in per-sample "
                         "shape or dtype; expected the same")
    with np.load(path, allow_pickle=False) as f:
        num_classes = _check_labels(path, f["y_train"], f["y_test"])
    return DataSpec(s_tr[0], s_te[0], num_classes, _nchw(s_tr), _digest([(path.name, path.stat())]))


def load_npz(path: str | Path) -> RawSplits:
    """Every array of a checked npz in memory, x as (N, C, H, W) in its stored dtype."""
    path = Path(path)
    spec = _describe_npz(path)
    arrays = {}
    with np.load(path, allow_pickle=False) as f:
        for k in NPZ_KEYS:
            try:
                arrays[k] = f[k]
            except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:  # truncated or corrupt member
                raise ValueError(f"{path}: array {k} could not be read ({e})") from e
    for part in ("train", "test"):
        x = arrays[f"x_{part}"]
        if x.dtype.kind == "f":
            bad = int(np.count_nonzero(~np.isfinite(x)))
            if bad:
                raise ValueError(f"{path}: array x_{part} has {bad} NaN/inf values; expected finite numbers")
        arrays[f"x_{part}"] = x.reshape((len(x),) + spec.in_shape)  # (N, C, H, W), a view
    uint8 = arrays["x_train"].dtype == np.uint8
    return RawSplits(arrays["x_train"], arrays["y_train"].astype(np.int64), arrays["x_test"],
                     arrays["y_test"].astype(np.int64), scale=255.0 if uint8 else 1.0,
                     source=f"npz file {path}", classes=[str(k) for k in range(spec.num_classes)],
                     num_classes=spec.num_classes, split_rule=f"x_train/x_test of {path.name}")


# ----------------------------------------------------------------------------------------------
# folder


def _list_folder(root: Path) -> tuple[list[str], dict[str, list[tuple[Path, int]]]]:
    """Class names and, per split, the (image path, label) pairs in torchvision's ImageFolder order."""
    hint = f"data.path {root} must hold train/<class>/*.png and test/<class>/*.png"
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder ({hint})")
    found = {}
    for split in ("train", "test"):
        d = root / split
        if not d.is_dir():
            raise FileNotFoundError(f"{d}: missing ({hint})")
        found[split] = sorted(e.name for e in os.scandir(d) if e.is_dir())
    classes = found["train"]
    if not classes:
        raise ValueError(f"{root / 'train'}: no class folders ({hint})")
    if found["test"] != classes:
        only_train = sorted(set(classes) - set(found["test"]))
        only_test = sorted(set(found["test"]) - set(classes))
        raise ValueError(f"{root}: train/ and test/ must have the same class folders (labels follow their sorted "
                         f"names); only in train/: {only_train or 'none'}, only in test/: {only_test or 'none'}")
    samples = {}
    for split in ("train", "test"):
        samples[split] = []
        for label, name in enumerate(classes):
            d = root / split / name
            files = [Path(dirpath) / f for dirpath, _, fnames in sorted(os.walk(d, followlinks=True))
                     for f in sorted(fnames) if f.lower().endswith(IMG_EXTENSIONS)]
            if not files:
                raise ValueError(f"{d}: empty class folder (no {'/'.join(IMG_EXTENSIONS)} files)")
            samples[split] += [(f, label) for f in files]
    return classes, samples


def _open_image(path: Path):
    from PIL import Image

    try:
        img = Image.open(path)
        img.load()
    except Exception as e:
        raise ValueError(f"{path}: not a readable image ({e})") from e
    if img.mode not in GREY_MODES + COLOUR_MODES:
        raise ValueError(f"{path}: image mode {img.mode!r} (e.g. 16-bit or float) is not supported; "
                         "expected 8-bit greyscale or colour")
    return img


def _image_array(path: Path, channels: int, hw: tuple[int, int], resize: bool) -> np.ndarray:
    """One image → (C, H, W) uint8."""
    from PIL import Image

    img = _open_image(path)
    if channels == 1 and img.mode not in GREY_MODES:
        raise ValueError(f"{path}: colour image (mode {img.mode}) in a greyscale data set (the first train image is "
                         "greyscale); convert the images to one kind")
    img = img.convert("L" if channels == 1 else "RGB")
    if resize:
        img = img.resize((hw[1], hw[0]), Image.Resampling.BILINEAR)
    elif img.size != (hw[1], hw[0]):
        raise ValueError(f"{path}: image is {img.size[1]}×{img.size[0]} (H×W) but the first train image is "
                         f"{hw[0]}×{hw[1]}; set data.resize to give every image one size")
    a = np.asarray(img, dtype=np.uint8)
    return a[None] if channels == 1 else a.transpose(2, 0, 1)  # (H, W[, 3]) → (C, H, W)


def _folder_shape(samples: dict, resize) -> tuple[int, tuple[int, int]]:
    """(channels, (H, W)) from the first train image (header only) and data.resize."""
    first = samples["train"][0][0]
    img = _open_image(first)
    channels = 1 if img.mode in GREY_MODES else 3
    hw = resize_hw(resize) or (img.size[1], img.size[0])
    return channels, hw


def _describe_folder(root: Path, resize) -> DataSpec:
    classes, samples = _list_folder(root)
    if len(classes) < 2:
        raise ValueError(f"{root / 'train'}: a single class folder ({classes[0]}); expected at least 2")
    channels, hw = _folder_shape(samples, resize)
    entries = [(str(p.relative_to(root)), p.stat()) for split in ("train", "test") for p, _ in samples[split]]
    return DataSpec(len(samples["train"]), len(samples["test"]), len(classes), (channels,) + hw, _digest(entries))


def load_folder(root: str | Path, resize=None) -> RawSplits:
    """Every image of an ImageFolder-layout folder → uint8 (N, C, H, W) per split, labels by class folder."""
    root = Path(root)
    classes, samples = _list_folder(root)
    channels, hw = _folder_shape(samples, resize)
    out = {}
    for split in ("train", "test"):
        pairs = samples[split]
        x = np.empty((len(pairs), channels) + hw, np.uint8)  # (N, C, H, W)
        for i, (p, _) in enumerate(pairs):
            x[i] = _image_array(p, channels, hw, resize is not None)
        out[split] = (x, np.array([label for _, label in pairs], np.int64))
    how = f", resized to {hw[0]}×{hw[1]}" if resize is not None else ""
    return RawSplits(out["train"][0], out["train"][1], out["test"][0], out["test"][1], scale=255.0,
                     source=f"image folder {root}{how}", classes=classes, num_classes=len(classes),
                     split_rule=f"train/ and test/ folders of {root}")


# ----------------------------------------------------------------------------------------------
# cheap description, cached per state of the files


def _state(name: str, path: Path) -> tuple:
    """Cheap stats for the cache key: the npz's size and mtime; the mtimes of train/, test/ and their class
    folders (they change when files are added or removed directly inside them)."""
    try:
        if name == "npz":
            st = path.stat()
            return (st.st_size, st.st_mtime_ns)
        dirs = [path / s for s in ("train", "test")]
        dirs += [e.path for d in dirs if d.is_dir() for e in os.scandir(d) if e.is_dir()]
        return tuple(os.stat(d).st_mtime_ns for d in dirs)
    except OSError:
        return ()


@functools.lru_cache(maxsize=16)
def _describe_cached(name: str, path: str, resize, state: tuple) -> DataSpec:
    return _describe_npz(Path(path)) if name == "npz" else _describe_folder(Path(path), resize)


def describe(name: str, path: str | Path | None, resize=None) -> DataSpec:
    """Sizes, classes and input shape of the user's data, checked cheaply; raises naming file and array."""
    if name not in USER_DATASETS:
        raise ValueError(f"data.name: {name!r} is not a user data set ({', '.join(USER_DATASETS)})")
    if path is None:
        raise ValueError(f"data.path: data set {name!r} needs data.path "
                         f"({'an .npz file' if name == 'npz' else 'a folder with train/ and test/'})")
    if name == "npz" and resize is not None:
        raise ValueError("data.resize: only used with data.name folder (an npz is read as stored)")
    path = Path(path)
    hw = resize_hw(resize)
    return _describe_cached(name, str(path.resolve()), hw, _state(name, path))

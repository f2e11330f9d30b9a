"""A synthetic stand-in for CIFAR-10 in the real ``cifar-10-batches-py`` format (``pntk synth cifar10``).

No data set can be downloaded on some machines, yet the CIFAR-10 configs need one. This module writes
``<out>/cifar-10-batches-py/`` with ``data_batch_1`` … ``data_batch_5``, ``test_batch`` and
``batches.meta`` byte-for-byte in the layout of the official release (Python-2 pickles whose dict keys
and strings are Python-2 ``str``, so ``pickle.load(f, encoding="latin1")`` — torchvision — gives
``"data"`` and ``pickle.load(f, encoding="bytes")`` — the CIFAR web page's reader — gives ``b"data"``;
``data`` is uint8 (N, 3072), each row the 1024 red, then green, then blue values of a 32×32 image in
row-major order; ``labels`` a list of ints). The md5 sums differ from the official ones, so configs
reading these files need ``data.verify_md5: false``.

The images: sklearn's 8×8 handwritten digits (labels 0–9), each scaled up 2.2–3.2×, rotated up to
±20°, shifted, drawn in a bright colour (an instance colour mixed with a weaker per-class tint) on a
dark two-colour gradient background, plus Gaussian pixel noise. Train and test images are drawn
from disjoint parts of the digit pool (70 % / 30 %), so test accuracy measures generalisation to unseen writers'
digits. A network learns this well; a linear model on raw pixels does clearly better than chance
but far from perfectly.

Everything is labelled synthetic: every ``batch_label``, the meta file (``label_names``
``synthetic-digit-k`` and a ``synthetic`` entry that :func:`synthetic_marker` reads, so prepared
stores record the data as synthetic), and a ``README.txt`` in the folder.
"""
from __future__ import annotations

import os
import pickle
import shutil
import struct
from pathlib import Path

import numpy as np

__all__ = ["synthetic_cifar10", "write_cifar10_batches", "write_synthetic_cifar10", "synthetic_marker",
           "FOLDER", "LABEL_NAMES"]

FOLDER = "cifar-10-batches-py"
LABEL_NAMES = [f"synthetic-digit-{k}" for k in range(10)]
GENERATOR = "pntk synth cifar10"
_CHUNK = 4096  # images rendered at once (bounds the float32 temporaries to ~100 MB)
_TEST_POOL_FRACTION = 0.3  # share of sklearn's digits reserved for the synthetic test images


# ----------------------------------------------------------------------------------------------
# images


def _digit_pools(rng: np.random.Generator) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """sklearn digits (values 0..16 → [0, 1]) split per class into disjoint train and test pools."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)  # (1797, 8, 8) in [0, 1]
    labels = bunch.target.astype(np.int64)
    train, test = [], []
    for c in range(10):
        members = rng.permutation(np.flatnonzero(labels == c))
        n_test = int(round(_TEST_POOL_FRACTION * len(members)))
        test.append(members[:n_test])
        train.append(members[n_test:])
    return tuple((images[np.sort(np.concatenate(p))], labels[np.sort(np.concatenate(p))]) for p in (train, test))


def _balanced_labels(n: int, rng: np.random.Generator) -> np.ndarray:
    """n labels, each class n // 10 or n // 10 + 1 times (as CIFAR-10: 5000 / 1000 per class), shuffled."""
    return rng.permutation(np.arange(n) % 10).astype(np.int64)


def _warp(digits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random similarity transforms of (B, 8, 8) digits onto a 32×32 canvas, bilinear → (B, 32, 32) mask."""
    b = len(digits)
    scale = rng.uniform(2.2, 3.2, b).astype(np.float32)
    angle = np.deg2rad(rng.uniform(-20.0, 20.0, b)).astype(np.float32)
    centre = 15.5 + rng.uniform(-5.0, 5.0, (b, 2)).astype(np.float32)  # (B, 2): row, col on the canvas
    grid = np.arange(32, dtype=np.float32)
    du = grid[None, :, None] - centre[:, 0, None, None]  # (B, 32, 1) row offsets
    dv = grid[None, None, :] - centre[:, 1, None, None]  # (B, 1, 32) col offsets
    cos, sin = (np.cos(angle) / scale)[:, None, None], (np.sin(angle) / scale)[:, None, None]
    src_r = cos * du - sin * dv + 3.5  # (B, 32, 32) inverse map: canvas pixel → digit coordinates
    src_c = sin * du + cos * dv + 3.5
    padded = np.zeros((b, 10, 10), np.float32)  # zero border: samples outside the digit read 0
    padded[:, 1:9, 1:9] = digits
    r = np.clip(src_r + 1.0, 0.0, 8.999)  # padded coordinates, kept inside [0, 9)
    c = np.clip(src_c + 1.0, 0.0, 8.999)
    r0, c0 = r.astype(np.int32), c.astype(np.int32)
    fr, fc = r - r0, c - c0
    idx = (np.arange(b, dtype=np.int32) * 100)[:, None, None] + r0 * 10 + c0  # (B, 32, 32) top-left
    flat = padded.reshape(-1)
    top = flat[idx] * (1 - fc) + flat[idx + 1] * fc
    bottom = flat[idx + 10] * (1 - fc) + flat[idx + 11] * fc
    return top * (1 - fr) + bottom * fr


def _render(digits: np.ndarray, labels: np.ndarray, class_tint: np.ndarray,
            rng: np.random.Generator) -> np.ndarray:
    """(B, 8, 8) digits in [0, 1] with labels (B,) → (B, 3, 32, 32) uint8 images."""
    b = len(digits)
    mask = _warp(digits, rng)[:, None]  # (B, 1, 32, 32)
    c1, c2 = rng.uniform(0.0, 0.45, (2, b, 3, 1, 1)).astype(np.float32)  # dark background colours
    direction = rng.normal(size=(b, 2)).astype(np.float32)
    direction /= np.linalg.norm(direction, axis=1, keepdims=True) + 1e-6
    grid = (np.arange(32, dtype=np.float32) - 15.5) / 31.0
    t = 0.5 + direction[:, 0, None, None] * grid[:, None] + direction[:, 1, None, None] * grid[None, :]
    background = c1 + (c2 - c1) * t[:, None]  # (B, 3, 32, 32)
    instance = rng.uniform(0.5, 1.0, (b, 3)).astype(np.float32)
    foreground = (0.7 * instance + 0.3 * class_tint[labels])[:, :, None, None]  # (B, 3, 1, 1)
    image = rng.standard_normal(background.shape, dtype=np.float32)  # (B, 3, 32, 32) pixel noise
    image *= 0.06
    image += background
    image += (foreground - background) * mask  # = background·(1 − mask) + foreground·mask + noise
    image *= 255.0
    return np.clip(np.rint(image, out=image), 0, 255, out=image).astype(np.uint8)


def _render_split(n: int, pool: tuple[np.ndarray, np.ndarray], class_tint: np.ndarray,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    images, pool_labels = pool
    labels = _balanced_labels(n, rng)
    members = [np.flatnonzero(pool_labels == c) for c in range(10)]
    source = np.empty(n, np.int64)
    for c in range(10):
        where = np.flatnonzero(labels == c)
        source[where] = rng.choice(members[c], len(where), replace=True)
    x = np.empty((n, 3, 32, 32), np.uint8)
    for i in range(0, n, _CHUNK):
        sl = slice(i, i + _CHUNK)
        x[sl] = _render(images[source[sl]], labels[sl], class_tint, rng)
    return x, labels


def synthetic_cifar10(n_train: int = 50000, n_test: int = 10000, seed: int = 0
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Deterministic synthetic CIFAR-10-shaped data → x_train (N, 3, 32, 32) uint8, y_train (N,) int64,
    x_test (M, 3, 32, 32) uint8, y_test (M,) int64. The test images do not depend on ``n_train``."""
    for key, n in (("--train", n_train), ("--test", n_test)):
        if int(n) != n or n < 1:
            raise ValueError(f"{key}: expected a positive number of images, got {n!r}")
    pools_seq, tint_seq, train_seq, test_seq = np.random.SeedSequence([int(seed), 0xC1FA]).spawn(4)
    pools = _digit_pools(np.random.default_rng(pools_seq))
    class_tint = np.random.default_rng(tint_seq).uniform(0.5, 1.0, (10, 3)).astype(np.float32)
    x_tr, y_tr = _render_split(int(n_train), pools[0], class_tint, np.random.default_rng(train_seq))
    x_te, y_te = _render_split(int(n_test), pools[1], class_tint, np.random.default_rng(test_seq))
    return x_tr, y_tr, x_te, y_te


# ----------------------------------------------------------------------------------------------
# the official pickle format


class _Py2Str(bytes):
    """A Python 2 ``str``: pickled as (SHORT_)BINSTRING, which ``encoding="latin1"`` reads as ``str``
    and ``encoding="bytes"`` as ``bytes`` — what the official CIFAR files contain."""


def _py2(s: str) -> _Py2Str:
    return _Py2Str(s.encode("latin1"))


class _Py2Pickler(pickle._Pickler):  # the pure-Python pickler: its dispatch table can be extended
    """Protocol-2 pickler writing strings and numpy arrays as Python 2 / numpy 1 wrote them."""

    dispatch = pickle._Pickler.dispatch.copy()

    def _save_py2str(self, obj: _Py2Str) -> None:
        n = len(obj)
        self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj if n < 256
                   else pickle.BINSTRING + struct.pack("<i", n) + obj)

    dispatch[_Py2Str] = _save_py2str

    def save_global(self, obj, name=None):
        from numpy._core.multiarray import _reconstruct

        if obj is _reconstruct:  # the official files (and every numpy) name it numpy.core.multiarray
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
            return
        super().save_global(obj, name)

    def reducer_override(self, obj):
        if isinstance(obj, np.ndarray):  # numpy 1's reduce, with the raw bytes as a Python 2 str
            from numpy._core.multiarray import _reconstruct

            a = np.ascontiguousarray(obj)
            return (_reconstruct, (np.ndarray, (0,), _Py2Str(b"b")),
                    (1, a.shape, a.dtype, False, _Py2Str(a.tobytes())))
        return NotImplemented


def _dump(path: Path, obj: dict) -> None:
    with open(path, "wb") as fh:
        _Py2Pickler(fh, protocol=2).dump(obj)


def _py2_dict(d: dict) -> dict:
    """Keys and str values (also inside lists) as Python 2 str, everything else unchanged."""
    def conv(v):
        if isinstance(v, str):
            return _py2(v)
        if isinstance(v, list):
            return [conv(e) for e in v]
        return v
    return {_py2(k): conv(v) for k, v in d.items()}


def write_cifar10_batches(base: str | Path, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                          y_test: np.ndarray, *, note: str, label_names: list[str], meta_extra: dict) -> None:
    """Write the official ``cifar-10-batches-py`` files into the existing folder ``base``.

    x: (N, 3, 32, 32) uint8; the train images are spread over the 5 ``data_batch_k`` files in order
    (sizes differ by at most one). ``note`` is appended to every batch_label."""
    import torchvision.datasets as tvd

    for name, x, y in (("x_train", x_train, y_train), ("x_test", x_test, y_test)):
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (3, 32, 32) or len(y) != len(x):
            raise ValueError(f"{name}: expected uint8 (N, 3, 32, 32) with N labels, got {x.dtype} {x.shape}")
    base = Path(base)
    batches = np.array_split(np.arange(len(y_train)), len(tvd.CIFAR10.train_list))
    files = [(f, f"training batch {k + 1} of {len(batches)}", rows)
             for k, ((f, _), rows) in enumerate(zip(tvd.CIFAR10.train_list, batches))]
    files.append((tvd.CIFAR10.test_list[0][0], "testing batch 1 of 1", None))
    for fname, label, rows in files:
        x, y = (x_test, y_test) if rows is None else (x_train[rows], y_train[rows])
        _dump(base / fname, _py2_dict({
            "batch_label": f"{label} ({note})",
            "labels": [int(v) for v in y],
            "data": np.ascontiguousarray(x.reshape(len(x), 3 * 32 * 32)),  # (N, 3072): R plane, G, B
            "filenames": [f"{fname}_{label_names[int(v)]}_{i:05d}.png" for i, v in enumerate(y)],
        }))
    meta = {"num_cases_per_batch": int(max(len(r) for r in batches)), "label_names": list(label_names),
            "num_vis": 3 * 32 * 32, **meta_extra}
    _dump(base / tvd.CIFAR10.meta["filename"], _py2_dict(meta))


def synthetic_marker(base: str | Path) -> str | None:
    """The ``synthetic`` note of a ``cifar-10-batches-py`` folder written here, or None (real data)."""
    meta = Path(base) / "batches.meta"
    if not meta.is_file():
        return None
    try:
        with open(meta, "rb") as fh:
            d = pickle.load(fh, encoding="latin1")
    except Exception:  # unreadable meta: not ours; the loader will report it
        return None
    note = d.get("synthetic") if isinstance(d, dict) else None
    return str(note) if note else None


def _readme(seed: int, n_train: int, n_test: int) -> str:
    return f"""SYNTHETIC DATA - NOT CIFAR-10.

Written by `{GENERATOR} --seed {seed} --train {n_train} --test {n_test}` (pntk), in the file format of
the official CIFAR-10 python release so that torchvision.datasets.CIFAR10 and pntk read it unchanged.
Images: scikit-learn's 8x8 handwritten digits, scaled, rotated, shifted and coloured onto 32x32 noisy
backgrounds; label k is the digit k (label_names synthetic-digit-0 ... synthetic-digit-9). Train and test
images come from disjoint parts (70 % / 30 %) of the digits. {n_train} train images in data_batch_1..5, {n_test} in
test_batch. md5 sums differ from the official release: use `data.verify_md5: false` in pntk configs.
Results computed on these files say nothing about CIFAR-10.
"""


def write_synthetic_cifar10(out: str | Path, *, seed: int = 0, n_train: int = 50000, n_test: int = 10000,
                            overwrite: bool = False) -> Path:
    """Write ``<out>/cifar-10-batches-py/`` (use ``out`` as ``data.root``); returns that folder.

    The folder is written under a temporary name and renamed into place. An existing folder is
    replaced only with ``overwrite`` and only if it is synthetic itself: real data are never touched."""
    out = Path(out)
    base = out / FOLDER
    if base.exists():
        if not overwrite:
            raise FileExistsError(f"{base} exists; pass --overwrite to replace a synthetic copy")
        if synthetic_marker(base) is None:
            raise FileExistsError(f"{base} exists and is not synthetic data written by {GENERATOR}; "
                                  "refusing to replace it")
    x_tr, y_tr, x_te, y_te = synthetic_cifar10(n_train, n_test, seed)
    note = f"SYNTHETIC: {GENERATOR} seed {seed}, not CIFAR-10"
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{FOLDER}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        write_cifar10_batches(tmp, x_tr, y_tr, x_te, y_te, note=note, label_names=LABEL_NAMES,
                              meta_extra={"synthetic": note, "generator": GENERATOR, "seed": int(seed)})
        (tmp / "README.txt").write_text(_readme(seed, n_train, n_test))
        if base.exists():
            shutil.rmtree(base)
        os.replace(tmp, base)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return base

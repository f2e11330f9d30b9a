"""Write ``examples/digits-small.npz``: a tiny data set in the format ``data.name: npz`` reads.

    python examples/make_digits_npz.py [OUT.npz]

120 train / 60 test images of scikit-learn's 8×8 handwritten digits (12 / 6 per class, drawn with a
fixed seed; no digit in both splits), x uint8 (N, 8, 8) (one channel; values 0..16
scaled to 0..255), y int64 labels 0..9. About 5 KB compressed. The tests check that the committed
file holds exactly what this script writes; ``examples/npz-digits.yaml`` is a config that reads it.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "digits-small.npz"
PER_CLASS = {"train": 12, "test": 6}


def digits_small(seed: int = 0) -> dict[str, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = np.rint(bunch.images * (255 / 16)).astype(np.uint8)  # (1797, 8, 8) 0..16 → 0..255
    y = bunch.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    picked = {"train": [], "test": []}
    for c in range(10):
        members = rng.permutation(np.flatnonzero(y == c))
        picked["train"].append(members[:PER_CLASS["train"]])
        picked["test"].append(members[PER_CLASS["train"]:PER_CLASS["train"] + PER_CLASS["test"]])
    out = {}
    for split, parts in picked.items():
        rows = np.sort(np.concatenate(parts))  # keep sklearn's order within a split
        out[f"x_{split}"], out[f"y_{split}"] = x[rows], y[rows]
    return out


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else DEFAULT_OUT
    np.savez_compressed(out, **digits_small())
    print(f"wrote {out} ({out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""What a data set is, before and after loading: DataSpec (sizes for planning), RawSplits (a loader's
arrays), and the user formats. Below both loaders (`datasets` for the built-in sets, `user` for the
user's own files), so that neither imports the other to name them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

USER_DATASETS = ("npz", "folder")  # read from data.path (pntk.data.user)


@dataclass(frozen=True)
class DataSpec:
    """What planning needs of a data set before it is prepared (full splits, before subsampling)."""

    n_train: int
    n_test: int
    num_classes: int
    in_shape: tuple[int, int, int]  # (C, H, W)
    digest: str = ""  # user data: sha256 of the files' names, sizes and mtimes ("" for built-in sets)


@dataclass
class RawSplits:
    x_train: np.ndarray  # (N_train, C, H, W) raw pixel values (uint8 for image files)
    y_train: np.ndarray  # (N_train,) int64
    x_test: np.ndarray  # (N_test, C, H, W) raw pixel values
    y_test: np.ndarray  # (N_test,) int64
    scale: float  # x / scale lies in [0, 1] (255 for uint8 images, 16 for digits)
    source: str  # human-readable description of where the pixels came from
    classes: list[str] | None = None
    num_classes: int | None = None  # None: the built-in table SPECS
    split_rule: str = "official train/test files"

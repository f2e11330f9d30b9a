"""Figs 15 and 16: the prepared data, and one pNTK on the train subset D sorted by label."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from ..runs import Run, epoch_of
from .figures import FORMATS, Drawn, new_figure, save_figure
from .run_verdicts import has_verdicts, run_label

MAX_SHOWN = 400  # a heat map of more examples than pixels shows nothing more


def plot_data_samples(data_path, out_stem, n: int = 16, *, formats: Iterable[str] = FORMATS,
                      dpi: int = 150) -> Drawn:
    """The first ``n`` training images of the prepared store, with their labels."""
    from ..data import open_prepared

    data = open_prepared(data_path)
    ids = data.train_indices[:n]
    fig, axes = new_figure(len(ids) // 2, (1.1, 1.3), nrows=2)
    for ax, i in zip(axes, ids, strict=False):
        img = data.x[i]  # (C, H, W)
        tiled = img.shape[0] not in (1, 3)  # user data, e.g. features as (D, 1, 1): channels side by side
        if tiled:
            img = np.concatenate(list(img), axis=1)[None]  # (1, H, C·W)
        img = img.transpose(1, 2, 0)  # (H, W, C)
        img = (img - img.min()) / max(np.ptp(img), 1e-12)
        ax.imshow(img.squeeze(-1) if img.shape[-1] == 1 else img, cmap="gray", aspect="auto" if tiled else None)
        ax.set_title(str(data.y[i]), fontsize=8)
        ax.axis("off")
    name = data.attrs.get("name", "?")
    fig.suptitle(f"{name}: {len(data.train_indices)} train / {len(data.test_indices)} test")
    shape = "×".join(map(str, data.in_shape))
    notes = [f"the first {len(ids)} training examples of {Path(data_path)} ({name}, input {shape}, "
             f"{len(data.train_indices)} train / {len(data.test_indices)} test examples); title = label"]
    return Drawn(save_figure(fig, out_stem, formats, dpi), fig, None, f"{len(ids)} images", {}, notes=notes)


def _shown_rows(d_ids: np.ndarray, labels: np.ndarray, cap: int = MAX_SHOWN) -> np.ndarray:
    """D itself when it fits, else the first cap // classes examples of each class in D; sorted by label."""
    if len(d_ids) > cap:
        classes = np.unique(labels)
        per_class = max(1, cap // len(classes))
        keep = np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in classes])
        d_ids, labels = d_ids[keep], labels[keep]
    order = np.argsort(labels, kind="stable")
    return d_ids[order]


def _class_ticks(ax, labels: np.ndarray) -> None:
    """A tick with the class at the middle of each class block, thin lines between blocks."""
    starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
    ends = np.r_[starts[1:], len(labels)]
    mids = (starts + ends - 1) / 2
    names = [str(labels[s]) for s in starts]
    ax.set_xticks(mids, names, fontsize=7)
    ax.set_yticks(mids, names, fontsize=7)
    for b in starts[1:] - 0.5:
        ax.axhline(b, color="w", lw=0.4)
        ax.axvline(b, color="w", lw=0.4)


def plot_kernel_heatmap(manifest, data_path, out_stem, *, subsets: dict,
                        verdicts: pd.DataFrame | None = None, formats: Iterable[str] = FORMATS,
                        dpi: int = 150) -> Drawn:
    """pNTK Θ̂(D, D) of the finalized store named by ``manifest`` (it may cover all of train), D sorted by
    label, class blocks marked; ``subsets`` = {subset_train, subset_test, seed} (config data:), defining D."""
    from ..analysis.checkpoint import load_manifest_block
    from ..data import index_set, open_prepared
    from ..store.paths import StorePaths

    rec = json.loads(Path(manifest).read_text())  # raises if the store was never finalized
    data = open_prepared(data_path)
    d_ids = index_set(data, "sub-train", **subsets)
    ids = _shown_rows(d_ids, data.y[d_ids])
    labels = data.y[ids]
    block, _ = load_manifest_block(manifest, ids, ids)  # (n, n), rows and cols sorted by label
    r, epoch = Run.of_path(manifest), epoch_of(manifest)  # the run's identity is its folder's name
    key = (r.dataset, r.arch, r.width, r.seed, r.trained_on)
    on_d = " (trained on D)" if r.trained_on == "D" else ""
    run = f"{key[1]}-w{key[2]} seed {key[3]}{on_d}, epoch {epoch}"
    learned = verdicts["learned"].get(key) if has_verdicts(verdicts) else None
    learned = learned if learned in (True, False) else None  # NaN: no verdict for this run
    fig, (ax,) = new_figure(1, (5.2, 4.6))
    im = ax.imshow(block, cmap="viridis", interpolation="nearest")
    fig.colorbar(im, ax=ax, shrink=0.85, label="pNTK Θ̂(x, x′)")
    _class_ticks(ax, labels)
    failed = learned is False
    ax.set_title(f"pNTK Θ̂(D, D) of {run}" + ("\nDID NOT LEARN: " + run_label(key, verdicts.loc[key, "test_acc"])
                                     if failed else ""), fontsize=9, color="C3" if failed else "k")
    ax.set_xlabel(f"examples of D ({len(ids)}), sorted by class")
    ax.set_ylabel(f"examples of D ({len(ids)}), sorted by class")
    kind, rows, cols = StorePaths.of(manifest).index_sets()
    store = StorePaths.of(manifest).store
    shown = "all of D" if len(ids) == len(d_ids) else f"a class-balanced sample of {len(ids)} of D's {len(d_ids)}"
    notes = [f"store {store} ({kind}, {rows} × {cols}, shape {' × '.join(map(str, rec['shape']))}); "
             f"shown: {len(ids)} × {len(ids)} values, {shown} (|D| = data.subset_train = {len(d_ids)} of "
             f"{len(data.train_indices)} training examples, {len(np.unique(labels))} classes)"]
    labels_drawn = {"arch": [key[1]], "width": [key[2]], "epoch": [epoch], "seed": [key[3]]}
    bad = None if learned is None else ([] if learned else [run_label(key, verdicts.loc[key, "test_acc"])])
    return Drawn(save_figure(fig, out_stem, formats, dpi), fig, kind, f"{len(ids)} × {len(ids)} kernel values",
                 labels_drawn, bad, notes)


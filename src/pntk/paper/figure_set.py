"""The workflow's figure set: which figure (fig{NN}-{slug}) comes from which table and plot function."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from . import figures as F

# number → (slug, table, statistic or None, plot kind); statistics as in pntk.diagnostics / pntk.tables
FIGURES = {
    1: ("timing", "timing", None, "timing"),
    2: ("diagonal-ratio", "diagnostics", "offdiag_ratio", "width"),
    3: ("frobenius-distance", "diagnostics", "frobenius_distance", "width"),
    4: ("lambda-max", "diagnostics", "lambda_max_rel_diff", "width"),
    5: ("lambda-min", "diagnostics", "lambda_min_rel_diff", "width"),
    6: ("condition-number", "diagnostics", "cond_rel_diff", "width"),
    7: ("prediction-gap", "diagnostics", "pred_rel_diff", "width"),
    8: ("accuracy-gap", "diagnostics", "acc_diff", "width"),
    9: ("flin-accuracy", "regression", "flin_test_acc", "epochs"),
    10: ("sgd-accuracy", "training", "test_acc", "epochs"),
    11: ("flin-minus-current", "regression", "flin_minus_current", "epochs"),
    12: ("flin-minus-final", "regression", "flin_minus_final", "epochs"),
    13: ("width-rate", "rate", None, "rate"),
    14: ("infinite-width", "infinite", None, "infinite"),
    15: ("data-samples", "data", None, "data"),
    16: ("kernel-heatmap", "kernel", None, "kernel"),
}
YLABELS = {
    "flin_test_acc": "test accuracy of pNTK kernel regression f̂_lin",
    "test_acc": "test accuracy of the SGD-trained network",
    "flin_minus_current": "acc(f̂_lin) − acc(network at that epoch)",
    "flin_minus_final": "acc(f̂_lin) − acc(final network)",
}
CAPTIONS = {
    "flin-accuracy": "Test accuracy of kernel regression with the full-data pNTK (one-vs-rest, prior mean f₀) "
                     "of the checkpoint at each epoch.",
    "sgd-accuracy": "Test accuracy of the SGD-trained network through training (from train_log.csv).",
    "flin-minus-current": "Test accuracy of f̂_lin minus that of the network at the same checkpoint.",
    "flin-minus-final": "Test accuracy of f̂_lin at each checkpoint minus that of the final trained network.",
    "width-rate": F.CAPTIONS.get("rate", ""),
    "data-samples": "The first training images of the prepared data set (normalised), with labels.",
    "kernel-heatmap": "pNTK Θ̂(D, D) on the train subset D, rows/cols sorted by label, for the first run at "
                      "its last checkpoint; block structure by class shows what the kernel has learnt.",
}


def figure_names(numbers: list[int]) -> list[str]:
    return [f"fig{n:02d}-{FIGURES[n][0]}" for n in numbers]


def caption(n: int) -> str:
    slug = FIGURES[n][0]
    text = CAPTIONS.get(slug) or F.CAPTIONS.get(slug) or F.CAPTIONS.get("over-epochs", "")
    return text + " Seeds aggregated as mean ± standard deviation." if FIGURES[n][3] == "epochs" else text


def render(n: int, out_dir: str | Path, tables: dict[str, str], *, data_path=None, kernel_manifest=None) -> list:
    slug, table, stat, kind = FIGURES[n]
    stem = Path(out_dir) / f"fig{n:02d}-{slug}"
    if kind == "data":
        return plot_data_samples(data_path, stem)
    if kind == "kernel":
        return plot_kernel_heatmap(kernel_manifest, data_path, stem)
    df = pd.read_csv(tables[table])
    if kind == "width":
        return F.plot_stat_vs_width(df, stat, stem)
    if kind == "epochs":
        return F.plot_over_epochs(df, stat, stem, ylabel=YLABELS.get(stat))
    if kind == "timing":
        return F.plot_timing(df, stem)
    if kind == "infinite":
        return F.plot_infinite(df, stem)
    if kind == "rate":
        if df.empty:  # a single width per architecture: nothing to fit
            return _placeholder(stem, "Width-rate fit needs at least two widths of one architecture")
        diag = pd.read_csv(tables["diagnostics"])
        points = diag[(diag.statistic == "frobenius_distance") & (diag.epoch == 0)]
        return F.plot_rate(points, df, stem)
    raise ValueError(f"figure {n}: unknown plot kind {kind!r}")


def _placeholder(stem: Path, text: str) -> list[Path]:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 2))
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True)
    ax.axis("off")
    return F.save_figure(fig, stem)


def plot_data_samples(data_path, stem: Path, n: int = 16) -> list[Path]:
    import matplotlib.pyplot as plt

    from ..data import open_prepared

    data = open_prepared(data_path)
    ids = data.train_indices[:n]
    fig, axes = plt.subplots(2, n // 2, figsize=(n // 2 * 1.1, 2.6))
    for ax, i in zip(axes.ravel(), ids):
        img = data.x[i]  # (C, H, W)
        tiled = img.shape[0] not in (1, 3)  # user data, e.g. features as (D, 1, 1): channels side by side
        if tiled:
            img = np.concatenate(list(img), axis=1)[None]  # (1, H, C·W)
        img = img.transpose(1, 2, 0)  # (H, W, C)
        img = (img - img.min()) / max(np.ptp(img), 1e-12)
        ax.imshow(img.squeeze(-1) if img.shape[-1] == 1 else img, cmap="gray", aspect="auto" if tiled else None)
        ax.set_title(str(data.y[i]), fontsize=8)
        ax.axis("off")
    fig.suptitle(f"{data.attrs['name']}: {len(data.train_indices)} train / {len(data.test_indices)} test")
    return F.save_figure(fig, stem)


def plot_kernel_heatmap(manifest, data_path, stem: Path) -> list[Path]:
    import matplotlib.pyplot as plt
    import zarr

    from .analysis import load_manifest_block
    from ..data import open_prepared
    from ..store.paths import StorePaths

    rec = json.loads(Path(manifest).read_text())
    data = open_prepared(data_path)
    ids = zarr.open_group(str(StorePaths.of(manifest).store), mode="r")["row"][:]
    ids = ids[np.argsort(data.y[ids], kind="stable")][:400]
    block, _ = load_manifest_block(manifest, ids, ids)  # (n, n)
    fig, ax = plt.subplots(figsize=(4.8, 4.2))
    im = ax.imshow(block, cmap="viridis")
    fig.colorbar(im, ax=ax, shrink=0.8)
    a = rec["attrs"]
    ax.set_title(f"pNTK {a.get('arch')}-w{a.get('width')} seed {a.get('seed')} epoch {a.get('epoch')}", fontsize=9)
    ax.set_xlabel("train example (sorted by label)")
    ax.set_ylabel("train example (sorted by label)")
    return F.save_figure(fig, stem)


def _rst(text: str) -> str:
    """A caption as reStructuredText: | escaped (it marks substitutions in rst), newline-terminated."""
    return text.replace("|", "\\|") + "\n"


def caption_rst(n: int) -> str:
    return _rst(f"Figure {n} ({FIGURES[n][0]}). " + caption(n))


def active_caption_rst(name: str) -> str:
    from ..active.figures import CAPTIONS as ACTIVE

    return _rst(ACTIVE[name])


def write_captions(folder: str | Path) -> None:
    """Regenerate workflow/report/*.rst: `python -m pntk.paper.figure_set workflow/report`."""
    for n in FIGURES:
        (Path(folder) / f"fig{n:02d}.rst").write_text(caption_rst(n))
    for name in ("accuracy", "time"):
        (Path(folder) / f"active-{name}.rst").write_text(active_caption_rst(name))


if __name__ == "__main__":
    import sys

    write_captions(sys.argv[1])

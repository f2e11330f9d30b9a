"""Figures of the pNTK paper from tidy tables (matplotlib Figure objects, no pyplot state, Agg rendering).

Plot functions take a pandas DataFrame in the tidy schema of :mod:`pntk.analysis.diagnostics` (columns
dataset, arch, width, seed, epoch, statistic, value; optional ``readout_width``), write
``{out_stem}.{png,pdf}`` atomically (temp file + rename) and return a :class:`Drawn`: the paths and what
the figure shows, gathered from the rows actually plotted — the captions are written from it
(:mod:`.figure_set`). Seeds are aggregated as mean ± one sample standard deviation (ddof=1; 0 for one
seed). Runs that did not learn (``verdicts``, :mod:`.run_verdicts`) are left out of the means and drawn
apart in grey: hollow markers, one per seed (against width), or a dashed line per run (against epoch).
Against epoch, markers sit at the checkpoints and lines join only consecutive epochs (nothing is measured
between checkpoints); values spanning more than a decade against width get a log axis.
Non-finite values (e.g. κ of a kernel with λmin ≤ 0) are not drawn and named in the caption. This module:
shared helpers and Figs 9–12; the others live in figures_paper (2–8 in the paper's layout), figures_fits (P1, P2),
figures_timing (1) and figures_data (P3, P4).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .run_verdicts import split_learned

TIDY = ("dataset", "arch", "width", "seed", "epoch", "statistic", "value")
ERR = "mean ± s.d. over seeds"
FORMATS = ("png", "pdf")
NOT_LEARNED_STYLE = dict(ls="none", marker="o", ms=6, mfc="none", mec="0.45", mew=1.2)
X_LABELS = {"readout_width": "readout width w\n(inputs of the final Linear layer)",
            "width": "width w\n(architecture width parameter)"}


@dataclass
class Drawn:
    """What a figure shows, taken from the rows it drew (not from the plan): captions are written from it."""
    paths: list[Path]
    figure: Figure
    statistic: str | None = None
    points: str = ""  # how a plotted point was computed, e.g. "mean ± s.d. over seeds (n=2)"
    labels: dict[str, list] = field(default_factory=dict)  # arch, width, epoch, seed values drawn
    not_learned: list[str] | None = None  # runs drawn apart; None: the tables carry no learned verdict
    notes: list[str] = field(default_factory=list)  # anything else the caption must say
    warnings: list[str] = field(default_factory=list)  # reasons not to trust what is drawn


# ----------------------------------------------------------------------------- helpers
def check_columns(df: pd.DataFrame, cols: Iterable[str], what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"{what}: table is missing column(s) {missing}; got {list(df.columns)}")


def select(df: pd.DataFrame, statistic: str, what: str) -> pd.DataFrame:
    check_columns(df, TIDY, what)
    sub = df[df["statistic"] == statistic]
    if sub.empty:
        raise ValueError(f"{what}: no rows with statistic {statistic!r}; have {sorted(df['statistic'].unique())}")
    return sub


def finite_only(sub: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Rows with a finite value, and a note naming the others (e.g. κ of a kernel whose λmin ≤ 0): a point
    that cannot be drawn is said in the caption instead of silently missing."""
    bad = sub[~np.isfinite(sub["value"].to_numpy(dtype=float))]
    if bad.empty:
        return sub, []
    where = [f"{a}-w{int(w)}-s{int(s)} epoch {int(e)}" for a, w, s, e in
             zip(bad["arch"], bad["width"], bad["seed"], bad["epoch"], strict=True)]
    return sub.drop(bad.index), [f"{len(bad)} of {len(sub)} values not finite, not drawn: {', '.join(where)}"]


def xcol(df: pd.DataFrame) -> tuple[str, str]:
    col = "readout_width" if "readout_width" in df.columns and df["readout_width"].notna().all() else "width"
    return col, X_LABELS[col]


def aggregate(df: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Mean, s.d. (ddof=1, 0 for a single seed) and count of ``value`` per group, sorted."""
    by = list(dict.fromkeys(by))  # x may be "width" itself
    out = df.groupby(by, sort=True)["value"].agg(mean="mean", std="std", n="count").reset_index()
    out["std"] = out["std"].fillna(0.0)
    return out


def decades_span(values, ratio: float = 10.0) -> float | None:
    """max/min of `values` when all are positive and they span more than `ratio` (a log axis then shows
    every point; a linear one flattens all but the largest), else None."""
    v = pd.to_numeric(pd.Series(values), errors="coerce").dropna().to_numpy(dtype=float)
    if len(v) < 2 or (v <= 0).any():
        return None
    span = float(v.max() / v.min())
    return span if span > ratio else None


def with_gaps(epochs, values) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of a series over sorted `epochs`, with a NaN (a break in the drawn line) between checkpoints
    more than one epoch apart: a line joins only values measured at consecutive epochs, since between
    checkpoints nothing was measured."""
    x, y = np.asarray(epochs, dtype=float), np.asarray(values, dtype=float)
    cut = np.flatnonzero(np.diff(x) > 1) + 1
    return np.insert(x, cut, np.nan), np.insert(y, cut, np.nan)


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">")


def new_figure(n: int, size=(4.6, 3.6), nrows: int = 1) -> tuple[Figure, list]:
    """``nrows`` × ``n`` panels (row-major list)."""
    fig = Figure(figsize=(size[0] * n, size[1] * nrows), layout="constrained")
    return fig, list(fig.subplots(nrows, n, squeeze=False).ravel())


def log2_x(ax, xs) -> None:
    ax.set_xscale("log", base=2)
    xs = sorted({int(x) for x in xs})
    if len(xs) <= 12:
        ax.set_xticks(xs, [str(x) for x in xs])
        ax.minorticks_off()


def n_text(d: pd.DataFrame, what: str = ERR) -> str:
    if d.empty:
        return f"{what} (no points)"
    lo, hi = int(d["n"].min()), int(d["n"].max())
    return f"{what} (n={lo})" if lo == hi else f"{what} (n={lo}–{hi})"


def shared_legend(fig: Figure, axes: list, title: str, loc: str = "outside right upper", ncols: int = 1) -> None:
    """One legend for all panels, outside the axes (labels de-duplicated)."""
    seen: dict[str, object] = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(lab, h)
    fig.legend(list(seen.values()), list(seen), loc=loc, ncols=ncols, title=title, fontsize=8, title_fontsize=8)


def colors_of(keys: Iterable) -> dict:
    keys = set(keys)
    try:
        order = sorted(keys)
    except TypeError:
        order = sorted(keys, key=str)
    return {k: f"C{i % 10}" for i, k in enumerate(order)}


def labels_of(df: pd.DataFrame) -> dict[str, list]:
    """The arch / width / epoch / seed values present in the plotted rows (for captions and the report)."""
    return {c: sorted(df[c].unique().tolist()) for c in ("arch", "width", "epoch", "seed") if c in df.columns}


def not_learned_label(labels: list[str]) -> str:
    """Legend entry of the hollow markers: one run per line (at most 3, then a count) so the legend stays narrow."""
    shown = labels[:3] + ([f"+{len(labels) - 3} more (see caption)"] if len(labels) > 3 else [])
    return "did not learn (hollow,\nleft out of the mean):\n" + "\n".join(shown)


def save_figure(fig: Figure, out_stem: str | os.PathLike, formats: Iterable[str] = FORMATS,
                dpi: int = 150) -> list[Path]:
    stem = Path(out_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in formats:
        final = stem.with_name(stem.name + f".{ext}")
        tmp = final.with_name(f".{final.name}.tmp")
        fig.savefig(tmp, format=ext, dpi=dpi)
        os.replace(tmp, final)
        paths.append(final)
    return paths


# ----------------------------------------------------------------------------- Figs 9–12
def plot_over_epochs(df: pd.DataFrame, statistic: str, out_stem, ylabel: str | None = None,
                     title: str = "", logy: bool = False, *, verdicts: pd.DataFrame | None = None,
                     formats: Iterable[str] = FORMATS, dpi: int = 150) -> Drawn:
    """``statistic`` against training epoch; panels: rows = datasets, columns = archs; lines = widths.
    A run that did not learn is its own dashed grey line (hollow markers), not part of its width's mean."""
    sub, notes = finite_only(select(df, statistic, "plot_over_epochs"))
    ok, bad, bad_labels = split_learned(sub, verdicts)
    x, _ = xcol(sub)
    datasets, archs = sorted(sub["dataset"].unique()), sorted(sub["arch"].unique())
    fig, axes = new_figure(len(archs), nrows=len(datasets))
    colors = colors_of(sub["width"])
    widths = sorted(colors)
    epochs = np.sort(sub["epoch"].unique())
    # Widths with equal values would hide one another: each width is shifted by a few % of the smallest gap
    # between epochs (said in the caption), and has its own marker.
    gap = float(np.diff(epochs).min()) if len(epochs) > 1 else 1.0
    counts, sparse, spread = [], False, 0.0
    for ax, (ds, arch) in zip(axes, [(d, a) for d in datasets for a in archs], strict=True):
        d = aggregate(ok[(ok["dataset"] == ds) & (ok["arch"] == arch)], ["width", x, "epoch"])
        b = bad[(bad["dataset"] == ds) & (bad["arch"] == arch)]
        if d.empty and b.empty:
            ax.set_visible(False)
            continue
        counts.append(d)
        here = sorted(set(d["width"]) | set(b["width"]))  # the panel's widths, centred on each epoch
        step = 0.3 * gap / (len(here) - 1) if len(here) > 1 else 0.0
        dodge = {w: (k - (len(here) - 1) / 2) * step for k, w in enumerate(here)}
        spread = max(spread, step * (len(here) - 1) / 2)
        for (w, xw), g in d.groupby(["width", x]):
            lab = f"w = {int(w)}" if x == "width" else f"w = {int(w)} (readout {int(xw)})"
            g = g.sort_values("epoch")
            marker = MARKERS[widths.index(w) % len(MARKERS)]
            ax.errorbar(g["epoch"] + dodge[w], g["mean"], yerr=g["std"], ls="none", marker=marker, ms=4, capsize=2,
                        label=lab, color=colors[w])
            ex, ey = with_gaps(g["epoch"], g["mean"])
            sparse |= bool(np.isnan(ex).any())
            ax.plot(ex + dodge[w], ey, color=colors[w], lw=1.2)
        for (w, seed, on), g in b.sort_values("epoch").groupby(["width", "seed", "trained_on"]):
            run = bad_labels[(ds, arch, int(w), int(seed), on)]
            ex, ey = with_gaps(g["epoch"], g["value"])
            ax.plot(ex + dodge[w], ey, **{**NOT_LEARNED_STYLE, "ls": "--"}, label=f"did not learn: {run}")
        if logy:
            ax.set_yscale("log")
        if len(epochs) <= 12:
            ax.set_xticks(epochs)  # the checkpoints: where the values were measured
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("training epoch")
        ax.set_ylabel(ylabel or statistic)
        ax.set_title(f"{title} — {ds}/{arch}" if title else f"{ds}/{arch}")
        ax.grid(alpha=0.3)
    points = n_text(pd.concat(counts) if counts else pd.DataFrame(columns=["n"]))
    shared_legend(fig, axes, points)  # widths have one colour in every panel; outside, so no line is hidden
    if sparse:
        notes.append("values exist only at the checkpoint epochs; lines join only values measured at "
                     "consecutive epochs")
    if spread:
        notes.append(f"widths are drawn side by side, shifted by up to ±{spread:.2g} epochs, so that equal "
                     "values do not hide one another")
    return Drawn(save_figure(fig, out_stem, formats, dpi), fig, statistic, points, labels_of(sub),
                 None if bad_labels is None else list(bad_labels.values()), notes)

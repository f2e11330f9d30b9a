"""Active-learning figures from the tidy per-run CSVs (columns: pntk.active.loop.COLUMNS).

    accuracy figure: test accuracy vs number of labels, mean and 95% t-interval over seeds; right
                     panel (when "random" ran): accuracy minus random's, paired by seed
    time figure:     acquisition wall time per cycle (left) and per candidate scored (right, where the naive
                     look-ahead's 1/100 is drawn: the thesis' "more than 100 times faster"), log scale:
                     geometric mean and 95% t-interval of log(time) over seeds; the legend gives the
                     candidates scored per acquisition
One line per (strategy, kernel). Figures are written atomically (temp file + rename) in every format.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..active.settings import BASELINES, COLUMNS, ci95
from ..provenance import atomic_write_text
from .figures import save_figure


def load_tables(paths: Iterable[str | os.PathLike]) -> pd.DataFrame:
    frames = [pd.read_csv(p) for p in paths]
    for p, f in zip(paths, frames):
        missing = [c for c in COLUMNS if c not in f.columns]
        if missing:
            raise ValueError(f"{p}: missing columns {missing}; expected {COLUMNS}")
    df = pd.concat(frames, ignore_index=True)
    df["label"] = np.where(df["kernel"].isin(["none", ""]) | df["kernel"].isna(), df["strategy"],
                           df["strategy"].str.replace("mlmoc", "MLMOC") + " " + df["kernel"].astype(str))
    return df


def summary(df: pd.DataFrame, value: str, by: str) -> pd.DataFrame:
    """mean, ci95 and n of `value` per (label, by) over seeds."""
    g = df.dropna(subset=[value]).groupby(["label", by])[value]
    return g.agg(mean="mean", ci95=ci95, n="count").reset_index()


def _lines(ax, s: pd.DataFrame, x: str, log: bool = False, names: dict | None = None,
           valid: tuple[float, float] | None = None) -> None:
    """Mean line and 95% band per label; `valid` clips the band to the values the quantity can take
    (a t-interval over 3 seeds reaches past accuracy 1)."""
    for label, g in s.groupby("label", sort=True):
        g = g.sort_values(x)
        lo, mid, hi = g["mean"] - g["ci95"], g["mean"], g["mean"] + g["ci95"]
        if log:  # summary of log10(value): geometric mean and its interval
            lo, mid, hi = 10 ** lo, 10 ** mid, 10 ** hi
        if valid:
            lo, hi = lo.clip(*valid), hi.clip(*valid)
        ls = "--" if label in BASELINES else "-"
        ax.plot(g[x], mid, ls, marker="o", ms=3, label=(names or {}).get(label, label))
        ax.fill_between(g[x], lo, hi, alpha=0.1)


def paired_gain(df: pd.DataFrame, base: str = "random") -> pd.DataFrame:
    """test_acc minus the `base` strategy's at the same (seed, cycle), for every other label."""
    ref = df[df["label"] == base].set_index(["seed", "cycle"])["test_acc"]
    d = df[df["label"] != base].join(ref.rename("base_acc"), on=["seed", "cycle"])
    return d.assign(gain=d["test_acc"] - d["base_acc"]).dropna(subset=["gain"])


def plot_accuracy(df: pd.DataFrame, stem, formats=("png", "pdf"), dpi: int = 150) -> list[Path]:
    return save_figure(accuracy_figure(df), stem, formats, dpi)


def accuracy_figure(df: pd.DataFrame) -> Figure:
    has_random = bool((df["label"] == "random").any()) and df["label"].nunique() > 1
    fig = Figure(figsize=(11 if has_random else 6, 4), layout="constrained")
    axes = fig.subplots(1, 2 if has_random else 1, squeeze=False)[0]
    _lines(axes[0], summary(df, "test_acc", "n_labels"), "n_labels", valid=(0.0, 1.0))
    n_seeds = df["seed"].nunique()
    axes[0].set(xlabel="number of labels", ylabel="test accuracy",
                title=f"Active learning ({n_seeds} seed{'s' * (n_seeds > 1)}; mean, 95% CI)")
    if has_random:
        _lines(axes[1], summary(paired_gain(df), "gain", "n_labels"), "n_labels", valid=(-1.0, 1.0))
        axes[1].axhline(0, color="k", lw=0.8)
        axes[1].set(xlabel="number of labels", ylabel="test accuracy − random (same seed)",
                    title="Gain over random, paired by seed (mean, 95% CI)")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return fig


def plot_time(df: pd.DataFrame, stem, formats=("png", "pdf"), dpi: int = 150) -> list[Path]:
    d = df[(df["cycle"] > 0) & (df["strategy"] != "random")]  # random acquisition takes microseconds
    d = d[(d["acquisition_seconds"] > 0) & (d["candidates"] > 0)]
    d = d.assign(log_s=np.log10(d["acquisition_seconds"]),
                 log_c=np.log10(d["acquisition_seconds"] / d["candidates"]))  # per candidate scored
    names = {lab: f"{lab} ({int(g.median())} candidates)" for lab, g in d.groupby("label")["candidates"]}
    fig = Figure(figsize=(11, 4), layout="constrained")
    left, right = fig.subplots(1, 2)
    _lines(left, summary(d, "log_s", "cycle"), "cycle", log=True, names=names)
    _lines(right, summary(d, "log_c", "cycle"), "cycle", log=True, names=names)
    naive = d[d["label"] == "naive"]
    if len(naive):  # the thesis' "more than 100 times faster than Naïve", per candidate
        right.axhline(10 ** naive["log_c"].mean() / 100, color="k", ls=":", lw=1, label="naive / 100")
    left.set(ylabel="acquisition wall time [s]", title="Time per acquisition (geometric mean, 95% CI)")
    right.set(ylabel="wall time per candidate scored [s]", title="Time per candidate (geometric mean, 95% CI)")
    for ax in (left, right):
        ax.set_yscale("log")
        ax.set_xlabel("cycle")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    return save_figure(fig, stem, formats, dpi)


def render_all(csv_paths, out_dir, *, formats=("png", "pdf"), dpi: int = 150, table: str | None = None) -> list[Path]:
    """Both figures (and optionally the concatenated tidy table) from the per-run CSVs."""
    df = load_tables(list(csv_paths))
    paths = plot_accuracy(df, Path(out_dir) / "active-accuracy", formats, dpi)
    paths += plot_time(df, Path(out_dir) / "active-time", formats, dpi)
    if table:
        atomic_write_text(table, df[COLUMNS].to_csv(index=False))
        paths.append(Path(table))
    return paths

"""Log-log figures with a fitted or reference slope: the width rate of Theorem 1 (Fig 13) and the distance
to the analytic infinite-width NTK (Fig 14). Conventions as in :mod:`.figures`."""
from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd

from .figures import (
    FORMATS,
    NOT_LEARNED_STYLE,
    X_LABELS,
    Drawn,
    aggregate,
    check_columns,
    finite_only,
    labels_of,
    log2_x,
    n_text,
    new_figure,
    not_learned_label,
    save_figure,
    select,
    shared_legend,
    xcol,
)
from .run_verdicts import split_learned

FIT_COLUMNS = ("arch", "exponent", "ci_low", "ci_high", "intercept")
INFINITE_PREFIX = "infinite_rel_dist_"
_REF = "reference slope −½"


def _reference_line(ax, x0: float, y0: float, x1: float) -> None:
    """Dashed slope −½ through (x0, y0), from x0 to x1."""
    xx = np.geomspace(x0, x1, 20)
    ax.plot(xx, y0 * (xx / x0) ** -0.5, "k--", lw=1, label=_REF)


def _log_log(ax, xs, xlabel: str, ylabel: str, title: str) -> None:
    log2_x(ax, xs)
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")


def _rows_of(df: pd.DataFrame, keys: list[str], key: tuple) -> pd.DataFrame:
    """Rows of ``df`` whose ``keys`` columns equal ``key``."""
    mask = np.ones(len(df), dtype=bool)
    for k, v in zip(keys, key, strict=True):
        mask &= (df[k] == v).to_numpy()
    return df[mask]


def plot_rate(df_rate_points: pd.DataFrame, fit_table: pd.DataFrame, out_stem,
              statistic: str = "frobenius_distance", title: str = "", *, x: str | None = None,
              ylabel: str | None = None, verdicts: pd.DataFrame | None = None,
              formats: Iterable[str] = FORMATS, dpi: int = 150) -> Drawn:
    """Log-log ``statistic`` vs width per arch, fitted line exp(a)·w^b, exponent ± CI, slope −½.

    ``fit_table``: one row per arch (optionally per dataset too) with columns exponent, ci_low,
    ci_high, intercept from :func:`pntk.report.claim_tests.slope_fit` (natural logs; rate.csv). ``x`` names the
    column the fit used ("width" or "readout_width"); default: ``readout_width`` if the points
    carry it, else ``width``. The intercept is only meaningful on that same x.
    """
    pts, notes = finite_only(select(df_rate_points, statistic, "plot_rate"))
    check_columns(fit_table, FIT_COLUMNS, "plot_rate fit_table")
    ok, bad, bad_labels = split_learned(pts, verdicts)
    if x is None:
        x, xlabel = xcol(pts)
    else:
        check_columns(pts, (x,), "plot_rate")
        xlabel = X_LABELS.get(x, x)
    keys = ["dataset", "arch"] if "dataset" in fit_table.columns else ["arch"]
    fig, (ax,) = new_figure(1, (8.5, 4.4))
    d = aggregate(ok, keys + [x])
    ref_anchor = None  # (x0, y0, x1) of the −½ line: where the first fit starts, else the first mean
    for i, (key, every) in enumerate(pts.groupby(keys)):
        key = key if isinstance(key, tuple) else (key,)
        color, name = f"C{i}", "/".join(map(str, key))
        g, row = _rows_of(d, keys, key), _rows_of(fit_table, keys, key)
        ax.errorbar(g[x], g["mean"], yerr=g["std"], fmt="o", ms=4, capsize=3, color=color)
        x0, x1 = every[x].min(), every[x].max()  # the fit spans every width rate.csv may have used
        if len(row):
            r = row.iloc[0]
            xx = np.geomspace(x0, x1, 50)
            ax.plot(xx, np.exp(r["intercept"]) * xx ** r["exponent"], color=color,
                    label=f"{name}: b = {r['exponent']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]")
            if ref_anchor is None or ref_anchor[3] is False:
                ref_anchor = (x0, np.exp(r["intercept"]) * x0 ** r["exponent"], x1, True)
        else:
            ax.plot([], [], "o", color=color, label=f"{name}: no fit")
            if ref_anchor is None and g[x].nunique() > 1:
                ref_anchor = (g[x].min(), g["mean"].iloc[0], g[x].max(), False)
    if len(bad):
        ax.plot(bad[x], bad["value"], **NOT_LEARNED_STYLE, label=not_learned_label(list(bad_labels.values())))
    if ref_anchor is not None:
        _reference_line(ax, *ref_anchor[:3])
    _log_log(ax, pts[x], xlabel, ylabel or statistic, title or "Convergence rate of the pNTK (Theorem 1)")
    points = n_text(d)
    shared_legend(fig, [ax], f"fit log y = a_seed + b log w: b [95% t-interval]\npoints: {points}")
    return Drawn(save_figure(fig, out_stem, formats, dpi), fig, statistic, points, labels_of(pts),
                 None if bad_labels is None else list(bad_labels.values()), notes)


def plot_infinite(df: pd.DataFrame, out_stem, title: str = "", *, formats: Iterable[str] = FORMATS,
                  dpi: int = 150) -> Drawn:
    """Relative distance to the analytic NTK vs width (log-log), one line per kernel and arch.

    Rows with statistic ``infinite_rel_dist_{kind}`` from :func:`pntk.analysis.infinite.infinite_distances`.
    """
    check_columns(df, ("dataset", "arch", "width", "seed", "statistic", "value"), "plot_infinite")
    sub = df[df["statistic"].str.startswith(INFINITE_PREFIX)].copy()
    if sub.empty:
        raise ValueError(f"plot_infinite: no rows with statistic '{INFINITE_PREFIX}<kind>'")
    sub["kind"] = sub["statistic"].str.slice(len(INFINITE_PREFIX))
    x, xlabel = xcol(sub)
    fig, (ax,) = new_figure(1, (6.0, 4.4))
    d = aggregate(sub, ["arch", "kind", x])
    multi_arch = d["arch"].nunique() > 1
    for (arch, kind), g in d.groupby(["arch", "kind"]):
        lab = {"entk": r"eNTK vs $\Theta_\infty \otimes I_O$", "pntk": r"pNTK vs $\Theta_\infty$"}.get(
            kind, rf"{kind} vs $\Theta_\infty$")
        ax.errorbar(g[x], g["mean"], yerr=g["std"], marker="o", ms=4, capsize=3,
                    label=f"{arch}: {lab}" if multi_arch else lab)
    first = d.sort_values(x).iloc[0]
    _reference_line(ax, first[x], first["mean"], d[x].max())
    _log_log(ax, d[x], xlabel, "relative Frobenius distance to analytic NTK",
             title or "Distance to the infinite-width NTK")
    points = n_text(d)
    ax.legend(title=points, fontsize=8, title_fontsize=8)
    return Drawn(save_figure(fig, out_stem, formats, dpi), fig, ", ".join(sorted(sub["statistic"].unique())),
                 points, labels_of(sub))

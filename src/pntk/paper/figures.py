"""Figures of the pNTK paper from tidy tables (matplotlib, no pyplot state, Agg rendering).

Every function takes a pandas DataFrame in the tidy schema of :mod:`pntk.diagnostics`
(columns dataset, arch, width, seed, epoch, statistic, value; optional ``readout_width``),
writes ``{out_stem}.png`` and ``{out_stem}.pdf`` (atomically: temp file + rename) and returns the
two paths. Seeds are aggregated as mean ± one sample standard deviation (ddof=1; 0 for one seed);
every legend says so. Captions for ``snakemake --report`` live in :data:`CAPTIONS`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

TIDY = ("dataset", "arch", "width", "seed", "epoch", "statistic", "value")
ERR = "mean ± s.d. over seeds"
FORMATS = ("png", "pdf")

STAT_LABELS = {
    "offdiag_ratio": r"$\|\mathrm{offdiag}\|_F \,/\, \|\mathrm{diag}\|_F$ of eNTK blocks",
    "frobenius_distance": r"$\|\Theta - \hat\Theta \otimes I_O\|_F \,/\, \|\Theta\|_F$",
    "lambda_max_rel_diff": r"$|\lambda_{\max}(\Theta) - \lambda_{\max}(\hat\Theta)| \,/\, \lambda_{\max}(\Theta)$",
    "lambda_min_rel_diff": r"$|\lambda_{\min}(\Theta) - \lambda_{\min}(\hat\Theta)| \,/\, \lambda_{\min}(\Theta)$",
    "cond_rel_diff": r"$|\kappa(\Theta) - \kappa(\hat\Theta)| \,/\, \kappa(\Theta)$",
    "pred_rel_diff": r"$\|f_{\mathrm{lin}} - \hat f_{\mathrm{lin}}\|_F \,/\, \|f_{\mathrm{lin}}\|_F$",
    "acc_diff": "test accuracy (eNTK) − test accuracy (pNTK)",
    "flin_test_acc": r"test accuracy of $\hat f_{\mathrm{lin}}$ (pNTK regression)",
    "flin_minus_current": r"acc($\hat f_{\mathrm{lin}}$) − acc(network at this epoch)",
    "flin_minus_final": r"acc($\hat f_{\mathrm{lin}}$) − acc(network at the last epoch)",
    "flin_model_agreement": r"argmax agreement of $\hat f_{\mathrm{lin}}$ and the network",
    "test_acc": "test accuracy of the network",
    "train_acc": "training accuracy of the network",
}

_S = "Error bars: mean ± one standard deviation over random seeds (initialisations)."
CAPTIONS = {
    "timing": "Wall-clock seconds per pair of inputs to compute the eNTK (NO×NO) and the pNTK (N×N) "
              "of ResNets of several depths, per data set (log scale; label = eNTK/pNTK speed-up). " + _S,
    "diagonal-ratio": "Off- versus on-diagonal mass of the O×O eNTK blocks Θ(x_n, x_m) on the training "
                      "set: sqrt(Σ_nm Σ_{a≠b} Θ_ab² / Σ_nm Σ_a Θ_aa²), against readout width. " + _S,
    "frobenius-distance": "Relative Frobenius distance ‖Θ − Θ̂⊗I_O‖_F / ‖Θ‖_F between the eNTK and the "
                          "pNTK on the training set, against readout width. " + _S,
    "lambda-max": "Relative difference |λmax(Θ) − λmax(Θ̂)| / λmax(Θ) of the largest eigenvalues of the "
                  "eNTK (NO×NO) and the pNTK (N×N) on the training set. " + _S,
    "lambda-min": "Relative difference |λmin(Θ) − λmin(Θ̂)| / λmin(Θ) of the smallest eigenvalues of the "
                  "eNTK (NO×NO) and the pNTK (N×N) on the training set. " + _S,
    "condition-number": "Relative difference |κ(Θ) − κ(Θ̂)| / κ(Θ) of the condition numbers "
                        "κ = λmax/λmin of the eNTK and the pNTK on the training set. " + _S,
    "prediction-gap": "Relative difference ‖f_lin − f̂_lin‖_F / ‖f_lin‖_F of the test-set predictions of "
                      "kernel regression (linearised network) with the eNTK and with the pNTK. " + _S,
    "accuracy-gap": "Test accuracy of kernel regression with the eNTK minus that with the pNTK "
                    "(percentage points / 100). " + _S,
    "over-epochs": "The statistic of the corresponding width figure computed from checkpoints during "
                   "training (x: training epoch; one line per readout width). " + _S,
    "flin-accuracy": "Test accuracy of kernel regression (the linearised network f̂_lin at t = ∞) with the "
                     "full-data pNTK of the checkpoint at each training epoch; one line per width. " + _S,
    "training": "Test accuracy of the network itself during SGD training; one line per width. " + _S,
    "flin-minus-current": "Test accuracy of pNTK kernel regression at each checkpoint minus the test "
                          "accuracy of the network at the same checkpoint. " + _S,
    "flin-minus-final": "Test accuracy of pNTK kernel regression at each checkpoint minus the test "
                        "accuracy of the fully trained network (last epoch). " + _S,
    "rate": "Convergence rate of Theorem 1: ‖Θ − Θ̂⊗I_O‖_F / ‖Θ‖_F against readout width on log-log "
            "axes, least-squares fit log(value) = a + b·log(width) per architecture, exponent b with a "
            "95% seed-bootstrap confidence interval; dashed: reference slope −½. " + _S,
    "infinite-width": "Relative Frobenius distance of finite-width kernels of an NTK-parameterised ReLU "
                      "FCN from the analytic infinite-width NTK Θ_∞: eNTK vs Θ_∞⊗I_O, pNTK vs Θ_∞; "
                      "dashed: reference slope −½. " + _S,
}


# ----------------------------------------------------------------------------- helpers
def _check(df: pd.DataFrame, cols: Iterable[str], what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"{what}: table is missing column(s) {missing}; got {list(df.columns)}")


def _select(df: pd.DataFrame, statistic: str, what: str) -> pd.DataFrame:
    _check(df, TIDY, what)
    sub = df[df["statistic"] == statistic]
    if sub.empty:
        raise ValueError(f"{what}: no rows with statistic {statistic!r}; have {sorted(df['statistic'].unique())}")
    return sub


X_LABELS = {"readout_width": "readout width w\n(inputs of the final Linear layer)",
            "width": "width w\n(architecture width parameter)"}


def _xcol(df: pd.DataFrame) -> tuple[str, str]:
    col = "readout_width" if "readout_width" in df.columns and df["readout_width"].notna().all() else "width"
    return col, X_LABELS[col]


def _agg(df: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Mean, s.d. (ddof=1, 0 for a single seed) and count of ``value`` per group, sorted."""
    by = list(dict.fromkeys(by))  # x may be "width" itself
    g = df.groupby(by, sort=True)["value"]
    out = g.agg(mean="mean", std="std", n="count").reset_index()
    out["std"] = out["std"].fillna(0.0)
    return out


def _axes(n: int, size=(4.6, 3.6), nrows: int = 1) -> tuple[Figure, list]:
    """``nrows`` × ``n`` panels (row-major list)."""
    fig = Figure(figsize=(size[0] * n, size[1] * nrows), layout="constrained")
    return fig, list(fig.subplots(nrows, n, squeeze=False).ravel())


def _log2_x(ax, xs) -> None:
    ax.set_xscale("log", base=2)
    xs = sorted({int(x) for x in xs})
    if len(xs) <= 12:
        ax.set_xticks(xs, [str(x) for x in xs])
        ax.minorticks_off()


def _n_text(d: pd.DataFrame) -> str:
    lo, hi = int(d["n"].min()), int(d["n"].max())
    return f"{ERR} (n={lo})" if lo == hi else f"{ERR} (n={lo}–{hi})"


def _legend(fig: Figure, axes: list, title: str) -> None:
    """One legend for all panels, outside the axes on the right (labels de-duplicated)."""
    seen: dict[str, object] = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lab, h)
    fig.legend(list(seen.values()), list(seen), loc="outside right upper", title=title,
               fontsize=8, title_fontsize=8)


def _colors(keys: Iterable) -> dict:
    keys = set(keys)
    try:
        order = sorted(keys)
    except TypeError:
        order = sorted(keys, key=str)
    return {k: f"C{i % 10}" for i, k in enumerate(order)}


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


# ----------------------------------------------------------------------------- Figs 2–8
def plot_stat_vs_width(df: pd.DataFrame, statistic: str, out_stem, ylabel: str | None = None,
                       title: str = "", logy: bool = False, *, formats: Iterable[str] = FORMATS,
                       dpi: int = 150) -> list[Path]:
    """``statistic`` against readout width (log2 x), one panel per dataset, one line per (arch, epoch)."""
    sub = _select(df, statistic, "plot_stat_vs_width")
    x, xlabel = _xcol(sub)
    datasets = sorted(sub["dataset"].unique())
    fig, axes = _axes(len(datasets))
    multi_epoch = sub["epoch"].nunique() > 1
    colors = _colors(zip(sub["arch"], sub["epoch"]))
    for ax, ds in zip(axes, datasets):
        d = _agg(sub[sub["dataset"] == ds], ["arch", "epoch", x])
        for (arch, ep), g in d.groupby(["arch", "epoch"]):
            label = f"{arch}, epoch {ep}" if multi_epoch else str(arch)
            ax.errorbar(g[x], g["mean"], yerr=g["std"], marker="o", ms=4, capsize=3, label=label,
                        color=colors[(arch, ep)])
        _log2_x(ax, d[x])
        if logy:
            ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel or STAT_LABELS.get(statistic, statistic))
        ax.set_title(f"{title} — {ds}" if title else str(ds))
        ax.grid(alpha=0.3)
    _legend(fig, axes, _n_text(_agg(sub, ["dataset", "arch", "epoch", x])))
    return save_figure(fig, out_stem, formats, dpi)


# ----------------------------------------------------------------------------- rate
def plot_rate(df_rate_points: pd.DataFrame, fit_table: pd.DataFrame, out_stem,
              statistic: str = "frobenius_distance", title: str = "", *, x: str | None = None,
              formats: Iterable[str] = FORMATS, dpi: int = 150) -> list[Path]:
    """Log-log ``statistic`` vs width per arch, fitted line exp(a)·w^b, exponent ± CI, slope −½.

    ``fit_table``: one row per arch (optionally per dataset too) with columns exponent, ci_low,
    ci_high, intercept from :func:`pntk.paper.diagnostics.fit_rate` (natural logs). ``x`` names the
    column the fit used ("width" or "readout_width"); default: ``readout_width`` if the points
    carry it, else ``width``. The intercept is only meaningful on that same x.
    """
    pts = _select(df_rate_points, statistic, "plot_rate")
    _check(fit_table, ("arch", "exponent", "ci_low", "ci_high", "intercept"), "plot_rate fit_table")
    if x is None:
        x, xlabel = _xcol(pts)
    else:
        _check(pts, (x,), "plot_rate")
        xlabel = X_LABELS.get(x, x)
    keys = ["dataset", "arch"] if "dataset" in fit_table.columns else ["arch"]
    fig, (ax,) = _axes(1, (8.5, 4.4))
    d = _agg(pts, keys + [x])
    ref_anchor, ref_fitted = None, False  # (x0, y0, x1) of the −½ line: a fitted group if there is one
    for i, (key, g) in enumerate(d.groupby(keys)):
        key = key if isinstance(key, tuple) else (key,)
        color = f"C{i}"
        name = "/".join(map(str, key))
        ax.errorbar(g[x], g["mean"], yerr=g["std"], fmt="o", ms=4, capsize=3, color=color)
        row = fit_table
        for k, v in zip(keys, key):
            row = row[row[k] == v]
        if len(row):
            r = row.iloc[0]
            xx = np.geomspace(g[x].min(), g[x].max(), 50)
            ax.plot(xx, np.exp(r["intercept"]) * xx ** r["exponent"], color=color,
                    label=f"{name}: b = {r['exponent']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]")
        else:
            ax.plot([], [], "o", color=color, label=f"{name}: no fit")
        if not ref_fitted and g[x].nunique() > 1:
            ref_anchor, ref_fitted = (g[x].min(), g["mean"].iloc[0], g[x].max()), bool(len(row))
    if ref_anchor is not None:
        x0, y0, x1 = ref_anchor
        xx = np.geomspace(x0, x1, 20)
        ax.plot(xx, y0 * (xx / x0) ** -0.5, "k--", lw=1, label="reference slope −½")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(STAT_LABELS.get(statistic, statistic))
    ax.set_title(title or "Convergence rate of the pNTK (Theorem 1)")
    ax.grid(alpha=0.3, which="both")
    _legend(fig, [ax], f"fit log y = a + b log w: b [95% bootstrap CI]\npoints: {_n_text(d)}")
    return save_figure(fig, out_stem, formats, dpi)


# ----------------------------------------------------------------------------- Figs 9–12
def plot_over_epochs(df: pd.DataFrame, statistic: str, out_stem, ylabel: str | None = None,
                     title: str = "", logy: bool = False, *, formats: Iterable[str] = FORMATS,
                     dpi: int = 150) -> list[Path]:
    """``statistic`` against training epoch; panels: rows = datasets, columns = archs; lines = widths."""
    sub = _select(df, statistic, "plot_over_epochs")
    x, _ = _xcol(sub)
    datasets, archs = sorted(sub["dataset"].unique()), sorted(sub["arch"].unique())
    fig, axes = _axes(len(archs), nrows=len(datasets))
    colors = _colors(sub["width"])
    for ax, (ds, arch) in zip(axes, [(d, a) for d in datasets for a in archs]):
        d = _agg(sub[(sub["dataset"] == ds) & (sub["arch"] == arch)], ["width", x, "epoch"])
        if d.empty:
            ax.set_visible(False)
            continue
        for (w, xw), g in d.groupby(["width", x]):
            lab = f"w = {int(w)}" if x == "width" else f"w = {int(w)} (readout {int(xw)})"
            ax.errorbar(g["epoch"], g["mean"], yerr=g["std"], marker="o", ms=3, capsize=2,
                        label=lab, color=colors[w])
        if logy:
            ax.set_yscale("log")
        ax.set_xlabel("training epoch")
        ax.set_ylabel(ylabel or STAT_LABELS.get(statistic, statistic))
        ax.set_title(f"{title} — {ds}/{arch}" if title else f"{ds}/{arch}")
        ax.grid(alpha=0.3)
        ax.legend(title=_n_text(d), fontsize=7, title_fontsize=7)
    return save_figure(fig, out_stem, formats, dpi)


# ----------------------------------------------------------------------------- Fig 1
_KIND_LABELS = {"entk": "eNTK", "pntk": "pNTK", "first_logit": "first logit", "trace": "trace"}
TIMING_PREFIX = "seconds_per_pair_"


def plot_timing(df: pd.DataFrame, out_stem, title: str = "", *, formats: Iterable[str] = FORMATS,
                dpi: int = 150) -> list[Path]:
    """Grouped bars of seconds per kernel entry pair, x = arch (e.g. ResNet depth), one panel per dataset.

    Rows with statistic ``seconds_per_pair_{kind}`` (kind = entk, pntk, …); log y. When both eNTK
    and pNTK are present the eNTK/pNTK speed-up ratio of the means is printed above each group.
    """
    _check(df, TIDY, "plot_timing")
    sub = df[df["statistic"].str.startswith(TIMING_PREFIX)].copy()
    if sub.empty:
        raise ValueError(f"plot_timing: no rows with statistic '{TIMING_PREFIX}<kind>'")
    sub["kind"] = sub["statistic"].str.slice(len(TIMING_PREFIX))
    datasets = sorted(sub["dataset"].unique())
    kinds = sorted(sub["kind"].unique(), key=lambda k: (k != "entk", k != "pntk", k))
    fig, axes = _axes(len(datasets), (5.0, 3.8))
    for ax, ds in zip(axes, datasets):
        d = _agg(sub[sub["dataset"] == ds], ["arch", "kind"])
        archs = list(dict.fromkeys(sub.loc[sub["dataset"] == ds, "arch"]))  # order of appearance
        pos = np.arange(len(archs))
        bw = 0.8 / len(kinds)
        for j, kind in enumerate(kinds):
            g = d[d["kind"] == kind].set_index("arch").reindex(archs)
            ax.bar(pos + (j - (len(kinds) - 1) / 2) * bw, g["mean"], bw, yerr=g["std"], capsize=3,
                   label=_KIND_LABELS.get(kind, kind), color=f"C{j}")
        if {"entk", "pntk"} <= set(kinds):
            m = d.pivot(index="arch", columns="kind", values="mean").reindex(archs)
            for p, (e, q) in zip(pos, zip(m["entk"], m["pntk"])):
                if np.isfinite(e) and np.isfinite(q) and q > 0:
                    ax.annotate(f"×{e / q:.0f}", (p, max(e, q)), textcoords="offset points",
                                xytext=(0, 6), ha="center", fontsize=8)
        ax.set_xticks(pos, archs)
        ax.set_yscale("log")
        lo, hi = ax.get_ylim()
        ax.set_ylim(lo, hi * 2)  # head-room for the speed-up labels
        ax.set_xlabel("architecture")
        ax.set_ylabel("seconds per pair of inputs")
        ax.set_title(f"{title} — {ds}" if title else str(ds))
        ax.grid(alpha=0.3, axis="y", which="both")
    _legend(fig, axes, _n_text(_agg(sub, ["dataset", "arch", "kind"])).replace("seeds", "repeats"))
    return save_figure(fig, out_stem, formats, dpi)


# ----------------------------------------------------------------------------- infinite width
INFINITE_PREFIX = "infinite_rel_dist_"


def plot_infinite(df: pd.DataFrame, out_stem, title: str = "", *, formats: Iterable[str] = FORMATS,
                  dpi: int = 150) -> list[Path]:
    """Relative distance to the analytic NTK vs width (log-log), one line per kernel and arch.

    Rows with statistic ``infinite_rel_dist_{kind}`` from :func:`pntk.paper.infinite.infinite_distances`.
    """
    _check(df, TIDY, "plot_infinite")
    sub = df[df["statistic"].str.startswith(INFINITE_PREFIX)].copy()
    if sub.empty:
        raise ValueError(f"plot_infinite: no rows with statistic '{INFINITE_PREFIX}<kind>'")
    sub["kind"] = sub["statistic"].str.slice(len(INFINITE_PREFIX))
    x, xlabel = _xcol(sub)
    fig, (ax,) = _axes(1, (6.0, 4.4))
    d = _agg(sub, ["arch", "kind", x])
    multi_arch = d["arch"].nunique() > 1
    for (arch, kind), g in d.groupby(["arch", "kind"]):
        lab = {"entk": r"eNTK vs $\Theta_\infty \otimes I_O$", "pntk": r"pNTK vs $\Theta_\infty$"}.get(
            kind, rf"{kind} vs $\Theta_\infty$")
        ax.errorbar(g[x], g["mean"], yerr=g["std"], marker="o", ms=4, capsize=3,
                    label=f"{arch}: {lab}" if multi_arch else lab)
    first = d.sort_values(x).iloc[0]
    xx = np.geomspace(d[x].min(), d[x].max(), 20)
    ax.plot(xx, first["mean"] * (xx / first[x]) ** -0.5, "k--", lw=1, label="reference slope −½")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("relative Frobenius distance to analytic NTK")
    ax.set_title(title or "Distance to the infinite-width NTK")
    ax.grid(alpha=0.3, which="both")
    ax.legend(title=_n_text(d), fontsize=8, title_fontsize=8)
    return save_figure(fig, out_stem, formats, dpi)

"""Figs 2–8 in the paper's layout: one panel per architecture with the training epoch on x and a line per width
(as the paper draws them), and a last panel with width on x at the first and the last checkpoint, where the
width claims of claims.csv are tested. Networks at initialisation only (trained_on "init", diagnostics.at_init)
are points of the width panel at epoch 0, never of the epoch panels.

Points are checkpoints: markers joined by thin dotted lines (nothing was measured between them). A statistic whose
positive values span more than LOG_SPAN decades is drawn on a log axis, so one large value (the ConvNet's λmin)
does not flatten the rest. Runs that did not learn are grey, dashed, one line per run, left out of the means.
"""
from __future__ import annotations

from typing import Iterable

import pandas as pd
from matplotlib.ticker import MaxNLocator

from .figures import (
    FORMATS,
    NOT_LEARNED_STYLE,
    Drawn,
    aggregate,
    colors_of,
    decades_span,
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

LOG_SPAN = 1.5  # decades of positive values above which the y axis is logarithmic
POINT = dict(marker="o", ms=4, capsize=3, ls=":", lw=1)


def plot_paper_layout(df: pd.DataFrame, statistic: str, out_stem, ylabel: str | None = None, *,
                      verdicts: pd.DataFrame | None = None, formats: Iterable[str] = FORMATS, dpi: int = 150) -> Drawn:
    """``statistic`` of the diagnostics table: a panel per architecture (epoch on x, line per width, mean ± s.d.
    over seeds) and a last panel against width at the first and last checkpoint (line per architecture × epoch)."""
    sub, notes = finite_only(select(df, statistic, "plot_paper_layout"))
    ok, bad, bad_labels = split_learned(sub, verdicts)
    archs = sorted(sub["arch"].unique())
    x, xlabel = xcol(sub)
    span = decades_span(sub["value"], ratio=10**LOG_SPAN)
    logy = span is not None
    fig, axes = new_figure(len(archs) + 1, (4.2, 3.4))
    colors = colors_of(sub["width"])
    counts = []
    trained = ok[ok["trained_on"] != "init"] if "trained_on" in ok.columns else ok
    for ax, arch in zip(axes, archs, strict=False):
        d = aggregate(trained[trained["arch"] == arch], ["width", "epoch"])
        counts.append(d)
        for w, g in d.groupby("width"):
            ax.errorbar(g["epoch"], g["mean"], yerr=g["std"], color=colors[w], label=f"w = {int(w)}", **POINT)
        b = bad[bad["arch"] == arch]
        for _, g in b.sort_values("epoch").groupby(["width", "seed"]):
            ax.plot(g["epoch"], g["value"], **{**NOT_LEARNED_STYLE, "ls": "--"}, color="0.45")
        _axis(ax, logy, ylabel or statistic, f"{arch}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("training epoch")
    ax = axes[-1]
    epochs = sorted(sub["epoch"].unique())
    ends = sorted({epochs[0], epochs[-1]})
    styles = {e: ("-" if e == ends[0] else "--") for e in ends}
    arch_colors = colors_of(archs)
    width_panel = aggregate(ok[ok["epoch"].isin(ends)], ["arch", "epoch", x])
    for (arch, e), g in width_panel.groupby(["arch", "epoch"]):
        ax.errorbar(g[x], g["mean"], yerr=g["std"], marker="o", ms=4, capsize=3, ls=styles[e],
                    color=arch_colors[arch], label=f"{arch}, epoch {int(e)} ({_n_range(g['n'])})")
    log2_x(ax, sub[x])
    _axis(ax, logy, ylabel or statistic, "against width")
    ax.set_xlabel(xlabel)
    ax.legend(fontsize=7, loc="best")
    if len(bad):
        axes[0].plot([], [], **{**NOT_LEARNED_STYLE, "ls": "--"}, color="0.45",
                     label=not_learned_label(list(bad_labels.values())))
    points = n_text(pd.concat(counts) if counts else pd.DataFrame(columns=["n"]))
    shared_legend(fig, axes[:-1], points)
    if len(trained) < len(ok):
        at_init = ok[ok["trained_on"] == "init"]
        notes.append(f"the width panel's epoch 0 also holds {at_init.groupby(['arch', 'width', 'seed']).ngroups} "
                     "networks at initialisation only (diagnostics.at_init: never trained, so absent from the "
                     "epoch panels), as the width claims use them")
    if logy:
        notes.append(f"log y axis: the values span {span:.0f}×, which a linear axis would flatten")
    return Drawn(save_figure(fig, out_stem, formats, dpi), fig, statistic, points, labels_of(sub),
                 None if bad_labels is None else list(bad_labels.values()), notes)


def _n_range(n: pd.Series) -> str:
    """'n=2' or 'n=2–6': seeds per point of one line of the width panel."""
    lo, hi = int(n.min()), int(n.max())
    return f"n={lo}" if lo == hi else f"n={lo}–{hi}"


def _axis(ax, logy: bool, ylabel: str, title: str) -> None:
    if logy:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)

"""Fig 1: seconds per pair of inputs of the eNTK and the pNTK, from the timing job's per-repeat rows."""
from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd

from .figures import FORMATS, Drawn, new_figure, save_figure, shared_legend
from .timing import STATISTIC, summarize, timing_warnings

KIND_LABELS = {"entk": "eNTK", "pntk": "pNTK", "first_logit": "first logit", "trace": "trace"}


def _repeats_text(summary: pd.DataFrame) -> str:
    lo, hi = int(summary["n_repeats"].min()), int(summary["n_repeats"].max())
    return f"n={lo}" if lo == hi else f"n={lo}–{hi}"


def _setup_text(summary: pd.DataFrame) -> str:
    """Threads, device, torch, method, input and parameter counts: what the seconds depend on."""
    one = lambda col: ", ".join(str(v) for v in dict.fromkeys(summary[col]))  # noqa: E731
    sizes = dict(zip(summary["arch"], summary["n_params"], strict=True))
    params = ", ".join(f"{a} {n / 1e6:.1f}M" for a, n in sizes.items())
    return (f"{one('threads')} torch thread(s) on {one('device')} ({one('device_name')}), torch "
            f"{one('torch_version')}, method {one('method')}, input {one('input_shape')} from {one('dataset')}; "
            f"parameters: {params}")


def plot_timing(rows: pd.DataFrame, out_stem, title: str = "", *, formats: Iterable[str] = FORMATS,
                dpi: int = 150) -> Drawn:
    """Grouped bars per arch (ordered by depth), one panel per dataset, log y: bar = minimum wall-clock
    seconds over the repeats, whiskers = min–max, black tick = median, × = minimum CPU time of the same
    calls (one thread only: there it is the undisturbed cost). Above each group: eNTK/pNTK ratio of minima."""
    summary = summarize(rows)
    kinds = sorted(summary["kind"].unique(), key=lambda k: (k != "entk", k != "pntk", k))
    datasets = sorted(summary["dataset"].unique())
    fig, axes = new_figure(len(datasets), (5.4, 3.9))
    for ax, ds in zip(axes, datasets, strict=True):
        d = summary[summary["dataset"] == ds]
        archs = list(dict.fromkeys(d.sort_values("depth")["arch"]))
        pos = np.arange(len(archs))
        bw = 0.8 / len(kinds)
        for j, kind in enumerate(kinds):
            g = d[d["kind"] == kind].set_index("arch").reindex(archs)
            at = pos + (j - (len(kinds) - 1) / 2) * bw
            ax.bar(at, g[STATISTIC], bw, yerr=[np.zeros(len(g)), g["max"] - g["min"]], capsize=3,
                   label=KIND_LABELS.get(kind, kind), color=f"C{j}", error_kw={"lw": 1})
            ax.plot(at, g["median"], ls="none", marker="_", ms=10, mew=1.5, color="k",
                    label="median of the repeats")
            one = g["threads"] == 1
            ax.plot(at[one.to_numpy()], g.loc[one, "cpu_min"], ls="none", marker="x", ms=5, color="0.3",
                    label="CPU time (min, one thread)")
        ratio = d[d["kind"] == "entk"].set_index("arch")["ratio_entk_pntk"].reindex(archs)
        top = d.groupby("arch")["max"].max().reindex(archs)
        for p, r, t in zip(pos, ratio, top, strict=True):
            if np.isfinite(r):
                ax.annotate(f"eNTK/pNTK ×{r:.1f}", (p, t), textcoords="offset points", xytext=(0, 5),
                            ha="center", fontsize=7)
        ax.set_xticks(pos, archs)
        ax.set_yscale("log")
        shown = pd.concat([d["cpu_min"][d["threads"] == 1], d["min"]])
        ax.set_ylim(shown.min() / 1.6, d["max"].max() * 3)  # every marker inside; head-room for the ratios
        ax.set_xlabel("torchvision ResNet at initialisation")
        ax.set_ylabel("wall-clock seconds per pair of inputs")
        ax.set_title(f"{title} — {ds}" if title else str(ds))
        ax.grid(alpha=0.3, axis="y", which="both")
    points = f"minimum wall-clock over {_repeats_text(summary)} repeats; whiskers min–max"
    shared_legend(fig, axes, f"bar: {points}", loc="outside lower center", ncols=2)
    labels = {"arch": list(dict.fromkeys(summary.sort_values("depth")["arch"]))}
    return Drawn(save_figure(fig, out_stem, formats, dpi), fig, f"seconds ({STATISTIC})", points, labels,
                 notes=[_setup_text(summary), "the repeats interleave depths and kinds after one warm-up call each"],
                 warnings=timing_warnings(summary))

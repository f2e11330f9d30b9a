"""Fig 1: seconds per pair of inputs of the eNTK and the pNTK, from the timing job's per-repeat rows."""
from __future__ import annotations

import textwrap
from typing import Iterable

import numpy as np
import pandas as pd

from ..analysis.timing import STATISTIC, summarize, timing_warnings
from .figures import FORMATS, Drawn, new_figure, save_figure, shared_legend

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


MEASURES = {"cpu": ("CPU time of the one-thread call (its wall-clock on an idle core)", "CPU seconds per pair"),
            "wall": ("wall-clock", "wall-clock seconds per pair")}


def plot_timing(rows: pd.DataFrame, out_stem, title: str = "", *, formats: Iterable[str] = FORMATS,
                dpi: int = 150) -> Drawn:
    """Grouped bars per arch (ordered by depth), one panel per dataset, log y: bar = minimum over the repeats
    of the measure (:func:`pntk.analysis.timing.measure_of`: CPU time for one thread on a CPU, else wall-clock),
    whiskers = min–max, black tick = median, grey dot = wall-clock minimum where the bars are CPU time (how
    much the shared cores delayed the calls). Under each group's name: the eNTK/pNTK ratio of the minima."""
    summary = summarize(rows)
    kinds = sorted(summary["kind"].unique(), key=lambda k: (k != "entk", k != "pntk", k))
    datasets = sorted(summary["dataset"].unique())
    measure = summary["measure"].iloc[0]  # one per table (measure_of)
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
            ax.plot(at, g["median"], ls="none", marker="_", ms=10, mew=1.5, color="k", label="median of the repeats")
            if measure == "cpu":
                ax.plot(at, g["wall_min"], ls="none", marker="o", ms=4, color="0.45",
                        label="wall-clock (min): delayed by other processes")
        ratio = d[d["kind"] == "entk"].set_index("arch")["ratio_entk_pntk"].reindex(archs)
        ax.set_xticks(pos, [a + (f"\neNTK/pNTK ×{r:.1f}" if np.isfinite(r) else "")
                            for a, r in zip(archs, ratio, strict=True)])
        ax.set_yscale("log")
        top = d[["max", "wall_min"]].to_numpy().max()
        ax.set_ylim(d["min"].min() / 1.6, top * 1.6)  # every marker inside
        ax.set_xlabel("torchvision ResNet at initialisation")
        ax.set_ylabel(f"{MEASURES[measure][1]} of inputs")
        ax.set_title(f"{title} — {ds}" if title else str(ds))
        ax.grid(alpha=0.3, axis="y", which="both")
    points = f"minimum {MEASURES[measure][0]} over {_repeats_text(summary)} repeats; whiskers min–max"
    shared_legend(fig, axes, textwrap.fill(f"bar: {points}", 60), loc="outside lower center", ncols=2)
    labels = {"arch": list(dict.fromkeys(summary.sort_values("depth")["arch"]))}
    return Drawn(save_figure(fig, out_stem, formats, dpi), fig, f"{measure} seconds ({STATISTIC})", points, labels,
                 notes=[_setup_text(summary), "the repeats interleave depths and kinds after one warm-up call each"],
                 warnings=timing_warnings(summary))

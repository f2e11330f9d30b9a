"""Kernel timing on torchvision ResNets (paper Fig 1): every repeat kept, summarised, checked for sense.

How it measures (so that "seconds per pair" means one number on any machine):

* one pair of inputs (x[0], x[1]); the eNTK is its O×O block, the pNTK one value;
* the torch thread count is fixed by the caller (the rule's threads) and recorded with every row;
* every model is built and every (depth, kind) is called once before timing (allocations, lazy init);
* then ``repeats`` rounds, each timing every (depth, kind) once, in an order rotated per round, so
  that a burst of load from other processes hits all depths and both kinds alike, not one bar;
* wall-clock (perf_counter) and CPU time (process_time) of every call are kept. The figure's statistic
  is the minimum over the repeats (the least disturbed measurement); median and max show the spread.
  The measure is CPU time for one thread on a CPU: that is the call's wall-clock on an idle core, and it
  stays put when other processes share the cores (on 2 shared cores wall-clock minima moved 2× between
  runs, CPU-time minima ~10 %). With several threads or a GPU it is wall-clock (:func:`measure_of`).

:func:`timing_warnings` names what makes a timing untrustworthy: a wide spread, a time that does not rise
with depth, an eNTK no slower than the pNTK, a busy machine.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..layout import Layout
from ..provenance import machine_description

log = logging.getLogger(__name__)

COLUMNS = ["dataset", "arch", "depth", "kind", "repeat", "seconds", "cpu_seconds", "threads", "device",
           "device_name", "torch_version", "n_params", "method", "input_shape"]
RUN_COLUMNS = ["dataset", "arch", "depth", "kind", "threads", "device", "device_name", "torch_version", "n_params",
               "method", "input_shape"]
SUMMARY_COLUMNS = RUN_COLUMNS + ["n_repeats", "measure", "min", "median", "max", "spread", "wall_min", "wall_median",
                                 "wall_max", "cpu_min", "cpu_median", "cpu_max", "ratio_entk_pntk"]
STATISTIC = "min"  # what Fig 1 plots: the minimum over the repeats of the measure (module doc)
MAX_SPREAD = 0.25  # (median − min) / min above this: the repeats disagree
BUSY_FACTOR = 1.5  # wall-clock min above this × CPU-time min (one thread): the cores were shared


def timing_paths(results: str | Path, dataset: str) -> dict[str, str]:
    """Per-repeat rows and their summary (the timing rule's outputs; pntk.layout.Layout.timing)."""
    return Layout(results).timing(dataset)


def torchvision_resnet(depth: int, in_channels: int, num_classes: int):
    """torchvision ResNet-{depth} (ImageNet layout) with its stem adapted to `in_channels`."""
    import torch
    import torchvision

    model = getattr(torchvision.models, f"resnet{depth}")(weights=None, num_classes=num_classes)
    if in_channels != 3:
        old = model.conv1
        model.conv1 = torch.nn.Conv2d(in_channels, old.out_channels, old.kernel_size, old.stride, old.padding,
                                      bias=False)
    return model.eval()


def _device_name(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))

    return machine_description().rsplit(",", 1)[0]  # the CPU model; threads are a column of their own


def time_kernels(x: np.ndarray, num_classes: int, depths: list[int], *, dataset: str, method: str = "auto",
                 repeats: int = 7, device: str = "cpu", kinds=("entk", "pntk")) -> pd.DataFrame:
    """One row per (depth, kind, repeat): seconds (wall) and cpu_seconds of one kernel call on (x[0], x[1])."""
    import torch

    from ..kernels import empirical_kernel

    if repeats < 1:
        raise ValueError(f"timing.repeats: expected at least 1, got {repeats}")
    cuda = device.startswith("cuda")
    x1 = torch.as_tensor(x[0:1], device=device)  # (1, C, H, W)
    x2 = torch.as_tensor(x[1:2], device=device)  # (1, C, H, W)
    models, runs = {}, {}
    for depth in depths:
        torch.manual_seed(0)
        models[depth] = torchvision_resnet(depth, x.shape[1], num_classes).to(device)
        common = {"dataset": dataset, "arch": f"resnet{depth}", "depth": depth, "threads": torch.get_num_threads(),
                  "device": device, "device_name": _device_name(device), "torch_version": torch.__version__,
                  "n_params": sum(p.numel() for p in models[depth].parameters()), "method": method,
                  "input_shape": "×".join(str(s) for s in x.shape[1:])}
        for kind in kinds:
            runs[depth, kind] = {**common, "kind": kind}
            empirical_kernel(models[depth], x1, x2, kind=kind, method=method)  # warm-up, not timed
    order, rows = list(runs), []
    for r in range(repeats):
        for depth, kind in order[r % len(order):] + order[:r % len(order)]:  # rotated: no fixed position
            if cuda:
                torch.cuda.synchronize()
            t0, c0 = time.perf_counter(), time.process_time()
            empirical_kernel(models[depth], x1, x2, kind=kind, method=method)
            if cuda:
                torch.cuda.synchronize()
            rows.append({**runs[depth, kind], "repeat": r, "seconds": time.perf_counter() - t0,
                         "cpu_seconds": time.process_time() - c0})
    return pd.DataFrame(rows, columns=COLUMNS)


def measure_of(rows: pd.DataFrame) -> str:
    """What Fig 1 plots: CPU time when every call ran one thread on a CPU (its wall-clock on an idle core,
    whatever else the shared cores ran meanwhile), else wall-clock (CPU time adds up over threads and misses
    the GPU). One measure per table, so that bars and ratios compare like with like."""
    one_cpu_thread = (rows["threads"].astype(int) == 1) & (rows["device"].astype(str) == "cpu")
    return "cpu" if bool(one_cpu_thread.all()) else "wall"


def summarize(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, arch, kind): n_repeats; min/median/max of the plotted measure (:func:`measure_of`) and
    spread = (median − min) / min; wall-clock and CPU min/median/max; on every row of an arch the
    eNTK/pNTK ratio of the plotted minima."""
    missing = [c for c in COLUMNS if c not in rows.columns]
    if missing:
        raise ValueError(f"timing table: missing column(s) {missing}; expected {COLUMNS}")
    g = rows.groupby(RUN_COLUMNS, sort=False, dropna=False)
    out = g["seconds"].agg(n_repeats="count", wall_min="min", wall_median="median", wall_max="max").reset_index()
    cpu = g["cpu_seconds"].agg(cpu_min="min", cpu_median="median", cpu_max="max").reset_index(drop=True)
    out = pd.concat([out, cpu], axis=1)
    out["measure"] = measure = measure_of(rows)
    for stat in ("min", "median", "max"):
        out[stat] = out[f"{measure}_{stat}"]
    out["spread"] = (out["median"] - out["min"]) / out["min"]
    mins = out.pivot_table(index=["dataset", "arch"], columns="kind", values="min")
    ratio = (mins["entk"] / mins["pntk"]) if {"entk", "pntk"} <= set(mins.columns) else None
    out["ratio_entk_pntk"] = [np.nan if ratio is None else ratio.get((d, a), np.nan)
                              for d, a in zip(out["dataset"], out["arch"], strict=True)]
    return out.sort_values(["dataset", "depth", "kind"], kind="stable")[SUMMARY_COLUMNS].reset_index(drop=True)


def timing_warnings(summary: pd.DataFrame, *, max_spread: float = MAX_SPREAD,
                    busy_factor: float = BUSY_FACTOR) -> list[str]:
    """Why the timings should not be trusted as they stand (empty list: they look consistent)."""
    out = []
    for row in summary.itertuples():
        if row.spread > max_spread:
            out.append(f"{row.arch} {row.kind}: median {row.median:.3g} s is {row.spread:.0%} above the minimum "
                       f"{row.min:.3g} s ({row.measure}) over {row.n_repeats} repeats (more than {max_spread:.0%}): "
                       "noisy timing")
    for (ds, kind), g in summary.groupby(["dataset", "kind"]):
        pairs = list(g.sort_values("depth")[["arch", STATISTIC]].itertuples(index=False))
        for (a, ta), (b, tb) in zip(pairs, pairs[1:], strict=False):
            if not tb > ta:
                out.append(f"{ds} {kind}: {b} ({tb:.3g} s) is not slower than {a} ({ta:.3g} s); "
                           "per-pair time should rise with depth")
    for row in summary[summary["kind"] == "entk"].itertuples():
        if not row.ratio_entk_pntk > 1:
            out.append(f"{row.arch}: eNTK ({row.min:.3g} s) is not slower than the pNTK "
                       f"(ratio {row.ratio_entk_pntk:.3g})")
    cpu = summary[summary["measure"] == "cpu"]
    busy = cpu[cpu["wall_min"] > busy_factor * cpu["cpu_min"]]
    if len(busy):
        worst = (busy["wall_min"] / busy["cpu_min"]).max()
        out.append(f"the cores were shared: wall-clock minima are up to {worst:.1f}× the CPU time of the same "
                   f"one-thread calls ({len(busy)} of {len(cpu)} bars, which show CPU time); wall-clock "
                   "timings of this run would mislead")
    return out

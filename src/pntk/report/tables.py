"""Tidy tables aggregated over runs: one row per run × epoch × statistic, seed and trained_on as columns.

Every row also carries the readout width and `learned`, its run's verdict (pntk.report.verdicts): whether
the network learned by the end of training; rate.csv's `learned` says whether every run of the fit did. Rows of
networks at initialisation only (trained_on "init", diagnostics.at_init) have no training to fail: learned is
True.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..analysis.diagnostics import TIDY_COLUMNS, tidy_rows
from ..runs import Run
from .claim_tests import slope_fit
from .verdicts import run_verdicts, with_learned

RATE_STATISTIC = "frobenius_distance"
RATE_COLUMNS = ["dataset", "arch", "epoch", "statistic", "readout_widths", "n_seeds", "exponent", "ci_low",
                "ci_high", "intercept", "n_points", "n_widths", "df", "level", "method", "learned"]
# of diagnostics, regression and training.csv; trained_on: "train" (the train split), "D" or "init" (pntk.runs.Run)
COLUMNS = list(TIDY_COLUMNS) + ["trained_on", "readout_width", "learned"]


def with_readout_width(df: pd.DataFrame, readout_widths: dict | None = None) -> pd.DataFrame:
    """Add the readout width (the w of Theorem 1) next to the architecture's width parameter.

    `readout_widths`: {arch name: {width: readout width}} read from the models
    (`pntk.config.readout_widths`); a run not in it (or a model without a Linear readout) gets NaN."""
    df = df.copy()
    rw = readout_widths or {}
    df["readout_width"] = pd.array([rw.get(a, {}).get(int(w)) for a, w in zip(df.arch, df.width)], dtype="Int64")
    return df


def diagnostics_table(paths: list[str | Path], verdicts: pd.DataFrame, readout_widths: dict | None = None
                      ) -> pd.DataFrame:
    """Figs 2–8: every statistic of every diagnostics.json. ``verdicts``: :func:`run_verdicts` of the runs."""
    rows = []
    for p in paths:
        rec = json.loads(Path(p).read_text())
        for net in rec.get("networks", [rec]):  # a diagnose_at_init file lists its networks
            rows += tidy_rows(net["meta"], net["stats"])
    return _finish(pd.DataFrame(rows, columns=list(TIDY_COLUMNS) + ["trained_on"]), verdicts, readout_widths)


def _finish(df: pd.DataFrame, verdicts: pd.DataFrame, readout_widths: dict | None) -> pd.DataFrame:
    if "trained_on" not in df.columns:
        df = df.assign(trained_on="train")
    return with_learned(with_readout_width(df, readout_widths), verdicts)[COLUMNS]


def training_table(log_paths: list[str | Path], verdicts: pd.DataFrame | None = None,
                   readout_widths: dict | None = None) -> pd.DataFrame:
    """Fig 10: the SGD model's metrics through training, from every run's train_log.csv."""
    verdicts = run_verdicts(log_paths) if verdicts is None else verdicts
    frames = []
    for p in log_paths:
        df = pd.read_csv(p)
        meta = Run.of_path(p).meta()
        long = df.melt(id_vars=["epoch"], value_vars=["train_loss", "train_acc", "test_loss", "test_acc", "lr"],
                       var_name="statistic", value_name="value")
        for k, v in meta.items():
            long[k] = v
        frames.append(long)
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    return _finish(pd.concat(frames, ignore_index=True)[list(TIDY_COLUMNS) + ["trained_on"]], verdicts,
                   readout_widths)


def regression_table(paths: list[str | Path], training: pd.DataFrame, verdicts: pd.DataFrame,
                     readout_widths: dict | None = None) -> pd.DataFrame:
    """Figs 9, 11, 12: f̂_lin accuracy, minus the current model's, minus the final model's."""
    final = (training[training.statistic == "test_acc"].sort_values("epoch")
             .groupby(["dataset", "arch", "width", "seed", "trained_on"]).value.last())
    rows = []
    for p in paths:
        rec = json.loads(Path(p).read_text())
        m = rec["meta"]
        key = (m["dataset"], m["arch"], int(m["width"]), int(m["seed"]), m.get("trained_on", "train"))
        stats = {"flin_test_acc": rec["flin_test_acc"], "model_test_acc": rec["model_test_acc"],
                 "flin_minus_current": rec["flin_test_acc"] - rec["model_test_acc"],
                 "flin_minus_final": rec["flin_test_acc"] - float(final.get(key, np.nan)),
                 "flin_model_agreement": rec["flin_model_agreement"]}
        solver = rec.get("solver", {})
        if "ridge" in solver:  # the λ the solve used, and the config's number when it was relative
            stats["ridge"] = float(solver["ridge"])
            if solver.get("ridge_scale") == "mean_diagonal":
                stats["ridge_relative"] = float(solver["ridge_given"])
        rows += tidy_rows(m, stats)
    return _finish(pd.DataFrame(rows, columns=list(TIDY_COLUMNS) + ["trained_on"]), verdicts, readout_widths)


def rate_table(diag: pd.DataFrame, epoch: int = 0) -> pd.DataFrame:
    """Theorem 1: exponent of the Fig 3 distance against readout width, per architecture, at `epoch`, over
    every run (as Fig P1 draws it): least squares with a per-seed intercept and its 95% t-interval
    (pntk.report.claim_tests.slope_fit); `learned` is False when a run of the fit did not learn."""
    rows = []
    sel = diag[(diag.statistic == RATE_STATISTIC) & (diag.epoch == epoch) & diag.readout_width.notna()]
    for (dataset, arch), g in sel.groupby(["dataset", "arch"]):
        fit = slope_fit(g.readout_width.to_numpy(float), g.value.to_numpy(float), g.seed.to_numpy())
        if fit is None:
            continue
        rows.append({"dataset": dataset, "arch": arch, "epoch": epoch, "statistic": RATE_STATISTIC,
                     "readout_widths": " ".join(str(w) for w in sorted(g.readout_width.unique())),
                     "n_seeds": int(g.seed.nunique()), "exponent": fit.slope, "ci_low": fit.ci_low,
                     "ci_high": fit.ci_high, "intercept": fit.intercept, "n_points": fit.n_points,
                     "n_widths": fit.n_widths, "df": fit.df, "level": 0.95, "method": fit.method,
                     "learned": bool(g.learned.all())})
    return pd.DataFrame(rows, columns=RATE_COLUMNS)

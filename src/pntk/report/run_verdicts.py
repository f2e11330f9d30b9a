"""Which runs learned, as the figures read it from the tidy tables.

The tables job writes a boolean ``learned`` column (the run's verdict at its last checkpoint, decided by
:func:`pntk.train.learned.did_learn`) on every per-run row, and training.csv carries each run's test accuracy
per epoch. This module only reads them: it never decides a verdict itself. A table without the column
gives no verdict (``learned`` NaN), and the figures say so in their captions.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..runs import Run

RUN = ["dataset", "arch", "width", "seed", "trained_on"]
_TRUE, _FALSE = {"true", "1", "1.0", "yes"}, {"false", "0", "0.0", "no"}


def as_verdict(values: pd.Series) -> pd.Series:
    """A CSV's learned column (bool, 'True'/'False', 0/1, empty) as True / False / NaN (unknown)."""
    def one(v):
        s = str(v).strip().lower()
        return True if s in _TRUE else False if s in _FALSE else np.nan
    return values.map(one).astype(object)


def run_verdicts(*tables: pd.DataFrame | None) -> pd.DataFrame:
    """One row per run (index RUN): ``learned`` (True / False / NaN) and ``test_acc`` (last epoch's, NaN if
    no table has it), from the ``learned`` column of any table and the test_acc rows of training.csv."""
    learned, acc = [], []
    for t in tables:
        if t is not None and not t.empty and "trained_on" not in t.columns:
            t = t.assign(trained_on="train")  # a table of an older pntk: every run trained on the train split
        if t is None or t.empty or not set(RUN) <= set(t.columns):
            continue
        last = t.sort_values("epoch", kind="stable") if "epoch" in t.columns else t
        if "learned" in t.columns:
            known = last.assign(learned=as_verdict(last["learned"])).dropna(subset=["learned"])
            learned.append(known.groupby(RUN)["learned"].last())
        if {"statistic", "value"} <= set(t.columns):
            acc.append(last[last["statistic"] == "test_acc"].groupby(RUN)["value"].last().rename("test_acc"))
    out = pd.DataFrame(index=pd.MultiIndex.from_tuples([], names=RUN), columns=["learned", "test_acc"])
    if learned:
        out = out.combine_first(pd.concat(learned).groupby(level=RUN).last().to_frame())
    if acc:
        out = out.combine_first(pd.concat(acc).groupby(level=RUN).last().to_frame())
    out["learned"] = out["learned"].astype(object)
    return out[["learned", "test_acc"]]


def has_verdicts(verdicts: pd.DataFrame | None) -> bool:
    return verdicts is not None and bool(verdicts["learned"].notna().any())


def run_label(key, test_acc: float | None = None) -> str:
    """'fcn-w64-s1 (test acc 0.11)' for a RUN key tuple."""
    acc = "" if test_acc is None or not np.isfinite(test_acc) else f" (test acc {test_acc:.2f})"
    return f"{Run.of_row(dict(zip(RUN, key))).leaf}{acc}"


def split_learned(df: pd.DataFrame, verdicts: pd.DataFrame | None
                  ) -> tuple[pd.DataFrame, pd.DataFrame, dict[tuple, str] | None]:
    """(rows of runs that learned or have no verdict, rows of runs that did not learn, {RUN key: label} of
    the latter — None when there is no verdict at all, so that a caption cannot claim every run learned)."""
    if "trained_on" not in df.columns:
        df = df.assign(trained_on="train")
    if not has_verdicts(verdicts):
        return df, df.iloc[:0], None
    keys = pd.MultiIndex.from_frame(df[RUN].astype({"width": int, "seed": int}))
    failed = (verdicts["learned"].reindex(keys) == False).to_numpy()  # noqa: E712 (object: True/False/NaN)
    bad_keys = sorted(set(keys[failed].tolist()))
    return df[~failed], df[failed], {k: run_label(k, verdicts.loc[k, "test_acc"]) for k in bad_keys}

"""One row of claims.csv and the helpers every claims_* module shares: below them all, so that claims.py can
import each family at the top (they used to import claims.py back, a circle).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..runs import Run
from .claim_sources import source_of
from .decide import INCONCLUSIVE, UNTESTABLE, Decision, untestable

COLUMNS = ["id", "origin", "source", "quote", "statement", "test", "verdict", "numbers", "detail"]


@dataclass
class ClaimInputs:
    """The tables the claims read; a string instead of a table says why there is none."""
    diagnostics: pd.DataFrame | str
    regression: pd.DataFrame | str
    infinite: pd.DataFrame | str
    active: pd.DataFrame | str
    active_verdicts: pd.DataFrame | None = None  # pntk.report.verdicts.active_verdicts of `active`
    training: pd.DataFrame | str = "no training table"
    infinite_regression: dict | str = "no infinite-width regression"  # {arch: NTK∞ regression's test accuracy,
    #                                                                     or why it was skipped}
    timing: pd.DataFrame | str = "timing disabled (timing.enabled)"
    n_test: int = 0  # test examples of the full-data regression (Figs 9–12)
    n_test_subset: int = 0  # test examples of X (Figs 7–8)
    active_meta: dict = field(default_factory=dict)  # per-seed extras of the active-learning jobs


def claim(cid: str, statement: str, test: str, decision: Decision, *extra: str) -> dict:
    """One row of claims.csv: the source of `cid`'s family, the run's statement and test, the decision."""
    src = source_of(cid)
    settle = (f"to decide: {decision.settle}" if decision.settle and decision.verdict in (INCONCLUSIVE, UNTESTABLE)
              else "")
    return dict(id=cid, origin=src.origin, source=src.where, quote=src.quote, statement=statement, test=test,
                verdict=decision.verdict, numbers=decision.numbers, detail=join(decision.why, settle, *extra))


def join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def split_learned(df: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """(rows of runs that learned, "left out (did not learn): fcn-w64-s0, …" or "")."""
    if "learned" not in df.columns:
        raise ValueError(f"claims: table without a `learned` column (columns {list(df.columns)}); "
                         "write it with pntk.report.tables")
    ok = df.learned.astype(bool)
    bad = sorted({Run.of_row(r).leaf for r in df[~ok].itertuples()})
    return df[ok], (f"left out (did not learn): {', '.join(bad)}" if bad else "")


def at_epoch(df: pd.DataFrame, statistic: str, epoch: int) -> pd.DataFrame:
    return df[(df.statistic == statistic) & (df.epoch == epoch)]


def width_means(rows: pd.DataFrame, x: str = "width") -> str:
    """'w=64: 0.242, 128: 0.228 (mean of 2 seeds)' from rows with x, seed, value."""
    if rows.empty:
        return ""
    m = rows.groupby(x).value.mean()
    n = rows.groupby(x).seed.nunique()
    seeds = f"{n.min()}" if n.min() == n.max() else f"{n.min()}–{n.max()}"
    body = ", ".join(f"{'w=' if i == 0 else ''}{w:g}: {v:.3g}" for i, (w, v) in enumerate(m.items()))
    return f"{body} (mean of {seeds} seed{'s' if n.max() > 1 else ''})"


def finite_rows(rows: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    good = rows[np.isfinite(rows.value.astype(float))]
    return good, (f"{len(rows) - len(good)} non-finite value(s) left out" if len(good) < len(rows) else "")


def missing(cids, why: str, settle: str = "") -> list[dict]:
    """Not-testable rows for claim ids whose input this run does not produce: the quote stands untested."""
    return [claim(c, "The quoted sentence (not tested: this run lacks the input).", "—", untestable(why, settle))
            for c in cids]

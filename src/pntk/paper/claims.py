"""claims.csv: each claim of the paper and thesis (and the project's own checks, labelled as such), the
sentence it tests, and a verdict from this run's own tables.

Columns (:data:`COLUMNS`, a contract with the report and `pntk claims`):

    id         family[:qualifier], e.g. fig3-norm-width:fcn (families: pntk.paper.claim_sources)
    origin     paper | thesis | project
    source     where in the source: section, figure, theorem
    quote      the sentence tested, verbatim (project claims: the textbook result they check)
    statement  what the run checks, in its own words
    test       the statistic and the decision rule
    verdict    holds | does not hold | inconclusive | not testable (pntk.paper.decide)
    numbers    the numbers behind the verdict
    detail     why (when it does not plainly hold), what would decide it, and runs left out

Rows of runs that did not learn (the tables' `learned` column, pntk.paper.verdicts) are left out of every test
and named in `detail`; active-learning seeds that ended near chance likewise. The claims live in
claims_kernel (Figs 2–8 and the eNTK's structure), claims_rate (rates in the width), claims_regression
(Figs 9–12, §5, Fig 1) and claims_active (thesis, look-ahead active learning).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..runs import Run
from .claim_sources import source_of
from .decide import FAILS, HOLDS, INCONCLUSIVE, UNTESTABLE, VERDICTS, Decision, untestable

COLUMNS = ["id", "origin", "source", "quote", "statement", "test", "verdict", "numbers", "detail"]
__all__ = ["COLUMNS", "VERDICTS", "HOLDS", "FAILS", "INCONCLUSIVE", "UNTESTABLE", "ClaimInputs", "claims_table",
           "format_claims", "absent_tables"]


@dataclass
class ClaimInputs:
    """The tables the claims read; a string instead of a table says why there is none."""
    diagnostics: pd.DataFrame | str
    regression: pd.DataFrame | str
    infinite: pd.DataFrame | str
    active: pd.DataFrame | str
    active_verdicts: pd.DataFrame | None = None  # pntk.paper.verdicts.active_verdicts of `active`
    training: pd.DataFrame | str = "no training table"
    infinite_regression: dict | str = "no infinite-width regression"  # {arch: test accuracy of NTK∞ regression}
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
                         "write it with pntk.paper.tables")
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


# ----------------------------------------------------------------------------- the table
def absent_tables(config: dict) -> dict[str, str]:
    """Table → why a (validated) workflow config produces none; the claims needing it are `not testable`."""
    from ..config import has_full_pntk

    why = {"diagnostics": None if config["diagnostics"]["enabled"] else "diagnostics disabled (diagnostics.enabled)",
           "regression": None if has_full_pntk(config) else "no full-data pNTK (kernels.index_sets.pntk needs "
                                                              "[train, train] and [test, train])",
           "infinite": None if config["infinite"]["enabled"] else "infinite-width comparison disabled "
                                                                  "(infinite.enabled)",
           "timing": None if config["timing"]["enabled"] else "timing disabled (timing.enabled)",
           "active": None if config["active"]["enabled"] else "active learning disabled (active.enabled)"}
    return {k: v for k, v in why.items() if v}


def claims_table(inputs: ClaimInputs) -> pd.DataFrame:
    """claims.csv: every claim, each with its verdict (module doc)."""
    from .claims_active import active_claims
    from .claims_kernel import kernel_claims
    from .claims_rate import infinite_claims, rate_claims
    from .claims_regression import regression_claims, timing_claims

    rows = timing_claims(inputs.timing)
    rows += kernel_claims(inputs)
    rows += rate_claims(inputs.diagnostics)
    rows += regression_claims(inputs)
    rows += infinite_claims(inputs.infinite)
    rows += active_claims(inputs)
    df = pd.DataFrame(rows, columns=COLUMNS)
    dup = df.id[df.id.duplicated()].tolist()
    if dup:
        raise ValueError(f"claims: duplicate ids {dup}")
    return df


def format_claims(df: pd.DataFrame, width: int = 100) -> str:
    """Aligned text table (id, verdict, numbers) for `pntk claims`, wrapped to ``width`` columns; the detail
    follows the numbers in brackets when the claim does not plainly hold or runs were left out."""
    import textwrap

    wid = max([len("id")] + [len(str(i)) for i in df.id])
    ver = max(len(v) for v in VERDICTS)
    lines = [f"{'id':<{wid}}  {'verdict':<{ver}}  numbers", f"{'-' * wid}  {'-' * ver}  {'-' * 7}"]
    room = max(30, width - wid - ver - 4)
    for r in df.itertuples(index=False):
        text = str(r.numbers or "")
        if r.detail and (r.verdict != HOLDS or "left out" in r.detail):  # why not, and who was left out
            text = f"{text} ({r.detail})" if text else str(r.detail)
        parts = textwrap.wrap(text, room) or [""]
        lines.append(f"{r.id:<{wid}}  {r.verdict:<{ver}}  {parts[0]}")
        lines += [f"{'':<{wid}}  {'':<{ver}}  {p}" for p in parts[1:]]
    counts = df.verdict.value_counts()
    lines.append(", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS))
    return "\n".join(lines)


def missing(cids, why: str, settle: str = "") -> list[dict]:
    """Not-testable rows for claim ids whose input this run does not produce: the quote stands untested."""
    return [claim(c, "The quoted sentence (not tested: this run lacks the input).", "—", untestable(why, settle))
            for c in cids]

"""claims.csv: each claim of the paper and thesis (and the project's own checks, labelled as such), the
sentence it tests, and a verdict from this run's own tables.

Columns (:data:`COLUMNS`, a contract with the report and `pntk claims`):

    id         family[:qualifier], e.g. fig3-norm-width:fcn (families: pntk.report.claim_sources)
    origin     paper | thesis | project
    source     where in the source: section, figure, theorem
    quote      the sentence tested, verbatim (project claims: the textbook result they check)
    statement  what the run checks, in its own words
    test       the statistic and the decision rule
    verdict    holds | does not hold | inconclusive | not testable (pntk.report.decide)
    numbers    the numbers behind the verdict
    detail     why (when it does not plainly hold), what would decide it, and runs left out

Rows of runs that did not learn (the tables' `learned` column, pntk.report.verdicts) are left out of every test
and named in `detail`; active-learning seeds that ended near chance likewise. The claims live in
claims_kernel (Figs 2–8 and the eNTK's structure), claims_rate (rates in the width), claims_regression
(Figs 9–12, §5, Fig 1) and claims_active (thesis, look-ahead active learning); the row they all write,
and their shared helpers, in claim_rows.
"""
from __future__ import annotations

import pandas as pd

from ..config import has_full_pntk
from .claim_rows import COLUMNS, ClaimInputs
from .claims_active import active_claims
from .claims_kernel import kernel_claims
from .claims_rate import infinite_claims, rate_claims
from .claims_regression import regression_claims, timing_claims
from .decide import FAILS, HOLDS, INCONCLUSIVE, UNTESTABLE, VERDICTS

__all__ = ["COLUMNS", "VERDICTS", "HOLDS", "FAILS", "INCONCLUSIVE", "UNTESTABLE", "ClaimInputs", "claims_table",
           "format_claims", "absent_tables"]


# ----------------------------------------------------------------------------- the table
def absent_tables(config: dict) -> dict[str, str]:
    """Table → why a (validated) workflow config produces none; the claims needing it are `not testable`."""
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

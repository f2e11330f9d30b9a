"""Claims about exponents of width (part of claims.csv, see pntk.paper.claims): Theorem 1's O(w^-½) bound on
the eNTK–pNTK distance (Fig 13) and the w^-½ approach of finite kernels to the analytic NTK (Fig 14)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .claim_tests import exponent_ci
from .claims import FAILS, HOLDS, PAPER, UNTESTABLE, join, row

HALF = -0.5  # the exponent of both claims
RATE_STATEMENT = ("Theorem 1: at initialisation the relative Frobenius distance of the eNTK from pNTK ⊗ I is "
                  "O(w^-½) in the readout width w (Fig 13).")
BOUND_RULE = "holds if the interval lies below 0 and reaches −½ (contains −½ or lies below it: −½ or steeper)"
RATE_RULE = "holds if the interval lies below 0 and contains −½"


def exponent_claim(cid: str, statement: str, rule: str, rows: pd.DataFrame, x: str, n_boot: int,
                   left_out: str, what: str) -> dict:
    """Verdict on the log-log slope of `value` against column `x` (rows: x, seed, value).

    rule "bound": the slope is −½ or steeper (Theorem 1 is an upper bound); "rate": the slope is −½."""
    text = BOUND_RULE if rule == "bound" else RATE_RULE
    test = f"log-log slope of the distance against {x.replace('_', ' ')} with a 95% interval; {text}"
    good = rows[np.isfinite(rows.value.astype(float)) & (rows.value.astype(float) > 0)]
    dropped = f"{len(rows) - len(good)} non-positive or non-finite value(s) left out" if len(good) < len(rows) else ""
    n_w, n_s = good[x].nunique(), good.seed.nunique()
    if n_w < 2:
        return row(cid, PAPER, statement, test, UNTESTABLE,
                   detail=join(f"{'one width' if n_w else 'no rows'} of {what}", left_out, dropped))
    exp = exponent_ci(good[x], good.value, good.seed, n_boot)
    if exp is None:
        why = f"{n_w} widths of {what} and one seed: no interval for the slope (needs 2 seeds per width or 3 widths)"
        return row(cid, PAPER, statement, test, UNTESTABLE, detail=join(why, left_out, dropped))
    widths = sorted(good[x].unique())
    numbers = (f"slope {exp.slope:+.3f} [{exp.ci_low:+.3f}, {exp.ci_high:+.3f}] over {x.replace('_', ' ')} "
               f"{widths[0]}–{widths[-1]} ({n_w} widths, {n_s} seed{'s' if n_s > 1 else ''}; {exp.method})")
    if exp.ci_high >= 0:
        verdict, why = FAILS, "the interval reaches 0: no significant fall with width"
    elif exp.ci_low > HALF:
        verdict, why = FAILS, "falls, but more slowly than w^-½ (the interval lies above −½)"
    elif rule == "rate" and exp.ci_high < HALF:
        verdict, why = FAILS, "falls faster than w^-½ (the interval lies below −½)"
    else:
        verdict, why = HOLDS, ""
    return row(cid, PAPER, statement, test, verdict, numbers, join(why, left_out, dropped))


def rate_claim(cid: str, rows: pd.DataFrame | None, n_boot: int, left_out: str, why: str = "", arch: str = "") -> dict:
    """Theorem 1 on one architecture: rows = frobenius_distance at epoch 0 of runs that learned (None: `why`)."""
    if rows is None:
        test = f"log-log slope of the distance against readout width with a 95% interval; {BOUND_RULE}"
        return row(cid, PAPER, RATE_STATEMENT, test, UNTESTABLE, detail=why)
    x = "readout_width" if "readout_width" in rows.columns else "width"
    return exponent_claim(cid, RATE_STATEMENT, "bound", rows, x, n_boot, left_out, arch)


def infinite_claims(inf: pd.DataFrame | str, n_boot: int) -> list[dict]:
    """Fig 14: eNTK and pNTK of NTK-parameterised FCNs (at init, never trained) approach the analytic NTK ∝ w^-½."""
    out = []
    for kind, name in (("entk", "eNTK"), ("pntk", "pNTK")):
        cid = f"infinite-rate:{kind}"
        statement = (f"The {name} of an NTK-parameterised ReLU FCN approaches the analytic infinite-width NTK as "
                     "w^-½ (Fig 14).")
        if isinstance(inf, str):
            test = f"log-log slope of the distance against width with a 95% interval; {RATE_RULE}"
            out.append(row(cid, PAPER, statement, test, UNTESTABLE, detail=inf))
            continue
        rows = inf[inf.statistic == f"infinite_rel_dist_{kind}"]
        out.append(exponent_claim(cid, statement, "rate", rows, "width", n_boot, "", f"the {name} distances"))
    return out


"""Rates in the width (part of claims.csv, see pntk.report.claims): Theorems 1, 5 and 6 and Remark 3.3.3 as
upper bounds Õ(w^-½) on statistics at initialisation, and the project's own check that finite kernels of an
NTK-parameterised FCN approach the analytic NTK at rate w^-½ (a textbook result, not the paper's).

The theorems are stated for a readout (thesis: every layer) of width w → ∞ with a log factor (Õ); a slope
measured at finite widths can only be compared with the bound's local slope there (pntk.report.decide.rate).
With four or more widths the smallest is treated as pre-asymptotic: its fit is reported beside, the verdict
uses the others.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import decide as dc
from .claim_rows import at_epoch, claim, split_learned

RATES = {  # family → (statistic, what, log factor in the source's bound)
    "thm1-rate": ("frobenius_distance", "‖Θ − Θ̂⊗I‖_F / ‖Θ‖_F", True),
    "thm5-rate": ("lambda_max_rel_diff", "|λmax(Θ) − λmax(Θ̂)| / λmax(Θ)", True),
    "thm6-rate": ("pred_rms_diff", "the RMS over X of ‖f̂_lin(x) − f_lin(x)‖", True),
    "diag-rate": ("offdiag_block_ratio", "the off- vs on-diagonal ratio of the eNTK's blocks (thesis Fig 3.2)", False),
}
PRE_ASYMPTOTIC_FROM = 4  # widths from which the smallest one is fitted apart
INFINITE_TOLERANCE = 0.2  # the project's rate check: slope within −½ ± this


def rate_test(log_factor: bool) -> str:
    shape = "Õ(w^-½): the bound's local slope −½ + 1/ln w̄" if log_factor else "O(w^-½): slope −½"
    return (f"least-squares slope on log-log axes against the readout width at epoch 0, a per-seed intercept, 95% "
            f"t-interval; bound {shape}; holds if the interval lies at or below the bound's slope, inconclusive if "
            "above it (an asymptotic bound is not refuted by finite widths), does not hold if above 0 (growth with "
            "width); the smallest of ≥ 4 widths fitted apart")


def rate_claims(diag: pd.DataFrame | str) -> list[dict]:
    if isinstance(diag, str):
        return [claim(f, f"{what} at initialisation ∈ {'Õ' if lf else 'O'}(w^-½).", rate_test(lf),
                      dc.untestable(diag)) for f, (_, what, lf) in RATES.items()]
    out = []
    for arch in sorted(diag.arch.unique()):
        learned, left_out = split_learned(diag[diag.arch == arch])
        for family, (stat, what, log_factor) in RATES.items():
            rows = at_epoch(learned, stat, 0)
            out.append(rate_claim(f"{family}:{arch}", rows, what, log_factor, arch, left_out))
    return out


def rate_claim(cid: str, rows: pd.DataFrame, what: str, log_factor: bool, arch: str, left_out: str) -> dict:
    statement = f"At initialisation {what} of {arch} is {'Õ' if log_factor else 'O'}(w^-½) in the readout width w."
    x = "readout_width" if "readout_width" in rows.columns and rows.readout_width.notna().all() else "width"
    widths = np.sort(rows[x].unique()) if len(rows) else np.array([])
    start = float(widths[1]) if widths.size >= PRE_ASYMPTOTIC_FROM else None
    d = dc.rate(rows[x].astype(float), rows.value.astype(float), rows.seed, log_factor=log_factor, what=arch,
                asymptotic_from=start)
    return claim(cid, statement, rate_test(log_factor), d, left_out)


def infinite_claims(inf: pd.DataFrame | str) -> list[dict]:
    """The project's check (Figs P1–P2): eNTK and pNTK of NTK-parameterised FCNs approach the analytic NTK."""
    test = (f"least-squares slope of the distance on log-log axes against width, a per-seed intercept, 95% "
            f"t-interval; holds if it lies within −½ ± {INFINITE_TOLERANCE}, does not hold if entirely outside")
    out = []
    for kind, name in (("entk", "eNTK"), ("pntk", "pNTK")):
        statement = (f"The {name} of an NTK-parameterised ReLU FCN approaches the analytic infinite-width NTK as "
                     "w^-½ (pntk's own check of a textbook result).")
        cid = f"infinite-rate:{kind}"
        if isinstance(inf, str):
            out.append(claim(cid, statement, test, dc.untestable(inf)))
            continue
        rows = inf[inf.statistic == f"infinite_rel_dist_{kind}"]
        d = dc.slope_near(rows.width, rows.value, rows.seed, slope=-0.5, tolerance=INFINITE_TOLERANCE,
                          what=f"the {name} distances")
        out.append(claim(cid, statement, test, d))
    return out

"""The paper's and the thesis' claims, each with a verdict from this run's own tables: claims.csv.

Columns (:data:`COLUMNS`, a contract with the report): id, source, statement, numbers, test, verdict, detail.

    holds          the claim's one-sided test passes at level ALPHA = 0.05 on the rows of runs that learned
    does not hold  the test could have passed with this design and did not: the data do not show the claim
    not testable   the input is missing, or too small for the test to pass whatever the values; `detail`
                   says what is missing ("one width of convnet", "diagnostics disabled", …)

Rows of runs that did not learn (their `learned` column, pntk.paper.verdicts) are left out of every test and
named in `detail`; active-learning seeds that ended near chance likewise. The decision rules, one per claim
(statistics in :mod:`pntk.paper.claim_tests`; "init" = epoch 0, "last" = the last checkpoint):

    figN-width:{arch}   Figs 2–7 at init: the statistic falls with width — exact within-seed permutation test
                        of the rank correlation with width (holds if p < 0.05)
    thm1-rate:{arch}    Theorem 1 bounds the Fig 3 distance by O(w^-½) in the readout width w, i.e. its
                        log-log slope is −½ or steeper: holds if the 95% interval of the slope lies below 0
                        and reaches −½ (contains −½ or lies below it)
    fig7-training       the prediction gap is smaller at the last checkpoint than at init: sign test over runs
    fig8-accuracy       pNTK regression more accurate than eNTK regression (acc_diff = acc_entk − acc_pntk < 0)
                        in more cells (run × epoch) than chance: sign test, ties split evenly
    fig9-width:{arch}   f̂_lin accuracy at the last checkpoint rises with width: permutation test as above
    fig9-training       f̂_lin more accurate at the last checkpoint than at init: sign test over runs
    infinite-rate:{k}   distance of the NTK-parameterised FCN's kernel k from the analytic NTK ∝ w^-½:
                        holds if the 95% interval of the slope contains −½ and lies below 0
    al-beats-random:final|auc   MLMOC-pNTK above random (final test accuracy | area under the accuracy-vs-
                        labels curve, as mean accuracy): one-sided paired t-test over seeds
    al-matches-entk     MLMOC-pNTK within ±AL_MARGIN of MLMOC-eNTK in final accuracy: two one-sided tests
                        (the 90% interval of the paired difference inside ±AL_MARGIN)
    al-time             MLMOC-pNTK acquires faster than MLMOC-eNTK: ratio of median acquisition times < 1 and
                        one-sided Mann–Whitney U over the acquisitions
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..runs import Run
from .claim_tests import ALPHA, sign_test, trend_test

COLUMNS = ["id", "source", "statement", "numbers", "test", "verdict", "detail"]
VERDICTS = HOLDS, FAILS, UNTESTABLE = ("holds", "does not hold", "not testable")
PAPER = "Mohamadi & Sutherland 2023 (ICML), A Fast, Well-Founded Approximation to the Empirical NTK"
THESIS = "Mohamadi 2023 (thesis), look-ahead active learning"
AL_MARGIN = 0.02  # accuracy difference counted as "matches" (2 points of test accuracy)

# id → (statistic, what it measures) of the width trends at init (Figs 2–7)
WIDTH_TRENDS = {
    "fig2-width": ("offdiag_ratio", "the eNTK's off-diagonal mass relative to its diagonal (Fig 2)"),
    "fig3-width": ("frobenius_distance", "the relative Frobenius distance ‖Θ − Θ̂⊗I‖/‖Θ‖ (Fig 3)"),
    "fig4-width": ("lambda_max_rel_diff", "the relative difference of λmax between eNTK and pNTK (Fig 4)"),
    "fig5-width": ("lambda_min_rel_diff", "the relative difference of λmin between eNTK and pNTK (Fig 5)"),
    "fig6-width": ("cond_rel_diff", "the relative difference of the condition numbers (Fig 6)"),
    "fig7-width": ("pred_rel_diff", "the relative difference of eNTK and pNTK kernel-regression predictions (Fig 7)"),
}
TREND_TEST = ("exact permutation test of the within-seed Spearman correlation with width (Page-type, one-sided); "
              "holds if p < 0.05")
SIGN_TEST = "one-sided sign test over {cells}, ties split evenly between the sides; holds if p < 0.05"


@dataclass
class ClaimInputs:
    """The tables the claims read; a string instead of a table says why there is none."""
    diagnostics: pd.DataFrame | str
    regression: pd.DataFrame | str
    infinite: pd.DataFrame | str
    active: pd.DataFrame | str
    active_verdicts: pd.DataFrame | None = None  # pntk.paper.verdicts.active_verdicts of `active`
    n_boot: int = 1000  # bootstrap resamples of the exponent intervals (diagnostics.rate_bootstrap)


def row(cid: str, source: str, statement: str, test: str, verdict: str, numbers: str = "", detail: str = "") -> dict:
    if verdict not in VERDICTS:
        raise ValueError(f"claim {cid}: verdict {verdict!r}, expected one of {VERDICTS}")
    return dict(id=cid, source=source, statement=statement, numbers=numbers, test=test, verdict=verdict,
                detail=detail)


def g3(x: float) -> str:
    return f"{x:.3g}"


def split_learned(df: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """(rows of runs that learned, "left out (did not learn): fcn-w64-s0, …" or "")."""
    if "learned" not in df.columns:
        raise ValueError(f"claims: table without a `learned` column (columns {list(df.columns)}); "
                         "write it with pntk.paper.tables")
    ok = df.learned.astype(bool)
    bad = sorted({Run(r.dataset, r.arch, int(r.width), int(r.seed)).leaf for r in df[~ok].itertuples()})
    return df[ok], (f"left out (did not learn): {', '.join(bad)}" if bad else "")


def join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


# ----------------------------------------------------------------------------- width trends
def width_means(rows: pd.DataFrame) -> str:
    """'w=64: 0.242, 128: 0.228 (mean of 2 seeds)' from rows with width, seed, value."""
    m = rows.groupby("width").value.mean()
    n = rows.groupby("width").seed.nunique()
    seeds = f"{n.min()}" if n.min() == n.max() else f"{n.min()}–{n.max()}"
    body = ", ".join(f"{'w=' if i == 0 else ''}{w}: {g3(v)}" for i, (w, v) in enumerate(m.items()))
    return f"{body} (mean of {seeds} seed{'s' if n.max() > 1 else ''})"


def trend_claim(cid: str, source: str, statement: str, rows: pd.DataFrame, direction: int, what: str,
                left_out: str) -> dict:
    """Does `value` fall (−1) / rise (+1) with `width` over `rows` (width, seed, value of one arch)?"""
    args = (cid, source, statement, TREND_TEST)
    finite = rows[np.isfinite(rows.value.astype(float))]
    dropped = f"{len(rows) - len(finite)} non-finite value(s) left out" if len(finite) < len(rows) else ""
    if finite.empty:
        return row(*args, UNTESTABLE, detail=join(f"no rows of {what}", left_out, dropped))
    if finite.width.nunique() < 2:
        return row(*args, UNTESTABLE, width_means(finite), join(f"one width of {what}", left_out, dropped))
    res = trend_test(finite.width, finite.value, finite.seed, direction)
    numbers = f"{width_means(finite)}; ρ̄ = {res.statistic:+.2f}, p = {g3(res.p)}"
    design = f"{finite.width.nunique()} widths × {finite.seed.nunique()} seed(s)"
    if res.min_p >= ALPHA:
        why = f"{design} of {what}: even a perfect ordering gives p = {g3(res.min_p)} ≥ {ALPHA}"
        return row(*args, UNTESTABLE, numbers, join(why, left_out, dropped))
    verdict = HOLDS if res.p < ALPHA else FAILS
    how = f"{design}; {'significant' if verdict == HOLDS else 'not significant'} at {ALPHA}"
    return row(*args, verdict, numbers, join(how, left_out, dropped))


def at_epoch(df: pd.DataFrame, statistic: str, epoch: int) -> pd.DataFrame:
    return df[(df.statistic == statistic) & (df.epoch == epoch)]


# ----------------------------------------------------------------------------- paired cells
def sign_claim(cid: str, source: str, statement: str, better, worse, cells: str, numbers_of, left_out: str) -> dict:
    """Sign test that `better` > `worse` over paired cells (aligned arrays); numbers_of(w, t, l, p) -> str."""
    test = SIGN_TEST.format(cells=cells)
    b, w = np.asarray(better, float), np.asarray(worse, float)
    ok = np.isfinite(b) & np.isfinite(w)
    b, w = b[ok], w[ok]
    if b.size == 0:
        return row(cid, source, statement, test, UNTESTABLE, detail=join(f"no {cells}", left_out))
    wins, losses = int((b > w).sum()), int((b < w).sum())
    ties = b.size - wins - losses
    res = sign_test(wins, losses, ties)
    numbers = numbers_of(wins, ties, losses, res.p)
    if res.min_p >= ALPHA:
        why = f"{b.size} {cells}: even all in favour gives p = {g3(res.min_p)} ≥ {ALPHA}"
        return row(cid, source, statement, test, UNTESTABLE, numbers, join(why, left_out))
    verdict = HOLDS if res.p < ALPHA else FAILS
    return row(cid, source, statement, test, verdict, numbers, left_out)


def init_vs_last(df: pd.DataFrame, statistic: str) -> tuple[pd.DataFrame | None, str]:
    """Rows (arch, width, seed, init, last) pairing epoch 0 with the last checkpoint, or (None, why)."""
    epochs = sorted(df.epoch.unique())
    if 0 not in epochs:
        return None, "no checkpoint at epoch 0 (train.checkpoint_epochs)"
    if len(epochs) < 2:
        return None, "one checkpoint: nothing to compare with the initialisation (train.checkpoint_epochs)"
    keys = ["dataset", "arch", "width", "seed"]
    a = at_epoch(df, statistic, 0).set_index(keys).value.rename("init")
    b = at_epoch(df, statistic, epochs[-1]).set_index(keys).value.rename("last")
    return pd.concat([a, b], axis=1, join="inner").reset_index(), f"epoch 0 vs {epochs[-1]}"


# ----------------------------------------------------------------------------- the paper's claims
def diagnostics_claims(diag: pd.DataFrame | str, n_boot: int) -> list[dict]:
    """Figs 2–7 width trends and Theorem 1 per architecture, the Fig 7 training and Fig 8 accuracy claims."""
    from .claims_rate import rate_claim

    if isinstance(diag, str):
        out = [row(cid, PAPER, f"At initialisation {what} falls as the network widens.", TREND_TEST, UNTESTABLE,
                   detail=diag) for cid, (_, what) in WIDTH_TRENDS.items()]
        out.append(rate_claim("thm1-rate", None, n_boot, "", why=diag))
        return out + [fig7_training(diag), fig8_accuracy(diag)]
    learned, left_out_all = split_learned(diag)
    out = []
    for arch in sorted(diag.arch.unique()):
        _, left_out = split_learned(diag[diag.arch == arch])
        mine = learned[learned.arch == arch]
        for cid, (stat, what) in WIDTH_TRENDS.items():
            out.append(trend_claim(f"{cid}:{arch}", PAPER, f"At initialisation {what} falls as {arch} widens.",
                                   at_epoch(mine, stat, 0), -1, arch, left_out))
        out.append(rate_claim(f"thm1-rate:{arch}", at_epoch(mine, "frobenius_distance", 0), n_boot, left_out,
                              arch=arch))
    return out + [fig7_training(learned, left_out_all), fig8_accuracy(learned, left_out_all)]


def fig7_training(diag: pd.DataFrame | str, left_out: str = "") -> dict:
    statement = "The eNTK and pNTK kernel-regression predictions are closer after training than at init (Fig 7)."
    if isinstance(diag, str):
        return row("fig7-training", PAPER, statement, SIGN_TEST.format(cells="runs"), UNTESTABLE, detail=diag)
    pairs, how = init_vs_last(diag, "pred_rel_diff")
    if pairs is None:
        return row("fig7-training", PAPER, statement, SIGN_TEST.format(cells="runs"), UNTESTABLE,
                   detail=join(how, left_out))
    return sign_claim("fig7-training", PAPER, statement, -pairs["last"], -pairs["init"], "runs",
                      lambda w, t, lose, p: f"gap smaller after training in {w} of {w + t + lose} runs ({t} tied), "
                                         f"median "
                                         f"{g3(pairs['init'].median())} → {g3(pairs['last'].median())} ({how}); "
                                         f"p = {g3(p)}", left_out)


def fig8_accuracy(diag: pd.DataFrame | str, left_out: str = "") -> dict:
    statement = "Kernel regression with the pNTK is more accurate than with the eNTK more often than not (Fig 8)."
    if isinstance(diag, str):
        return row("fig8-accuracy", PAPER, statement, SIGN_TEST.format(cells="cells"), UNTESTABLE, detail=diag)
    d = diag[diag.statistic == "acc_diff"]  # acc_entk − acc_pntk: negative = pNTK more accurate
    return sign_claim("fig8-accuracy", PAPER, statement, -d.value, np.zeros(len(d)), "cells (run × epoch)",
                      lambda w, t, lose, p: f"pNTK ≥ eNTK in {w + t} of {w + t + lose} cells ({w} more accurate, "
                                         f"{t} tied, "
                                         f"{lose} less accurate); p = {g3(p)}", left_out)


def regression_claims(regr: pd.DataFrame | str) -> list[dict]:
    """Fig 9: f̂_lin accuracy rises with width at the last checkpoint; trained weights beat init."""
    s_train = "Kernel regression with the pNTK of the trained network beats that of the initialisation (Fig 9)."
    if isinstance(regr, str):
        return [row("fig9-width", PAPER, "f̂_lin test accuracy rises with width (Fig 9).", TREND_TEST, UNTESTABLE,
                    detail=regr),
                row("fig9-training", PAPER, s_train, SIGN_TEST.format(cells="runs"), UNTESTABLE, detail=regr)]
    learned, left_out_all = split_learned(regr)
    last = int(regr.epoch.max()) if len(regr) else 0
    out = []
    for arch in sorted(regr.arch.unique()):
        _, left_out = split_learned(regr[regr.arch == arch])
        rows = at_epoch(learned[learned.arch == arch], "flin_test_acc", last)
        out.append(trend_claim(f"fig9-width:{arch}", PAPER, f"f̂_lin test accuracy at epoch {last} rises as {arch} "
                               "widens (Fig 9).", rows, +1, arch, left_out))
    pairs, how = init_vs_last(learned, "flin_test_acc")
    if pairs is None:
        return out + [row("fig9-training", PAPER, s_train, SIGN_TEST.format(cells="runs"), UNTESTABLE,
                          detail=join(how, left_out_all))]
    return out + [sign_claim("fig9-training", PAPER, s_train, pairs["last"], pairs["init"], "runs",
                             lambda w, t, lose, p: f"f̂_lin more accurate after training in {w} of {w + t + lose} runs "
                                                f"({t} tied), median {g3(pairs['init'].median())} → "
                                                f"{g3(pairs['last'].median())} ({how}); p = {g3(p)}", left_out_all)]


def absent_tables(config: dict) -> dict[str, str]:
    """Table → why a (validated) workflow config produces none; the claims needing it are `not testable`."""
    from ..config import find_store

    full = find_store(config, "pntk", "train", "train") == ("train", "train") and \
        find_store(config, "pntk", "test", "train") == ("test", "train")
    why = {"diagnostics": None if config["diagnostics"]["enabled"] else "diagnostics disabled (diagnostics.enabled)",
           "regression": None if full else "no full-data pNTK (kernels.index_sets.pntk needs [train, train] and "
                                           "[test, train])",
           "infinite": None if config["infinite"]["enabled"] else "infinite-width comparison disabled "
                                                                  "(infinite.enabled)",
           "active": None if config["active"]["enabled"] else "active learning disabled (active.enabled)"}
    return {k: v for k, v in why.items() if v}


def claims_table(inputs: ClaimInputs) -> pd.DataFrame:
    """claims.csv: every claim the config can test, each with its verdict (module doc)."""
    from .claims_active import active_claims
    from .claims_rate import infinite_claims

    rows = diagnostics_claims(inputs.diagnostics, inputs.n_boot)
    rows += regression_claims(inputs.regression)
    rows += infinite_claims(inputs.infinite, inputs.n_boot)
    rows += active_claims(inputs.active, inputs.active_verdicts)
    return pd.DataFrame(rows, columns=COLUMNS)


def format_claims(df: pd.DataFrame, width: int = 100) -> str:
    """Aligned text table (id, verdict, numbers) for `pntk claims`, wrapped to ``width`` columns; the detail
    follows the numbers in brackets when the claim does not hold, or is not testable, or left runs out."""
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

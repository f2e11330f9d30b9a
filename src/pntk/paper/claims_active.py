"""The thesis' claims on look-ahead active learning (part of claims.csv, see pntk.paper.claims), from
active.csv (columns pntk.active.loop.COLUMNS): MLMOC with the pNTK beats random acquisition, matches MLMOC
with the eNTK, and acquires in a fraction of its time. Seeds where a compared strategy ended near chance
(pntk.paper.verdicts.active_verdicts) are left out of that comparison."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .claim_tests import ALPHA, equivalence, paired_t, time_ratio
from .claims import AL_MARGIN, FAILS, HOLDS, THESIS, UNTESTABLE, g3, join, row
from .verdicts import strategy_name

PNTK, ENTK, RANDOM = "mlmoc-pntk", "mlmoc-entk", "random"
PAIRED_T = "one-sided paired t-test over seeds (assumes roughly normal seed differences); holds if p < 0.05"
TOST = (f"two one-sided t-tests over seeds: holds if the 90% interval of the paired difference lies within "
        f"±{AL_MARGIN}")
MANN_WHITNEY = ("ratio of median acquisition wall times (cycles ≥ 1) and a one-sided Mann–Whitney U test; "
                "holds if the ratio is < 1 and p < 0.05")
STATEMENTS = {
    "al-beats-random:final": ("final", "MLMOC with the pNTK ends with a higher test accuracy than random acquisition."),
    "al-beats-random:auc": ("auc", "MLMOC with the pNTK has a larger area under the accuracy-vs-labels curve than "
                                   "random acquisition."),
    "al-matches-entk": ("final", "MLMOC with the pNTK matches MLMOC with the eNTK in final test accuracy."),
    "al-time": ("time", "MLMOC with the pNTK acquires in a fraction of the eNTK's acquisition time."),
}
TESTS = {"al-beats-random:final": PAIRED_T, "al-beats-random:auc": PAIRED_T, "al-matches-entk": TOST,
         "al-time": MANN_WHITNEY}


def per_run(active: pd.DataFrame) -> pd.DataFrame:
    """One row per strategy × seed: name, seed, final (last cycle's test accuracy), labels, auc (area under
    test accuracy vs labels divided by the label range: mean accuracy over the curve), times (acquisitions)."""
    rows = []
    for (strategy, kernel, seed), g in active.groupby(["strategy", "kernel", "seed"], dropna=False):
        g = g.sort_values("n_labels")
        x, y = g.n_labels.to_numpy(float), g.test_acc.to_numpy(float)
        auc = float(np.trapezoid(y, x) / (x[-1] - x[0])) if x[-1] > x[0] else float(y[-1])
        times = g[g.cycle > 0].acquisition_seconds.to_numpy(float)
        rows.append({"name": strategy_name(strategy, kernel), "seed": int(seed), "final": float(y[-1]),
                     "labels": int(x[-1]), "auc": auc, "times": times[np.isfinite(times)]})
    return pd.DataFrame(rows, columns=["name", "seed", "final", "labels", "auc", "times"])


def paired(runs: pd.DataFrame, verdicts: pd.DataFrame, a: str, b: str) -> tuple[pd.DataFrame, str]:
    """Rows of strategies a and b on their common seeds where both learned (columns suffixed _a, _b)."""
    ok = verdicts[verdicts.learned.astype(bool)][["name", "seed"]]
    good = runs.merge(ok, on=["name", "seed"])
    both = good[good.name == a].merge(good[good.name == b], on="seed", suffixes=("_a", "_b"))
    bad = sorted(f"{n}-s{s}" for n, s in verdicts[~verdicts.learned.astype(bool)][["name", "seed"]].itertuples(
        index=False) if n in (a, b))
    return both, (f"left out (ended near chance): {', '.join(bad)}" if bad else "")


def active_claims(active: pd.DataFrame | str, verdicts: pd.DataFrame | None) -> list[dict]:
    if isinstance(active, str):
        return [row(cid, THESIS, s, TESTS[cid], UNTESTABLE, detail=active) for cid, (_, s) in STATEMENTS.items()]
    if verdicts is None:
        raise ValueError("active_claims: needs the active-learning verdicts (pntk.paper.verdicts.active_verdicts)")
    runs = per_run(active)
    out = []
    for cid, (what, statement) in STATEMENTS.items():
        other = RANDOM if cid.startswith("al-beats-random") else ENTK
        missing = [n for n in (PNTK, other) if n not in set(runs.name)]
        if missing:
            out.append(row(cid, THESIS, statement, TESTS[cid], UNTESTABLE,
                           detail=f"strategy {' and '.join(missing)} not in active.strategies"))
            continue
        both, left_out = paired(runs, verdicts, PNTK, other)
        decide = time_claim if what == "time" else (match_claim if other == ENTK else beats_claim)
        out.append(decide(cid, statement, both, what, left_out))
    return out


def beats_claim(cid: str, statement: str, both: pd.DataFrame, what: str, left_out: str) -> dict:
    a, b = both[f"{what}_a"], both[f"{what}_b"]
    res = paired_t(a, b)
    label = (f"at {both.labels_a.max()} labels" if what == "final" else "mean accuracy over the curve") \
        if len(both) else ""
    numbers = (f"MLMOC-pNTK {g3(a.mean())} vs random {g3(b.mean())} {label} (mean of {len(both)} seeds); "
               f"paired Δ = {res.statistic:+.3f}, p = {g3(res.p)}") if len(both) else ""
    if res.min_p >= ALPHA:
        return row(cid, THESIS, statement, PAIRED_T, UNTESTABLE, numbers,
                   join(f"{len(both)} paired seed(s): a paired test needs at least 2", left_out))
    return row(cid, THESIS, statement, PAIRED_T, HOLDS if res.p < ALPHA else FAILS, numbers, left_out)


def match_claim(cid: str, statement: str, both: pd.DataFrame, what: str, left_out: str) -> dict:
    if len(both) < 2:
        return row(cid, THESIS, statement, TOST, UNTESTABLE,
                   detail=join(f"{len(both)} paired seed(s): an interval needs at least 2", left_out))
    mean, lo, hi = equivalence(both.final_a, both.final_b, AL_MARGIN)
    numbers = (f"MLMOC-pNTK {g3(both.final_a.mean())} vs MLMOC-eNTK {g3(both.final_b.mean())} at "
               f"{both.labels_a.max()} labels; Δ = {mean:+.3f}, 90% interval [{lo:+.3f}, {hi:+.3f}] "
               f"({len(both)} seeds)")
    verdict = HOLDS if -AL_MARGIN < lo and hi < AL_MARGIN else FAILS
    why = "" if verdict == HOLDS else f"the interval is not within ±{AL_MARGIN}"
    return row(cid, THESIS, statement, TOST, verdict, numbers, join(why, left_out))


def time_claim(cid: str, statement: str, both: pd.DataFrame, what: str, left_out: str) -> dict:
    fast = np.concatenate(list(both.times_a)) if len(both) else np.array([])
    slow = np.concatenate(list(both.times_b)) if len(both) else np.array([])
    res = time_ratio(fast, slow)
    if res.min_p >= ALPHA:
        return row(cid, THESIS, statement, MANN_WHITNEY, UNTESTABLE,
                   detail=join(f"{fast.size} and {slow.size} timed acquisitions: too few for p < {ALPHA}", left_out))
    numbers = (f"median {g3(np.median(fast))} s vs {g3(np.median(slow))} s per acquisition: ratio "
               f"{res.statistic:.2f} ({fast.size} and {slow.size} acquisitions); p = {g3(res.p)}")
    verdict = HOLDS if res.statistic < 1 and res.p < ALPHA else FAILS
    return row(cid, THESIS, statement, MANN_WHITNEY, verdict, numbers,
               join("wall times, measured while other jobs may have run", left_out))

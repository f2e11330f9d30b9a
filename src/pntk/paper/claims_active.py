"""The thesis' claims on look-ahead active learning (part of claims.csv, see pntk.paper.claims), from active.csv
(columns pntk.active.loop.COLUMNS): MLMOC against random, uncertainty and naive look-ahead, pNTK against eNTK,
sequential against batch queries, and the cost of each. Seeds where a compared strategy ended near chance
(pntk.paper.verdicts.active_verdicts) are left out of that comparison.

Strategy names: mlmoc-pntk (the thesis' §3.5 pNTK), mlmoc-entk, mlmoc-pntk-seq (sequential block updates),
random, entropy, margin, naive (retraining per candidate). The thesis' Ch. 2 uses a first-logit kernel; pntk's
MLMOC with the pNTK agrees with it in distribution at initialisation (claim first-logit) and stands in for it.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from . import claim_tests as ct
from . import decide as dc
from .claims import ClaimInputs, claim, join
from .verdicts import strategy_name

PNTK, ENTK, SEQ, RANDOM, NAIVE = "mlmoc-pntk", "mlmoc-entk", "mlmoc-pntk-seq", "random", "naive"
AL_MARGIN = 0.02  # accuracy difference counted as "matches" / "comparable" (2 points of test accuracy)
FIFTEEN = (0.075, 0.30)  # "about 15 %": within a factor of 2 of 0.15
MUCH_FASTER = 0.5  # "much faster": at most half the time
HUNDRED = 0.01  # "more than 100 times faster": at most 1 % of the time per candidate
PAIRED_T = ("one-sided paired t-test over seeds; holds if p < 0.05, does not hold if the opposite is significant "
            "and not a ceiling")


def per_run(active: pd.DataFrame) -> pd.DataFrame:
    """One row per strategy × seed: name, seed, final (last cycle's test accuracy), labels, auc (area under
    test accuracy vs labels divided by the label range: mean accuracy over the curve), times (acquisition
    seconds of cycles ≥ 1), per_candidate (those divided by the candidates scored)."""
    rows = []
    for (strategy, kernel, seed), g in active.groupby(["strategy", "kernel", "seed"], dropna=False):
        g = g.sort_values("n_labels")
        x, y = g.n_labels.to_numpy(float), g.test_acc.to_numpy(float)
        auc = float(np.trapezoid(y, x) / (x[-1] - x[0])) if x[-1] > x[0] else float(y[-1])
        later = g[g.cycle > 0]
        times = later.acquisition_seconds.to_numpy(float)
        per_cand = times / np.maximum(later.candidates.to_numpy(float), 1)
        ok = np.isfinite(times)
        rows.append({"name": strategy_name(strategy, kernel), "seed": int(seed), "final": float(y[-1]),
                     "labels": int(x[-1]), "auc": auc, "times": times[ok], "per_candidate": per_cand[ok]})
    return pd.DataFrame(rows, columns=["name", "seed", "final", "labels", "auc", "times", "per_candidate"])


def paired(runs: pd.DataFrame, verdicts: pd.DataFrame, a: str, b: str) -> tuple[pd.DataFrame, str]:
    """Rows of strategies a and b on their common seeds where both learned (columns suffixed _a, _b)."""
    ok = verdicts[verdicts.learned.astype(bool)][["name", "seed"]]
    good = runs.merge(ok, on=["name", "seed"])
    both = good[good.name == a].merge(good[good.name == b], on="seed", suffixes=("_a", "_b"))
    bad = sorted(f"{n}-s{s}" for n, s in verdicts[~verdicts.learned.astype(bool)][["name", "seed"]].itertuples(
        index=False) if n in (a, b))
    return both, (f"left out (ended near chance): {', '.join(bad)}" if bad else "")


# (id, strategy a, strategy b, how, what, statement)
CLAIMS = [
    ("al-beats-random:final", PNTK, RANDOM, "better", "final",
     "MLMOC with the pNTK ends with a higher test accuracy than random acquisition."),
    ("al-beats-random:auc", PNTK, RANDOM, "better", "auc",
     "MLMOC with the pNTK has a larger area under the accuracy-vs-labels curve than random acquisition."),
    ("al-matches-entk", PNTK, ENTK, "equal", "final",
     f"MLMOC with the pNTK matches MLMOC with the eNTK in final test accuracy (within ±{AL_MARGIN})."),
    ("al-time-fraction", PNTK, ENTK, "time", "times",
     f"MLMOC with the pNTK acquires much faster than with the eNTK: at most {MUCH_FASTER:.0%} of its time."),
    ("al-time-15pct", PNTK, ENTK, "total", "times",
     "MLMOC with the pNTK takes about 15 % of the eNTK's acquisition time in total (within a factor 2: 7.5–30 %)."),
    ("al-seq-vs-batch", SEQ, PNTK, "better", "final",
     "Sequential MLMOC (block updates with each true label within a cycle) ends more accurate than batch MLMOC."),
    ("al-vs-uncertainty:entropy", PNTK, "entropy", "noninferior", "final",
     f"MLMOC with the pNTK is comparable to or better than entropy sampling (not worse by {AL_MARGIN})."),
    ("al-vs-uncertainty:margin", PNTK, "margin", "noninferior", "final",
     f"MLMOC with the pNTK is comparable to or better than margin sampling (not worse by {AL_MARGIN})."),
    ("al-naive-time", PNTK, NAIVE, "per_candidate", "per_candidate",
     f"MLMOC scores a candidate more than 100 times faster than naive look-ahead by retraining (≤ {HUNDRED:.0%})."),
    ("al-naive-accuracy", PNTK, NAIVE, "better", "final",
     "MLMOC ends with a higher test accuracy than naive look-ahead by retraining."),
]
TESTS = {
    "better": PAIRED_T,
    "equal": f"two one-sided t-tests over seeds: holds if the 90% interval of the paired difference lies within "
             f"±{AL_MARGIN}, does not hold if it lies outside, else inconclusive",
    "noninferior": f"one-sided non-inferiority t-test over seeds at −{AL_MARGIN}: holds if the 90% interval's low end "
                   f"is above −{AL_MARGIN}, does not hold if the whole interval is below",
    "time": f"ratio of geometric-mean acquisition times per cycle (Welch interval on logs); holds if its 95% interval "
            f"lies below {MUCH_FASTER}, does not hold if above",
    "total": f"per seed the ratio of total acquisition times, 95% t-interval of the mean log ratio over seeds; holds "
             f"if it lies within [{FIFTEEN[0]}, {FIFTEEN[1]}], does not hold if entirely outside",
    "per_candidate": f"ratio of geometric-mean scoring times per candidate (Welch interval on logs); holds if its 95% "
                     f"interval lies below {HUNDRED}, does not hold if above",
}


def active_claims(inp: ClaimInputs) -> list[dict]:
    active, verdicts = inp.active, inp.active_verdicts
    if isinstance(active, str):
        return [claim(c, s, TESTS[how], dc.untestable(active)) for c, _, _, how, _, s in CLAIMS] + \
            extra_claims(inp, None)
    if verdicts is None:
        raise ValueError("active_claims: needs the active-learning verdicts (pntk.paper.verdicts.active_verdicts)")
    runs = per_run(active)
    out = []
    for cid, a, b, how, what, statement in CLAIMS:
        missing_ = [n for n in (a, b) if n not in set(runs.name)]
        if missing_:
            out.append(claim(cid, statement, TESTS[how], dc.untestable(
                f"strategy {' and '.join(missing_)} not in active.strategies", f"add {' and '.join(missing_)}")))
            continue
        both, left_out = paired(runs, verdicts, a, b)
        out.append(claim(cid, statement, TESTS[how], decide_pair(both, how, what, a, b), left_out))
    return out + extra_claims(inp, runs)


def decide_pair(both: pd.DataFrame, how: str, what: str, a: str, b: str) -> dc.Decision:
    if both.empty:
        return dc.untestable("no seed where both strategies learned")
    if how in ("time", "per_candidate"):
        fast, slow = np.concatenate(list(both[f"{what}_a"])), np.concatenate(list(both[f"{what}_b"]))
        high = MUCH_FASTER if how == "time" else HUNDRED
        d = dc.ratio_within(fast, slow, low=0.0, high=high, what="acquisitions")
        unit = "per candidate" if how == "per_candidate" else "per acquisition"
        numbers = (f"{a} {np.median(fast):.3g} s vs {b} {np.median(slow):.3g} s {unit} (medians); {d.numbers}"
                   if fast.size and slow.size else d.numbers)
        return dc.Decision(d.verdict, numbers, join(d.why, "wall times, measured while other jobs may have run"),
                           d.settle)
    if how == "total":
        ratio = np.log([fa.sum() / fb.sum() for fa, fb in zip(both.times_a, both.times_b) if fb.sum() > 0])
        if ratio.size < 2:
            return dc.untestable(f"{ratio.size} seed(s) timed: an interval needs 2")
        m, lo, hi = ct.t_interval(ratio, 0.95)
        numbers = (f"total time ratio {math.exp(m):.3g} [95%: {math.exp(lo):.3g}, {math.exp(hi):.3g}] over "
                   f"{ratio.size} seeds")
        if FIFTEEN[0] <= math.exp(lo) and math.exp(hi) <= FIFTEEN[1]:
            return dc.Decision(dc.HOLDS, numbers)
        if math.exp(hi) < FIFTEEN[0] or math.exp(lo) > FIFTEEN[1]:
            where = "below" if math.exp(hi) < FIFTEEN[0] else "above"
            return dc.Decision(dc.FAILS, numbers, f"{where} [{FIFTEEN[0]}, {FIFTEEN[1]}] (the thesis: MNIST, 100 + 20 "
                                                  "labels per cycle, GPU; the ratio depends on sizes and device)")
        return dc.Decision(dc.INCONCLUSIVE, numbers, f"the interval crosses [{FIFTEEN[0]}, {FIFTEEN[1]}]",
                           "more seeds")
    a_, b_ = both[f"{what}_a"].to_numpy(float), both[f"{what}_b"].to_numpy(float)
    label = f"at {both.labels_a.max()} labels" if what == "final" else "mean accuracy over the curve"
    head = f"{a} {a_.mean():.3g} vs {b} {b_.mean():.3g} {label} (mean of {len(both)} seeds)"
    if how == "equal":
        d = dc.equivalent(a_ - b_, AL_MARGIN, unit="seeds", what="paired")
    elif how == "noninferior":
        d = dc.noninferior(a_ - b_, AL_MARGIN, unit="seeds", what="paired")
    else:
        d = dc.paired(a_, b_, unit="seeds", test="t")
    return dc.Decision(d.verdict, join(head, d.numbers), d.why, d.settle)


def extra_claims(inp: ClaimInputs, runs: pd.DataFrame | None) -> list[dict]:
    """Claims that read what the active-learning jobs record beside active.csv (inp.active_meta): the block
    update's acquisitions against a full solve, and warm- against cold-started retraining."""
    meta = inp.active_meta or {}
    out = []
    block = meta.get("block")
    statement = ("MLMOC's block update (Eq. 2.12) acquires the same candidates as scoring each candidate with a full "
                 "solve of its enlarged kernel system.")
    test = "the candidates chosen each cycle by both ways, compared; holds if identical in every cycle and seed"
    if not block:
        out.append(claim("al-block", statement, test, dc.untestable(
            "the active-learning jobs did not record the comparison", "a pntk whose loop records it")))
    else:
        same, total = int(block["identical_cycles"]), int(block["cycles"])
        d = (dc.Decision(dc.HOLDS, f"identical in {same} of {total} cycles") if same == total else
             dc.Decision(dc.FAILS, f"identical in {same} of {total} cycles", "the block update chose other candidates"))
        out.append(claim("al-block", statement, test, d))
    warm = meta.get("warm_cold")
    statement = ("Retraining warm-started from the previous cycle's network and cold-started from the initialisation "
                 f"end equally accurate on the final labelled set (within ±{AL_MARGIN}).")
    test = (f"two one-sided t-tests over seeds of the final test accuracies: holds if the 90% interval of the paired "
            f"difference lies within ±{AL_MARGIN}, does not hold if it lies outside")
    if not warm:
        out.append(claim("al-warm-cold", statement, test, dc.untestable(
            "the active-learning jobs did not record warm- and cold-started networks",
            "a pntk whose loop records them")))
    else:
        d = dc.equivalent(np.asarray(warm["warm"]) - np.asarray(warm["cold"]), AL_MARGIN, unit="seeds",
                          what="warm − cold")
        out.append(claim("al-warm-cold", statement, test, d))
    return out


def active_extras(json_paths) -> dict:
    """inp.active_meta from the active-learning jobs' JSONs (results/active/{dataset}/{strategy}-s{seed}.json):
    ``block`` sums their "block_check" records ({"identical_cycles": k, "cycles": n}); ``warm_cold`` lists, per
    seed of mlmoc-pntk, the final test accuracy of the warm- and the cold-started network ({"warm": a, "cold":
    b}). Absent records leave the key out (those claims are then not testable)."""
    import json
    from pathlib import Path

    block = {"identical_cycles": 0, "cycles": 0}
    warm, cold = [], []
    for p in sorted(json_paths, key=str):
        rec = json.loads(Path(p).read_text())
        check = rec.get("block_check")
        if check:
            block["identical_cycles"] += int(check["identical_cycles"])
            block["cycles"] += int(check["cycles"])
        wc = rec.get("warm_cold")
        if wc and rec.get("strategy") == PNTK:
            warm.append(float(wc["warm"]))
            cold.append(float(wc["cold"]))
    out: dict = {}
    if block["cycles"]:
        out["block"] = block
    if warm:
        out["warm_cold"] = {"warm": warm, "cold": cold}
    return out

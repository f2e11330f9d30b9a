"""Claims about full-data pNTK regression through training (Figs 9–12, §5) and the cost per pair (Fig 1): part
of claims.csv (pntk.report.claims). Accuracies are on the test split of n_test points: differences of a few test
points are a ceiling (pntk.report.decide.ceiling_of) that can never contradict a claim.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from . import claim_tests as ct
from . import decide as dc
from .claim_rows import ClaimInputs, at_epoch, claim, join, missing, split_learned, width_means
from .claims_kernel import TRAINED_ACC

FLAT_PER_DOUBLING = 0.01  # Fig 10: "does not significantly improve" = within ±1 point of accuracy per doubling
LATE_FROM = 0.25  # §5 "even after epoch 50" of 200: a checkpoint at least a quarter into training
LATE_MARGIN = 0.005  # Fig 11 for FCN/ResNet-18 ("not significant"): f̂_lin moves by less than half a point
KEYS = ["dataset", "arch", "width", "seed"]


def regression_claims(inp: ClaimInputs) -> list[dict]:
    regr, training = inp.regression, inp.training
    if isinstance(regr, str):
        return missing(["fig9-width", "fig9-training", "fig10-width", "fig11-late-change", "fig12-width",
                        "sec5-infinite"], regr, "pNTK stores [train, train] and [test, train]")
    learned, left_out = split_learned(regr)
    n = inp.n_test
    out = []
    for arch in sorted(regr.arch.unique()):
        mine, lo = split_learned(regr[regr.arch == arch])
        out.append(fig9_width(arch, mine, lo, n))
        out.append(fig10_width(arch, training, lo, n))
        out.append(fig11_late_change(arch, mine, lo))
        out.append(fig12_width(arch, mine, lo, n))
        out.append(sec5_infinite(arch, mine, inp.infinite_regression, lo, n))
    out.append(fig9_training(learned, left_out, n))
    return out


def run_means(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per run (KEYS, value = mean over its checkpoints): epochs of one network are not independent."""
    return rows.groupby(KEYS, as_index=False).value.mean()


def fig9_width(arch: str, regr: pd.DataFrame, left_out: str, n_test: int) -> dict:
    statement = (f"f̂_lin's test accuracy (full-data pNTK regression) rises as {arch} widens (each run's checkpoints "
                 "averaged).")
    test = ("exact within-seed permutation test of the Spearman correlation with width of each run's mean accuracy "
            "over its checkpoints; holds if p < 0.05, does not hold if the opposite is significant and not a ceiling")
    runs = run_means(regr[regr.statistic == "flin_test_acc"])
    if runs.empty:
        return claim(f"fig9-width:{arch}", statement, test, dc.untestable(f"no regressions of {arch}"), left_out)
    means = runs.groupby("width").value.mean()
    spread = float(means.max() - means.min()) * n_test if n_test else math.inf
    ceiling = (f"ceiling: the width means differ by {spread:.1f} of {n_test} test points"
               if spread < dc.CEILING_POINTS else "")
    d = dc.trend(runs.width, runs.value, runs.seed, +1, what=arch, ceiling=ceiling)
    return claim(f"fig9-width:{arch}", statement, test,
                 dc.Decision(d.verdict, join(width_means(runs), d.numbers), d.why, d.settle), left_out)


def fig9_training(regr: pd.DataFrame, left_out: str, n_test: int) -> dict:
    statement = "f̂_lin with the pNTK of the last checkpoint is more accurate than with the pNTK at initialisation."
    test = ("one-sided sign test over runs, last checkpoint against epoch 0 (ties split evenly); holds if p < 0.05, "
            "does not hold if the opposite is significant and not a ceiling")
    rows = regr[regr.statistic == "flin_test_acc"]
    epochs = sorted(rows.epoch.unique())
    if len(epochs) < 2 or epochs[0] != 0:
        return claim("fig9-training", statement, test, dc.untestable("needs checkpoints at epoch 0 and later",
                                                                     "train.checkpoint_epochs"), left_out)
    a = at_epoch(rows, "flin_test_acc", 0).set_index(KEYS).value.rename("init")
    b = at_epoch(rows, "flin_test_acc", epochs[-1]).set_index(KEYS).value.rename("last")
    pairs = pd.concat([a, b], axis=1, join="inner")
    ceiling = dc.ceiling_of(pairs["init"], pairs["last"], n_test)
    d = dc.paired(pairs["last"], pairs["init"], unit="runs", test="sign", ceiling=ceiling)
    numbers = (f"median {pairs['init'].median():.4g} → {pairs['last'].median():.4g} (epoch 0 vs {epochs[-1]}); "
               f"{d.numbers}")
    return claim("fig9-training", statement, test, dc.Decision(d.verdict, numbers, d.why, d.settle), left_out)


def fig10_width(arch: str, training: pd.DataFrame | str, left_out: str, n_test: int) -> dict:
    statement = (f"The SGD-trained {arch}'s test accuracy at the last epoch does not improve significantly with width: "
                 f"less than {FLAT_PER_DOUBLING} per doubling.")
    test = (f"least-squares slope of test accuracy per doubling of width, a per-seed intercept; holds if its 90% "
            f"interval lies within ±{FLAT_PER_DOUBLING}, does not hold if it lies above +{FLAT_PER_DOUBLING}; a "
            "ceiling (every accuracy within a few test points of 1.0) is inconclusive")
    if isinstance(training, str):
        return claim(f"fig10-width:{arch}", statement, test, dc.untestable(training), left_out)
    t = training[(training.arch == arch) & (training.statistic == "test_acc")]
    if "trained_on" in t.columns:
        t = t[t.trained_on == "train"]
    if "learned" in t.columns:
        t = t[t.learned.astype(bool)]
    last = t[t.epoch == t.epoch.max()] if len(t) else t
    if last.width.nunique() < 2:
        return claim(f"fig10-width:{arch}", statement, test, dc.untestable(f"one width of {arch}", "a second width"),
                     left_out)
    fit = ct.slope_fit(last.width, last.value, last.seed, level=0.90, log_y=False)
    if fit is None:
        return claim(f"fig10-width:{arch}", statement, test,
                     dc.Decision(dc.INCONCLUSIVE, width_means(last), "no residual degree of freedom",
                                 "a further width or seed"), left_out)
    unfit = unfit_runs(training, last)  # a refutation needs networks that fit their training set
    b, lo, hi = (v * math.log(2) for v in (fit.slope, fit.ci_low, fit.ci_high))  # per e-fold → per doubling
    numbers = f"{width_means(last)}; {b:+.4f} per doubling, 90% interval [{lo:+.4f}, {hi:+.4f}] ({fit.df} df)"
    if n_test and last.value.min() >= 1 - dc.CEILING_POINTS / n_test:
        d = dc.Decision(dc.INCONCLUSIVE, numbers, f"ceiling: every accuracy within {dc.CEILING_POINTS} of {n_test} "
                                                  "test points of 1.0", "a harder data set")
    elif -FLAT_PER_DOUBLING < lo and hi < FLAT_PER_DOUBLING:
        d = dc.Decision(dc.HOLDS, numbers)
    elif lo > FLAT_PER_DOUBLING and unfit:
        d = dc.Decision(dc.INCONCLUSIVE, numbers, f"improves by more than {FLAT_PER_DOUBLING} per doubling, but "
                        "undertrained networks are before the claim's regime", "train longer (train.epochs)")
    elif lo > FLAT_PER_DOUBLING:
        d = dc.Decision(dc.FAILS, numbers, f"improves by more than {FLAT_PER_DOUBLING} per doubling")
    else:
        d = dc.Decision(dc.INCONCLUSIVE, numbers, f"the interval reaches beyond ±{FLAT_PER_DOUBLING}",
                        "more seeds or widths")
    return claim(f"fig10-width:{arch}", statement, test, d, left_out, unfit)


def unfit_runs(training: pd.DataFrame, last: pd.DataFrame) -> str:
    """'' when every run of `last` (test accuracies at the last epoch) has fit its training set there, else how
    many have not (train accuracy < TRAINED_ACC), as the diagnostics claims say it; '' without train accuracies."""
    t = training[(training.statistic == "train_acc") & (training.epoch == int(last.epoch.max()))]
    if "trained_on" in t.columns:
        t = t[t.trained_on == "train"]
    acc = last[KEYS].merge(t[KEYS + ["value"]], on=KEYS, how="inner").value
    short = acc[acc < TRAINED_ACC]
    if acc.empty or short.empty:
        return ""
    return (f"{len(short)} of {len(acc)} networks have not fit their training set at epoch {int(last.epoch.max())} "
            f"(train accuracy < {TRAINED_ACC}, lowest {float(acc.min()):.3g})")


def fig11_late_change(arch: str, regr: pd.DataFrame, left_out: str) -> dict:
    """§5: the pNTK keeps changing late in training for ConvNets/WRNs, not significantly for FCNs/ResNet-18."""
    changes = arch in ("convnet", "wrn16")
    cid = f"fig11-late-change:{arch}"
    what = "keeps changing" if changes else "changes little"
    statement = (f"{arch}'s pNTK {what} late in training: f̂_lin's test accuracy at a checkpoint ≥ {LATE_FROM:.0%} "
                 f"into training and at the last differ{'' if changes else ' by less than ' + str(LATE_MARGIN)}.")
    test = ("two-sided paired t-test over runs (holds if p < 0.05; a 90% interval within ±" + str(LATE_MARGIN) +
            " does not hold)" if changes else "90% interval of the paired difference within ±" + str(LATE_MARGIN) +
            " holds; entirely outside does not hold")
    if arch not in ("convnet", "wrn16", "fcn", "resnet18"):
        return claim(cid, statement, test, dc.untestable(f"the paper says nothing of {arch}"), left_out)
    rows = regr[regr.statistic == "flin_test_acc"]
    epochs = sorted(rows.epoch.unique())
    last = epochs[-1] if epochs else 0
    mid = [e for e in epochs[:-1] if e >= LATE_FROM * last and e > 0]
    if not mid:
        return claim(cid, statement, test, dc.untestable(
            f"no checkpoint between {LATE_FROM:.0%} of training and the last (epochs {[int(e) for e in epochs]})",
            f"a checkpoint at epoch ≥ {math.ceil(LATE_FROM * last)} besides {last} in train.checkpoint_epochs"),
            left_out)
    a = at_epoch(rows, "flin_test_acc", mid[0]).set_index(KEYS).value
    b = at_epoch(rows, "flin_test_acc", last).set_index(KEYS).value
    d_ = (b - a).dropna().to_numpy()
    eq = dc.equivalent(d_, LATE_MARGIN, unit="runs", what=f"epoch {last} − epoch {mid[0]}")
    if not changes:
        return claim(cid, statement, test, eq, left_out)
    up, down = dc.paired(d_, np.zeros_like(d_), unit="runs", test="t"), dc.paired(-d_, np.zeros_like(d_), unit="runs",
                                                                                   test="t")
    numbers = eq.numbers
    if dc.HOLDS in (up.verdict, down.verdict):
        return claim(cid, statement, test, dc.Decision(dc.HOLDS, numbers, "a significant change"), left_out)
    if eq.verdict == dc.HOLDS:
        return claim(cid, statement, test, dc.Decision(dc.FAILS, numbers, f"unchanged within ±{LATE_MARGIN}"), left_out)
    return claim(cid, statement, test, dc.Decision(dc.INCONCLUSIVE, numbers, "no significant change, but not shown to "
                                                   "be within the margin either", eq.settle), left_out)


def fig12_width(arch: str, regr: pd.DataFrame, left_out: str, n_test: int) -> dict:
    statement = (f"The linearisation at initialisation predicts the trained {arch}'s accuracy better as it widens: "
                 "|acc(f̂_lin at epoch 0) − acc(final network)| falls with width.")
    test = ("exact within-seed permutation test of the Spearman correlation with width at epoch 0; holds if p < 0.05, "
            "does not hold if the opposite is significant and not a ceiling")
    rows = at_epoch(regr, "flin_minus_final", 0).assign(value=lambda r: r.value.abs())
    if rows.empty:
        return claim(f"fig12-width:{arch}", statement, test, dc.untestable("no regression at epoch 0"), left_out)
    spread = float(rows.groupby("width").value.mean().pipe(lambda m: m.max() - m.min())) * n_test if n_test else 99
    ceiling = f"ceiling: the width means differ by {spread:.1f} of {n_test} test points" if spread < 3 else ""
    d = dc.trend(rows.width, rows.value, rows.seed, -1, what=arch, ceiling=ceiling)
    return claim(f"fig12-width:{arch}", statement, test,
                 dc.Decision(d.verdict, join(width_means(rows), d.numbers), d.why, d.settle), left_out)


def sec5_infinite(arch: str, regr: pd.DataFrame, infinite: dict | str, left_out: str, n_test: int) -> dict:
    statement = (f"Full-data kernel regression with {arch}'s pNTK is less accurate than with the NTK of its "
                 "infinite-width counterpart (each run's checkpoints averaged).")
    test = ("one-sided t-test over runs of acc(NTK∞ regression) − acc(f̂_lin); holds if p < 0.05, does not hold if "
            "the opposite is significant and not a ceiling")
    cid = f"sec5-infinite:{arch}"
    if isinstance(infinite, str):
        return claim(cid, statement, test, dc.untestable(infinite), left_out)
    if arch not in infinite:
        return claim(cid, statement, test, dc.untestable(
            f"pntk has no analytic infinite-width NTK of {arch} (only of the ReLU FCN and the ConvNet-GAP)",
            "an analytic NTK of this architecture"), left_out)
    if isinstance(infinite[arch], str):
        return claim(cid, statement, test, dc.untestable(
            f"the infinite-width regression of {arch} was skipped: {infinite[arch]}",
            "a larger regression.memory_cap_gb or infinite.max_cntk_cpu_hours"), left_out)
    runs = run_means(regr[regr.statistic == "flin_test_acc"])
    acc_inf = float(infinite[arch])
    ceiling = dc.ceiling_of(runs.value, np.full(len(runs), acc_inf), n_test)
    d = dc.paired(np.full(len(runs), acc_inf), runs.value, unit="runs", test="t", ceiling=ceiling)
    numbers = f"NTK∞ {acc_inf:.4g} vs f̂_lin {runs.value.mean():.4g} (mean of {len(runs)} runs); {d.numbers}"
    return claim(cid, statement, test, dc.Decision(d.verdict, numbers, d.why, d.settle), left_out)


# ----------------------------------------------------------------------------- Fig 1
def timing_claims(timing: pd.DataFrame | str) -> list[dict]:
    statement = "Evaluating the pNTK of a pair of inputs takes less time than the eNTK's, at every ResNet depth."
    test = ("per depth, one-sided Mann–Whitney U over the repeats (CPU seconds on one thread, else wall-clock), Holm "
            "over depths; holds if every depth is significant, does not hold if the eNTK is significantly faster at "
            "some depth")
    if isinstance(timing, str):
        return [claim("fig1-cost", statement, test, dc.untestable(timing))]
    col = "cpu_seconds" if (timing.threads == 1).all() and (timing.device == "cpu").all() else "seconds"
    depths = sorted(timing.depth.unique())
    p_for, p_against, parts = [], [], []
    for depth in depths:
        e = timing[(timing.depth == depth) & (timing.kind == "entk")][col].to_numpy(float)
        p = timing[(timing.depth == depth) & (timing.kind == "pntk")][col].to_numpy(float)
        p_for.append(ct.time_ratio(p, e).p)
        p_against.append(ct.time_ratio(e, p).p)
        parts.append(f"depth {depth}: eNTK/pNTK {np.median(e) / np.median(p):.2f}")
    hold, against = ct.holm(p_for), ct.holm(p_against)
    numbers = f"{'; '.join(parts)} (medians of {col})"
    if (hold < dc.ALPHA).all():
        d = dc.Decision(dc.HOLDS, numbers)
    elif (against < dc.ALPHA).any():
        slowest = depths[int(np.argmin(against))]
        d = dc.Decision(dc.FAILS, numbers, f"the eNTK is significantly faster at depth {slowest}")
    else:
        d = dc.Decision(dc.INCONCLUSIVE, numbers, "not significant at every depth", "more timing.repeats")
    return [claim("fig1-cost", statement, test, d)]

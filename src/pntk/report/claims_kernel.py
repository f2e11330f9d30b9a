"""Claims about the eNTK against the pNTK on D (Figs 2–8, §3, §4.2, §6): part of claims.csv (pntk.report.claims).

"init" is epoch 0, "last" the last checkpoint of the diagnostics runs. Claims about training read the networks'
accuracy on their own training set: a network that has not fit it (train accuracy < TRAINED_ACC) is before the
regime the paper describes ("until epoch 150, where the training error has vanished", §5), so its numbers can
support a claim about training but never contradict it.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from . import decide as dc
from .claim_rows import ClaimInputs, at_epoch, claim, finite_rows, join, missing, split_learned, width_means

TRAINED_ACC = 0.99  # train accuracy at which a network has fit its training set (the paper's end of training)
FIRST_LOGIT_MARGIN = math.log(1.25)  # equivalence margin of log ‖K₁‖/‖Θ̂‖: the norms within 25 %
FAR_RATIO = 0.25  # off- vs on-diagonal Frobenius ratio of "far from diagonal"
LAMBDA_MIN_FLOOR = 1e-3  # the paper's λmin(Θ̂) > 0.001
ALWAYS_SHARE = 0.8  # "almost always": at least this share of the networks

# family → (statistic, what it measures, ceiling in test points?) of the width trends at init
WIDTH_TRENDS = {
    "fig2-width": ("offdiag_ratio", "the off- vs on-diagonal Frobenius mass ‖offdiag‖/‖diag‖ of the O×O eNTK "
                                    "blocks, pooled over D × D"),
    "fig2-block-width": ("offdiag_block_ratio", "|sum of off-diagonal| / |sum of diagonal| entries of the O×O eNTK "
                                                "blocks, each averaged over the N×N blocks (thesis Fig 3.2)"),
    "fig3-norm-width": ("frobenius_norm_rel_diff", "the relative difference of the norms |‖Θ‖_F − ‖Θ̂⊗I‖_F| / "
                                                   "‖Θ‖_F (the Fig 3 caption's statistic)"),
    "fig3-distance-width": ("frobenius_distance", "the relative distance ‖Θ − Θ̂⊗I‖_F / ‖Θ‖_F (Theorem 1's "
                                                  "quantity)"),
    "fig4-width": ("lambda_max_rel_diff", "|λmax(Θ) − λmax(Θ̂)| / λmax(Θ)"),
    "fig5-width": ("lambda_min_rel_diff", "|λmin(Θ) − λmin(Θ̂)| / λmin(Θ)"),
    "fig6-width": ("cond_rel_diff", "|κ(Θ) − κ(Θ̂)| / κ(Θ)"),
    "fig7-width": ("pred_rel_diff", "‖f_lin − f̂_lin‖_F / ‖f_lin‖_F of kernel regression on D, predicting X"),
    "fig8-width": ("acc_abs_diff", "|acc(f_lin) − acc(f̂_lin)| on X"),
}
TREND_TEST = ("exact within-seed permutation test of the Spearman correlation with width at epoch 0; holds if p < "
              "0.05 in the claimed direction, does not hold if p < 0.05 in the opposite one")
SIGN_RUNS = ("one-sided sign test over runs, last checkpoint against epoch 0 (ties split evenly); holds if p < 0.05, "
             "does not hold if the opposite is significant and the networks have fit D")


def kernel_claims(inp: ClaimInputs) -> list[dict]:
    diag = inp.diagnostics
    if isinstance(diag, str):
        return missing(_all_ids(), diag, "diagnostics.enabled: true")
    learned, left_out = split_learned(diag)
    archs = sorted(diag.arch.unique())
    regime = trained_regime(inp.training, diag)
    out = []
    for arch in archs:
        mine, lo = split_learned(diag[diag.arch == arch])
        for family, (stat, what) in WIDTH_TRENDS.items():
            out.append(width_trend(f"{family}:{arch}", arch, at_epoch(mine, stat, 0), what, lo,
                                   n_test=inp.n_test_subset if stat == "acc_abs_diff" else 0))
    out.append(far_from_diagonal(learned, left_out))
    out.append(first_logit(learned, left_out))
    for key, stat, label in (("frobenius", "frobenius_distance", "‖Θ − Θ̂⊗I‖_F / ‖Θ‖_F"),
                             ("lambda-max", "lambda_max_rel_diff", "the relative λmax difference"),
                             ("condition", "cond_rel_diff", "the relative condition-number difference")):
        out.append(after_training(f"worse-after-training:{key}", learned, stat, +1, regime, left_out,
                                  f"{label} is larger at the last checkpoint than at initialisation"))
    out.append(convnet_lambda_min(learned, left_out))
    for arch in archs:
        direction = {"fcn": -1, "convnet": +1, "resnet18": +1, "wrn16": +1}.get(arch)
        if direction is not None:
            out.append(after_training(f"lambda-min-training:{arch}", learned[learned.arch == arch],
                                      "lambda_min_entk", direction, regime, left_out,
                                      f"λmin(Θ) of {arch} {'grows' if direction > 0 else 'falls'} during training"))
    out.append(after_training("fig7-training", learned, "pred_rel_diff", -1, regime, left_out,
                              "‖f_lin − f̂_lin‖ / ‖f_lin‖ on X is smaller at the last checkpoint than at init"))
    out.append(fig8_always(learned, left_out))
    out.append(fig8_almost_always(learned, left_out))
    out.append(after_training("fig8-training", learned, "acc_abs_diff", -1, regime, left_out,
                              "|acc(f_lin) − acc(f̂_lin)| on X is smaller at the last checkpoint than at init",
                              n_test=inp.n_test_subset))
    return out


def _all_ids() -> list[str]:
    return (["far-from-diagonal", "first-logit", "worse-after-training:frobenius", "worse-after-training:lambda-max",
             "worse-after-training:condition", "convnet-lambda-min", "fig7-training", "fig8-always",
             "fig8-almost-always", "fig8-training"] + list(WIDTH_TRENDS))


# ----------------------------------------------------------------------------- width trends at init
def width_trend(cid: str, arch: str, rows: pd.DataFrame, what: str, left_out: str, n_test: int = 0) -> dict:
    statement = f"At initialisation {what} falls as {arch} widens."
    good, dropped = finite_rows(rows)
    if good.empty:
        return claim(cid, statement, TREND_TEST, dc.untestable(f"no rows of {arch}"), left_out)
    ceiling = ""
    if n_test and good.width.nunique() > 1:  # a trend of accuracy differences within a few test points
        spread = float(good.groupby("width").value.mean().pipe(lambda m: m.max() - m.min())) * n_test
        if spread < dc.CEILING_POINTS:
            ceiling = f"ceiling: the width means differ by {spread:.1f} of {n_test} test points"
    d = dc.trend(good.width, good.value, good.seed, -1, what=arch, ceiling=ceiling)
    d = dc.Decision(d.verdict, join(width_means(good), d.numbers), d.why, d.settle)
    return claim(cid, statement, TREND_TEST, d, left_out, dropped)


# ----------------------------------------------------------------------------- the regime of training claims
def trained_regime(training: pd.DataFrame | str, diag: pd.DataFrame) -> str:
    """'' when every diagnostics run has fit its training set at its last checkpoint, else why not (the
    regime of the paper's training claims is not reached). Networks at initialisation only do not count."""
    if isinstance(training, str) or training.empty:
        return "no train accuracies to tell whether the networks fit their training set"
    keys = ["dataset", "arch", "width", "seed"] + (["trained_on"] if "trained_on" in diag.columns else [])
    if "trained_on" in diag.columns:  # networks at initialisation only (diagnostics.at_init) were never trained
        diag = diag[diag.trained_on != "init"]
    last = int(diag.epoch.max())
    t = training[(training.statistic == "train_acc") & (training.epoch == last)]
    runs = diag[keys].drop_duplicates()
    acc = runs.merge(t[keys + ["value"]], on=keys, how="left")
    short = acc[~(acc.value >= TRAINED_ACC)]
    if short.empty:
        return ""
    worst = float(np.nanmin(acc.value)) if acc.value.notna().any() else float("nan")
    return (f"{len(short)} of {len(acc)} networks have not fit their training set at epoch {last} (train "
            f"accuracy < {TRAINED_ACC}, lowest {worst:.3g}); the paper trains until the training error vanishes")


def init_vs_last(df: pd.DataFrame, statistic: str) -> tuple[pd.DataFrame | None, str]:
    """Rows (run keys, init, last) pairing epoch 0 with the last checkpoint, or (None, why)."""
    epochs = sorted(df.epoch.unique())
    if 0 not in epochs:
        return None, "no checkpoint at epoch 0"
    if len(epochs) < 2:
        return None, "one checkpoint: nothing to compare with the initialisation"
    keys = [k for k in ("dataset", "arch", "width", "seed", "trained_on") if k in df.columns]
    a = at_epoch(df, statistic, 0).set_index(keys).value.rename("init")
    b = at_epoch(df, statistic, epochs[-1]).set_index(keys).value.rename("last")
    return pd.concat([a, b], axis=1, join="inner").reset_index(), f"epoch 0 vs {epochs[-1]}"


def after_training(cid: str, diag: pd.DataFrame, statistic: str, direction: int, regime: str, left_out: str,
                   statement: str, n_test: int = 0) -> dict:
    """The statistic rises (direction +1) or falls (−1) from init to the last checkpoint, over runs."""
    pairs, how = init_vs_last(diag, statistic)
    if pairs is None or pairs.empty:
        return claim(cid, statement, SIGN_RUNS, dc.untestable(how or "no runs", "train.checkpoint_epochs with 0 and "
                                                              "a later epoch"), left_out)
    ceiling = dc.ceiling_of(pairs["init"], pairs["last"], n_test) if n_test else ""
    better, worse = (pairs["last"], pairs["init"]) if direction > 0 else (-pairs["last"], -pairs["init"])
    d = dc.paired(better, worse, unit="runs", test="sign", ceiling=ceiling, regime=regime)
    # The per-run change, not the two epochs' medians: over a mix of archs and widths those can move the other
    # way than most runs do (Fig 7 here: medians 0.54 → 0.53 while 14 of 16 runs rose).
    change = (pairs["last"] - pairs["init"]).median()
    numbers = (f"median change per run {change:+.3g} (medians {pairs['init'].median():.3g} → "
               f"{pairs['last'].median():.3g}; {how}); {d.numbers}")
    return claim(cid, statement, SIGN_RUNS, dc.Decision(d.verdict, numbers, d.why, d.settle), left_out)


# ----------------------------------------------------------------------------- the eNTK's structure
def far_from_diagonal(diag: pd.DataFrame, left_out: str) -> dict:
    last = int(diag.epoch.max()) if len(diag) else 0
    statement = (f"In most trained networks the eNTK is far from diagonal: at the last checkpoint (epoch {last}) "
                 f"the off- vs on-diagonal ratio of its O×O blocks is at least {FAR_RATIO} in more than half of the "
                 "runs.")
    test = (f"share of runs with ‖offdiag‖/‖diag‖ ≥ {FAR_RATIO} at the last checkpoint; holds if it is at least ½ and "
            "its one-sided 95% lower bound exceeds ½, does not hold if the upper bound is below ½")
    rows = at_epoch(diag, "offdiag_ratio", last)
    if rows.empty:
        return claim("far-from-diagonal", statement, test, dc.untestable("no offdiag_ratio rows"), left_out)
    k, n = int((rows.value >= FAR_RATIO).sum()), len(rows)
    d = dc.mostly(k, n, share=0.5, unit="runs", what=f"ratio ≥ {FAR_RATIO}")
    numbers = (f"{d.numbers}; median ratio {rows.value.median():.3g}, range {rows.value.min():.3g}–"
               f"{rows.value.max():.3g}")
    return claim("far-from-diagonal", statement, test, dc.Decision(d.verdict, numbers, d.why, d.settle), left_out)


def first_logit(diag: pd.DataFrame, left_out: str) -> dict:
    statement = ("At initialisation the first-logit kernel K₁ = Θ_11 and the pNTK have the same distribution: over "
                 "runs, log(‖K₁‖_F / ‖Θ̂‖_F) on D averages 0.")
    test = ("two one-sided t-tests over runs at epoch 0: holds if the 90% interval of the mean log ratio lies within "
            "±log 1.25 (norms within 25 %), does not hold if it lies outside")
    a, b = at_epoch(diag, "first_logit_fro", 0), at_epoch(diag, "pntk_fro", 0)
    keys = [k for k in ("dataset", "arch", "width", "seed", "trained_on") if k in diag.columns]
    both = a.merge(b, on=keys, suffixes=("_k1", "_p"))
    if both.empty:
        return claim("first-logit", statement, test, dc.untestable("no first_logit_fro/pntk_fro rows at epoch 0 "
                                                                   "(diagnostics of an older pntk)"), left_out)
    d = dc.equivalent(np.log(both.value_k1 / both.value_p), FIRST_LOGIT_MARGIN, unit="runs", what="log ratio")
    return claim("first-logit", statement, test, d, left_out)


def convnet_lambda_min(diag: pd.DataFrame, left_out: str) -> dict:
    statement = (f"At initialisation the ConvNet's eNTK is ill-conditioned, λmin(Θ) → 0, while λmin(Θ̂) > "
                 f"{LAMBDA_MIN_FLOOR}: read with the paper's own number, λmin(Θ) < {LAMBDA_MIN_FLOOR} < λmin(Θ̂) in "
                 "every ConvNet run.")
    test = (f"per run at epoch 0: λmin(Θ̂) > {LAMBDA_MIN_FLOOR} and λmin(Θ) < {LAMBDA_MIN_FLOOR}; holds if every run "
            f"has both, does not hold if some run has λmin(Θ̂) ≤ {LAMBDA_MIN_FLOOR} or no run has λmin(Θ) < "
            f"{LAMBDA_MIN_FLOOR}, else inconclusive (the kernels' scale is that of this data and init)")
    e, p = at_epoch(diag[diag.arch == "convnet"], "lambda_min_entk", 0), at_epoch(diag, "lambda_min_pntk", 0)
    keys = [k for k in ("dataset", "arch", "width", "seed", "trained_on") if k in diag.columns]
    both = e.merge(p, on=keys, suffixes=("_e", "_p"))
    if both.empty:
        return claim("convnet-lambda-min", statement, test, dc.untestable("no ConvNet in models", "a convnet entry"),
                     left_out)
    floor_ok = int((both.value_p > LAMBDA_MIN_FLOOR).sum())
    zero = int((both.value_e < LAMBDA_MIN_FLOOR).sum())
    ratio = both.value_e / both.value_p
    numbers = (f"λmin(Θ̂) {both.value_p.min():.3g}–{both.value_p.max():.3g} (> {LAMBDA_MIN_FLOOR} in {floor_ok} of "
               f"{len(both)}); λmin(Θ) {both.value_e.min():.3g}–{both.value_e.max():.3g} (< {LAMBDA_MIN_FLOOR} in "
               f"{zero} of {len(both)}); λmin(Θ)/λmin(Θ̂) {ratio.min():.3g}–{ratio.max():.3g}")
    if floor_ok < len(both):
        d = dc.Decision(dc.FAILS, numbers, f"λmin(Θ̂) ≤ {LAMBDA_MIN_FLOOR} in {len(both) - floor_ok} run(s)")
    elif zero == len(both):
        d = dc.Decision(dc.HOLDS, numbers)
    elif zero == 0:
        d = dc.Decision(dc.FAILS, numbers, f"λmin(Θ) ≥ {LAMBDA_MIN_FLOOR} in every run: the eNTK is not near "
                                           "singular here, though smaller than the pNTK's")
    else:
        below = both.assign(z=both.value_e < LAMBDA_MIN_FLOOR).groupby("width").z.agg(["sum", "size"])
        by_width = ", ".join(f"w={w}: {int(r['sum'])} of {int(r['size'])}" for w, r in below.iterrows())
        clean = below["sum"].isin([0]) | (below["sum"] == below["size"])
        why = (f"λmin(Θ) < {LAMBDA_MIN_FLOOR} by width: {by_width}"
               + ("; it depends on the width, which the quote does not name" if clean.all() and len(below) > 1
                  else "; runs of one width disagree"))
        d = dc.Decision(dc.INCONCLUSIVE, numbers, why,
                        "the ConvNet widths the claim is about" if clean.all() else "more ConvNet seeds")
    return claim("convnet-lambda-min", statement, test, d, left_out)


# ----------------------------------------------------------------------------- Fig 8: which kernel predicts better
def fig8_always(diag: pd.DataFrame, left_out: str) -> dict:
    statement = ("In every cell of Fig 8 (architecture × width × epoch, seeds pooled) kernel regression with the pNTK "
                 "is more accurate on X than with the eNTK.")
    test = ("per cell the test points only one kernel got right; does not hold if the eNTK is ahead significantly in "
            "some cell (exact McNemar, Holm over cells); holds if the pNTK is ahead in every cell and the sign test "
            "over cells gives p < 0.05; else inconclusive")
    a, b = diag[diag.statistic == "only_pntk_correct"], diag[diag.statistic == "only_entk_correct"]
    if a.empty or b.empty:
        return claim("fig8-always", statement, test, dc.untestable("no only_pntk_correct/only_entk_correct rows "
                                                                   "(diagnostics of an older pntk)"), left_out)
    keys = ["arch", "width", "epoch"]
    cells = a.groupby(keys).value.sum().rename("a").to_frame().join(b.groupby(keys).value.sum().rename("b"))
    names = [f"{arch}-w{w} epoch {e}" for arch, w, e in cells.index]
    d = dc.always(cells.a.astype(int), cells.b.astype(int), names, a="pNTK", b="eNTK")
    return claim("fig8-always", statement, test, d, left_out)


def fig8_almost_always(diag: pd.DataFrame, left_out: str) -> dict:
    statement = (f"Kernel regression with the pNTK is more accurate on X than with the eNTK almost always: in at "
                 f"least {ALWAYS_SHARE:.0%} of the cells (run × checkpoint).")
    test = (f"per run the fraction of its checkpoints where the pNTK got more test points of X right; their mean "
            f"over runs with a 90% t-interval over runs (a run's checkpoints are not independent); holds if it is "
            f"≥ {ALWAYS_SHARE:.0%} and the lower bound exceeds ½, does not hold if the upper bound is below "
            f"{ALWAYS_SHARE:.0%}")
    a, b = diag[diag.statistic == "only_pntk_correct"], diag[diag.statistic == "only_entk_correct"]
    if a.empty or b.empty:
        return claim("fig8-almost-always", statement, test, dc.untestable("no only_pntk_correct/only_entk_correct "
                                                                          "rows"), left_out)
    keys = [k for k in ("dataset", "arch", "width", "seed", "trained_on") if k in diag.columns]
    cells = a.set_index(keys + ["epoch"]).value.rename("a").to_frame().join(
        b.set_index(keys + ["epoch"]).value.rename("b"))
    shares = (cells.a > cells.b).groupby(level=keys).mean()
    d = dc.mostly_clustered(shares, share=ALWAYS_SHARE, unit="runs", what="pNTK ahead")
    return claim("fig8-almost-always", statement, test, d, left_out)

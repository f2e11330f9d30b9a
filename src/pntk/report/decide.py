"""Decision rules: a claim's statistic → holds / does not hold / inconclusive / not testable, with the reason.

    holds          the data show the claim at the stated level (one-sided 5%, or a 90%/95% interval)
    does not hold  the data contradict the claim at that level: the opposite trend or difference is
                   significant, or an interval lies outside what the claim allows
    inconclusive   neither: too little power (the interval straddles the margin; no design of this size
                   could reach p < 0.05), a ceiling (accuracies within a few test points of each other or of
                   1.0), or data from before the claim's regime (training not finished); `settle` says what
                   would decide it
    not testable   the input the claim needs is missing (no table, one width, a strategy not run)

Each rule returns a :class:`Decision`; the claim modules add the source, statement and test text. The rules
are tested on synthetic tables built to hold, to fail and to be underpowered (tests/test_decide.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import claim_tests as ct

HOLDS, FAILS, INCONCLUSIVE, UNTESTABLE = "holds", "does not hold", "inconclusive", "not testable"
VERDICTS = (HOLDS, FAILS, INCONCLUSIVE, UNTESTABLE)
ALPHA = ct.ALPHA
CEILING_POINTS = 3  # accuracies closer than this many test points (to each other or to 1.0) are a ceiling


@dataclass(frozen=True)
class Decision:
    verdict: str
    numbers: str = ""  # the numbers behind the verdict
    why: str = ""  # the reason, always given unless the claim holds plainly
    settle: str = ""  # what would decide an inconclusive or untestable claim

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict {self.verdict!r}, expected one of {VERDICTS}")


def g3(x: float) -> str:
    return f"{x:.3g}"


def untestable(why: str, settle: str = "", numbers: str = "") -> Decision:
    return Decision(UNTESTABLE, numbers, why, settle)


# ----------------------------------------------------------------------------- trends with width
def trend(widths, values, seeds, direction: int, *, what: str, ceiling: str = "") -> Decision:
    """Does `values` fall (direction −1) or rise (+1) with `widths`? Exact within-seed permutation test in
    the claim's direction (holds at p < ALPHA) and in the opposite one (does not hold, unless `ceiling`
    names a reason the values cannot separate)."""
    w, v, s = (np.asarray(a, float).ravel() for a in (widths, values, seeds))
    n_w, n_s = np.unique(w).size, np.unique(s).size
    if n_w < 2:
        return untestable(f"one width of {what}", "a second width in models.widths")
    res, opp = ct.trend_test(w, v, s, direction), ct.trend_test(w, v, s, -direction)
    numbers = f"ρ̄ = {res.statistic:+.2f}, p = {g3(res.p)}"
    design = f"{n_w} widths × {n_s} seed{'s' if n_s > 1 else ''}"
    if res.min_p >= ALPHA:
        return Decision(INCONCLUSIVE, numbers, f"{design}: even a perfect ordering gives p = {g3(res.min_p)}",
                        _more_design(n_w, n_s))
    if res.p < ALPHA:
        return Decision(HOLDS, numbers, f"{design}")
    if opp.p < ALPHA and not ceiling:
        return Decision(FAILS, numbers, f"{design}: the opposite trend is significant (p = {g3(opp.p)})")
    why = f"{design}: no significant trend either way (p = {g3(opp.p)} against the claim)"
    return Decision(INCONCLUSIVE, numbers, f"{why}; {ceiling}" if ceiling else why,
                    "a harder data set or task" if ceiling else _more_design(n_w, n_s))


def _more_design(n_widths: int, n_seeds: int) -> str:
    """What enlarges a width trend's design: widths first (each adds a factorial), then seeds."""
    if n_widths < 3:
        return f"a third width (now {n_widths}) or more seeds (now {n_seeds})"
    return f"more seeds (now {n_seeds}) or widths (now {n_widths})"


# ----------------------------------------------------------------------------- paired comparisons
def paired(better, worse, *, unit: str, test: str = "sign", ceiling: str = "", regime: str = "") -> Decision:
    """Is `better` > `worse` over paired units (runs, seeds)? test "sign" (ties split evenly) or "t" (paired
    t-test). The opposite direction significant → does not hold, unless a ceiling or an unreached regime
    (`ceiling`, `regime`: why the data cannot speak) makes it inconclusive."""
    b, w = np.asarray(better, float), np.asarray(worse, float)
    ok = np.isfinite(b) & np.isfinite(w)
    b, w = b[ok], w[ok]
    if b.size == 0:
        return untestable(f"no paired {unit}")
    if test == "sign":
        wins, losses = int((b > w).sum()), int((b < w).sum())
        ties = b.size - wins - losses
        res, opp = ct.sign_test(wins, losses, ties), ct.sign_test(losses, wins, ties)
        numbers = f"{wins} of {b.size} {unit} in favour, {losses} against, {ties} tied; p = {g3(res.p)}"
        settle = f"more {unit} (now {b.size})"
    elif test == "t":
        res, opp = ct.paired_t(b, w), ct.paired_t(w, b)
        numbers = f"mean paired Δ = {res.statistic:+.3g} over {b.size} {unit}; p = {g3(res.p)}"
        need = ct.pairs_needed(b - w, res.statistic, level=1 - 2 * ALPHA) if b.size > 1 and res.statistic > 0 \
            else None
        settle = (f"about {need} {unit} at this effect (now {b.size})" if need and need > b.size
                  else f"more {unit} (now {b.size})" if res.statistic > 0
                  else f"no number of {unit} at this effect: the difference runs against the claim")
    else:
        raise ValueError(f"paired: test {test!r}, expected 'sign' or 't'")
    if res.min_p >= ALPHA:
        return Decision(INCONCLUSIVE, numbers, f"{b.size} {unit}: even all in favour gives p = {g3(res.min_p)}",
                        settle)
    caveat = "; ".join(x for x in (regime, ceiling) if x)
    if res.p < ALPHA:
        return Decision(HOLDS, numbers, caveat)
    if opp.p < ALPHA and not caveat:
        return Decision(FAILS, numbers, f"the opposite is significant (p = {g3(opp.p)})")
    why = f"not significant either way (p = {g3(opp.p)} against the claim)"
    return Decision(INCONCLUSIVE, numbers, f"{why}; {caveat}" if caveat else why,
                    "train longer (the claim's regime)" if regime else ("a harder task" if ceiling else settle))


# ----------------------------------------------------------------------------- intervals against a margin
def equivalent(d, margin: float, *, unit: str, what: str) -> Decision:
    """Equivalence within ±margin of mean(d) (two one-sided t-tests at 5%: the 90% interval inside ±margin);
    does not hold when the interval lies entirely outside ±margin."""
    d = np.asarray(d, float)
    d = d[np.isfinite(d)]
    if d.size < 2:
        return untestable(f"{d.size} paired {unit}: an interval needs at least 2", f"at least 2 {unit}")
    mean, lo, hi = ct.t_interval(d, 0.90)
    numbers = f"{what} Δ = {mean:+.3g}, 90% interval [{lo:+.3g}, {hi:+.3g}] over {d.size} {unit}; margin ±{margin:g}"
    if -margin < lo and hi < margin:
        return Decision(HOLDS, numbers)
    if lo > margin or hi < -margin:
        return Decision(FAILS, numbers, f"the interval lies outside ±{margin:g}")
    room = margin - abs(mean)
    need = ct.pairs_needed(d, room) if room > 0 else None
    settle = (f"about {need} {unit} at this spread (now {d.size})" if need else
              f"the estimate itself is at the margin: many more {unit} (now {d.size})")
    return Decision(INCONCLUSIVE, numbers, f"the interval straddles ±{margin:g}: too few {unit} to tell", settle)


def noninferior(d, margin: float, *, unit: str, what: str) -> Decision:
    """Non-inferiority of mean(d) at −margin (one-sided 5%: the 90% interval's low end above −margin); does not
    hold when the whole interval lies below −margin (significantly worse by more than the margin)."""
    d = np.asarray(d, float)
    d = d[np.isfinite(d)]
    if d.size < 2:
        return untestable(f"{d.size} paired {unit}: an interval needs at least 2", f"at least 2 {unit}")
    mean, lo, hi = ct.t_interval(d, 0.90)
    numbers = f"{what} Δ = {mean:+.3g}, 90% interval [{lo:+.3g}, {hi:+.3g}] over {d.size} {unit}; margin −{margin:g}"
    if lo > -margin:
        return Decision(HOLDS, numbers)
    if hi < -margin:
        return Decision(FAILS, numbers, f"worse by more than the margin {margin:g}")
    need = ct.pairs_needed(d, mean + margin) if mean + margin > 0 else None
    settle = f"about {need} {unit} at this spread (now {d.size})" if need else f"more {unit} (now {d.size})"
    return Decision(INCONCLUSIVE, numbers, f"the interval reaches below −{margin:g}: too few {unit} to tell", settle)


# ----------------------------------------------------------------------------- rates in the width
def rate(x, y, seeds, *, bound: float = -0.5, log_factor: bool, what: str, asymptotic_from: float | None = None
         ) -> Decision:
    """An upper bound y ∈ O(x^bound) (Õ with `log_factor`: one factor log x) checked by the log-log slope.

    The bound's slope at the fitted widths is `bound` (+ 1/ln x̄ with the log factor, x̄ their geometric mean:
    log x · x^-½ falls as x^(−½ + 1/ln x) locally). Holds when the slope's 95% interval lies at or below it
    (the data fall at least that fast). An interval above it is inconclusive, not a refutation: the bound is
    asymptotic (w → ∞), and a slower fall over a finite range of widths is what a pre-asymptotic regime
    looks like; it says so, with the slope. Does not hold only when the quantity significantly GROWS with
    width (the interval lies above 0), which no convergence allows. Widths below `asymptotic_from` are
    pre-asymptotic: fitted and reported apart, left out of the verdict."""
    x, y, s = (np.asarray(a, float).ravel() for a in (x, y, seeds))
    good = np.isfinite(y) & (y > 0) & (x > 0)
    x, y, s = x[good], y[good], s[good]
    if np.unique(x).size < 2:
        return untestable(f"{'one width' if x.size else 'no rows'} of {what}", "a second width in models.widths")
    every = ct.slope_fit(x, y, s)
    use = x >= asymptotic_from if asymptotic_from else np.ones(x.size, bool)
    fit = ct.slope_fit(x[use], y[use], s[use]) if use.sum() < x.size else every
    span = f"{_w(x[use].min())}–{_w(x[use].max())}"
    if fit is None:
        why = (f"{np.unique(x[use]).size} widths × {np.unique(s[use]).size} seed(s) of {what} from width "
               f"{_w(x[use].min())}: no residual degree of freedom for an interval")
        return Decision(INCONCLUSIVE, _slope_text(every, "all widths") if every else "", why,
                        "a further width or a second seed")
    local = bound + (1.0 / float(np.log(x[use]).mean()) if log_factor else 0.0)
    shape = f"Õ(w^{bound:g}) (local slope {local:+.2f} at these widths)" if log_factor else f"O(w^{bound:g})"
    numbers = _slope_text(fit, f"widths {span}")
    if fit is not every and every is not None:
        numbers += f"; all widths from {_w(x.min())}: {_slope_text(every, '')}"
    if fit.ci_high <= local:
        return Decision(HOLDS, numbers, f"falls at least as fast as {shape}")
    if fit.ci_low > 0:
        return Decision(FAILS, numbers, f"grows significantly with width: no convergence, let alone {shape}")
    if fit.ci_low > local:
        return Decision(INCONCLUSIVE, numbers, f"falls significantly more slowly than {shape} at these widths: "
                                               "a bound as w → ∞ is not refuted by a finite range, but not shown "
                                               "either (if this slope persisted, the bound would fail at larger "
                                               "widths)", "wider widths, where the slope should steepen")
    return Decision(INCONCLUSIVE, numbers, f"the interval contains the bound's slope {local:+.2f}: {shape} can "
                                           "be neither confirmed nor excluded", "more seeds or a wider range of widths")


def _w(x: float) -> str:
    return f"{x:g}"


def _slope_text(fit: ct.Slope, over: str) -> str:
    where = f" over {over}" if over else ""
    return (f"slope {fit.slope:+.3f} [{fit.ci_low:+.3f}, {fit.ci_high:+.3f}]{where} ({fit.n_widths} widths, "
            f"{fit.n_seeds} seed{'s' if fit.n_seeds > 1 else ''}, {fit.df} df)")


# ----------------------------------------------------------------------------- accuracies on one test set
def ceiling_of(acc_a, acc_b, n_test: int, points: int = CEILING_POINTS) -> str:
    """Why two sets of accuracies (paired, fractions of n_test points) cannot separate, or '': both within
    `points` test points of 1.0, or on average fewer than `points` test points apart."""
    a, b = np.asarray(acc_a, float), np.asarray(acc_b, float)
    ok = np.isfinite(a) & np.isfinite(b)
    if not ok.any() or n_test <= 0:
        return ""
    a, b = a[ok], b[ok]
    apart = float(np.mean(np.abs(a - b))) * n_test
    if min(a.min(), b.min()) >= 1 - points / n_test:
        return f"ceiling: every accuracy within {points} of {n_test} test points of 1.0"
    if apart < points:
        return (f"ceiling: accuracies {g3(float(np.mean(b)))} vs {g3(float(np.mean(a)))} are on average "
                f"{apart:.1f} of {n_test} test points apart")
    return ""


def always(only_a, only_b, cells: list[str], *, a: str, b: str) -> Decision:
    """"A is always more accurate than B" over cells, each with the test points only A (only_a) and only B
    (only_b) got right. Does not hold if some cell favours B significantly (exact McNemar, Holm over the
    cells); holds if A is ahead in every cell and the sign test over cells is significant; else inconclusive."""
    oa, ob = np.asarray(only_a, int), np.asarray(only_b, int)
    if oa.size == 0:
        return untestable("no cells")
    ahead, behind = int((oa > ob).sum()), int((oa < ob).sum())
    tied = oa.size - ahead - behind
    adj = ct.holm([ct.mcnemar_p(x, y) for x, y in zip(oa, ob)])
    sign = ct.sign_test(ahead, behind, tied)
    numbers = (f"{a} ahead in {ahead} of {oa.size} cells, {b} ahead in {behind}, {tied} tied; "
               f"sign test p = {g3(sign.p)}")
    worst = int(np.argmin(adj))
    if adj[worst] < ALPHA:
        return Decision(FAILS, numbers, f"{b} significantly more accurate in {cells[worst]} "
                                        f"({ob[worst]} vs {oa[worst]} test points; Holm-adjusted McNemar "
                                        f"p = {g3(adj[worst])})")
    if ahead == oa.size and sign.p < ALPHA:
        return Decision(HOLDS, numbers)
    why = (f"{behind + tied} cell(s) not in {a}'s favour, none significantly against it" if behind + tied
           else f"{oa.size} cells: even all ahead gives p = {g3(sign.min_p)}")
    return Decision(INCONCLUSIVE, numbers, why, "more test points per cell (data.subset_test) or more cells")


def mostly_clustered(shares, *, share: float, unit: str, what: str) -> Decision:
    """"Almost always" over cells that come in independent clusters (a run's checkpoints): `shares` holds each
    cluster's fraction of cells in favour. Their mean estimates the share of cells; its 90% t-interval over the
    clusters gives one-sided 95% bounds that respect the dependence within a cluster. Holds if the mean is ≥
    `share` and the lower bound exceeds ½; does not hold if the upper bound is below `share`."""
    x = np.asarray(shares, float)
    if x.size == 0:
        return untestable(f"no {unit}")
    mean, lo, hi = ct.t_interval(x, 0.90)
    lo, hi = max(lo, 0.0), min(hi, 1.0)
    numbers = (f"{what} in {mean:.0%} of the cells (mean over {x.size} {unit}; one-sided 95% bounds "
               f"{lo:.0%}–{hi:.0%})")
    if mean >= share and lo > 0.5:
        return Decision(HOLDS, numbers, f"at least {share:.0%} and significantly more than half")
    if hi < share:
        return Decision(FAILS, numbers, f"significantly fewer than {share:.0%}")
    return Decision(INCONCLUSIVE, numbers, f"{x.size} {unit} cannot place the share against {share:.0%} and ½",
                    f"more {unit} (now {x.size})")


def mostly(k: int, n: int, *, share: float, unit: str, what: str) -> Decision:
    """"Almost always": at least `share` of n units in favour. Holds if the observed share is ≥ `share` and its
    one-sided 95% lower bound exceeds ½ (more often than chance); does not hold if the upper bound is below
    `share`; else inconclusive."""
    if n == 0:
        return untestable(f"no {unit}")
    lo, hi = ct.fraction_bounds(k, n)
    numbers = f"{what} in {k} of {n} {unit} ({k / n:.0%}; one-sided 95% bounds {lo:.0%}–{hi:.0%})"
    if k / n >= share and lo > 0.5:
        return Decision(HOLDS, numbers, f"at least {share:.0%} and significantly more than half")
    if hi < share:
        return Decision(FAILS, numbers, f"significantly fewer than {share:.0%}")
    return Decision(INCONCLUSIVE, numbers, f"{n} {unit} cannot place the share against {share:.0%} and ½",
                    f"more {unit} (now {n})")


# ----------------------------------------------------------------------------- ratios of times
def ratio_within(fast, slow, *, low: float, high: float, what: str) -> Decision:
    """Is the ratio of geometric-mean times fast/slow within [low, high]? Holds if its 95% interval lies
    inside, does not hold if it lies entirely outside, else inconclusive."""
    r, lo, hi = ct.log_ratio_interval(fast, slow)
    if not np.isfinite(r):
        return untestable(f"no timed {what}")
    numbers = f"ratio {r:.3g} [95%: {lo:.3g}, {hi:.3g}] ({len(fast)} and {len(slow)} timings)"
    if low <= lo and hi <= high:
        return Decision(HOLDS, numbers, f"within [{low:g}, {high:g}]")
    if hi < low or lo > high:
        return Decision(FAILS, numbers, f"outside [{low:g}, {high:g}]")
    return Decision(INCONCLUSIVE, numbers, f"the interval crosses [{low:g}, {high:g}]", "more timed cycles or seeds")


def finite(x) -> bool:
    return x is not None and math.isfinite(float(x))


def slope_near(x, y, seeds, *, slope: float, tolerance: float, what: str) -> Decision:
    """A rate y ∝ x^slope (both ways): holds if the log-log slope's 95% interval lies within slope ± tolerance,
    does not hold if it lies entirely outside, else inconclusive."""
    x, y, s = (np.asarray(a, float).ravel() for a in (x, y, seeds))
    good = np.isfinite(y) & (y > 0) & (x > 0)
    if np.unique(x[good]).size < 2:
        return untestable(f"{'one width' if good.any() else 'no rows'} of {what}", "a second width")
    fit = ct.slope_fit(x[good], y[good], s[good])
    if fit is None:
        return Decision(INCONCLUSIVE, "", f"no residual degree of freedom for an interval ({what})",
                        "a further width or seed")
    numbers = _slope_text(fit, f"widths {_w(x[good].min())}–{_w(x[good].max())}")
    lo, hi = slope - tolerance, slope + tolerance
    if lo <= fit.ci_low and fit.ci_high <= hi:
        return Decision(HOLDS, numbers, f"within {slope:+g} ± {tolerance:g}")
    if fit.ci_high < lo or fit.ci_low > hi:
        return Decision(FAILS, numbers, f"outside {slope:+g} ± {tolerance:g}")
    return Decision(INCONCLUSIVE, numbers, f"the interval reaches beyond {slope:+g} ± {tolerance:g}",
                    "more seeds or widths")

"""The statistics behind the claims table (:mod:`pntk.report.claims`): small-sample tests that say when a
design is too small to decide, instead of a confident interval from two seeds.

    trend_test       does a statistic fall (or rise) with width?  exact within-seed permutation test
    sign_test        is A better than B in more paired cells than chance allows?  ties split evenly
    slope_fit        log-log slope against width, seed as a block, t-interval
    paired_t         one-sided paired t-test;   t_interval   (TOST at 5% = a 90% interval inside ±margin)
    pairs_needed     how many pairs an interval of a given half-width would take at the observed spread
    mcnemar_p, holm  two classifiers on one test set; family-wise error over cells
    fraction_bounds  one-sided Clopper–Pearson bounds of a fraction of cells
    time_ratio, log_ratio_interval   ratios of wall times

The decision rules that turn these into verdicts live in :mod:`pntk.report.decide`. Tests are one-sided at
``ALPHA`` and return the smallest p-value their design could reach (``min_p``), so that a caller can tell
"the data contradict the claim" from "no data of this size could have shown it". No correction for testing
many claims at once is made, except within a claim over its cells (Holm): each verdict stands alone.

Why not the seed bootstrap for trends or slopes: with 2–3 seeds per width it has only 3–10 distinct
resamples per width, and with ordered seeds every resample gives the same ρ, so its percentile interval
collapses and "holds" on four numbers. The permutation test has exactly its nominal level for any number of
seeds; the slope's t-interval uses the residual spread within seeds.
"""
from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

ALPHA = 0.05  # one-sided level of every test
EXACT_BLOCK_LIMIT = 8  # widths per seed enumerated exactly (8! = 40320 orders); more: Monte Carlo
MONTE_CARLO_DRAWS = 20_000
_GRID = 1e-9  # null values closer than this are one atom (ρ lives on a lattice; floats do not)


@dataclass(frozen=True)
class TestResult:
    statistic: float  # the effect in the claimed direction (ρ̄, wins, slope, …)
    p: float  # one-sided p-value (nan when not computed)
    min_p: float  # smallest p this design could give: >= ALPHA means the claim cannot be shown here


# ----------------------------------------------------------------------------- trend with width
def _spearman_to_width(values: np.ndarray) -> float:
    """Spearman ρ of values (ordered by increasing width) with the width; 0 when every value is tied."""
    return float(_rho_rows(stats.rankdata(values)[None, :])[0])


def _rho_rows(ranks: np.ndarray) -> np.ndarray:
    """Spearman ρ with the width of every row of ``ranks`` (M, k), rows being orders of one rank multiset."""
    w = np.arange(ranks.shape[1], dtype=float) - (ranks.shape[1] - 1) / 2  # (k,) centred width ranks
    r = ranks - ranks.mean(axis=1, keepdims=True)  # (M, k)
    den = np.sqrt((r[0] ** 2).sum() * (w**2).sum())  # the same for every row: a permutation keeps the spread
    return r @ w / den if den > 0 else np.zeros(len(ranks))


@functools.lru_cache(maxsize=256)
def _null_atoms(ranks: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Null distribution of ρ for one seed whose values have these (sorted) ranks: every order of them
    equally likely → (lattice atoms, probabilities). Depends only on the tie pattern, hence the cache."""
    k = len(ranks)
    if k <= EXACT_BLOCK_LIMIT:
        orders = np.array(list(itertools.permutations(ranks)))  # (k!, k)
    else:
        gen = np.random.default_rng(0)
        orders = np.array([gen.permutation(ranks) for _ in range(MONTE_CARLO_DRAWS)])  # (draws, k)
    keys = np.round(_rho_rows(orders) / _GRID).astype(np.int64)
    atoms, counts = np.unique(keys, return_counts=True)
    return atoms, counts / counts.sum()


def _convolve(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Distribution of the sum of two independent lattice variables given as (atoms, probs)."""
    sums = (a[0][:, None] + b[0][None, :]).ravel()  # (|a|·|b|,)
    probs = (a[1][:, None] * b[1][None, :]).ravel()
    atoms, inv = np.unique(sums, return_inverse=True)
    return atoms, np.bincount(inv, weights=probs)


def trend_test(widths, values, seeds, direction: int) -> TestResult:
    """Does ``values`` fall (direction −1) or rise (+1) with ``widths``? One row per run.

    Statistic: the mean over seeds of the Spearman correlation between width and value within the seed
    (Page's L up to an affine map). Null: within each seed, every assignment of its values to its widths
    is equally likely (no width effect); p = P(null ≥ observed in the claimed direction), ties of the
    statistic counted as extreme, from the exact distribution (convolution over seeds). Seeds with one
    width carry no information and are left out. Values: 1-D arrays of equal length.
    Statistic: ρ̄ (negative when the values fall); min_p = Π 1/k_s! over seeds with k_s widths.
    """
    if direction not in (-1, 1):
        raise ValueError(f"trend_test: direction must be -1 (falls) or +1 (rises), got {direction}")
    w, v, s = (np.asarray(a).ravel() for a in (widths, values, seeds))
    if not w.size == v.size == s.size:
        raise ValueError(f"trend_test: widths, values, seeds differ in length ({w.size}, {v.size}, {s.size})")
    observed, null = 0, (np.array([0]), np.array([1.0]))
    blocks, min_p = 0, 1.0
    for seed in np.unique(s):
        sel = s == seed
        order = np.argsort(w[sel], kind="stable")
        ws, vs = w[sel][order], v[sel][order]  # (k,) by increasing width
        if len(np.unique(ws)) != len(ws):
            raise ValueError(f"trend_test: seed {seed} has more than one value at a width")
        if len(vs) < 2:
            continue
        blocks += 1
        min_p /= math.factorial(len(vs))  # the one most extreme order of distinct values, in every seed
        observed += int(round(direction * _spearman_to_width(vs) / _GRID))
        atoms, probs = _null_atoms(tuple(sorted(stats.rankdata(vs))))
        null = _convolve(null, (direction * atoms, probs))
    if blocks == 0:
        return TestResult(float("nan"), float("nan"), 1.0)
    atoms, probs = null
    p = float(probs[atoms >= observed].sum())
    if max(len(np.unique(w[s == x])) for x in np.unique(s)) > EXACT_BLOCK_LIMIT:
        p = max(p, 1.0 / (MONTE_CARLO_DRAWS + 1))  # a sampled null cannot show p below one draw
    return TestResult(direction * observed * _GRID / blocks, min(p, 1.0), min_p)


# ----------------------------------------------------------------------------- paired cells
def sign_test(wins: int, losses: int, ties: int) -> TestResult:
    """One-sided sign test that A beats B: H0 each of the n = wins + losses + ties cells is a coin flip.

    Ties are split evenly between the two sides (an odd one goes against the claim) rather than dropped:
    dropping them shrinks n and overstates the evidence when most cells are tied.
    p = P(Binomial(n, ½) ≥ wins + ⌊ties/2⌋). Statistic: wins.
    """
    if min(wins, losses, ties) < 0:
        raise ValueError(f"sign_test: counts must be >= 0, got {wins}, {losses}, {ties}")
    n = wins + losses + ties
    if n == 0:
        return TestResult(0.0, float("nan"), 1.0)
    k = wins + ties // 2
    return TestResult(float(wins), float(stats.binom.sf(k - 1, n, 0.5)), 0.5**n)


# ----------------------------------------------------------------------------- exponents
@dataclass(frozen=True)
class Slope:
    slope: float
    ci_low: float
    ci_high: float
    intercept: float  # mean of the per-seed intercepts: the fitted line value ≈ exp(intercept)·x**slope
    df: int  # residual degrees of freedom of the t-interval
    n_points: int
    n_widths: int
    n_seeds: int
    method: str  # for the claims table's `test` column and rate.csv


def slope_fit(x, y, seeds, level: float = 0.95, log_y: bool = True) -> Slope | None:
    """Slope b of log y = a_s + b·log x with a ``level`` t-interval; None when no interval exists (``log_y``
    False: y itself against log x, e.g. an accuracy per e-fold of width).

    Each seed gets its own intercept a_s (seed as a block): networks of one seed share draws across widths
    (the first rows of a wider layer's weights are the narrower layer's), so their points are not independent
    of each other, while a per-seed shift absorbs what they share. The residuals of the within-seed fit give
    the interval on n − S − 1 degrees of freedom, which stays honest at 2–3 seeds where a seed bootstrap has
    3–10 distinct resamples. Seeds seen at one width carry no slope information and are left out. None
    when fewer than 2 widths remain or no residual degree of freedom does. x and y must be positive."""
    lx, ly, s = (np.asarray(a).ravel() for a in (x, y, seeds))
    if not lx.size == ly.size == s.size:
        raise ValueError(f"slope_fit: x, y, seeds differ in length ({lx.size}, {ly.size}, {s.size})")
    if np.any(lx <= 0) or np.any(~np.isfinite(ly)) or (log_y and np.any(ly <= 0)):
        raise ValueError("slope_fit: x (and y on log axes) must be positive and finite")
    keep = np.isin(s, [v for v in np.unique(s) if np.unique(lx[s == v]).size > 1])
    ly = np.log(ly[keep].astype(float)) if log_y else ly[keep].astype(float)
    lx, s = np.log(lx[keep].astype(float)), s[keep]
    seeds_u = np.unique(s)
    df = lx.size - seeds_u.size - 1
    if np.unique(lx).size < 2 or df < 1:
        return None
    cx, cy = lx.copy(), ly.copy()
    for v in seeds_u:  # centre within each seed: the per-seed intercepts drop out
        m = s == v
        cx[m] -= lx[m].mean()
        cy[m] -= ly[m].mean()
    sxx = float((cx**2).sum())
    b = float((cx * cy).sum() / sxx)
    resid = cy - b * cx
    se = math.sqrt(float((resid**2).sum()) / df / sxx)
    half = float(stats.t.ppf((1 + level) / 2, df)) * se
    a = float(np.mean([ly[s == v].mean() - b * lx[s == v].mean() for v in seeds_u]))
    what = "a per-seed intercept" if seeds_u.size > 1 else "one seed"
    axes = "log-log axes" if log_y else "log x"
    return Slope(b, b - half, b + half, a, df, int(lx.size), int(np.unique(lx).size), int(seeds_u.size),
                 f"least squares on {axes} with {what}, {level:.0%} t-interval on {df} df")


# ----------------------------------------------------------------------------- paired and one-sample
def paired_t(a, b) -> TestResult:
    """One-sided paired t-test that mean(a − b) > 0 over pairs (assumes roughly normal differences).

    Statistic: the mean difference. min_p is 0 once there are 2 pairs (a t-test can reach any level)."""
    d = np.asarray(a, float) - np.asarray(b, float)
    if d.size < 2:
        return TestResult(float(d.mean()) if d.size else float("nan"), float("nan"), 1.0)
    if np.ptp(d) == 0:  # no spread: the t statistic is ±inf (or 0/0)
        return TestResult(float(d.mean()), 0.0 if d[0] > 0 else 1.0, 0.0)
    res = stats.ttest_1samp(d, 0.0, alternative="greater")
    return TestResult(float(d.mean()), float(res.pvalue), 0.0)


def t_interval(d, level: float) -> tuple[float, float, float]:
    """(mean, low, high) of the two-sided ``level`` t-interval of mean(d); ±inf for fewer than 2 values.
    A 90% interval inside (−m, m) is the two one-sided tests (TOST) of equivalence within ±m at 5%."""
    d = np.asarray(d, float)
    if d.size < 2:
        m = float(d.mean()) if d.size else float("nan")
        return m, -math.inf, math.inf
    half = float(stats.t.ppf((1 + level) / 2, d.size - 1)) * float(d.std(ddof=1)) / math.sqrt(d.size)
    return float(d.mean()), float(d.mean()) - half, float(d.mean()) + half


def equivalence(a, b, margin: float, level: float = 0.90) -> tuple[float, float, float]:
    """(mean difference, low, high) of the ``level`` t-interval of mean(a − b) over pairs (see t_interval)."""
    del margin  # the caller compares the interval with its margin
    return t_interval(np.asarray(a, float) - np.asarray(b, float), level)


def pairs_needed(d, half_width: float, level: float = 0.90, limit: int = 1000) -> int | None:
    """Pairs for a ``level`` t-interval of mean(d) narrower than ±half_width at d's spread (None: beyond
    ``limit`` or no spread to go on). What "more seeds" would have to mean to decide a claim."""
    d = np.asarray(d, float)
    sd = float(d.std(ddof=1)) if d.size > 1 else float("nan")
    if not np.isfinite(sd) or sd == 0 or half_width <= 0:
        return None
    for n in range(2, limit + 1):
        if float(stats.t.ppf((1 + level) / 2, n - 1)) * sd / math.sqrt(n) < half_width:
            return n
    return None


# ----------------------------------------------------------------------------- classifiers on one test set
def mcnemar_p(only_first: int, only_second: int) -> float:
    """One-sided exact McNemar p-value that the second classifier is more accurate: P(Bin(n, ½) ≥ only_second)
    over the n = only_first + only_second test points where exactly one of the two is right (1 when n = 0)."""
    if min(only_first, only_second) < 0:
        raise ValueError(f"mcnemar_p: counts must be >= 0, got {only_first}, {only_second}")
    n = only_first + only_second
    return float(stats.binom.sf(only_second - 1, n, 0.5)) if n else 1.0


def holm(pvalues) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values (family-wise error over the given tests), in the input order."""
    p = np.asarray(pvalues, float)
    order = np.argsort(p)
    adj = np.minimum(1.0, np.maximum.accumulate(p[order] * (p.size - np.arange(p.size))))
    out = np.empty_like(adj)
    out[order] = adj
    return out


def fraction_bounds(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """One-sided Clopper–Pearson bounds (lower, upper), each at ``level``, of a binomial fraction k / n."""
    if n == 0:
        return 0.0, 1.0
    lo = float(stats.beta.ppf(1 - level, k, n - k + 1)) if k > 0 else 0.0
    hi = float(stats.beta.ppf(level, k + 1, n - k)) if k < n else 1.0
    return lo, hi


# ----------------------------------------------------------------------------- times
def time_ratio(fast, slow) -> TestResult:
    """median(fast) / median(slow) and the one-sided Mann–Whitney U p-value that ``fast`` is smaller."""
    x, y = np.asarray(fast, float), np.asarray(slow, float)
    if x.size == 0 or y.size == 0:
        return TestResult(float("nan"), float("nan"), 1.0)
    ratio = float(np.median(x) / np.median(y))
    p = float(stats.mannwhitneyu(x, y, alternative="less").pvalue)
    return TestResult(ratio, p, 1.0 / math.comb(x.size + y.size, x.size))


def log_ratio_interval(a, b, level: float = 0.95) -> tuple[float, float, float]:
    """(ratio, low, high): exp of mean(log a) − mean(log b) and its Welch ``level`` interval — the ratio of the
    geometric means of two samples of times. ±inf bounds when either sample has fewer than 2 values."""
    la, lb = np.log(np.asarray(a, float)), np.log(np.asarray(b, float))
    if la.size == 0 or lb.size == 0:
        return float("nan"), -math.inf, math.inf
    diff = float(la.mean() - lb.mean())
    if la.size < 2 or lb.size < 2:
        return math.exp(diff), 0.0, math.inf
    va, vb = la.var(ddof=1) / la.size, lb.var(ddof=1) / lb.size
    se = math.sqrt(va + vb)
    if se == 0:
        return math.exp(diff), math.exp(diff), math.exp(diff)
    dof = (va + vb) ** 2 / ((va**2 / (la.size - 1) if va else 0.0) + (vb**2 / (lb.size - 1) if vb else 0.0))
    half = float(stats.t.ppf((1 + level) / 2, dof)) * se
    return math.exp(diff), math.exp(diff - half), math.exp(diff + half)

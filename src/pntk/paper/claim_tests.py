"""The statistics behind the claims table (:mod:`pntk.paper.claims`): small-sample tests that say when a
design is too small to decide, instead of a confident interval from two seeds.

    trend_test    does a statistic fall (or rise) with width?  exact within-seed permutation test
    sign_test     is A better than B in more paired cells than chance allows?  ties split evenly
    exponent_ci   log-log slope of a statistic against width, with a confidence interval
    paired_t      one-sided paired t-test over seeds;   equivalence   two one-sided tests (TOST)
    time_ratio    ratio of median wall times with a one-sided Mann–Whitney U test

Every test is one-sided at level ``ALPHA`` and returns the smallest p-value its design could reach
(``min_p``), so the caller can tell "did not hold" from "could not have held with this many runs".
No correction for testing many claims at once is made: each verdict stands alone.

Why not the seed bootstrap of the rank correlation for trends: with 2–3 seeds per width it has only 3–10
distinct resamples per width, and with ordered seeds every resample gives the same ρ, so its percentile
interval collapses to a point and "holds" on four numbers. The permutation test below has exactly its
nominal level for any number of seeds, one included.
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
class Exponent:
    slope: float
    ci_low: float
    ci_high: float
    method: str  # how the interval was obtained, for the claims table's `test` column


def exponent_ci(widths, values, seeds, n_boot: int, level: float = 0.95) -> Exponent | None:
    """Slope b of log(value) = a + b·log(width) with a ``level`` interval; None when no honest interval exists.

    Every width seen with >= 2 seeds: the seed-level percentile bootstrap of
    :func:`pntk.paper.diagnostics.fit_rate` (the numbers of rate.csv). Otherwise (one seed somewhere) a
    bootstrap over seeds cannot vary, so the OLS t-interval over the points is used; it needs >= 3
    distinct widths (one residual degree of freedom). Values must be positive and finite.
    """
    from .diagnostics import fit_rate

    w, v, s = (np.asarray(a).ravel() for a in (widths, values, seeds))
    uw = np.unique(w)
    if uw.size < 2:
        return None
    seeds_per_width = min(len(np.unique(s[w == x])) for x in uw)
    if seeds_per_width >= 2 and n_boot > 0:
        f = fit_rate(w, v, s, n_boot=n_boot, level=level)
        return Exponent(f["exponent"], f["ci_low"], f["ci_high"], f"seed bootstrap ({n_boot} resamples)")
    if uw.size < 3 or w.size < 3:
        return None
    fit = stats.linregress(np.log(w), np.log(v))
    half = stats.t.ppf((1 + level) / 2, w.size - 2) * fit.stderr
    return Exponent(float(fit.slope), float(fit.slope - half), float(fit.slope + half),
                    f"OLS t-interval over {w.size} points: a width has one seed")


# ----------------------------------------------------------------------------- seeds of active learning
def paired_t(a, b) -> TestResult:
    """One-sided paired t-test that mean(a − b) > 0 over seeds (assumes roughly normal differences).

    Statistic: the mean difference. min_p is 0 once there are 2 pairs (a t-test can reach any level)."""
    d = np.asarray(a, float) - np.asarray(b, float)
    if d.size < 2:
        return TestResult(float(d.mean()) if d.size else float("nan"), float("nan"), 1.0)
    if np.ptp(d) == 0:  # no spread: the t statistic is ±inf (or 0/0)
        return TestResult(float(d.mean()), 0.0 if d[0] > 0 else 1.0, 0.0)
    res = stats.ttest_rel(np.asarray(a, float), np.asarray(b, float), alternative="greater")
    return TestResult(float(d.mean()), float(res.pvalue), 0.0)


def equivalence(a, b, margin: float, level: float = 0.90) -> tuple[float, float, float]:
    """(mean difference, low, high) of the ``level`` t-interval of mean(a − b) over pairs; equivalence
    within ±margin at 5% (two one-sided tests) holds when the 90% interval lies inside (−margin, margin).
    A single pair gives an infinite interval."""
    d = np.asarray(a, float) - np.asarray(b, float)
    if d.size < 2:
        m = float(d.mean()) if d.size else float("nan")
        return m, -math.inf, math.inf
    half = stats.t.ppf((1 + level) / 2, d.size - 1) * d.std(ddof=1) / math.sqrt(d.size)
    return float(d.mean()), float(d.mean() - half), float(d.mean() + half)


def time_ratio(fast, slow) -> TestResult:
    """median(fast) / median(slow) and the one-sided Mann–Whitney U p-value that ``fast`` is smaller."""
    x, y = np.asarray(fast, float), np.asarray(slow, float)
    if x.size == 0 or y.size == 0:
        return TestResult(float("nan"), float("nan"), 1.0)
    ratio = float(np.median(x) / np.median(y))
    p = float(stats.mannwhitneyu(x, y, alternative="less").pvalue)
    return TestResult(ratio, p, 1.0 / math.comb(x.size + y.size, x.size))

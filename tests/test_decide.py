"""The decision rules (pntk.report.decide) and the statistics under them (pntk.report.claim_tests), on synthetic
inputs built to hold, to fail and to be underpowered: no verdict may say more than its numbers."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from pntk.report import claim_tests as ct
from pntk.report import decide as dc

WIDTHS = [64, 128, 256, 512]


# ----------------------------------------------------------------------------- slope with seed as a block
def test_slope_fit_recovers_a_planted_slope_and_its_interval_covers_it():
    rng = np.random.default_rng(0)
    covered = 0
    for _ in range(200):
        w = np.repeat(WIDTHS, 2)
        s = np.tile([0, 1], 4)
        shift = rng.normal(0, 0.5, 2)[s]  # a seed effect shared across widths
        y = 3 * w**-0.5 * np.exp(shift + 0.05 * rng.standard_normal(8))
        fit = ct.slope_fit(w, y, s)
        covered += fit.ci_low <= -0.5 <= fit.ci_high
        assert fit.df == 8 - 2 - 1 and fit.n_seeds == 2
    assert 0.90 <= covered / 200 <= 0.99  # a 95% interval, seed shifts and all


def test_slope_fit_equals_ols_with_seed_dummies():
    rng = np.random.default_rng(1)
    w, s = np.repeat(WIDTHS, 3), np.tile([0, 1, 2], 4)
    y = w**-0.7 * np.exp(rng.normal(0, 0.1, 12))
    fit = ct.slope_fit(w, y, s)
    design = np.column_stack([np.log(w)] + [(s == k).astype(float) for k in range(3)])
    beta, res, *_ = np.linalg.lstsq(design, np.log(y), rcond=None)
    se = math.sqrt(res[0] / (12 - 4) * np.linalg.inv(design.T @ design)[0, 0])
    assert fit.slope == pytest.approx(beta[0]) and fit.df == 8
    assert fit.ci_high - fit.slope == pytest.approx(stats.t.ppf(0.975, 8) * se)


def test_slope_fit_has_no_interval_without_residual_freedom():
    assert ct.slope_fit([64, 128], [0.2, 0.1], [0, 0]) is None  # 2 points, 2 parameters
    assert ct.slope_fit([64, 128, 64, 128], [0.2, 0.1, 0.3, 0.15], [0, 0, 1, 1]) is not None  # 4 − 2 − 1 = 1 df
    assert ct.slope_fit([64, 128, 256, 64], [0.2, 0.1, 0.06, 0.3], [0, 0, 0, 1]).n_seeds == 1  # one-width seed dropped
    with pytest.raises(ValueError, match="positive"):
        ct.slope_fit([64, 128, 256], [0.2, 0.0, 0.1], [0, 0, 0])


# ----------------------------------------------------------------------------- small helpers
def test_mcnemar_holm_fraction_bounds_and_pairs_needed():
    assert ct.mcnemar_p(0, 0) == 1.0
    assert ct.mcnemar_p(1, 9) == pytest.approx(stats.binomtest(9, 10, 0.5, alternative="greater").pvalue)
    assert list(ct.holm([0.01, 0.04, 0.03])) == pytest.approx([0.03, 0.06, 0.06])
    lo, hi = ct.fraction_bounds(8, 10)
    assert lo == pytest.approx(stats.beta.ppf(0.05, 8, 3)) and hi == pytest.approx(stats.beta.ppf(0.95, 9, 2))
    assert ct.fraction_bounds(0, 5)[0] == 0.0 and ct.fraction_bounds(5, 5)[1] == 1.0
    d = np.array([0.01, 0.03, -0.01, 0.02])
    n = ct.pairs_needed(d, 0.01)
    half = lambda k: stats.t.ppf(0.95, k - 1) * d.std(ddof=1) / math.sqrt(k)  # noqa: E731
    assert half(n) < 0.01 <= half(n - 1)
    r, lo, hi = ct.log_ratio_interval([1.0, 1.1, 0.9], [10.0, 11.0, 9.0])
    assert r == pytest.approx(0.1, rel=1e-6) and lo < 0.1 < hi


# ----------------------------------------------------------------------------- trends
def test_trend_holds_fails_and_says_when_the_design_cannot_decide():
    w, s = WIDTHS * 2, [0] * 4 + [1] * 4
    assert dc.trend(w, [4, 3, 2, 1, 5, 4, 3, 2], s, -1, what="fcn").verdict == dc.HOLDS
    fails = dc.trend(w, [1, 2, 3, 4, 2, 3, 4, 5], s, -1, what="fcn")
    assert fails.verdict == dc.FAILS and "opposite trend is significant" in fails.why
    flat = dc.trend(w, [1, 2, 1, 2, 2, 1, 2, 1], s, -1, what="fcn")
    assert flat.verdict == dc.INCONCLUSIVE and "no significant trend" in flat.why and flat.settle
    small = dc.trend([16, 32, 16, 32], [2, 1, 2, 1], [0, 0, 1, 1], -1, what="convnet")
    assert small.verdict == dc.INCONCLUSIVE and "even a perfect ordering gives p = 0.25" in small.why
    assert "a third width" in small.settle
    assert dc.trend([32, 32], [1, 2], [0, 1], -1, what="convnet").verdict == dc.UNTESTABLE
    ceiling = dc.trend(w, [1, 2, 3, 4, 2, 3, 4, 5], s, -1, what="fcn", ceiling="ceiling: 1 of 100 points")
    assert ceiling.verdict == dc.INCONCLUSIVE and "ceiling" in ceiling.why  # a ceiling never contradicts


# ----------------------------------------------------------------------------- paired
def test_paired_needs_the_opposite_to_be_significant_before_it_fails():
    better = [0.9, 0.92, 0.91, 0.93, 0.94, 0.9]
    worse = [0.8, 0.83, 0.8, 0.82, 0.84, 0.81]
    assert dc.paired(better, worse, unit="runs").verdict == dc.HOLDS
    assert dc.paired(worse, better, unit="runs").verdict == dc.FAILS
    assert dc.paired(worse, better, unit="runs", regime="not trained").verdict == dc.INCONCLUSIVE
    assert dc.paired(better[:3], worse[:3], unit="runs").verdict == dc.INCONCLUSIVE  # 3 runs: p ≥ 1/8
    t = dc.paired([0.88, 0.85, 0.86], [0.84, 0.84, 0.83], unit="seeds", test="t")
    assert t.verdict in (dc.HOLDS, dc.INCONCLUSIVE)
    weak = dc.paired([0.88, 0.80, 0.90], [0.84, 0.84, 0.83], unit="seeds", test="t")
    assert weak.verdict == dc.INCONCLUSIVE and "seeds at this effect" in weak.settle
    assert dc.paired([], [], unit="runs").verdict == dc.UNTESTABLE


# ----------------------------------------------------------------------------- equivalence, non-inferiority
def test_equivalence_is_inconclusive_when_the_interval_straddles_the_margin():
    # the case: Δ = +0.003, 90 % interval [−0.040, +0.046] over 3 seeds
    d = np.array([0.003 - 0.0255, 0.003, 0.003 + 0.0255])
    res = dc.equivalent(d, 0.02, unit="seeds", what="paired")
    assert res.verdict == dc.INCONCLUSIVE and "straddles" in res.why and "seeds at this spread" in res.settle
    assert dc.equivalent([0.001, -0.002, 0.0, 0.003, -0.001], 0.02, unit="seeds", what="").verdict == dc.HOLDS
    assert dc.equivalent([0.1, 0.11, 0.09, 0.1], 0.02, unit="seeds", what="").verdict == dc.FAILS
    assert dc.equivalent([0.1], 0.02, unit="seeds", what="").verdict == dc.UNTESTABLE
    assert dc.noninferior([0.01, 0.0, 0.02, 0.01], 0.02, unit="seeds", what="").verdict == dc.HOLDS
    assert dc.noninferior([-0.1, -0.11, -0.09], 0.02, unit="seeds", what="").verdict == dc.FAILS
    assert dc.noninferior([0.03, -0.05, 0.0], 0.02, unit="seeds", what="").verdict == dc.INCONCLUSIVE


# ----------------------------------------------------------------------------- rates
def _rate_points(slope, noise=0.02, widths=(64, 128, 256, 512, 1024), seeds=(0, 1, 2)):
    rng = np.random.default_rng(7)
    w = np.repeat(widths, len(seeds))
    s = np.tile(seeds, len(widths))
    return w, 2 * w.astype(float) ** slope * np.exp(noise * rng.standard_normal(w.size)), s


@pytest.mark.parametrize("slope,log_factor,verdict", [
    (-0.5, False, dc.INCONCLUSIVE),  # exactly at the bound: neither steeper nor slower can be shown
    (-0.8, False, dc.HOLDS),  # an upper bound: faster decay satisfies it
    (-0.2, False, dc.INCONCLUSIVE),  # slower than the bound at these widths: an asymptotic bound is not refuted
    (-0.5, True, dc.HOLDS),  # Õ: the bound's local slope is −½ + 1/ln w̄ ≈ −0.32 here
    (-0.25, True, dc.INCONCLUSIVE),
    (+0.2, True, dc.FAILS),  # grows with width: no convergence
])
def test_rate_against_the_bound(slope, log_factor, verdict):
    w, y, s = _rate_points(slope)
    res = dc.rate(w, y, s, log_factor=log_factor, what="fcn")
    assert res.verdict == verdict, res
    if slope == -0.25:
        assert "more slowly" in res.why and "wider widths" in res.settle, res


def test_rate_fits_the_pre_asymptotic_width_apart():
    w, y, s = _rate_points(-0.5, noise=0.0)
    y = np.where(w == 64, y * 3, y)  # the smallest width off the line
    res = dc.rate(w, y, s, log_factor=True, what="fcn", asymptotic_from=128)
    assert "over widths 128–1024" in res.numbers and "all widths from 64" in res.numbers
    assert res.verdict == dc.HOLDS
    assert dc.rate([64, 64], [0.1, 0.2], [0, 1], log_factor=True, what="fcn").verdict == dc.UNTESTABLE


def test_slope_near_for_the_projects_rate_check():
    w, y, s = _rate_points(-0.5)
    assert dc.slope_near(w, y, s, slope=-0.5, tolerance=0.2, what="").verdict == dc.HOLDS
    w, y, s = _rate_points(-1.2)
    assert dc.slope_near(w, y, s, slope=-0.5, tolerance=0.2, what="").verdict == dc.FAILS
    w, y, s = _rate_points(-0.5, noise=0.6, widths=(64, 128, 256))
    assert dc.slope_near(w, y, s, slope=-0.5, tolerance=0.2, what="").verdict == dc.INCONCLUSIVE


# ----------------------------------------------------------------------------- accuracies on one test set
def test_ceiling_of_accuracies():
    assert "of 1.0" in dc.ceiling_of([0.996, 1.0], [1.0, 0.998], 450)  # within 3 of 450 points of 1.0
    assert "apart" in dc.ceiling_of([0.984, 0.986], [0.987, 0.988], 450)  # 0–5 of 450 points apart
    assert dc.ceiling_of([0.8, 0.82], [0.9, 0.91], 450) == ""


def test_always_fails_on_a_significant_contrary_cell_and_holds_only_when_every_cell_agrees():
    cells = [f"cell {k}" for k in range(6)]
    assert dc.always([5, 6, 4, 7, 5, 6], [1, 0, 1, 2, 1, 0], cells, a="pNTK", b="eNTK").verdict == dc.HOLDS
    one_tie = dc.always([5, 6, 4, 7, 5, 0], [1, 0, 1, 2, 1, 0], cells, a="pNTK", b="eNTK")
    assert one_tie.verdict == dc.INCONCLUSIVE and "not in pNTK's favour" in one_tie.why
    contrary = dc.always([5, 6, 4, 7, 5, 0], [1, 0, 1, 2, 1, 25], cells, a="pNTK", b="eNTK")
    assert contrary.verdict == dc.FAILS and "cell 5" in contrary.why


def test_mostly_against_a_share():
    assert dc.mostly(19, 20, share=0.8, unit="runs", what="").verdict == dc.HOLDS
    assert dc.mostly(4, 20, share=0.8, unit="runs", what="").verdict == dc.FAILS
    assert dc.mostly(3, 4, share=0.8, unit="runs", what="").verdict == dc.INCONCLUSIVE
    assert dc.mostly(0, 0, share=0.8, unit="runs", what="").verdict == dc.UNTESTABLE


def test_mostly_clustered_takes_the_run_as_the_unit():
    assert dc.mostly_clustered([1.0] * 12, share=0.8, unit="runs", what="").verdict == dc.HOLDS
    assert dc.mostly_clustered([0.2, 0.3, 0.0, 0.3, 0.1, 0.2], share=0.8, unit="runs", what="").verdict == dc.FAILS
    res = dc.mostly_clustered([1.0, 0.0, 1.0, 1.0], share=0.8, unit="runs", what="")
    assert res.verdict == dc.INCONCLUSIVE and "4 runs" in res.why


def test_ratio_within_a_band():
    rng = np.random.default_rng(3)
    slow = np.exp(rng.normal(0, 0.05, 10))
    assert dc.ratio_within(0.15 * slow, slow[::-1], low=0.075, high=0.3, what="").verdict == dc.HOLDS
    assert dc.ratio_within(0.01 * slow, slow[::-1], low=0.075, high=0.3, what="").verdict == dc.FAILS
    wide = dc.ratio_within([0.05, 0.4], [1.0, 1.0], low=0.075, high=0.3, what="")
    assert wide.verdict == dc.INCONCLUSIVE


def test_a_decision_refuses_unknown_verdicts():
    with pytest.raises(ValueError, match="verdict"):
        dc.Decision("probably")

"""Claims table: the statistics (exact p-values against brute force), and every decision rule on synthetic
tables — holds, does not hold, tie, one width, one seed, a run that did not learn, a missing table."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pntk.paper import claim_tests as ct
from pntk.paper.claims import COLUMNS, ClaimInputs, claims_table, format_claims
from pntk.paper.claims_active import per_run
from pntk.paper.diagnostics import fit_rate
from pntk.paper.verdicts import active_verdicts

WIDTHS = [64, 128, 256, 512]


# ----------------------------------------------------------------------------- statistics
def brute_force_p(widths, values, seeds, direction):
    """p of the within-seed permutation test by enumerating every joint permutation (reference)."""
    blocks = [np.asarray(values)[np.asarray(seeds) == s][np.argsort(np.asarray(widths)[np.asarray(seeds) == s])]
              for s in np.unique(seeds)]

    def stat(bs):
        return sum(direction * ct._spearman_to_width(np.asarray(b)) for b in bs)

    obs = stat(blocks)
    perms = [list(itertools.permutations(b)) for b in blocks]
    all_stats = np.array([stat(combo) for combo in itertools.product(*perms)])
    return float(np.mean(all_stats >= obs - 1e-9))


@pytest.mark.parametrize("seed", range(3))
def test_trend_p_equals_brute_force_with_ties(seed):
    rng = np.random.default_rng(seed)
    widths = np.tile([1, 2, 3, 4], 2)
    seeds = np.repeat([0, 1], 4)
    values = rng.integers(0, 3, 8).astype(float)  # many ties
    for direction in (-1, 1):
        got = ct.trend_test(widths, values, seeds, direction).p
        assert got == pytest.approx(brute_force_p(widths, values, seeds, direction), abs=1e-12)


def test_trend_perfect_order_reaches_the_design_limit():
    one = ct.trend_test(WIDTHS, [4, 3, 2, 1], [0] * 4, -1)
    assert one.p == pytest.approx(1 / 24) and one.min_p == pytest.approx(1 / 24) and one.statistic == -1
    two = ct.trend_test(WIDTHS * 2, [4, 3, 2, 1, 9, 5, 2, 0], [0] * 4 + [1] * 4, -1)
    assert two.p == pytest.approx(1 / 576)
    assert ct.trend_test(WIDTHS, [4, 3, 2, 1], [0] * 4, +1).p == pytest.approx(1.0)  # wrong direction
    assert ct.trend_test([1, 2], [2, 1], [0, 0], -1).min_p == 0.5  # 2 widths, 1 seed: never below 0.05


def test_trend_many_widths_uses_a_floored_monte_carlo_p():
    res = ct.trend_test(range(10), range(10, 0, -1), [0] * 10, -1)
    assert res.p == pytest.approx(1 / (ct.MONTE_CARLO_DRAWS + 1))


@pytest.mark.parametrize("wins,losses,ties", [(6, 0, 0), (5, 2, 3), (0, 0, 7), (1, 6, 0)])
def test_sign_test_splits_ties(wins, losses, ties):
    n = wins + losses + ties
    res = ct.sign_test(wins, losses, ties)
    assert res.p == pytest.approx(stats.binomtest(wins + ties // 2, n, 0.5, alternative="greater").pvalue)
    assert res.min_p == pytest.approx(0.5**n)


def test_exponent_ci_paths():
    rng = np.random.default_rng(0)
    w = np.repeat(WIDTHS, 3)
    s = np.tile([0, 1, 2], 4)
    v = 2.0 * w**-0.5 * np.exp(0.05 * rng.standard_normal(w.size))
    boot = ct.exponent_ci(w, v, s, n_boot=200)
    ref = fit_rate(w, v, s, n_boot=200)  # rate.csv's numbers
    assert "bootstrap" in boot.method
    assert (boot.slope, boot.ci_low, boot.ci_high) == (ref["exponent"], ref["ci_low"], ref["ci_high"])
    ols = ct.exponent_ci(WIDTHS, 2.0 * np.asarray(WIDTHS, float)**-0.5, [0] * 4, n_boot=200)
    assert "OLS" in ols.method and ols.slope == pytest.approx(-0.5)
    assert ct.exponent_ci([64, 128], [0.2, 0.1], [0, 0], n_boot=200) is None  # 1 seed, 2 widths


def test_paired_and_equivalence_and_time():
    assert ct.paired_t([0.9, 0.92, 0.91], [0.8, 0.83, 0.8]).p < 0.05
    assert ct.paired_t([0.8, 0.83, 0.8], [0.9, 0.92, 0.91]).p > 0.5
    assert ct.paired_t([0.9], [0.8]).min_p == 1.0
    mean, lo, hi = ct.equivalence([0.9, 0.91, 0.92], [0.9, 0.905, 0.925], 0.02)
    assert lo < mean < hi and -0.02 < lo and hi < 0.02
    res = ct.time_ratio([0.1, 0.2, 0.15, 0.1], [1.0, 2.0, 1.5, 1.2])
    assert res.statistic == pytest.approx(0.125 / 1.35) and res.p < 0.05


# ----------------------------------------------------------------------------- synthetic tables
def diag_table(widths=WIDTHS, seeds=(0, 1), epochs=(0, 10), arch="fcn", slope=-0.5, acc_diff=-0.01,
               pred_training=0.5, not_learned=(), noise=0.03) -> pd.DataFrame:
    """Tidy diagnostics rows: every Fig 2–8 statistic ∝ w^slope at init (times `pred_training` later), with
    seed noise of alternating sign, so that the seed mean follows w^slope exactly."""
    rows = []
    for (i, w), s, e in itertools.product(enumerate(widths), seeds, epochs):
        base = w**slope * np.exp(noise * (-1) ** (i + s)) * (pred_training if e else 1.0)
        stats_ = {"offdiag_ratio": base, "frobenius_distance": base, "lambda_max_rel_diff": base,
                  "lambda_min_rel_diff": base, "cond_rel_diff": base, "pred_rel_diff": base, "acc_diff": acc_diff}
        for k, v in stats_.items():
            rows.append(dict(dataset="digits", arch=arch, width=w, seed=s, epoch=e, statistic=k, value=v,
                             readout_width=w, learned=(w, s) not in not_learned))
    return pd.DataFrame(rows)


def regr_table(widths=WIDTHS, seeds=(0, 1), epochs=(0, 10), gain=0.05) -> pd.DataFrame:
    rows = [dict(dataset="digits", arch="fcn", width=w, seed=s, epoch=e, statistic="flin_test_acc",
                 value=0.8 + 0.01 * np.log2(w / 64) + (gain if e else 0.0) + 0.001 * s, readout_width=w, learned=True)
            for w, s, e in itertools.product(widths, seeds, epochs)]
    return pd.DataFrame(rows)


def infinite_table(slope=-0.5, seeds=(0, 1), widths=(64, 256, 1024)) -> pd.DataFrame:
    return pd.DataFrame([dict(dataset="digits", arch="fcn", width=w, seed=s, epoch=0,
                              statistic=f"infinite_rel_dist_{k}", value=3 * w**slope * np.exp(0.02 * (-1) ** (i + s)))
                         for k, (i, w), s in itertools.product(("entk", "pntk"), enumerate(widths), seeds)])


def active_table(seeds=(0, 1, 2), pntk_gain=0.05, entk_gap=0.0, chance_seed=None) -> pd.DataFrame:
    rows = []
    base = {"random": 0.0, "mlmoc-pntk": pntk_gain, "mlmoc-entk": pntk_gain - entk_gap}
    for (name, gain), s, c in itertools.product(base.items(), seeds, range(6)):
        method, kernel = ("mlmoc", name.split("-")[1]) if name.startswith("mlmoc") else (name, "none")
        acc = 0.6 + 0.05 * c + gain * c / 5 + 0.003 * s
        if chance_seed == s and name == "random":
            acc = 0.1
        secs = {"random": 1e-4, "mlmoc-pntk": 0.1 + 0.01 * c, "mlmoc-entk": 1.0 + 0.1 * c}[name]
        rows.append(dict(strategy=method, kernel=kernel, seed=s, cycle=c, n_labels=50 + 10 * c, test_acc=acc,
                         acquisition_seconds=np.nan if c == 0 else secs, candidates=0 if c == 0 else 500,
                         train_seconds=1.0))
    return pd.DataFrame(rows)


LABELS = np.repeat(np.arange(10), 36)  # 360 balanced test labels


def claims_of(diag=None, regr=None, inf=None, active=None) -> pd.DataFrame:
    diag = diag_table() if diag is None else diag
    regr = regr_table() if regr is None else regr
    inf = infinite_table() if inf is None else inf
    active = active_table() if active is None else active
    av = active_verdicts(active, 10, LABELS) if isinstance(active, pd.DataFrame) else None
    df = claims_table(ClaimInputs(diag, regr, inf, active, av, n_boot=200))
    assert list(df.columns) == COLUMNS and df.id.is_unique
    return df.set_index("id")


def verdict(df, cid) -> str:
    return df.loc[cid, "verdict"]


# ----------------------------------------------------------------------------- decision rules
def test_all_claims_hold_on_data_that_follow_them():
    df = claims_of()
    assert (df.verdict == "holds").all(), df[df.verdict != "holds"][["verdict", "numbers", "detail"]]
    assert "w=64:" in df.loc["fig3-width:fcn", "numbers"] and "mean of 2 seeds" in df.loc["fig3-width:fcn", "numbers"]
    assert "slope -0.5" in df.loc["thm1-rate:fcn", "numbers"].replace("−", "-")
    assert "pNTK ≥ eNTK in 16 of 16 cells" in df.loc["fig8-accuracy", "numbers"]


def test_claims_fail_on_data_that_contradict_them():
    df = claims_of(diag=diag_table(slope=+0.3, acc_diff=+0.02, pred_training=2.0), regr=regr_table(gain=-0.05),
                   inf=infinite_table(slope=-1.0), active=active_table(pntk_gain=-0.05, entk_gap=0.05))
    for cid in ("fig2-width:fcn", "fig3-width:fcn", "fig7-width:fcn", "thm1-rate:fcn", "fig7-training",
                "fig8-accuracy", "fig9-training", "infinite-rate:entk", "infinite-rate:pntk",
                "al-beats-random:final", "al-beats-random:auc", "al-matches-entk"):
        assert verdict(df, cid) == "does not hold", (cid, df.loc[cid].to_dict())
    assert "interval reaches 0" in df.loc["thm1-rate:fcn", "detail"]
    assert "below −½" in df.loc["infinite-rate:entk", "detail"]


def test_theorem1_slower_than_half_does_not_hold_but_steeper_holds():
    slow = claims_of(diag=diag_table(slope=-0.2, noise=0.005))
    assert verdict(slow, "thm1-rate:fcn") == "does not hold" and "more slowly" in slow.loc["thm1-rate:fcn", "detail"]
    steep = claims_of(diag=diag_table(slope=-1.0, noise=0.005))
    assert verdict(steep, "thm1-rate:fcn") == "holds"  # O(w^-½) is an upper bound: steeper satisfies it


def test_ties_do_not_count_as_support():
    df = claims_of(diag=diag_table(slope=0.0, noise=0.0, acc_diff=0.0, pred_training=1.0))
    assert verdict(df, "fig3-width:fcn") == "does not hold"  # constant values: no trend
    assert verdict(df, "fig8-accuracy") == "does not hold"
    assert "pNTK ≥ eNTK in 16 of 16 cells (0 more accurate, 16 tied" in df.loc["fig8-accuracy", "numbers"]
    assert verdict(df, "fig7-training") == "does not hold"


def test_one_width_is_not_testable():
    diag = pd.concat([diag_table(), diag_table(widths=[32], arch="convnet")])
    df = claims_of(diag=diag)
    assert verdict(df, "fig2-width:convnet") == "not testable"
    assert "one width of convnet" in df.loc["fig2-width:convnet", "detail"]
    assert verdict(df, "thm1-rate:convnet") == "not testable"
    assert verdict(df, "fig2-width:fcn") == "holds"


def test_one_seed_two_widths_is_not_testable_but_four_widths_can_hold():
    df = claims_of(diag=diag_table(widths=[16, 32], seeds=(0,)), inf=infinite_table(seeds=(0,), widths=(32, 128)))
    assert verdict(df, "fig3-width:fcn") == "not testable"
    assert "even a perfect ordering gives p = 0.5" in df.loc["fig3-width:fcn", "detail"]
    assert verdict(df, "thm1-rate:fcn") == "not testable" and "one seed" in df.loc["thm1-rate:fcn", "detail"]
    assert verdict(df, "infinite-rate:pntk") == "not testable"
    four = claims_of(diag=diag_table(seeds=(0,), noise=0.0))
    assert verdict(four, "fig3-width:fcn") == "holds" and "p = 0.0417" in four.loc["fig3-width:fcn", "numbers"]
    assert "OLS" in four.loc["thm1-rate:fcn", "numbers"]


def test_runs_that_did_not_learn_are_left_out_and_named():
    df = claims_of(diag=diag_table(not_learned={(64, 0)}))
    assert "left out (did not learn): fcn-w64-s0" in df.loc["fig3-width:fcn", "detail"]
    assert "w=64:" in df.loc["fig3-width:fcn", "numbers"] and "1–2 seeds" in df.loc["fig3-width:fcn", "numbers"]
    assert "in 14 of 14 cells" in df.loc["fig8-accuracy", "numbers"]  # 2 cells of the run left out
    # nothing left: every run of the only other width did not learn → one width → not testable, named
    only = claims_of(diag=diag_table(widths=[16, 32], seeds=(0,), not_learned={(16, 0)}))
    assert verdict(only, "fig2-width:fcn") == "not testable"
    assert "one width of fcn" in only.loc["fig2-width:fcn", "detail"]
    assert "fcn-w16-s0" in only.loc["fig2-width:fcn", "detail"]


def test_missing_tables_are_not_testable_with_the_reason():
    df = claims_of(diag="diagnostics disabled (diagnostics.enabled)", regr="no full-data pNTK",
                   inf="infinite-width comparison disabled", active="active learning disabled")
    assert (df.verdict == "not testable").all()
    assert df.loc["fig3-width", "detail"] == "diagnostics disabled (diagnostics.enabled)"
    assert df.loc["thm1-rate", "detail"] == "diagnostics disabled (diagnostics.enabled)"
    assert df.loc["al-time", "detail"] == "active learning disabled"


def test_one_checkpoint_makes_training_claims_not_testable():
    df = claims_of(diag=diag_table(epochs=(0,)), regr=regr_table(epochs=(0,)))
    assert verdict(df, "fig7-training") == "not testable" and "one checkpoint" in df.loc["fig7-training", "detail"]
    assert verdict(df, "fig9-training") == "not testable"
    assert verdict(df, "fig3-width:fcn") == "holds"


def test_active_learning_claims():
    df = claims_of()
    assert "ratio 0.10" in df.loc["al-time", "numbers"]
    one = claims_of(active=active_table(seeds=(0,)))
    assert verdict(one, "al-beats-random:final") == "not testable"
    assert verdict(one, "al-matches-entk") == "not testable"
    missing = claims_of(active=active_table().query("kernel != 'entk'"))
    assert verdict(missing, "al-time") == "not testable" and "mlmoc-entk" in missing.loc["al-time", "detail"]
    chance = claims_of(active=active_table(seeds=(0, 1, 2, 3), chance_seed=3))
    assert "left out (ended near chance): random-s3" in chance.loc["al-beats-random:final", "detail"]
    assert "mean of 3 seeds" in chance.loc["al-beats-random:final", "numbers"]
    assert "random" not in chance.loc["al-matches-entk", "detail"]


def test_area_under_the_curve_is_the_mean_accuracy_over_labels():
    runs = per_run(active_table(seeds=(0,), pntk_gain=0.0)).set_index("name")
    acc = 0.6 + 0.05 * np.arange(6)
    assert runs.loc["random", "auc"] == pytest.approx(acc.mean())  # linear curve: trapezoid = mean
    assert runs.loc["random", "final"] == pytest.approx(acc[-1]) and runs.loc["random", "labels"] == 100


def test_format_claims_aligns_id_verdict_numbers():
    df = claims_of(diag=pd.concat([diag_table(), diag_table(widths=[32], arch="convnet")])).reset_index()
    text = format_claims(df, width=100)
    lines = text.splitlines()
    assert lines[0].split() == ["id", "verdict", "numbers"]
    col = lines[0].index("verdict")
    assert all(line[col - 2:col] == "  " for line in lines[2:-1])
    assert "(one width of convnet" in text
    assert lines[-1].startswith(f"{(df.verdict == 'holds').sum()} holds")


def test_time_claim_needs_a_smaller_median_not_only_a_rank_test():
    """Mostly faster acquisitions (Mann–Whitney significant) whose median is still slower: not 'a fraction'."""
    from pntk.paper.claims_active import time_claim

    fast = np.array([0.0] * 15 + [2.0] * 18)  # median 2.0
    slow = np.array([1.9] * 18 + [100.0] * 15)  # median 1.9
    assert ct.time_ratio(fast, slow).p < ct.ALPHA
    both = pd.DataFrame({"times_a": [fast], "times_b": [slow]})
    assert time_claim("al-time", "", both, "time", "")["verdict"] == "does not hold"


def test_cli_prints_claims_then_warnings(tmp_path, capsys):
    from pntk.cli import main
    from pntk.paper.verdicts import warnings_table

    path = tmp_path / "claims.csv"
    claims_of().reset_index().to_csv(path, index=False)
    warnings_table([]).to_csv(tmp_path / "warnings.csv", index=False)
    assert main(["claims", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["id", "verdict", "numbers"] and "al-time" in out
    assert "0 warning(s)" in out
    warnings_table([{"source": "train", "run": "digits/fcn-w64-s0", "message": "did not learn"}]).to_csv(
        tmp_path / "warnings.csv", index=False)
    assert main(["claims", str(path)]) == 0
    assert "1 warning(s)" in (out := capsys.readouterr().out) and "[train] digits/fcn-w64-s0: did not learn" in out
    assert main(["claims", str(tmp_path / "missing.csv")]) == 2
    (tmp_path / "bad.csv").write_text("id,verdict\nx,holds\n")
    assert main(["claims", str(tmp_path / "bad.csv")]) == 2
    assert "expected ['id', 'source'" in capsys.readouterr().err


def test_absent_tables_follow_the_config():
    from pntk.config import validate_config
    from pntk.paper.claims import absent_tables

    cfg = validate_config({"models": [{"arch": "fcn", "widths": [8]}], "diagnostics": {"enabled": False},
                           "kernels": {"index_sets": {"pntk": [["sub-train", "sub-train"]]}}}, check_files=False)
    why = absent_tables(cfg)
    assert why["diagnostics"] == "diagnostics disabled (diagnostics.enabled)"
    assert "kernels.index_sets.pntk" in why["regression"] and "active" in why and "infinite" not in why

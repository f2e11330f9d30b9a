"""claims.csv on synthetic tables built to hold, to fail and to be underpowered: the verdict of every claim of
the paper's Figs 1–12 and theorems, the structure claims of §3–§6 and the project's own rate check (the
active-learning claims: tests/test_claims_active.py; the rules themselves: tests/test_decide.py)."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from pntk.report.claim_sources import PROJECT, SOURCES
from pntk.report.claims import COLUMNS, ClaimInputs, claims_table, format_claims

WIDTHS = [64, 128, 256, 512, 1024]
N_TEST, N_SUB = 450, 100


# ----------------------------------------------------------------------------- synthetic tables
def diag_table(widths=WIDTHS, seeds=(0, 1, 2), epochs=(0, 50, 100), arch="fcn", slope=-0.5, trained=2.0,
               pntk_wins=(6, 1), not_learned=(), noise=0.02, lambda_min_trend=-1) -> pd.DataFrame:
    """Diagnostics rows of networks trained on D: every approximation statistic ∝ w^slope at init and `trained`
    times that later (the paper: worse after training), the prediction gaps shrinking with training, the pNTK
    right on pntk_wins[0] test points of X only it gets right against pntk_wins[1] for the eNTK."""
    rng = np.random.default_rng(0)
    rows = []
    for w, s, e in itertools.product(widths, seeds, epochs):
        base = 2 * w**slope * np.exp(noise * rng.standard_normal())
        late = trained if e else 1.0
        stats_ = {"offdiag_ratio": base * late, "offdiag_block_ratio": base * late,
                  "frobenius_norm_rel_diff": 0.5 * base * late, "frobenius_distance": base * late,
                  "lambda_max_rel_diff": base * late, "lambda_min_rel_diff": base * late,
                  "cond_rel_diff": base * late, "pred_rel_diff": base / (1 + e), "pred_rms_diff": base / (1 + e),
                  "acc_abs_diff": base / (1 + e), "acc_diff": -(pntk_wins[0] - pntk_wins[1]) / N_SUB,
                  "only_pntk_correct": pntk_wins[0], "only_entk_correct": pntk_wins[1],
                  "first_logit_fro": 10 * np.exp(0.02 * rng.standard_normal()), "pntk_fro": 10.0,
                  "lambda_min_entk": (1.0 + e) ** lambda_min_trend * 0.001, "lambda_min_pntk": 1.0}
        for k, v in stats_.items():
            rows.append(dict(dataset="digits", arch=arch, width=w, seed=s, epoch=e, statistic=k, value=v,
                             trained_on="D", readout_width=w, learned=(w, s) not in not_learned))
    return pd.DataFrame(rows)


def training_table(diag: pd.DataFrame, train_acc=1.0, test_acc_slope=0.0, runs_widths=WIDTHS, seeds=(0, 1, 2),
                   epochs=(0, 10), runs_train_acc=1.0) -> pd.DataFrame:
    """train_acc of the networks on D at their checkpoints, and test accuracy of the train split's runs."""
    rows = []
    for r in diag[["arch", "width", "seed", "epoch"]].drop_duplicates().itertuples(index=False):
        rows.append(dict(dataset="digits", arch=r.arch, width=r.width, seed=r.seed, epoch=r.epoch,
                         statistic="train_acc", value=train_acc if r.epoch else 0.1, trained_on="D",
                         readout_width=r.width, learned=True))
    rng = np.random.default_rng(1)
    for w, s, e in itertools.product(runs_widths, seeds, epochs):
        acc = 0.9 + test_acc_slope * np.log2(w / 64) + 0.002 * rng.standard_normal() if e else 0.1
        rows.append(dict(dataset="digits", arch="fcn", width=w, seed=s, epoch=e, statistic="test_acc", value=acc,
                         trained_on="train", readout_width=w, learned=True))
        rows.append(dict(dataset="digits", arch="fcn", width=w, seed=s, epoch=e, statistic="train_acc",
                         value=(runs_train_acc if e else 0.1), trained_on="train", readout_width=w, learned=True))
    return pd.DataFrame(rows)


def regr_table(widths=WIDTHS, seeds=(0, 1, 2), epochs=(0, 10), gain=0.05, width_gain=0.01) -> pd.DataFrame:
    rng = np.random.default_rng(2)
    rows = []
    for w, s, e in itertools.product(widths, seeds, epochs):
        acc = 0.8 + width_gain * np.log2(w / 64) + (gain if e else 0.0) + 0.001 * rng.standard_normal()
        for k, v in {"flin_test_acc": acc, "flin_minus_final": acc - 0.95 - 0.5 / np.sqrt(w) * (e == 0)}.items():
            rows.append(dict(dataset="digits", arch="fcn", width=w, seed=s, epoch=e, statistic=k, value=v,
                             trained_on="train", readout_width=w, learned=True))
    return pd.DataFrame(rows)


def infinite_table(slope=-0.5, seeds=(0, 1), widths=(64, 256, 1024)) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame([dict(dataset="digits", arch="fcn", width=w, seed=s, epoch=0,
                              statistic=f"infinite_rel_dist_{k}", value=3 * w**slope * np.exp(0.02 * rng.normal()))
                         for k, w, s in itertools.product(("entk", "pntk"), widths, seeds)])


def timing_table(ratio=3.0) -> pd.DataFrame:
    return pd.DataFrame([dict(depth=d, kind=k, repeat=r, threads=1, device="cpu", seconds=0.0,
                              cpu_seconds=(ratio if k == "entk" else 1.0) * d * (1 + 0.01 * r))
                         for d, k, r in itertools.product((18, 34), ("entk", "pntk"), range(7))])


def claims_of(diag=None, regr=None, inf=None, training=None, timing=None, infinite_regression=None) -> pd.DataFrame:
    diag = diag_table() if diag is None else diag
    training = training_table(diag if isinstance(diag, pd.DataFrame) else diag_table()) if training is None \
        else training
    df = claims_table(ClaimInputs(
        diagnostics=diag, regression=regr_table() if regr is None else regr,
        infinite=infinite_table() if inf is None else inf, active="active learning disabled (active.enabled)",
        training=training, timing=timing_table() if timing is None else timing,
        infinite_regression={"fcn": 0.95} if infinite_regression is None else infinite_regression,
        n_test=N_TEST, n_test_subset=N_SUB))
    assert list(df.columns) == COLUMNS and df.id.is_unique
    return df.set_index("id")


def verdict(df, cid) -> str:
    return df.loc[cid, "verdict"]


# ----------------------------------------------------------------------------- every claim, each way
HOLD = ["fig1-cost", "fig2-width:fcn", "fig2-block-width:fcn", "fig3-norm-width:fcn", "fig3-distance-width:fcn",
        "fig4-width:fcn", "fig5-width:fcn", "fig6-width:fcn", "fig7-width:fcn", "thm1-rate:fcn", "thm5-rate:fcn",
        "thm6-rate:fcn", "first-logit", "worse-after-training:frobenius", "worse-after-training:lambda-max",
        "worse-after-training:condition", "lambda-min-training:fcn", "fig7-training", "fig8-always",
        "fig8-almost-always", "fig8-training", "fig9-width:fcn", "fig9-training", "fig10-width:fcn",
        "fig12-width:fcn", "sec5-infinite:fcn", "infinite-rate:entk", "infinite-rate:pntk"]


def test_claims_hold_on_data_built_to_follow_them():
    df = claims_of()
    bad = {c: (df.loc[c, "verdict"], df.loc[c, "numbers"], df.loc[c, "detail"]) for c in HOLD
           if df.loc[c, "verdict"] != "holds"}
    assert not bad, bad
    assert "w=64:" in df.loc["fig3-norm-width:fcn", "numbers"] and "mean of 3 seeds" in df.loc["fig3-norm-width:fcn",
                                                                                               "numbers"]
    assert "all widths from 64" in df.loc["thm1-rate:fcn", "numbers"]  # the smallest width fitted apart


def test_claims_fail_on_data_built_to_contradict_them():
    diag = diag_table(slope=+0.3, trained=0.3, pntk_wins=(0, 30), lambda_min_trend=+1)
    df = claims_of(diag=diag, regr=regr_table(gain=-0.05, width_gain=-0.02), inf=infinite_table(slope=-1.2),
                   training=training_table(diag, test_acc_slope=0.03), timing=timing_table(ratio=0.3),
                   infinite_regression={"fcn": 0.5})
    for cid in ("fig1-cost", "fig2-width:fcn", "fig3-norm-width:fcn", "fig7-width:fcn", "thm1-rate:fcn",
                "worse-after-training:frobenius", "lambda-min-training:fcn", "fig8-always", "fig8-almost-always",
                "fig9-width:fcn", "fig9-training", "fig10-width:fcn", "sec5-infinite:fcn", "infinite-rate:entk"):
        assert verdict(df, cid) == "does not hold", (cid, df.loc[cid].to_dict())
    assert "opposite trend is significant" in df.loc["fig3-norm-width:fcn", "detail"]
    assert "grows significantly with width" in df.loc["thm1-rate:fcn", "detail"]
    assert "median change per run +" in df.loc["lambda-min-training:fcn", "numbers"]  # the paired change, signed


def test_fig10_width_gain_of_undertrained_networks_is_inconclusive_not_contradicted():
    """Accuracy rising with width while the networks have not fit their training set (too few epochs for the
    narrow ones) is before Fig 10's regime: inconclusive, saying so, never "does not hold"."""
    diag = diag_table()
    fails = claims_of(diag=diag, training=training_table(diag, test_acc_slope=0.03)).loc["fig10-width:fcn"]
    assert fails.verdict == "does not hold", fails.to_dict()
    row = claims_of(diag=diag, training=training_table(diag, test_acc_slope=0.03, runs_train_acc=0.6)
                    ).loc["fig10-width:fcn"]
    assert row.verdict == "inconclusive", row.to_dict()
    assert "15 of 15 networks have not fit their training set at epoch 10" in row.detail
    assert "to decide: train longer (train.epochs)" in row.detail
    flat = claims_of(diag=diag, training=training_table(diag, runs_train_acc=0.6)).loc["fig10-width:fcn"]
    assert flat.verdict == "holds"  # flat accuracy holds whatever the fit: the guard only keeps a refutation out


def test_small_designs_are_inconclusive_with_what_would_decide_them():
    diag = diag_table(widths=[16, 32], seeds=(0, 1), arch="convnet")
    df = claims_of(diag=diag, regr=regr_table(widths=[16, 32], seeds=(0, 1)))
    row = df.loc["fig3-norm-width:convnet"]
    assert row.verdict == "inconclusive" and "even a perfect ordering gives p = 0.25" in row.detail
    assert "to decide: a third width" in row.detail
    assert verdict(df, "thm1-rate:convnet") in ("inconclusive", "holds")
    assert verdict(df, "fig2-width:convnet") == "inconclusive"


def test_a_ceiling_never_contradicts_a_claim():
    flat = regr_table(gain=-0.002, width_gain=0.0)  # accuracies 1 of 450 points apart, falling
    df = claims_of(regr=flat)
    assert verdict(df, "fig9-training") == "inconclusive" and "ceiling" in df.loc["fig9-training", "detail"]
    assert verdict(df, "fig9-width:fcn") == "inconclusive" and "ceiling" in df.loc["fig9-width:fcn", "detail"]


def test_networks_that_have_not_fit_d_cannot_contradict_a_training_claim():
    diag = diag_table(trained=0.3)  # the approximation improves with training: against §6
    fit = claims_of(diag=diag)
    assert verdict(fit, "worse-after-training:frobenius") == "does not hold"
    early = claims_of(diag=diag, training=training_table(diag, train_acc=0.6))
    row = early.loc["worse-after-training:frobenius"]
    assert row.verdict == "inconclusive" and "have not fit their training set" in row.detail
    assert "train longer" in row.detail


def test_one_width_is_not_testable():
    diag = pd.concat([diag_table(), diag_table(widths=[32], arch="convnet")])
    df = claims_of(diag=diag)
    assert verdict(df, "fig2-width:convnet") == "not testable" and "one width of convnet" in df.loc[
        "fig2-width:convnet", "detail"]
    assert verdict(df, "thm1-rate:convnet") == "not testable"
    assert verdict(df, "fig2-width:fcn") == "holds"
    assert verdict(df, "sec5-infinite:fcn") == "holds"


def test_runs_that_did_not_learn_are_left_out_and_named():
    df = claims_of(diag=diag_table(not_learned={(64, 0)}))
    assert "left out (did not learn): fcn-w64-s0-onD" in df.loc["fig3-norm-width:fcn", "detail"]
    assert "w=64:" in df.loc["fig3-norm-width:fcn", "numbers"] and "2–3 seeds" in df.loc["fig3-norm-width:fcn",
                                                                                         "numbers"]


def test_missing_tables_are_not_testable_with_the_reason():
    df = claims_of(diag="diagnostics disabled (diagnostics.enabled)", regr="no full-data pNTK",
                   inf="infinite-width comparison disabled", timing="timing disabled (timing.enabled)",
                   training=training_table(diag_table()))
    assert (df.verdict == "not testable").all(), df[df.verdict != "not testable"]
    assert df.loc["thm1-rate", "detail"] == "diagnostics disabled (diagnostics.enabled)"
    assert df.loc["fig1-cost", "detail"] == "timing disabled (timing.enabled)"


def test_the_convnet_lambda_min_reads_the_papers_threshold():
    diag = diag_table(widths=[8, 16, 32], arch="convnet")  # λmin(Θ) = 0.001 at init: not below 0.001
    assert verdict(claims_of(diag=diag), "convnet-lambda-min") == "does not hold"
    near_zero = diag.assign(value=np.where(diag.statistic == "lambda_min_entk", 1e-5, diag.value))
    assert verdict(claims_of(diag=near_zero), "convnet-lambda-min") == "holds"
    mixed = near_zero.assign(value=np.where((near_zero.statistic == "lambda_min_entk") & (near_zero.width == 32),
                                            0.01, near_zero.value))
    row = claims_of(diag=mixed).loc["convnet-lambda-min"]
    assert row.verdict == "inconclusive"
    assert "by width: w=8: 3 of 3, w=16: 3 of 3, w=32: 0 of 3; it depends on the width" in row.detail, row.detail
    split_seed = mixed.assign(value=np.where((mixed.statistic == "lambda_min_entk") & (mixed.width == 32)
                                             & (mixed.seed == 0), 1e-5, mixed.value))
    row = claims_of(diag=split_seed).loc["convnet-lambda-min"]
    assert row.verdict == "inconclusive" and "runs of one width disagree; to decide: more ConvNet seeds" in row.detail
    singular_pntk = near_zero.assign(value=np.where(near_zero.statistic == "lambda_min_pntk", 1e-4,
                                                    near_zero.value))
    assert verdict(claims_of(diag=singular_pntk), "convnet-lambda-min") == "does not hold"


def test_the_convnet_is_compared_with_its_analytic_ntk_and_other_archs_say_why_not():
    diag = pd.concat([diag_table(), diag_table(widths=[16, 32], arch="convnet")])
    regr = pd.concat([regr_table(), regr_table(widths=[16, 32]).assign(arch="convnet"),
                      regr_table(widths=[16, 32]).assign(arch="resnet18")])
    df = claims_of(diag=diag, regr=regr, infinite_regression={"fcn": 0.95, "convnet": 0.99})
    assert verdict(df, "sec5-infinite:convnet") == "holds"
    assert "NTK∞ 0.99" in df.loc["sec5-infinite:convnet", "numbers"]
    assert verdict(df, "sec5-infinite:resnet18") == "not testable"
    assert "no analytic infinite-width NTK of resnet18" in df.loc["sec5-infinite:resnet18", "detail"]
    skipped = claims_of(diag=diag, regr=regr, infinite_regression={
        "fcn": 0.95, "convnet": "≈ 3e+04 CPU-hours, above infinite.max_cntk_cpu_hours (1)"})
    assert verdict(skipped, "sec5-infinite:convnet") == "not testable"
    assert "skipped: ≈ 3e+04 CPU-hours" in skipped.loc["sec5-infinite:convnet", "detail"]
    assert "infinite.max_cntk_cpu_hours" in skipped.loc["sec5-infinite:convnet", "detail"]


def test_every_row_cites_its_source_and_the_projects_own_are_labelled():
    df = claims_of()
    assert (df.origin != "").all() and (df.source != "").all() and (df.quote != "").all()
    for cid in ("infinite-rate:entk", "infinite-rate:pntk"):
        assert df.loc[cid, "origin"] == PROJECT and "pntk's own check" in df.loc[cid, "statement"]
    assert df.loc["fig8-always", "quote"] == SOURCES["fig8-always"].quote
    assert "always" in df.loc["fig8-always", "quote"] and "almost always" in df.loc["fig8-almost-always", "quote"]
    assert df.loc["thm1-rate:fcn", "quote"].startswith(r"\in \tilde{O}")


def test_format_claims_aligns_id_verdict_numbers():
    df = claims_of(diag=pd.concat([diag_table(), diag_table(widths=[32], arch="convnet")])).reset_index()
    lines = format_claims(df, width=100).splitlines()
    assert lines[0].split() == ["id", "verdict", "numbers"]
    col = lines[0].index("verdict")
    assert all(line[col - 2:col] == "  " for line in lines[2:-1])
    assert lines[-1].startswith(f"{(df.verdict == 'holds').sum()} holds")
    assert "inconclusive" in lines[-1]


def test_cli_prints_claims_then_warnings(tmp_path, capsys):
    from pntk.cli import main
    from pntk.report.verdicts import warnings_table

    path = tmp_path / "claims.csv"
    claims_of().reset_index().to_csv(path, index=False)
    warnings_table([]).to_csv(tmp_path / "warnings.csv", index=False)
    assert main(["claims", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["id", "verdict", "numbers"] and "fig8-always" in out
    assert "0 warning(s)" in out
    assert main(["claims", str(tmp_path / "missing.csv")]) == 2
    (tmp_path / "bad.csv").write_text("id,verdict\nx,holds\n")
    assert main(["claims", str(tmp_path / "bad.csv")]) == 2
    assert "expected ['id', 'origin'" in capsys.readouterr().err


def test_absent_tables_follow_the_config():
    from pntk.config import validate_config
    from pntk.report.claims import absent_tables

    cfg = validate_config({"models": [{"arch": "fcn", "widths": [8]}], "diagnostics": {"enabled": False},
                           "kernels": {"index_sets": {"pntk": [["sub-train", "sub-train"]]}}}, check_files=False)
    why = absent_tables(cfg)
    assert why["diagnostics"] == "diagnostics disabled (diagnostics.enabled)"
    assert "kernels.index_sets.pntk" in why["regression"] and "active" in why and "infinite" not in why


@pytest.mark.parametrize("cid", ["fig8-always", "fig8-almost-always"])
def test_fig8_cells_are_independent_networks_or_every_plotted_point(cid):
    """'always' is about every plotted point (arch × width × epoch); 'almost always' is the share of run ×
    checkpoint cells with an interval over runs: two epochs of one network are not two independent cells."""
    df = claims_of()
    if cid == "fig8-always":
        assert "in 15 of 15 cells" in df.loc[cid, "numbers"]  # 5 widths × 3 epochs, seeds pooled
    else:
        assert "in 100% of the cells (mean over 15 runs" in df.loc[cid, "numbers"]  # 5 widths × 3 seeds

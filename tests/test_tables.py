"""Tidy tables carry each run's `learned` verdict (last row of its train_log.csv), warnings.csv names every
problem, and Theorem 1's claim uses the numbers of rate.csv."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pntk.report import tables, verdicts
from pntk.report.claims import ClaimInputs, claims_table
from pntk.runs import Run
from pntk.train import LOG_FIELDS
from pntk.train.learned import learned_threshold

LABELS = np.repeat(np.arange(10), 30)  # 300 balanced test labels: chance 0.1

FCN_READOUT = {"fcn": {w: w for w in (16, 32, 64)}}  # an FCN's readout width is its width


def write_log(results: Path, run: Run, accs: list[float], learned: list[bool] | None = None) -> Path:
    """train_log.csv as pntk.train writes it: epoch 0 (init) then one row per epoch."""
    path = run.train_log(results)
    path.parent.mkdir(parents=True, exist_ok=True)
    learned = learned if learned is not None else [e > 0 and a >= 0.2 for e, a in enumerate(accs)]
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=LOG_FIELDS)
        w.writeheader()
        for e, (a, ok) in enumerate(zip(accs, learned)):
            w.writerow(dict(epoch=e, lr=0.01, train_loss=1.0 / (e + 1), train_acc=a, test_loss=1.0, test_acc=a,
                            learned=ok, seconds=0.1))
    return path


def write_json(results: Path, run: Run, epoch: int, name: str, rec: dict) -> Path:
    path = run.epoch_dir(results, epoch) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"meta": {**run.meta(), "epoch": epoch}, **rec}))
    return path


RUNS = [Run("digits", "fcn", w, s) for w in (16, 32) for s in (0, 1)]


@pytest.fixture
def results(tmp_path):
    """Four runs; fcn-w16-s1 did not learn (final 0.11); diagnostics and regression at epochs 0 and 2."""
    logs, diag, regr = [], [], []
    for r in RUNS:
        bad = r.leaf == "fcn-w16-s1"
        logs.append(write_log(tmp_path, r, [0.1, 0.12, 0.11] if bad else [0.1, 0.6, 0.9]))
        for e in (0, 2):
            diag.append(write_json(tmp_path, r, e, "diagnostics.json",
                                   {"stats": {"frobenius_distance": r.width**-0.5 * (1.05 if r.seed else 0.95),
                                              "acc_diff": -0.01}}))
            regr.append(write_json(tmp_path, r, e, "regression.json",
                                   {"flin_test_acc": 0.8 + 0.05 * e, "model_test_acc": 0.7, "flin_model_agreement": 0.9,
                                    "solver": {"solver": "cholesky", "jitter": 0.0}}))
    return tmp_path, logs, diag, regr


def test_run_verdict_is_the_last_row_of_the_train_log(results):
    _, logs, _, _ = results
    v = verdicts.run_verdicts(logs, 10, LABELS).set_index("run")
    assert not v.loc["digits/fcn-w16-s1", "learned"] and v.loc["digits/fcn-w32-s0", "learned"]
    assert v.loc["digits/fcn-w16-s1", "test_acc"] == pytest.approx(0.11)
    assert v.loc["digits/fcn-w16-s1", "learned_threshold"] == pytest.approx(learned_threshold(0.1, 300))


def test_verdict_of_an_untrained_or_old_log(tmp_path):
    untrained = write_log(tmp_path, Run("digits", "fcn", 8, 0), [0.5], learned=[True])  # epoch 0 only
    assert not verdicts.run_verdicts([untrained]).learned.iloc[0]
    old = tmp_path / "runs/digits/fcn-w8-s1/train_log.csv"
    old.parent.mkdir(parents=True)
    old.write_text("epoch,lr,train_loss,train_acc,test_loss,test_acc,seconds\n0,0.1,1,0.1,1,0.1,1\n")
    with pytest.raises(ValueError, match="fcn-w8-s1/train_log.csv.*`learned` column"):
        verdicts.run_verdicts([old])


def test_every_tidy_table_has_the_learned_column(results):
    _, logs, diag, regr = results
    v = verdicts.run_verdicts(logs)
    training = tables.training_table(logs, v)
    frames = {"diagnostics": tables.diagnostics_table(diag, v, FCN_READOUT), "training": training,
              "regression": tables.regression_table(regr, training, v)}
    for name, df in frames.items():
        assert list(df.columns) == tables.COLUMNS, name
        assert df.learned.dtype == bool, name
        bad = df[(df.width == 16) & (df.seed == 1)]
        assert len(bad) and not bad.learned.any() and df.drop(bad.index).learned.all(), name
    rate = tables.rate_table(frames["diagnostics"])
    assert list(rate.columns) == tables.RATE_COLUMNS and not rate.learned.iloc[0]  # a run of the fit did not learn
    # without fcn-w16-s1, seed 1 has one width and seed 0 two points: no residual freedom, no honest interval
    assert tables.rate_table(frames["diagnostics"][frames["diagnostics"].learned]).empty


def test_a_row_without_its_runs_log_fails_naming_the_run(results):
    _, logs, diag, _ = results
    with pytest.raises(ValueError, match=r"digits/fcn-w32-s1"):
        tables.diagnostics_table(diag, verdicts.run_verdicts(logs[:3]))


def test_theorem1_claim_uses_rate_csv_numbers_when_every_run_learned(tmp_path):
    logs, diag = [], []
    for w in (16, 32, 64):
        for s in (0, 1):
            r = Run("digits", "fcn", w, s)
            logs.append(write_log(tmp_path, r, [0.1, 0.9]))
            diag.append(write_json(tmp_path, r, 0, "diagnostics.json",
                                   {"stats": {"frobenius_distance": w**-0.5 * (1 + 0.1 * s - 0.02 * (w == 32))}}))
    v = verdicts.run_verdicts(logs)
    d = tables.diagnostics_table(diag, v, FCN_READOUT)
    rate = tables.rate_table(d).iloc[0]
    claim = claims_table(ClaimInputs(d, "none", "none", "none")).set_index("id").loc["thm1-rate:fcn"]
    assert f"slope {rate.exponent:+.3f} [{rate.ci_low:+.3f}, {rate.ci_high:+.3f}]" in claim.numbers


# ----------------------------------------------------------------------------- warnings.csv
def test_warnings_name_runs_that_did_not_learn(results):
    _, logs, _, _ = results
    rows = verdicts.training_warnings(verdicts.run_verdicts(logs, 10, LABELS))
    assert [r["run"] for r in rows] == ["digits/fcn-w16-s1"]
    assert "test accuracy 0.1100" in rows[0]["message"]
    assert f"threshold {learned_threshold(0.1, 300):.4f}" in rows[0]["message"]


def test_solver_warnings_read_what_regression_json_records(tmp_path):
    r = Run("digits", "fcn", 16, 0)
    quiet = write_json(tmp_path, r, 0, "regression.json", {"solver": {"solver": "cholesky", "jitter": 0.0}})
    bare = write_json(tmp_path, r, 1, "regression.json", {})  # a solver record without any of the fields
    jitter = write_json(tmp_path, r, 2, "regression.json", {"solver": {"solver": "cholesky", "jitter": 1e-8}})
    cg = write_json(tmp_path, r, 3, "regression.json",
                    {"solver": {"solver": "cg", "cg_converged": False, "cg_max_rel_residual": 0.01, "cg_tol": 1e-6}})
    new = write_json(tmp_path, r, 4, "regression.json",
                     {"solver": {"solver": "nystrom", "converged": False, "residual": 0.2, "tol": 1e-5}})
    assert verdicts.solver_warnings([quiet, bare]) == []
    msgs = [w["message"] for w in verdicts.solver_warnings([jitter, cg, new])]
    assert len(msgs) == 3
    assert msgs[0].startswith("epoch 2: solver cholesky escalated: jitter 1e-08")
    assert "epoch 3: solver cg did not converge (max relative residual 0.01, tolerance 1e-06)" in msgs[1]
    assert "epoch 4: solver nystrom did not converge (max relative residual 0.2" in msgs[2]


def test_active_runs_near_chance_are_warned():
    active = pd.DataFrame([dict(strategy=s, kernel=k, seed=0, cycle=c, n_labels=50 + 10 * c, test_acc=a,
                                acquisition_seconds=np.nan, candidates=0, train_seconds=1.0)
                           for s, k, a in (("random", "none", 0.8), ("mlmoc", "pntk", 0.11), ("mlmoc-seq", "pntk", 0.7))
                           for c in (0, 1)])
    v = verdicts.active_verdicts(active, 10, LABELS)
    rows = verdicts.active_warnings(v, "digits")
    assert [r["run"] for r in rows] == ["digits/mlmoc-pntk-s0"]
    assert "test accuracy 0.1100 with 60 labels" in rows[0]["message"]
    assert set(v.name) == {"random", "mlmoc-pntk", "mlmoc-pntk-seq"}


def test_no_problem_writes_the_header_alone(tmp_path):
    out = tmp_path / "warnings.csv"
    verdicts.warnings_table([]).to_csv(out, index=False)
    assert out.read_text() == "source,run,message\n"

"""Did each run learn, and what went wrong: the `learned` column of the tidy tables and warnings.csv.

One definition of a run's verdict (:func:`run_verdicts`): the `learned` flag of the LAST row of its
train_log.csv, i.e. ``pntk.train.learned.did_learn`` on the test accuracy of the network at the end of training,
as the train job recorded it (it is also in the final checkpoint's meta). A run that was never trained
(``train.epochs: 0``) has learned nothing. Every table row of a run carries this verdict, so that a figure,
a claim or a reader can leave out runs whose network did not learn.

warnings.csv (columns :data:`WARNING_COLUMNS`) has one row per problem found: a run that did not learn, a
regression whose solver needed a jitter or did not converge, an active-learning run that ended near chance.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..runs import Run
from ..train.learned import learning_verdict

RUN_KEYS = ["dataset", "arch", "width", "seed", "trained_on"]
WARNING_COLUMNS = ["source", "run", "message"]


def run_verdicts(log_paths, num_classes: int | None = None, test_labels=None) -> pd.DataFrame:
    """One row per run: RUN_KEYS, run, epoch, test_acc, learned (+ chance_acc, learned_threshold, n_test
    when ``num_classes`` and ``test_labels`` are given, for messages). Raises naming a log without the
    `learned` column (written by older pntk: retrain)."""
    rows = []
    for p in log_paths:
        log = pd.read_csv(p)
        if "learned" not in log.columns or log.empty:
            raise ValueError(f"{p}: expected a train log with a `learned` column and at least one epoch "
                             f"(written by pntk.train); got columns {list(log.columns)}")
        last = log.iloc[-1]
        run = Run.of_path(p)
        row = {**run.meta(), "run": run.name, "epoch": int(last["epoch"]), "test_acc": float(last["test_acc"]),
               "learned": _as_bool(last["learned"], p) and int(last["epoch"]) > 0}
        if num_classes is not None and test_labels is not None:
            v = learning_verdict(row["test_acc"], num_classes, test_labels)
            row.update(chance_acc=v["chance_acc"], learned_threshold=v["learned_threshold"], n_test=v["n_test"])
        rows.append(row)
    return pd.DataFrame(rows, columns=RUN_KEYS + ["run", "epoch", "test_acc", "learned"]
                        + (["chance_acc", "learned_threshold", "n_test"] if test_labels is not None else []))


def _as_bool(value, path) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    text = str(value).strip().lower()
    if text not in ("true", "false"):
        raise ValueError(f"{path}: `learned` must be True or False, got {value!r}")
    return text == "true"


def with_learned(df: pd.DataFrame, verdicts: pd.DataFrame) -> pd.DataFrame:
    """``df`` (rows with RUN_KEYS) with a boolean `learned` column: the run's verdict (module doc)."""
    if df.empty:
        return df.assign(learned=pd.Series(dtype=bool))
    if "trained_on" not in df.columns:  # rows of an older pntk: every run was trained on the train split
        df = df.assign(trained_on="train")
    out = df.merge(verdicts[RUN_KEYS + ["learned"]], on=RUN_KEYS, how="left", validate="many_to_one")
    out.loc[out.trained_on == "init", "learned"] = True  # never trained (diagnostics.at_init): nothing failed
    missing = out[out.learned.isna()]
    if len(missing):
        names = sorted({Run.of_row(r).name for r in missing[RUN_KEYS].itertuples(index=False)})
        raise ValueError(f"no train_log.csv verdict for run(s) {names}: every table row needs its run's log")
    return out.assign(learned=out.learned.astype(bool))


# ----------------------------------------------------------------------------- warnings.csv
def training_warnings(verdicts: pd.DataFrame) -> list[dict]:
    """A row per run that did not learn, with its accuracy and the threshold it missed."""
    out = []
    for v in verdicts[~verdicts.learned].itertuples(index=False):
        if v.epoch == 0:
            msg = "was not trained (train.epochs = 0): the initialisation has learned nothing"
        else:
            msg = f"did not learn: test accuracy {v.test_acc:.4f} after epoch {v.epoch}"
            if "learned_threshold" in verdicts.columns:
                msg += (f" is below the learned threshold {v.learned_threshold:.4f} (chance {v.chance_acc:.4f}, "
                        f"{v.n_test} test examples)")
        out.append({"source": "train", "run": v.run, "message": msg + "; its rows are left out of the claims"})
    return out


def solver_warnings(regression_paths) -> list[dict]:
    """A row per regression whose solver needed a jitter, escalated or did not converge (regression.json's
    `solver` record; fields a solver does not write are simply absent)."""
    out = []
    for p in regression_paths:
        rec = json.loads(Path(p).read_text())
        s, m = rec.get("solver") or {}, rec["meta"]
        run = Run.of_row(m).name
        where = f"epoch {int(m['epoch'])}: solver {s.get('solver', '?')}"
        converged = s.get("converged", s.get("cg_converged"))
        residual = s.get("residual", s.get("cg_max_rel_residual"))
        tol = s.get("tol", s.get("cg_tol"))
        if converged is False:
            out.append({"source": "regression", "run": run, "message": f"{where} did not converge (max relative "
                        f"residual {_num(residual)}, tolerance {_num(tol)}); f̂_lin is not trustworthy"})
        jitter = s.get("jitter")
        if jitter:
            out.append({"source": "regression", "run": run, "message": f"{where} escalated: jitter {_num(jitter)} "
                        "added to the kernel diagonal (not numerically positive definite)"})
        if s.get("escalated") and not jitter:
            out.append({"source": "regression", "run": run, "message": f"{where} escalated ({s['escalated']})"})
    return out


def _num(x) -> str:
    return "unknown" if x is None else f"{float(x):.3g}"


def strategy_name(method: str, kernel: str) -> str:
    """Inverse of pntk.active.loop.parse_strategy: (mlmoc-seq, pntk) → mlmoc-pntk-seq, (random, none) → random."""
    if not str(method).startswith("mlmoc"):
        return str(method)
    return f"mlmoc-{kernel}" + ("-seq" if method == "mlmoc-seq" else "")


def active_verdicts(active: pd.DataFrame, num_classes: int, test_labels) -> pd.DataFrame:
    """One row per strategy × seed of active.csv: name, seed, n_labels, test_acc (at the last cycle),
    learned, learned_threshold, chance_acc (did_learn on the shared test split)."""
    rows = []
    last = active.sort_values("cycle").groupby(["strategy", "kernel", "seed"], dropna=False).tail(1)
    for r in last.itertuples(index=False):
        v = learning_verdict(float(r.test_acc), num_classes, test_labels)
        rows.append({"name": strategy_name(r.strategy, r.kernel), "seed": int(r.seed), "n_labels": int(r.n_labels),
                     "test_acc": float(r.test_acc), "learned": v["learned"],
                     "learned_threshold": v["learned_threshold"], "chance_acc": v["chance_acc"]})
    return pd.DataFrame(rows, columns=["name", "seed", "n_labels", "test_acc", "learned", "learned_threshold",
                                       "chance_acc"])


def active_warnings(verdicts: pd.DataFrame, dataset: str) -> list[dict]:
    """A row per active-learning run (strategy × seed) that ended near chance."""
    return [{"source": "active", "run": f"{dataset}/{v.name}-s{v.seed}",
             "message": f"ended near chance: test accuracy {v.test_acc:.4f} with {v.n_labels} labels is below the "
                        f"learned threshold {v.learned_threshold:.4f} (chance {v.chance_acc:.4f})"}
            for v in verdicts[~verdicts.learned].itertuples(index=False)]


def warnings_table(rows: list[dict]) -> pd.DataFrame:
    """warnings.csv: the header alone when all is well."""
    return pd.DataFrame(rows, columns=WARNING_COLUMNS)

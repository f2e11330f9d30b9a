"""claims: a verdict per claim of the paper and thesis (claims.csv), and warnings.csv."""
from pntk.scriptutil import setup

log = setup(snakemake)

import json
from pathlib import Path

import pandas as pd

from pntk.data import open_prepared
from pntk.report import verdicts as V
from pntk.report.claims import ClaimInputs, absent_tables, claims_table
from pntk.report.claims_active import active_extras

sm = snakemake
absent = absent_tables(sm.config)
data = open_prepared(sm.input.data, lazy=True)
labels = data.y[data.test_indices]


def table(name: str):
    return absent[name] if name in absent else pd.read_csv(getattr(sm.input, name))


active = table("active")
active_v = V.active_verdicts(active, data.num_classes, labels) if isinstance(active, pd.DataFrame) else None
if sm.input.get("infinite_regression"):  # {arch: test accuracy, or why it was skipped}
    _inf = json.loads(Path(sm.input.infinite_regression).read_text())
    infinite_regression = {**_inf.get("skipped", {}), **_inf["test_acc"]}
else:
    infinite_regression = "no infinite-width regression (infinite.enabled)"
claims = claims_table(ClaimInputs(
    diagnostics=table("diagnostics"), regression=table("regression"), infinite=table("infinite"), active=active,
    active_verdicts=active_v, training=pd.read_csv(sm.input.training), infinite_regression=infinite_regression,
    timing=table("timing"), n_test=len(labels), n_test_subset=int(sm.config["data"]["subset_test"]),
    active_meta=active_extras(sm.input.active_json) if active_v is not None else {}))
runs = V.run_verdicts(list(sm.input.train_logs), data.num_classes, labels)
rows = V.training_warnings(runs) + V.solver_warnings(list(sm.input.regression_json))
if active_v is not None:
    rows += V.active_warnings(active_v, data.attrs["name"])
warnings = V.warnings_table(rows)
claims.to_csv(sm.output.claims, index=False)
warnings.to_csv(sm.output.warnings, index=False)
log.info("claims:\n%s", claims[["id", "verdict", "numbers"]].to_string())
for w in warnings.itertuples():
    log.warning("%s %s: %s", w.source, w.run, w.message)

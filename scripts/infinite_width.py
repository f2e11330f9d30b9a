"""infinite_width: finite-width eNTK/pNTK of NTK-parameterised ReLU FCNs vs the analytic NTK (the project's Figs
P1–P2), and full-data regression with the analytic NTK of each configured FCN and ConvNet (paper §5)."""

import pandas as pd

from pntk.scriptutil import setup

log = setup(snakemake)

from pntk.analysis import infinite_regression, infinite_width_rows
from pntk.data import index_set, open_prepared
from pntk.provenance import atomic_write_json, provenance

sm = snakemake
p, d = sm.params.infinite, sm.params.data
data = open_prepared(sm.input.data)
ids = index_set(data, "sub-train", subset_train=min(p["n_points"], len(data.train_indices)),
                subset_test=d["subset_test"], seed=d["seed"])
rows = infinite_width_rows(data.x[ids], widths=p["widths"], seeds=p["seeds"], depth=p["depth"],
                           num_classes=data.num_classes, dataset=data.attrs["name"])
pd.DataFrame(rows).to_csv(sm.output.csv, index=False)

# §5: one regression per FCN or ConvNet entry of models (its depth); other architectures have no analytic NTK here.
acc, why = {}, {}
tr, te = data.train_indices, data.test_indices
for name, (arch, depth) in sm.params.analytic.items():
    try:
        res = infinite_regression(data.x[tr], data.y[tr], data.x[te], data.y[te], arch=arch, depth=depth,
                                  num_classes=data.num_classes, memory_cap_bytes=sm.params.memory_cap_bytes,
                                  max_cpu_hours=p["max_cntk_cpu_hours"], cntk_dtype=p["cntk_dtype"],
                                  workers=sm.threads, log=log)
    except ValueError as err:
        why[name] = str(err)
        log.warning("infinite-width regression of %s skipped: %s", name, err)
        continue
    acc[name] = res["test_acc"]
    log.info("infinite-width NTK regression (%s, depth %d): test accuracy %.4f", arch, depth, res["test_acc"])
atomic_write_json(sm.output.regression, {"test_acc": acc, "skipped": why, "provenance": provenance()})

"""infinite_width: finite-width eNTK/pNTK of NTK-parameterised ReLU FCNs vs the analytic NTK."""
import pandas as pd

from pntk.scriptutil import setup

log = setup(snakemake)  # noqa: F821

from pntk.data import index_set, open_prepared  # noqa: E402
from pntk.paper.infinite import infinite_width_rows  # noqa: E402

sm = snakemake  # noqa: F821
p, d = sm.params.infinite, sm.params.data
data = open_prepared(sm.input.data)
ids = index_set(data, "sub-train", subset_train=min(p["n_points"], len(data.train_indices)),
                subset_test=d["subset_test"], seed=d["seed"])
rows = infinite_width_rows(data.x[ids], widths=p["widths"], seeds=p["seeds"], depth=p["depth"],
                           num_classes=data.num_classes, dataset=data.attrs["name"])
pd.DataFrame(rows).to_csv(sm.output.csv, index=False)

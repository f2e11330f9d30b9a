"""timing: seconds per pair of inputs for eNTK and pNTK of torchvision ResNets (paper Fig 1)."""
import pandas as pd

from pntk.scriptutil import setup

log = setup(snakemake)  # noqa: F821

from pntk.data import open_prepared  # noqa: E402
from pntk.paper.timing import time_kernels  # noqa: E402

sm = snakemake  # noqa: F821
t = sm.params.timing
data = open_prepared(sm.input.data)
x = data.x[data.train_indices[:2]]
rows = time_kernels(x, data.num_classes, t["resnet_depths"], dataset=sm.wildcards.dataset, method=sm.params.method,
                    repeats=t["repeats"], device=t["device"])
pd.DataFrame(rows).to_csv(sm.output.csv, index=False)

"""timing: seconds per pair of inputs for eNTK and pNTK of torchvision ResNets (paper Fig 1)."""
from pntk.scriptutil import setup

log = setup(snakemake)

import torch

# The rule holds every core (nothing runs beside the measurement); torch uses timing.threads of them,
# recorded in every row.
torch.set_num_threads(int(snakemake.params.torch_threads))

from pntk.analysis.timing import summarize, time_kernels, timing_warnings
from pntk.data import open_prepared
from pntk.provenance import atomic_write_text

sm = snakemake
t = sm.params.timing
data = open_prepared(sm.input.data)
x = data.x[data.train_indices[:2]]
rows = time_kernels(x, data.num_classes, t["resnet_depths"], dataset=sm.wildcards.dataset, method=sm.params.method,
                    repeats=t["repeats"], device=t["device"])
summary = summarize(rows)
log.info("seconds per pair (min/median/max over repeats of the measure, wall and CPU):\n%s", summary.to_string())
for message in timing_warnings(summary):  # Fig 1's caption and the report say them too
    log.warning("timing: %s", message)
atomic_write_text(sm.output.csv, rows.to_csv(index=False))
atomic_write_text(sm.output.summary, summary.to_csv(index=False))

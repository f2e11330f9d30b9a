"""diagnose_on_D (diagnostics.jobs: per_run): one network trained on D, start to end, in one process — rule
train_on_D, then at every checkpoint rule kernel_checkpoint_on_D and rule diagnostics, writing the same files
(checkpoints, train_log.csv, stores with their tiles and manifests, diagnostics.json). On small data a process
start (Python + torch, ≈ 4 s here) costs more than any of those steps."""
from pathlib import Path

from pntk.scriptutil import setup

log = setup(snakemake)

from pntk.analysis import write_diagnostics
from pntk.kernel_jobs import checkpoint_job
from pntk.runs import epoch_of
from pntk.store.paths import StorePaths
from pntk.train import train_job

sm = snakemake
specs = [tuple(s) for s in sm.params.specs]
checkpoints = train_job(sm)
by_epoch = {epoch_of(p): str(p) for p in checkpoints}
# The diagnostics files: a list, or with --cache or a default storage provider (every file declared) named per epoch.
diagnostics = (list(sm.output.diagnostics) if "diagnostics" in sm.output.keys()
               else [sm.output[k] for k in sm.output.keys() if k.endswith("_diagnostics")])
for out in diagnostics:
    epoch_dir = Path(out).parent
    checkpoint = by_epoch[epoch_of(epoch_dir)]
    manifests = [str(StorePaths.in_epoch(epoch_dir, *s).manifest) for s in specs]
    checkpoint_job(manifests, specs, data_path=sm.input.data, checkpoint=checkpoint, kernels_cfg=sm.params.kernels,
                   data_cfg=sm.params.data)
    named = dict(zip(("entk_dd", "entk_xd", "pntk_dd", "pntk_xd"), manifests))  # the order of DIAGNOSTIC_STORES
    write_diagnostics(out, data_path=sm.input.data, checkpoint=checkpoint, manifests=named, data_cfg=sm.params.data,
                      regression_cfg=sm.params.regression)

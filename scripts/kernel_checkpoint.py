"""kernel_checkpoint: every kernel store of one checkpoint, tile by tile, in one job (kernels.jobs: per_checkpoint)."""
from pntk.scriptutil import setup

log = setup(snakemake)

from pntk.kernel_jobs import checkpoint_job

sm = snakemake
checkpoint_job(list(sm.output.manifests), [tuple(s) for s in sm.params.specs], data_path=sm.input.data,
               checkpoint=sm.input.checkpoint, kernels_cfg=sm.params.kernels, data_cfg=sm.params.data)

"""kernel_checkpoint: every kernel store of one checkpoint, tile by tile, in one job (kernels.jobs: per_checkpoint)."""
from pntk.scriptutil import setup

log = setup(snakemake)  # noqa: F821

from pntk.store.jobs import checkpoint_job  # noqa: E402

sm = snakemake  # noqa: F821
checkpoint_job(list(sm.output.manifests), [tuple(s) for s in sm.params.specs], data_path=sm.input.data,
               checkpoint=sm.input.checkpoint, kernels_cfg=sm.params.kernels, data_cfg=sm.params.data)

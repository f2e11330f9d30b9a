"""kernel_lookup (kernels.jobs: per_tile under --cache): is this store in the store cache? On a hit, link it."""
from pntk.scriptutil import setup

log = setup(snakemake)

from pntk.kernel_jobs import lookup_job

sm = snakemake
p = sm.params
settings = {"kernels": p.kernels, "data": p.data, "run": p.run, "epoch": p.epoch, "code": p.code}
lookup_job(sm.output.record, cache_root=p.cache_root, kind=sm.wildcards.kind, rows=sm.wildcards.rows,
           cols=sm.wildcards.cols, checkpoint=sm.input.checkpoint, data_path=sm.input.data, settings=settings)

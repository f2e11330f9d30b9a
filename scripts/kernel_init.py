"""kernel_init: create the empty Zarr store of one kernel (all NaN) with coordinates and provenance."""
from pntk.scriptutil import setup

log = setup(snakemake)

from pntk.kernel_jobs import init_job

sm = snakemake
init_job(sm.output.sentinel, kind=sm.wildcards.kind, rows=sm.wildcards.rows, cols=sm.wildcards.cols,
         data_path=sm.input.data, checkpoint=sm.input.checkpoint, kernels_cfg=sm.params.kernels,
         data_cfg=sm.params.data)

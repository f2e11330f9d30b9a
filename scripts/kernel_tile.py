"""kernel_tile: compute one tile of a kernel store with the kernel engine, then write its flag."""
from pntk.scriptutil import setup

log = setup(snakemake)

from pntk.kernel_jobs import tile_job

sm = snakemake
wc = sm.wildcards
tile_job(sm.output.flag, kind=wc.kind, rows=wc.rows, cols=wc.cols, i=int(wc.i), j=int(wc.j),
         data_path=sm.input.data, checkpoint=sm.input.checkpoint, kernels_cfg=sm.params.kernels,
         data_cfg=sm.params.data)

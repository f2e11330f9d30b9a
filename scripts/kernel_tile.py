"""kernel_tile: compute one tile of a kernel store with the kernel engine, then write its flag."""
from pathlib import Path

from pntk.scriptutil import setup

log = setup(snakemake)

from pntk.kernel_jobs import tile_job
from pntk.store.remote import as_path

sm = snakemake
wc = sm.wildcards
# Without a shared filesystem (params.flag_url) the chunk and the flag go into the store where it lies in the
# bucket, and the declared flag here is a copy of the one there (Snakemake uploads it to the same object);
# the job reads its rows of the prepared data where it lies too (params.data_url), not the whole data set.
flag = sm.params.get("flag_url") or sm.output.flag
data = sm.params.get("data_url") or sm.input.data
tile_job(flag, kind=wc.kind, rows=wc.rows, cols=wc.cols, i=int(wc.i), j=int(wc.j), data_path=data,
         checkpoint=sm.input.checkpoint, kernels_cfg=sm.params.kernels, data_cfg=sm.params.data)
if flag != sm.output.flag:
    Path(sm.output.flag).write_bytes(as_path(flag).read_bytes())

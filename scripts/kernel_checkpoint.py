"""kernel_checkpoint: every kernel store of one checkpoint, tile by tile, in one job (kernels.jobs: per_checkpoint)."""
from pntk.scriptutil import setup

log = setup(snakemake)

from pntk.kernel_jobs import checkpoint_job
from pntk.store.paths import StorePaths

sm = snakemake
specs = [tuple(s) for s in sm.params.specs]
# The manifests, or with --cache (every file of each store declared, named per store) each store's manifest.
manifests = (list(sm.output.manifests) if "manifests" in sm.output.keys()
             else [sm.output[f"{StorePaths.in_epoch('', *s).output_name}_manifest"] for s in specs])
checkpoint_job(manifests, specs, data_path=sm.input.data,
               checkpoint=sm.input.checkpoint, kernels_cfg=sm.params.kernels, data_cfg=sm.params.data)

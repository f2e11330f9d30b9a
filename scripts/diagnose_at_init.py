"""diagnose_at_init (diagnostics.at_init): one model and width's networks at initialisation only — eNTK and pNTK on D
and their statistics for each seed (pntk.analysis.at_init), for the claims tested at epoch 0."""
from pntk.scriptutil import setup

log = setup(snakemake)

from pntk.analysis import at_init_job
from pntk.runs import Run

sm = snakemake
wc = sm.wildcards
networks = [Run(wc.dataset, wc.arch, int(wc.width), int(s), "init") for s in sm.params.seeds]
at_init_job(sm.output.json, networks, data_path=sm.input.data, data_cfg=sm.params.data, kernels_cfg=sm.params.kernels,
            model_entry=sm.params.model, python_path=sm.params.python_path)

"""diagnostics: eNTK vs pNTK statistics of one run at one checkpoint (paper Figs 2–8)."""
from pntk.scriptutil import setup

log = setup(snakemake)

from pntk.analysis import diagnostics_job

diagnostics_job(snakemake, snakemake.output.json)

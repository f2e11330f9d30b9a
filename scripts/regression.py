"""regression: full-data pNTK kernel regression of one run at one checkpoint (paper Figs 9, 11, 12)."""
from pntk.scriptutil import setup

log = setup(snakemake)

from pntk.regression import regression_job

regression_job(snakemake)

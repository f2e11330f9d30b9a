"""regression: full-data pNTK kernel regression of one run at one checkpoint (paper Figs 9, 11, 12)."""
from pntk.scriptutil import setup

log = setup(snakemake)  # noqa: F821

from pntk.paper.analysis import regression_job  # noqa: E402

regression_job(snakemake)  # noqa: F821

"""diagnostics: eNTK vs pNTK statistics of one run at one checkpoint (paper Figs 2–8)."""
from pntk.scriptutil import setup

log = setup(snakemake)  # noqa: F821

from pntk.paper.analysis import diagnostics_job  # noqa: E402

diagnostics_job(snakemake, snakemake.output.json)  # noqa: F821

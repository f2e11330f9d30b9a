"""diagnostics_regression (regression.jobs: with_diagnostics): rule diagnostics, then rule regression, in
one process — the same outputs and the same two logs, one process start instead of two."""
from pntk.scriptutil import log_to, setup

log = setup(snakemake)  # logs to log.diagnostics, the first

from pntk.analysis import diagnostics_job
from pntk.regression import regression_job

diagnostics_job(snakemake, snakemake.output.diagnostics)
log_to(snakemake.log.regression)
regression_job(snakemake)

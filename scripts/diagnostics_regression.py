"""diagnostics_regression (regression.jobs: with_diagnostics): rule diagnostics, then rule regression, in
one process — the same outputs and the same two logs, one process start instead of two."""
from pntk.scriptutil import log_to, setup

log = setup(snakemake)  # noqa: F821  (logs to log.diagnostics, the first)

from pntk.paper.analysis import diagnostics_job, regression_job  # noqa: E402

diagnostics_job(snakemake, snakemake.output.diagnostics)  # noqa: F821
log_to(snakemake.log.regression)  # noqa: F821
regression_job(snakemake)  # noqa: F821

"""tables: tidy CSVs of every statistic (each row with its run's `learned` verdict), and the width-rate fit."""
from pntk.scriptutil import setup

log = setup(snakemake)  # noqa: F821

from pntk.paper import tables  # noqa: E402
from pntk.paper.verdicts import run_verdicts  # noqa: E402

sm = snakemake  # noqa: F821
verdicts = run_verdicts(list(sm.input.train_logs))
diag = tables.diagnostics_table(list(sm.input.diagnostics), verdicts)
training = tables.training_table(list(sm.input.train_logs), verdicts)
regr = tables.regression_table(list(sm.input.regression), training, verdicts)
rate = tables.rate_table(diag, n_boot=sm.params.bootstrap)
for df, path in ((diag, sm.output.diagnostics), (regr, sm.output.regression), (training, sm.output.training),
                 (rate, sm.output.rate)):
    df.to_csv(path, index=False)
    log.info("wrote %s (%d rows)", path, len(df))
if (~verdicts.learned).any():
    log.warning("runs that did not learn (learned = False in every table): %s", list(verdicts.run[~verdicts.learned]))
if len(rate):
    log.info("width-rate fit:\n%s", rate.to_string())

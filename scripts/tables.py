"""tables: tidy CSVs of every statistic (each row with its run's `learned` verdict), and the width-rate fit."""
from pntk.scriptutil import setup

log = setup(snakemake)

from pntk import config as pcfg
from pntk.report import tables
from pntk.report.verdicts import run_verdicts

sm = snakemake
rw = pcfg.readout_widths(sm.config)  # read from the models (import-path ones too), not from their names
verdicts = run_verdicts(list(sm.input.train_logs))
diag = tables.diagnostics_table(list(sm.input.diagnostics), verdicts, rw)
training = tables.training_table(list(sm.input.train_logs), verdicts, rw)
regr = tables.regression_table(list(sm.input.regression), training, verdicts, rw)
rate = tables.rate_table(diag)
for df, path in ((diag, sm.output.diagnostics), (regr, sm.output.regression), (training, sm.output.training),
                 (rate, sm.output.rate)):
    df.to_csv(path, index=False)
    log.info("wrote %s (%d rows)", path, len(df))
if (~verdicts.learned).any():
    log.warning("runs that did not learn (learned = False in every table): %s", list(verdicts.run[~verdicts.learned]))
if len(rate):
    log.info("width-rate fit:\n%s", rate.to_string())

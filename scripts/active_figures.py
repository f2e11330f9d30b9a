"""active_figures: accuracy vs labels and acquisition time per cycle from the per-run CSVs."""
from pntk.scriptutil import setup

log = setup(snakemake)

from pntk.report.figures_active import render_all

sm = snakemake
paths = render_all(sm.input.csvs, sm.params.out_dir, formats=sm.params.formats, dpi=sm.params.dpi,
                   table=sm.output.table)
log.info("active figures: %s", [str(p) for p in paths])

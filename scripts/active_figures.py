"""active_figures: accuracy vs labels and acquisition time per cycle from the per-run CSVs."""
from pntk.scriptutil import setup

log = setup(snakemake)  # noqa: F821

from pntk.active.figures import render_all  # noqa: E402

sm = snakemake  # noqa: F821
paths = render_all(sm.input.csvs, sm.params.out_dir, formats=sm.params.formats, dpi=sm.params.dpi,
                   table=sm.output.table)
log.info("active figures: %s", [str(p) for p in paths])

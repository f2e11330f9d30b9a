"""figures: every figure of the report from the tidy tables (PNG + PDF), with captions from what it drew.

With threads > 1 the figures are drawn by that many forked workers (each ≈ 2 s; the job is the last
stage of a run, so nothing else would use the cores)."""
from pntk.scriptutil import setup

log = setup(snakemake)

from pntk.report.figure_set import render_many, write_captions

sm = snakemake
records = render_many(sm.params.labels, sm.params.out_dir, dict(sm.input.items()), subsets=sm.params.subsets,
                      formats=sm.params.formats, dpi=sm.params.dpi, workers=sm.threads)
for rec in records:
    log.info("%s: %s", rec["title"], rec["files"])
    for message in rec["warnings"]:
        log.warning("%s: %s", rec["title"], message)
log.info("captions and index: %s", write_captions(records, sm.params.out_dir))

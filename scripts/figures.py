"""figures: every figure of the report from the tidy tables (PNG + PDF), with captions from what it drew."""
from pntk.scriptutil import setup

log = setup(snakemake)

from pntk.paper.figure_set import render, write_captions
from pntk.paper.figure_table import INPUTS

sm = snakemake
inputs = {k: v for k, v in sm.input.items() if k in INPUTS}
records = []
for n in sm.params.numbers:
    records.append(render(n, sm.params.out_dir, inputs, subsets=sm.params.subsets, formats=sm.params.formats,
                          dpi=sm.params.dpi))
    log.info("figure %d: %s", n, records[-1]["files"])
    for message in records[-1]["warnings"]:
        log.warning("figure %d: %s", n, message)
log.info("captions and index: %s", write_captions(records, sm.params.out_dir))

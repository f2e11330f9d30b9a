"""figures: every figure of the report from the tidy tables (PNG + PDF)."""
from pntk.scriptutil import setup

log = setup(snakemake)  # noqa: F821

from pntk.paper.figure_set import render  # noqa: E402

sm = snakemake  # noqa: F821
tables = {k: v for k, v in sm.input.items() if k in ("diagnostics", "regression", "training", "rate", "timing",
                                                      "infinite")}
for n in sm.params.numbers:
    paths = render(n, sm.params.out_dir, tables, data_path=sm.input.data,
                   kernel_manifest=sm.input.get("kernel_manifest"))
    log.info("figure %d: %s", n, [str(p) for p in paths])

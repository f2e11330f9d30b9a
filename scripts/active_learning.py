"""active_learning: one strategy × seed of pool-based active learning (thesis Algorithm 1) → tidy CSV."""
from pntk.scriptutil import setup

log = setup(snakemake)  # noqa: F821

from pntk.active.loop import ALConfig, run_from_store, write_results  # noqa: E402

sm = snakemake  # noqa: F821
cfg = ALConfig.from_dict(sm.params.active)
rows, meta = run_from_store(sm.input.data, sm.wildcards.strategy, int(sm.wildcards.seed), cfg)
write_results(rows, meta, sm.output.csv, sm.output.meta)
log.info("active_learning %s seed %s: test acc %s", sm.wildcards.strategy, sm.wildcards.seed,
         [round(r["test_acc"], 4) for r in rows])

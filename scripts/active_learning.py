"""active_learning: pool-based active learning (thesis Algorithm 1) → tidy CSV + JSON per strategy × seed.

Rule active_learning runs one strategy (its wildcard); active_learning_seed (active.jobs: per_seed) runs
every strategy of its seed in this one process, each exactly as its own job would (each run seeds itself).
"""
from pntk.scriptutil import setup

log = setup(snakemake)

from pntk.active.loop import ALConfig, run_from_store, write_results

sm = snakemake
cfg = ALConfig.from_dict(sm.params.active)
seed = int(sm.wildcards.seed)
strategies = list(sm.params.strategies) if "strategies" in sm.params.keys() else [sm.wildcards.strategy]
csvs = sm.output.csv if isinstance(sm.output.csv, list) else [sm.output.csv]
metas = sm.output.meta if isinstance(sm.output.meta, list) else [sm.output.meta]
for strategy, csv_path, meta_path in zip(strategies, csvs, metas, strict=True):
    rows, meta = run_from_store(sm.input.data, strategy, seed, cfg)
    write_results(rows, meta, csv_path, meta_path)
    log.info("active_learning %s seed %s: test acc %s", strategy, seed, [round(r["test_acc"], 4) for r in rows])

# Tidy tables every figure reads (one row per run × epoch × statistic, with each run's `learned` verdict), the
# width-rate fit, and the verdicts: claims.csv (a verdict per claim of the paper and thesis) and warnings.csv.


rule tables:
    """Tidy tables (one row per run × epoch × statistic, `learned` per run) and the width-rate fit."""
    input:
        diagnostics=[f"{d}/diagnostics.json" for d in epoch_dirs(pcfg.diagnostic_runs(config))],
        regression=[f"{d}/regression.json" for d in epoch_dirs(pcfg.runs(config))] if has_full_pntk() else [],
        train_logs=[f"{d}/train_log.csv" for d in run_dirs()],
    output:
        diagnostics=f"{R}/tables/diagnostics.csv",
        regression=f"{R}/tables/regression.csv",
        training=f"{R}/tables/training.csv",
        rate=f"{R}/tables/rate.csv",
    log:
        f"{R}/logs/tables.log",
    priority: PRIORITY["tables"]
    conda:
        CONDA_ENV
    resources:
        **device_resources(),
    script:
        "../../scripts/tables.py"


rule claims:
    """A verdict per claim of the paper and thesis (claims.csv) and every problem the runs found (warnings.csv)."""
    input:
        diagnostics=f"{R}/tables/diagnostics.csv",
        regression=f"{R}/tables/regression.csv",
        training=f"{R}/tables/training.csv",
        infinite=f"{R}/tables/infinite.csv" if config["infinite"]["enabled"] else [],
        infinite_regression=f"{R}/tables/infinite_regression.json" if config["infinite"]["enabled"] else [],
        timing=timing_paths(R, DATASET)["csv"] if config["timing"]["enabled"] else [],
        active=f"{R}/tables/active.csv" if config["active"]["enabled"] else [],
        active_json=[f"{R}/active/{DATASET}/{s}-s{seed}.json" for s, seed in pcfg.active_runs(config)],
        regression_json=[f"{d}/regression.json" for d in epoch_dirs(pcfg.runs(config))] if has_full_pntk() else [],
        train_logs=[f"{d}/train_log.csv" for d in run_dirs()],
        data=data_store,
    output:
        claims=f"{R}/tables/claims.csv",
        warnings=f"{R}/tables/warnings.csv",
    log:
        f"{R}/logs/claims.log",
    priority: PRIORITY["tables"]
    conda:
        CONDA_ENV
    resources:
        **device_resources(),
    script:
        "../../scripts/claims.py"

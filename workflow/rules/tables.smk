# Tidy tables every figure reads: one row per run × epoch × statistic, and the width-rate fit.


rule tables:
    """Tidy tables (one row per run × epoch × statistic) and the width-rate fit."""
    input:
        diagnostics=[f"{d}/diagnostics.json" for d in epoch_dirs()] if config["diagnostics"]["enabled"] else [],
        regression=[f"{d}/regression.json" for d in epoch_dirs()] if has_full_pntk() else [],
        train_logs=[f"{d}/train_log.csv" for d in run_dirs()],
    output:
        diagnostics=f"{R}/tables/diagnostics.csv",
        regression=f"{R}/tables/regression.csv",
        training=f"{R}/tables/training.csv",
        rate=f"{R}/tables/rate.csv",
    params:
        bootstrap=config["diagnostics"]["rate_bootstrap"],
    conda:
        CONDA_ENV
    resources:
        **device_resources(),
    log:
        f"{R}/logs/tables.log",
    script:
        "../../scripts/tables.py"

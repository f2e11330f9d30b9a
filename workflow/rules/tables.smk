# Tidy tables every figure reads (one row per run × epoch × statistic, with each run's `learned` verdict), the
# width-rate fit, and the verdicts: claims.csv (a verdict per claim of the paper and thesis) and warnings.csv.


rule tables:
    """Tidy tables (one row per run × epoch × statistic, `learned` per run) and the width-rate fit."""
    input:
        diagnostics=epoch_files("diagnostics", pcfg.diagnostic_runs(config)) + at_init_files(),
        regression=epoch_files("regression", pcfg.runs(config)) if has_full_pntk() else [],
        train_logs=train_logs(),
    output:
        **{name: L.table(name) for name in lay.TIDY_TABLES},  # diagnostics, regression, training, rate
    log:
        L.log("tables"),
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
        **{name: L.table(name) for name in (lay.DIAGNOSTICS, lay.REGRESSION, lay.TRAINING)},
        infinite=L.table(lay.INFINITE) if config["infinite"]["enabled"] else [],
        infinite_regression=L.table(lay.INFINITE_REGRESSION, "json") if config["infinite"]["enabled"] else [],
        timing=L.timing(DATASET)["csv"] if config["timing"]["enabled"] else [],
        active=L.table(lay.ACTIVE) if config["active"]["enabled"] else [],
        active_json=active_files("json"),
        regression_json=epoch_files("regression", pcfg.runs(config)) if has_full_pntk() else [],
        train_logs=train_logs(),
        data=data_store,
    output:
        claims=L.table(lay.CLAIMS),
        warnings=L.table(lay.WARNINGS),
    log:
        L.log("claims"),
    priority: PRIORITY["tables"]
    conda:
        CONDA_ENV
    resources:
        **device_resources(),
    script:
        "../../scripts/claims.py"

# Figs 9, 11, 12: kernel regression with the full-data pNTK, one job per run and checkpoint — or, with
# regression.jobs: with_diagnostics, one job per checkpoint for diagnostics and regression together.

REGRESSION_RESOURCES = device_resources(
    config["regression"]["device"],
    mem_mb=kernel_mem_mb("pntk", "train", "train") + kernel_mem_mb("pntk", "test", "train", floor=0),
)

if analysis_in_one_job():

    rule diagnostics_regression:
        """Rule diagnostics, then rule regression, in one process: the same files, one start."""
        input:
            unpack(diag_manifests),
            unpack(regression_stores),
            data=data_store,
            checkpoint=checkpoint_of,
        output:
            diagnostics=L.epoch_file(EPOCH_DIR, "diagnostics"),
            json=L.epoch_file(EPOCH_DIR, "regression"),
            predictions=L.epoch_file(EPOCH_DIR, "predictions"),
        log:
            diagnostics=L.epoch_log(EPOCH_DIR, "diagnostics"),
            regression=L.epoch_log(EPOCH_DIR, "regression"),
        benchmark:
            L.benchmark("diagnostics_regression", f"{RUN_PATTERN}/epoch{{epoch}}")
        priority: PRIORITY["per_checkpoint"]
        conda:
            CONDA_ENV
        threads: regression_threads()
        resources:
            **REGRESSION_RESOURCES,
        params:
            data=config["data"],
            regression=config["regression"],
        script:
            "../../scripts/diagnostics_regression.py"

else:

    rule regression:
        """Figs 9, 11, 12: kernel regression with the full-data pNTK (one-vs-rest, prior mean f0)."""
        input:
            unpack(regression_stores),
            data=data_store,
            checkpoint=checkpoint_of,
        output:
            json=L.epoch_file(EPOCH_DIR, "regression"),
            predictions=L.epoch_file(EPOCH_DIR, "predictions"),
        log:
            L.epoch_log(EPOCH_DIR, "regression"),
        benchmark:
            L.benchmark("regression", f"{RUN_PATTERN}/epoch{{epoch}}")
        priority: PRIORITY["per_checkpoint"]
        conda:
            CONDA_ENV
        threads: regression_threads()
        resources:
            **REGRESSION_RESOURCES,
        params:
            regression=config["regression"],
        script:
            "../../scripts/regression.py"

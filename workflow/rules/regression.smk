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
            dd=lambda wc: store_manifest(wc, "pntk", "train", "train"),
            xd=lambda wc: store_manifest(wc, "pntk", "test", "train"),
            data=data_store,
            checkpoint=checkpoint_of,
        output:
            diagnostics=f"{EPOCH_DIR}/diagnostics.json",
            json=f"{EPOCH_DIR}/regression.json",
            predictions=f"{EPOCH_DIR}/predictions.nc",
        log:
            diagnostics=f"{EPOCH_DIR}/diagnostics.log",
            regression=f"{EPOCH_DIR}/regression.log",
        benchmark:
            f"{R}/benchmarks/diagnostics_regression/{RUN_PATTERN}/epoch{{epoch}}.tsv"
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
            dd=lambda wc: store_manifest(wc, "pntk", "train", "train"),
            xd=lambda wc: store_manifest(wc, "pntk", "test", "train"),
            data=data_store,
            checkpoint=checkpoint_of,
        output:
            json=f"{EPOCH_DIR}/regression.json",
            predictions=f"{EPOCH_DIR}/predictions.nc",
        log:
            f"{EPOCH_DIR}/regression.log",
        benchmark:
            f"{R}/benchmarks/regression/{RUN_PATTERN}/epoch{{epoch}}.tsv"
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

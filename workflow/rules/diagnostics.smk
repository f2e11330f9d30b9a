# Paper diagnostics per run and checkpoint (Figs 2–8): eNTK vs pNTK on the subsets D and X.
# With regression.jobs: with_diagnostics, rule diagnostics_regression (regression.smk) writes these files.

if not analysis_in_one_job():

    rule diagnostics:
        """eNTK vs pNTK on D (sub-train) and X (sub-test): block structure, distance, spectra, predictions."""
        input:
            unpack(diag_manifests),
            data=data_store,
            checkpoint=checkpoint_of,
        output:
            json=f"{EPOCH_DIR}/diagnostics.json",
        log:
            f"{EPOCH_DIR}/diagnostics.log",
        benchmark:
            f"{R}/benchmarks/diagnostics/{RUN_PATTERN}/epoch{{epoch}}.tsv"
        priority: PRIORITY["per_checkpoint"]
        conda:
            CONDA_ENV
        resources:
            **device_resources(),
        params:
            data=config["data"],
            regression=config["regression"],
        script:
            "../../scripts/diagnostics.py"

# Paper diagnostics per run and checkpoint (Figs 2–8): eNTK vs pNTK on the subsets D and X.
# With regression.jobs: with_diagnostics, rule diagnostics_regression (regression.smk) writes these files; with
# diagnostics.jobs: per_run, rule diagnose_on_D writes them for the networks trained on D, start to end.

if pcfg.d_runs_in_one_job(config):

    rule diagnose_on_D:
        """One network trained on D: train, then each checkpoint's four stores and its diagnostics, one process."""
        input:
            data=data_store,
        output:
            **checkpoint_outputs("D"),
            **on_d_outputs(),
            log_csv=L.train_log_in(RUN_DIR),
        log:
            L.log("diagnose_on_D", RUN_PATTERN),
        wildcard_constraints:
            on=re.escape(TRAINED_ON["D"]),
        cache: "omit-software" if CACHE_KERNELS else False
        priority: PRIORITY["train"]
        conda:
            CONDA_ENV
        threads: 1
        resources:
            **device_resources(config["train"]["device"], runtime=CLUSTER["train_runtime_min"]),
        params:
            **run_cache_params("scripts/diagnose_on_D.py"),
            train={
                **config["train"],
                "epochs": pcfg.epochs_of(config, "D"),
                "checkpoint_epochs": pcfg.checkpoint_epochs(config, "D"),
            },
            trained_on="D",
            subsets={k: config["data"][k] for k in ("subset_train", "subset_test", "seed")},
            model=lambda wc: {k: v for k, v in pcfg.model_entry(config, wc.arch).items() if k != "widths"},
            python_path=config["python_path"],
            model_source=lambda wc: pcfg.model_source(config, wc.arch),
            specs=pcfg.store_specs(config, "D"),
            kernels=config["kernels"],
            data=config["data"],
            regression=config["regression"],
        script:
            "../../scripts/diagnose_on_D.py"


if not analysis_in_one_job():

    rule diagnostics:
        """eNTK vs pNTK on D (sub-train) and X (sub-test): block structure, distance, spectra, predictions."""
        input:
            unpack(diag_manifests),
            data=data_store,
            checkpoint=checkpoint_of,
        output:
            json=L.epoch_file(EPOCH_DIR, "diagnostics"),
        log:
            L.epoch_log(EPOCH_DIR, "diagnostics"),
        benchmark:
            L.benchmark("diagnostics", f"{RUN_PATTERN}/epoch{{epoch}}")
        wildcard_constraints:
            on=SEPARATE_ON,
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


if AT_INIT:

    rule diagnose_at_init:
        """Networks at initialisation only (diagnostics.at_init), one model and width: eNTK and pNTK on D and
        their statistics for each seed, the same as epoch 0 of a network trained on D (for the width claims)."""
        input:
            data=data_store,
        output:
            json=L.at_init("{dataset}", "{arch}", "{width}"),
        log:
            L.log("diagnose_at_init", "{dataset}/{arch}-w{width}"),
        wildcard_constraints:
            width=r"\d+",
        priority: PRIORITY["train"]
        conda:
            CONDA_ENV
        threads: 1
        resources:
            **device_resources(config["kernels"]["device"]),
        params:
            seeds=lambda wc: [r.seed for r in AT_INIT[(wc.arch, int(wc.width))]],
            model=lambda wc: {k: v for k, v in pcfg.model_entry(config, wc.arch).items() if k != "widths"},
            python_path=config["python_path"],
            kernels=config["kernels"],
            data=config["data"],
        script:
            "../../scripts/diagnose_at_init.py"

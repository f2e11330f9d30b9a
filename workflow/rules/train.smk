# SGD training: one rule per kind of run (REGIMES, common.smk), since each kind declares its own checkpoints:
# `train` for the runs on the train split, `train_on_D` for the networks of Figs 2–8 trained on D itself.

for ON, SUFFIX in SEPARATE.items():

    rule:
        """SGD training of one run; checkpoints at its checkpoint epochs (resumable, NaN fallback)."""
        name:
            "train" if ON == "train" else "train_on_D"
        input:
            data=data_store,
        output:
            **checkpoint_outputs(ON),
            log_csv=L.train_log_in(RUN_DIR),
        log:
            L.log("train", RUN_PATTERN),
        wildcard_constraints:
            on=re.escape(SUFFIX) or "(?:)",  # this kind of run only ("(?:)": the empty name)
        cache: "omit-software"
        priority: PRIORITY["train"]
        conda:
            CONDA_ENV
        threads: HEAVY_CPU
        resources:
            **device_resources(config["train"]["device"], runtime=CLUSTER["train_runtime_min"]),
        params:
            train={
                **config["train"],
                "epochs": pcfg.epochs_of(config, ON),
                "checkpoint_epochs": pcfg.checkpoint_epochs(config, ON),
            },
            trained_on=ON,
            subsets={k: config["data"][k] for k in ("subset_train", "subset_test", "seed")},
            # The run's own model settings: the list of other widths must not make this run look changed.
            model=lambda wc: {k: v for k, v in pcfg.model_entry(config, wc.arch).items() if k != "widths"},
            python_path=config["python_path"],
            # An import-path model's module file (torchvision: its version): editing it re-runs training.
            model_source=lambda wc: pcfg.model_source(config, wc.arch),
            # The output cache keys on params, not wildcards or library code: name both.
            run=lambda wc: run_of(wc).meta(),
            code=closure_digest("scripts/train.py"),
        script:
            "../../scripts/train.py"

rule train:
    """SGD training of one run; checkpoints at train.checkpoint_epochs (resumable, NaN fallback)."""
    input:
        data=data_store,
    output:
        **{f"epoch{e:03d}": f"{RUN_DIR}/checkpoints/epoch{e:03d}.pt" for e in EPOCHS},
        log_csv=f"{RUN_DIR}/train_log.csv",
    log:
        f"{R}/logs/train/{RUN_PATTERN}.log",
    cache: "omit-software"
    priority: PRIORITY["train"]
    conda:
        CONDA_ENV
    threads: HEAVY_CPU
    resources:
        **device_resources(config["train"]["device"], runtime=CLUSTER["train_runtime_min"]),
    params:
        train=config["train"],
        # The run's own model settings: the list of other widths must not make this run look changed.
        model=lambda wc: {k: v for k, v in pcfg.model_entry(config, wc.arch).items() if k != "widths"},
        python_path=config["python_path"],
        # An import-path model's module file (torchvision: its version): editing it re-runs training.
        model_source=lambda wc: pcfg.model_source(config, wc.arch),
        # The output cache keys on params, not wildcards or library code: name both.
        run=lambda wc: {"dataset": wc.dataset, "arch": wc.arch, "width": int(wc.width), "seed": int(wc.seed)},
        code=code_digest("train", "models", "data/prepared", "data/datasets"),
    script:
        "../../scripts/train.py"

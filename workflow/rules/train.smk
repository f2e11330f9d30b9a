rule train:
    """SGD training of one run; checkpoints at train.checkpoint_epochs (resumable, NaN fallback)."""
    input:
        data=data_store,
    output:
        checkpoints=[RUN_DIR + f"/checkpoints/epoch{e:03d}.pt" for e in EPOCHS],
        log_csv=RUN_DIR + "/train_log.csv",
    params:
        train=config["train"],
        model=lambda wc: pcfg.model_entry(config, wc.arch),
    resources:
        gpu=lambda wc: 1 if config["train"]["device"].startswith("cuda") else 0,
        runtime=config["resources"]["train_runtime_min"],
    threads: HEAVY_CPU
    log:
        R + "/logs/train/{dataset}/{arch}-w{width}-s{seed}.log",
    cache: "omit-software"
    script:
        "../../scripts/train.py"

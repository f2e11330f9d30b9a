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
        **device_resources(
            config["regression"]["device"],
            mem_mb=kernel_mem_mb("pntk", "train", "train") + kernel_mem_mb("pntk", "test", "train", floor=0),
        ),
    params:
        regression=config["regression"],
    script:
        "../../scripts/regression.py"

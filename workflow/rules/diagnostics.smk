# Paper diagnostics per run and checkpoint (Figs 2–8), the timing rule (Fig 1), the infinite-width
# reference, and the tidy tables every figure reads.


rule diagnostics:
    """eNTK vs pNTK on D (sub-train) and X (sub-test): block structure, distance, spectra, predictions."""
    input:
        unpack(diag_manifests),
        data=data_store,
        checkpoint=checkpoint_of,
    output:
        json=f"{EPOCH_DIR}/diagnostics.json",
    params:
        data=config["data"],
        regression=config["regression"],
    conda:
        CONDA_ENV
    resources:
        **device_resources(),
    log:
        f"{EPOCH_DIR}/diagnostics.log",
    script:
        "../../scripts/diagnostics.py"


rule timing:
    """Fig 1: seconds per input pair of eNTK and pNTK for torchvision ResNets, on the kernel node type."""
    input:
        data=data_store,
    output:
        csv=f"{R}/timing/{{dataset}}.csv",
    params:
        timing=config["timing"],
        method=config["kernels"]["method"],
    resources:
        **device_resources(config["timing"]["device"]),
    threads: HEAVY_CPU
    conda:
        CONDA_ENV
    log:
        f"{R}/logs/timing/{{dataset}}.log",
    script:
        "../../scripts/timing.py"


rule infinite_width:
    """Analytic NTK of a ReLU FCN (NTK parameterization) vs finite-width eNTK and pNTK at init."""
    input:
        data=data_store,
    output:
        csv=f"{R}/tables/infinite.csv",
    params:
        infinite=config["infinite"],
        data=config["data"],
    conda:
        CONDA_ENV
    resources:
        **device_resources(),
    log:
        f"{R}/logs/infinite_width.log",
    script:
        "../../scripts/infinite_width.py"


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

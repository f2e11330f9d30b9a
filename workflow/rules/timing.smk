# Fig 1: seconds per input pair of eNTK and pNTK of torchvision ResNets.


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

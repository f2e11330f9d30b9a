# Fig 1: seconds per input pair of eNTK and pNTK of torchvision ResNets.


rule timing:
    """Fig 1: seconds per input pair of eNTK and pNTK for torchvision ResNets, every repeat kept, on the
    kernel node type; torch runs timing.threads threads (recorded), and the job holds that many cores.
    """
    input:
        data=data_store,
    output:
        **timing_paths(R, "{dataset}"),
    log:
        f"{R}/logs/timing/{{dataset}}.log",
    priority: PRIORITY["fillers"]
    conda:
        CONDA_ENV
    threads: config["timing"]["threads"]
    resources:
        **device_resources(config["timing"]["device"]),
    params:
        timing=config["timing"],
        method=config["kernels"]["method"],
    script:
        "../../scripts/timing.py"

# Fig 1: seconds per input pair of eNTK and pNTK of torchvision ResNets.


rule timing:
    """Fig 1: seconds per input pair of eNTK and pNTK for torchvision ResNets, every repeat kept, on the
    kernel node type; torch runs timing.threads threads (recorded). On a CPU the job holds every core, so
    that no other job runs beside the measurement (beside an active-learning job, ResNet-50's pNTK once
    measured 1 % faster than ResNet-34's); it runs first, right after the data.
    """
    input:
        data=data_store,
    output:
        **L.timing("{dataset}"),
    log:
        L.log("timing", "{dataset}"),
    priority: PRIORITY["timing"]
    conda:
        CONDA_ENV
    threads: HEAVY_CPU if config["timing"]["device"] == "cpu" else config["timing"]["threads"]
    resources:
        **device_resources(config["timing"]["device"]),
    params:
        timing=config["timing"],
        torch_threads=config["timing"]["threads"],
        method=config["kernels"]["method"],
    script:
        "../../scripts/timing.py"

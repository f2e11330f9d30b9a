# Fig 14: finite-width eNTK/pNTK of NTK-parameterised FCNs against the analytic NTK.


rule infinite_width:
    """Analytic NTK of a ReLU FCN (NTK parameterization) vs finite-width eNTK and pNTK at init."""
    input:
        data=data_store,
    output:
        csv=f"{R}/tables/infinite.csv",
    log:
        f"{R}/logs/infinite_width.log",
    priority: PRIORITY["fillers"]
    conda:
        CONDA_ENV
    resources:
        **device_resources(),
    params:
        infinite=config["infinite"],
        data=config["data"],
    script:
        "../../scripts/infinite_width.py"

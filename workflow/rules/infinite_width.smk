# The project's Figs P1–P2: finite-width eNTK/pNTK of NTK-parameterised FCNs against the analytic NTK; and the
# paper's §5 comparison: full-data regression with the analytic NTK of each configured FCN and ConvNet.


rule infinite_width:
    """Analytic NTK of a ReLU FCN (NTK parameterization) vs finite-width eNTK and pNTK at init; §5 regressions."""
    input:
        data=data_store,
    output:
        csv=L.table(lay.INFINITE),
        regression=L.table(lay.INFINITE_REGRESSION, "json"),
    log:
        L.log("infinite_width"),
    priority: PRIORITY["fillers"]
    conda:
        CONDA_ENV
    threads: HEAVY_CPU if any(m["arch"] == "convnet" for m in config["models"]) else 1  # the CNTK's blocks
    resources:
        **device_resources(),
    params:
        infinite=config["infinite"],
        data=config["data"],
        analytic={
            m["name"]: (m["arch"], m["depth"] or DEFAULT_DEPTH[m["arch"]])
            for m in config["models"]
            if m["arch"] in ANALYTIC_ARCHS
        },
        memory_cap_bytes=int(pcfg.memory_cap_bytes(config["regression"])),
    script:
        "../../scripts/infinite_width.py"

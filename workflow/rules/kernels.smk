# Tile protocol (src/pntk/tiles.py): init → one job per tile → finalize (manifest).


rule kernel_init:
    """Create the empty Zarr store (NaN everywhere) with coordinates and provenance."""
    input:
        data=data_store,
        checkpoint=checkpoint_of,
    output:
        sentinel=f"{KERNEL_STEM}.init.json",
    params:
        kernels=config["kernels"],
        data=config["data"],
    conda:
        CONDA_ENV
    resources:
        **device_resources(),
    log:
        f"{KERNEL_STEM}.init.log",
    script:
        "../../scripts/kernel_init.py"


rule kernel_tile:
    """Compute tile (i, j) with the kernel engine; write its chunk(s), then its flag."""
    input:
        sentinel=f"{KERNEL_STEM}.init.json",
        data=data_store,
        checkpoint=checkpoint_of,
    output:
        flag=f"{KERNEL_STEM}.tiles/{{i}}_{{j}}.json",
    params:
        kernels=config["kernels"],
        data=config["data"],
    resources:
        **device_resources(
            config["kernels"]["device"],
            runtime=CLUSTER["tile_runtime_min"],
            mem_mb=lambda wc: kernel_mem_mb(wc.kind, wc.rows, wc.cols, tile=True),
        ),
    threads: GPU_JOB_THREADS if config["kernels"]["device"].startswith("cuda") else 1
    group:
        "tiles"
    conda:
        CONDA_ENV
    log:
        f"{KERNEL_STEM}.tiles/{{i}}_{{j}}.log",
    script:
        "../../scripts/kernel_tile.py"


rule kernel_finalize:
    """Check every flag against its chunk, consolidate metadata, write the manifest."""
    input:
        sentinel=f"{KERNEL_STEM}.init.json",
        flags=tile_flags,
        checkpoint=checkpoint_of,
        data=data_store,
    output:
        manifest=f"{KERNEL_STEM}.manifest.json",
    conda:
        CONDA_ENV
    resources:
        **device_resources(),
    log:
        f"{KERNEL_STEM}.finalize.log",
    script:
        "../../scripts/kernel_finalize.py"

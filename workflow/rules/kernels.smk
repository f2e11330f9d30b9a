# Tile protocol (src/pntk/store/tiles.py): init → one job per tile → finalize (manifest).
# kernels.jobs: per_checkpoint runs that protocol for every store of a checkpoint inside one job, which
# Snakemake's output cache (--cache) can hold: then it declares every file of its stores (CACHE_KERNELS).
# The per-tile rules are not in Snakemake's cache: it asks its cache only when a cached job is about to run,
# after every job upstream of it (here the tiles) has run. Under --cache they use pntk's store cache beside it
# instead (pntk.store.shared_cache): kernel_lookup, a Snakemake checkpoint, runs before init and the tiles,
# and on a hit finalize's inputs (finalize_inputs) name no tile, so none is scheduled.
# Without a shared filesystem (REMOTE_TILES, declared.smk) kernel_init declares the store folder, and the tile
# and finalize jobs work on the store where it lies in the bucket (params flag_url, manifest_url).
PER_TILE_SCRIPTS = ("scripts/kernel_init.py", "scripts/kernel_tile.py", "scripts/kernel_finalize.py")

if config["kernels"]["jobs"] == "per_checkpoint":

    for ON, SUFFIX in SEPARATE.items():

        rule:
            """Every kernel store of one checkpoint in one job: init → tiles → manifest each, resumable (not with --cache)."""
            name:
                "kernel_checkpoint" if ON == "train" else "kernel_checkpoint_on_D"
            input:
                data=data_store,
                checkpoint=checkpoint_of,
            output:
                **kernel_checkpoint_outputs(EPOCH_DIR, ON),
            log:
                L.kernels_log(EPOCH_DIR, "kernel_checkpoint"),
            # No benchmark: a cached rule may not have one (the log's last line, "job usage", has its cost).
            wildcard_constraints:
                on=re.escape(SUFFIX) or "(?:)",  # this kind of run only ("(?:)": the empty name)
            cache: "omit-software" if CACHE_KERNELS else False
            priority: PRIORITY["kernels"]
            conda:
                CONDA_ENV
            threads: device_threads(config["kernels"]["device"])
            resources:
                **device_resources(
                    config["kernels"]["device"],
                    runtime=CLUSTER["tile_runtime_min"],
                    mem_mb=max(kernel_mem_mb(k, r, c, tile=True) for k, r, c in pcfg.store_specs(config, ON)),
                ),
            params:
                **kernel_cache_params("scripts/kernel_checkpoint.py"),
                specs=pcfg.store_specs(config, ON),
                kernels=config["kernels"],
                data=config["data"],
            script:
                "../../scripts/kernel_checkpoint.py"

else:

    rule kernel_init:
        """Create the empty Zarr store (NaN everywhere) with coordinates and provenance."""
        input:
            data=data_store,
            checkpoint=checkpoint_of,
        output:
            **({"store": directory(str(KERNEL.store))} if REMOTE_TILES else {}),
            sentinel=str(KERNEL.sentinel),
        log:
            str(KERNEL.log("init")),
        priority: PRIORITY["kernels"]
        conda:
            CONDA_ENV
        resources:
            **device_resources(),
        params:
            kernels=config["kernels"],
            data=config["data"],
        script:
            "../../scripts/kernel_init.py"

    rule kernel_tile:
        """Compute tile (i, j) with the kernel engine; write its chunk(s), then its flag."""
        input:
            **({} if REMOTE_TILES else {"data": data_store}),
            sentinel=str(KERNEL.sentinel),
            checkpoint=checkpoint_of,
        output:
            flag=str(KERNEL.flag("{i}", "{j}")),
        log:
            str(KERNEL.flag("{i}", "{j}").with_suffix(".log")),
        benchmark:
            L.benchmark("kernel_tile", f"{RUN_PATTERN}/epoch{{epoch}}/{{kind}}-{{rows}}-{{cols}}/{{i}}_{{j}}")
        priority: PRIORITY["kernels"]
        group:
            "tiles"
        conda:
            CONDA_ENV
        threads: device_threads(config["kernels"]["device"])
        resources:
            **device_resources(
                config["kernels"]["device"],
                runtime=CLUSTER["tile_runtime_min"],
                mem_mb=lambda wc: kernel_mem_mb(wc.kind, wc.rows, wc.cols, tile=True),
            ),
        params:
            **(
                {"flag_url": store_url(KERNEL.flag("{i}", "{j}")), "data_url": store_url(prepared_store_of())}
                if REMOTE_TILES
                else {}
            ),
            kernels=config["kernels"],
            data=config["data"],
        script:
            "../../scripts/kernel_tile.py"

    if CACHE_KERNELS:

        checkpoint kernel_lookup:
            """--cache: look the store up in the store cache before any of its tiles is scheduled; on a hit link
            its store, flags and sentinel into place (the key: pntk.kernel_jobs.store_cache_key)."""
            input:
                data=data_store,
                checkpoint=checkpoint_of,
            output:
                record=str(KERNEL.cache_record),
            log:
                str(KERNEL.log("lookup")),
            priority: PRIORITY["kernels"]
            conda:
                CONDA_ENV
            resources:
                **device_resources(),
            params:
                **kernel_cache_params(*PER_TILE_SCRIPTS),
                kernels=config["kernels"],
                data=config["data"],
                cache_root=STORE_CACHE_ROOT,
            script:
                "../../scripts/kernel_lookup.py"

    rule kernel_finalize:
        """Check every flag against its chunk, consolidate metadata, write the manifest (under --cache: then
        deposit the store in the store cache, or on a hit link the cached manifest)."""
        input:
            unpack(finalize_inputs),
        output:
            manifest=str(KERNEL.manifest),
        log:
            str(KERNEL.log("finalize")),
        priority: PRIORITY["kernels"]
        conda:
            CONDA_ENV
        resources:
            **device_resources(),
        params:
            **({"cache_root": STORE_CACHE_ROOT} if CACHE_KERNELS else {}),
            **({"manifest_url": store_url(KERNEL.manifest)} if REMOTE_TILES else {}),
        script:
            "../../scripts/kernel_finalize.py"

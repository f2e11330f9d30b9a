# What jobs declare beyond their main outputs, where there is no shared folder to fall back on: Snakemake's
# output cache (--cache) and a default storage provider (--default-storage-provider s3 …) move declared files
# only. Included right after common.smk; the rules call these functions.

# --cache (any form): the kernel_checkpoint rules go into Snakemake's output cache. The cache moves and
# restores declared outputs only, so they then declare every file of every store; without it, the
# manifests only, and a killed job resumes at its first missing tile (Snakemake deletes the declared
# outputs of an incomplete job).
CACHE_KERNELS = workflow.workflow_settings.cache is not None
# kernels.jobs: per_tile under --cache keeps finished stores in pntk's store cache, a folder beside Snakemake's
# entries in the output cache (kernels.smk, pntk.store.shared_cache).
STORE_CACHE_ROOT = os.environ.get("SNAKEMAKE_OUTPUT_CACHE", "") if CACHE_KERNELS else ""
# A default storage provider (`--default-storage-provider s3 …`: the cloud and Kubernetes executors, no shared
# filesystem) uploads declared outputs only and fetches declared inputs only: every job then declares every
# file of the stores it writes, and a job that reads a store (by its manifest) declares the store as well.
REMOTE_STORAGE = workflow.storage_settings.default_storage_provider is not None
DECLARE_STORES = CACHE_KERNELS or REMOTE_STORAGE
# kernels.jobs: per_tile has many jobs write into one store folder, which no job can declare as its output.
# Under a default storage provider kernel_init declares the store folder (the empty store goes to the bucket),
# each tile job writes its chunk straight into the store where it lies in the bucket (STORE_URL_ROOT, the
# library's tile protocol on s3://) and declares its flag, finalize reads the chunks there and declares the
# manifest; a job that reads the store fetches the folder, chunks and all (with_stores).
REMOTE_TILES = REMOTE_STORAGE and config["kernels"]["jobs"] == "per_tile"
STORE_URL_ROOT = (
    str(workflow.storage_settings.default_storage_prefix or "").removesuffix(os.sep) if REMOTE_TILES else ""
)
if REMOTE_TILES and not STORE_URL_ROOT.startswith("s3://"):
    raise WorkflowError(
        f"kernels.jobs: per_tile under --default-storage-provider writes the tiles into the stores where they lie, "
        f"which needs an s3:// --default-storage-prefix (got {STORE_URL_ROOT!r}); or set kernels.jobs: "
        "per_checkpoint (one job per checkpoint writes and declares every file of its stores)"
    )
if REMOTE_TILES and CACHE_KERNELS:
    raise WorkflowError(
        "kernels.jobs: per_tile keeps --cache's stores in a folder on a shared filesystem (pntk's store cache), "
        "which a default storage provider does not have: drop --cache, or set kernels.jobs: per_checkpoint"
    )


def store_url(path):
    """Where a store file (a local path pattern) lies in the bucket, for the per-tile jobs (REMOTE_TILES)."""
    return f"{STORE_URL_ROOT}/{path}"


def kernel_cache_params(*scripts):
    """With --cache, the params a kernel job's cache key needs beyond its settings: the output cache keys on
    params, inputs and the jobs upstream, not on wildcards or library code, and every checkpoint of a run comes
    from one train job, so name the run, the epoch and the script's import closure. Without --cache none: a
    new param would re-run every existing store (Snakemake's params trigger)."""
    return {**run_cache_params(*scripts), "epoch": lambda wc: int(wc.epoch)} if CACHE_KERNELS else {}


def kernel_checkpoint_outputs(epoch_dir, trained_on):
    """Outputs of kernel_checkpoint: the manifests (`manifests`), or with --cache or a default storage provider
    every file of each store (store_outputs; a cached rule's outputs must all be named;
    scripts/kernel_checkpoint.py reads both forms)."""
    if not DECLARE_STORES:
        return {"manifests": manifests_of(epoch_dir, trained_on)}
    out = {}
    for spec in pcfg.store_specs(config, trained_on):
        out.update(store_outputs(L.store(epoch_dir, *spec)))
    return out


def store_outputs(paths):
    """Every file of one store as named outputs `{kind}_{rows}_{cols}_{zarr|tiles|init|manifest}`: the store
    folder, the flag folder, the sentinel and the manifest."""
    key = paths.output_name
    return {
        f"{key}_zarr": directory(str(paths.store)),
        f"{key}_tiles": directory(str(paths.tiles_dir)),
        f"{key}_init": str(paths.sentinel),
        f"{key}_manifest": str(paths.manifest),
    }


def on_d_outputs():
    """Outputs of diagnose_on_D besides the checkpoints and train log: the manifests and diagnostics files of its
    checkpoints (lists `manifests`, `diagnostics`), or with --cache or a default storage provider every file of its
    stores and each diagnostics file, named `e{epoch}_…` (a cached rule's outputs are single named files;
    scripts/diagnose_on_D.py reads both forms)."""
    epochs = pcfg.checkpoint_epochs(config, "D")
    if not DECLARE_STORES:
        return {
            "manifests": [m for e in epochs for m in manifests_of(epoch_dir_of(e), "D")],
            "diagnostics": [L.epoch_file(epoch_dir_of(e), "diagnostics") for e in epochs],
        }
    out = {}
    for e in epochs:
        for spec in pcfg.store_specs(config, "D"):
            out.update({f"e{e:03d}_{k}": v for k, v in store_outputs(L.store(epoch_dir_of(e), *spec)).items()})
        out[f"e{e:03d}_diagnostics"] = L.epoch_file(epoch_dir_of(e), "diagnostics")
    return out


def run_cache_params(*scripts):
    """kernel_cache_params for a job that writes a whole run (diagnose_on_D): the run and the import closure
    (of several scripts: the jobs of one store under kernels.jobs: per_tile)."""
    return {"run": lambda wc: run_of(wc).meta(), "code": closure_digest(*scripts)} if CACHE_KERNELS else {}


def with_stores(inputs):
    """Named inputs with, under a default storage provider, the store folder of each manifest among them
    (`{name}_store`): the job's machine fetches what it reads. Elsewhere the inputs unchanged."""
    if not REMOTE_STORAGE:
        return inputs
    stores = {
        f"{name}_store": str(StorePaths.of(path).store)
        for name, path in inputs.items()
        if str(path).endswith(".manifest.json")
    }
    return {**inputs, **stores}

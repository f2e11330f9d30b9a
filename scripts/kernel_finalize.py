"""kernel_finalize: verify every tile flag against its chunk and write the store's manifest (under --cache with
kernels.jobs: per_tile: then deposit the store in the store cache, or on a hit link the cached manifest)."""
from pathlib import Path

from pntk.scriptutil import setup

log = setup(snakemake)

from pntk.kernel_jobs import finalize_job
from pntk.store.remote import as_path
from pntk.store.tiles import finalize

sm = snakemake
if "record" in sm.input.keys():  # --cache: kernel_lookup ran first
    inputs = {"checkpoint": sm.input.checkpoint, "sentinel": sm.input.sentinel} if "sentinel" in sm.input.keys() else {}
    finalize_job(sm.output.manifest, list(sm.input.get("flags", [])), record=sm.input.record,
                 cache_root=sm.params.cache_root, inputs=inputs)
else:
    # Without a shared filesystem (params.manifest_url) the chunks are checked where the store lies in the
    # bucket, and the declared manifest here is a copy of the one written there.
    manifest = sm.params.get("manifest_url") or sm.output.manifest
    rec = finalize(manifest, list(sm.input.flags),
                   inputs={"checkpoint": sm.input.checkpoint, "sentinel": sm.input.sentinel})
    if manifest != sm.output.manifest:
        Path(sm.output.manifest).write_bytes(as_path(manifest).read_bytes())
    log.info("finalized %s: %d tiles", rec["store"], len(rec["tiles"]))

"""kernel_finalize: verify every tile flag against its chunk and write the store's manifest."""
from pntk.scriptutil import setup

log = setup(snakemake)

from pntk.store.tiles import finalize

sm = snakemake
rec = finalize(sm.output.manifest, list(sm.input.flags),
               inputs={"checkpoint": sm.input.checkpoint, "sentinel": sm.input.sentinel})
log.info("finalized %s: %d tiles", rec["store"], len(rec["tiles"]))

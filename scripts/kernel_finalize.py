"""kernel_finalize: verify every tile flag against its chunk and write the store's manifest."""
from pntk.scriptutil import setup

log = setup(snakemake)  # noqa: F821

from pntk.store.tiles import finalize  # noqa: E402

sm = snakemake  # noqa: F821
rec = finalize(sm.output.manifest, list(sm.input.flags),
               inputs={"checkpoint": sm.input.checkpoint, "sentinel": sm.input.sentinel})
log.info("finalized %s: %d tiles", rec["store"], len(rec["tiles"]))

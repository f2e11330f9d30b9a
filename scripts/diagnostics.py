"""diagnostics: eNTK vs pNTK statistics of one run at one checkpoint (paper Figs 2–8)."""
from pntk.scriptutil import setup

log = setup(snakemake)  # noqa: F821

from pntk.paper.analysis import epoch_diagnostics  # noqa: E402
from pntk.provenance import atomic_write_json, provenance  # noqa: E402
from pntk.runs import checkpoint_meta  # noqa: E402

sm = snakemake  # noqa: F821
manifests = {k: sm.input[k] for k in ("entk_dd", "entk_xd", "pntk_dd", "pntk_xd")}
res = epoch_diagnostics(data_path=sm.input.data, checkpoint=sm.input.checkpoint, manifests=manifests,
                        data_cfg=sm.params.data, regression_cfg=sm.params.regression)
meta = checkpoint_meta(sm.input.checkpoint)
atomic_write_json(sm.output.json, {"meta": meta, **res, "provenance": provenance()})
log.info("diagnostics: %s", res["stats"])

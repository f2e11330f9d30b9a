"""regression: full-data pNTK kernel regression of one run at one checkpoint (paper Figs 9, 11, 12)."""
from pntk.scriptutil import setup

log = setup(snakemake)  # noqa: F821

from pntk.paper.analysis import epoch_regression  # noqa: E402
from pntk.provenance import atomic_write_json, provenance  # noqa: E402
from pntk.runs import checkpoint_meta  # noqa: E402

sm = snakemake  # noqa: F821
res = epoch_regression(data_path=sm.input.data, checkpoint=sm.input.checkpoint, manifest_dd=sm.input.dd,
                       manifest_xd=sm.input.xd, regression_cfg=sm.params.regression,
                       predictions_path=sm.output.predictions)
meta = checkpoint_meta(sm.input.checkpoint)
atomic_write_json(sm.output.json, {"meta": meta, **res, "provenance": provenance()})
log.info("regression: f_lin test acc %.4f, model test acc %.4f", res["flin_test_acc"], res["model_test_acc"])

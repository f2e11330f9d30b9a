"""train: one run (arch, width, seed) with checkpoints at the configured epochs."""
from pathlib import Path

from pntk.scriptutil import setup

log = setup(snakemake)  # noqa: F821

from pntk.data import open_prepared  # noqa: E402
from pntk.models import ModelSpec  # noqa: E402
from pntk.train import TrainConfig, train_run  # noqa: E402

sm = snakemake  # noqa: F821
wc, t, m = sm.wildcards, sm.params.train, sm.params.model
data = open_prepared(sm.input.data)
spec = ModelSpec(arch=wc.arch, width=int(wc.width), in_shape=tuple(data.in_shape), num_classes=data.num_classes,
                 depth=m["depth"], parameterization=m["parameterization"])
cfg = TrainConfig(epochs=t["epochs"], checkpoint_epochs=tuple(t["checkpoint_epochs"]), batch_size=t["batch_size"],
                  lr=t["lr"], momentum=t["momentum"], weight_decay=t["weight_decay"], loss=t["loss"],
                  lr_fallback=t["lr_fallback"], device=t["device"])
tr, te = data.train_indices, data.test_indices
paths = train_run(spec, int(wc.seed), data.x[tr], data.y[tr], data.x[te], data.y[te], cfg,
                  Path(sm.output.log_csv).parent,
                  extra_meta={"data_fingerprint": data.fingerprint, "dataset": wc.dataset, "loss": t["loss"]})
log.info("wrote %d checkpoints", len(paths))

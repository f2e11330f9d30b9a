"""train: one run (arch, width, seed) with checkpoints at the configured epochs."""
from pathlib import Path

from pntk.scriptutil import setup

log = setup(snakemake)  # noqa: F821

from pntk.data import open_prepared  # noqa: E402
from pntk.models import ModelSpec  # noqa: E402
from pntk.train import TrainConfig, train_run  # noqa: E402

sm = snakemake  # noqa: F821
wc, t = sm.wildcards, sm.params.train
data = open_prepared(sm.input.data)
# {arch} is the entry's name; the entry says what to build (a built-in arch or an import path + kwargs).
spec = ModelSpec.from_entry(sm.params.model, int(wc.width), data.in_shape, data.num_classes, sm.params.python_path)
cfg = TrainConfig(epochs=t["epochs"], checkpoint_epochs=tuple(t["checkpoint_epochs"]), batch_size=t["batch_size"],
                  lr=t["lr"], momentum=t["momentum"], weight_decay=t["weight_decay"], loss=t["loss"],
                  lr_fallback=t["lr_fallback"], device=t["device"])
tr, te = data.train_indices, data.test_indices
meta = {"data_fingerprint": data.fingerprint, "dataset": wc.dataset, "loss": t["loss"]}
if sm.params.model_source:
    meta["model_source"] = sm.params.model_source
paths = train_run(spec, int(wc.seed), data.x[tr], data.y[tr], data.x[te], data.y[te], cfg,
                  Path(sm.output.log_csv).parent, extra_meta=meta)
log.info("wrote %d checkpoints", len(paths))

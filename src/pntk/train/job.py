"""The train rule's work as a function of its Snakemake job: which examples a run trains on (the train split,
or D for the networks of Figs 2–8), its model, optimizer and checkpoints. Shared by scripts/train.py and the
merged job of the networks trained on D (scripts/diagnose_on_D.py)."""
from __future__ import annotations

import logging
from pathlib import Path

from ..data import index_set, open_prepared
from ..models import ModelSpec
from .loop import TrainConfig, train_run

log = logging.getLogger(__name__)


def train_job(sm) -> list[Path]:
    """Train the run of the job's wildcards as `sm.params` say; the checkpoints land beside sm.output.log_csv."""
    wc, t = sm.wildcards, sm.params.train
    data = open_prepared(sm.input.data)
    # {arch} is the entry's name; the entry says what to build (a built-in arch or an import path + kwargs).
    spec = ModelSpec.from_entry(sm.params.model, int(wc.width), data.in_shape, data.num_classes, sm.params.python_path)
    cfg = TrainConfig(epochs=t["epochs"], checkpoint_epochs=tuple(t["checkpoint_epochs"]), batch_size=t["batch_size"],
                      lr=t["lr"], momentum=t["momentum"], weight_decay=t["weight_decay"], loss=t["loss"],
                      lr_fallback=t["lr_fallback"], device=t["device"])
    # The networks of Figs 2–8 (diagnostics.train_on: D) train on D itself, the eNTK subset of the train split.
    on = sm.params.trained_on
    tr = data.train_indices if on == "train" else index_set(data, "sub-train", **sm.params.subsets)
    te = data.test_indices
    meta = {"data_fingerprint": data.fingerprint, "dataset": wc.dataset, "loss": t["loss"], "trained_on": on,
            "n_train_examples": int(len(tr))}
    if sm.params.model_source:
        meta["model_source"] = sm.params.model_source
    paths = train_run(spec, int(wc.seed), data.x[tr], data.y[tr], data.x[te], data.y[te], cfg,
                      Path(sm.output.log_csv).parent, extra_meta=meta)
    log.info("wrote %d checkpoints (trained on %s: %d examples, %d epochs)", len(paths), on, len(tr), t["epochs"])
    return paths

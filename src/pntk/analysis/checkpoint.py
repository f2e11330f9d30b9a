"""The diagnostics job of one checkpoint: the paper's eNTK-vs-pNTK statistics on D and X (Figs 2–8).

It reads kernel stores through their manifests (never a half-written store), the checkpoint and the
prepared data, and returns a JSON-serialisable dict; the thin scripts write it. The full-data regression
job is pntk.regression.job.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from ..data import PreparedData, index_set, open_prepared
from ..provenance import atomic_write_json, provenance
from ..regression import SolverOptions, linearized_predict, model_outputs
from ..runs import checkpoint_meta
from ..store import read_block
from ..store.paths import StorePaths
from . import diagnostics as dg

log = logging.getLogger(__name__)


def load_manifest_block(manifest: str | Path, row_ids: np.ndarray, col_ids: np.ndarray) -> np.ndarray:
    """Kernel values for global indices, from the finalized store named by `manifest`."""
    rec = json.loads(Path(manifest).read_text())  # raises if the store was never finalized
    return read_block(StorePaths.of(manifest).store, row_ids, col_ids).astype(np.float64), rec


def subsets(data: PreparedData, data_cfg: dict) -> tuple[np.ndarray, np.ndarray]:
    """Row ids of D (sub-train) and X (sub-test) of the config's `data:` section."""
    kw = dict(subset_train=data_cfg["subset_train"], subset_test=data_cfg["subset_test"], seed=data_cfg["seed"])
    return index_set(data, "sub-train", **kw), index_set(data, "sub-test", **kw)


def epoch_diagnostics(*, data_path, checkpoint, manifests: dict[str, str], data_cfg: dict,
                      regression_cfg: dict) -> dict:
    """Figs 2–8 on D = sub-train and X = sub-test. `manifests` keys: entk_dd, entk_xd, pntk_dd, pntk_xd."""
    data = open_prepared(data_path)
    d_ids, x_ids = subsets(data, data_cfg)
    entk_dd, _ = load_manifest_block(manifests["entk_dd"], d_ids, d_ids)  # (N, N, O, O)
    entk_xd, _ = load_manifest_block(manifests["entk_xd"], x_ids, d_ids)  # (M, N, O, O)
    pntk_dd, _ = load_manifest_block(manifests["pntk_dd"], d_ids, d_ids)  # (N, N)
    pntk_xd, _ = load_manifest_block(manifests["pntk_xd"], x_ids, d_ids)  # (M, N)
    f0_d = model_outputs(checkpoint, data.x[d_ids])  # (N, O)
    f0_x = model_outputs(checkpoint, data.x[x_ids])  # (M, O)
    o = f0_d.shape[1]
    y_d = np.eye(o)[data.y[d_ids]]  # (N, O) one-hot targets
    # on the host: the diagnostics jobs hold no GPU (device_resources() in the rules), whatever regression.device
    options = SolverOptions.from_config(regression_cfg).replace(device="cpu")
    pred_e = linearized_predict(entk_dd, entk_xd, f0_d, f0_x, y_d, options=options, log=log)  # (M, O), eNTK, Eq. 5
    pred_p = linearized_predict(pntk_dd, pntk_xd, f0_d, f0_x, y_d, options=options, log=log)  # (M, O), pNTK, Eq. 6
    stats = dg.kernel_statistics(entk_dd, pntk_dd)
    stats.update(dg.prediction_gaps(pred_e, pred_p, data.y[x_ids]))
    stats["model_acc_subtest"] = float((f0_x.argmax(1) == data.y[x_ids]).mean())
    return {"n_train_subset": len(d_ids), "n_test_subset": len(x_ids), "num_outputs": o, "stats": stats}


# --- the job: scripts/diagnostics.py, scripts/diagnose_on_D.py and scripts/diagnostics_regression.py
def diagnostics_job(sm, out_json: str | Path) -> dict:
    """Rule diagnostics' work on the Snakemake job `sm`: epoch_diagnostics → `out_json` (with provenance)."""
    manifests = {k: sm.input[k] for k in ("entk_dd", "entk_xd", "pntk_dd", "pntk_xd")}
    return write_diagnostics(out_json, data_path=sm.input.data, checkpoint=sm.input.checkpoint, manifests=manifests,
                             data_cfg=sm.params.data, regression_cfg=sm.params.regression)


def write_diagnostics(out_json: str | Path, *, data_path, checkpoint, manifests: dict[str, str], data_cfg: dict,
                      regression_cfg: dict) -> dict:
    """epoch_diagnostics of one checkpoint → `out_json`, with the checkpoint's run and epoch and provenance."""
    res = epoch_diagnostics(data_path=data_path, checkpoint=checkpoint, manifests=manifests, data_cfg=data_cfg,
                            regression_cfg=regression_cfg)
    atomic_write_json(out_json, {"meta": checkpoint_meta(checkpoint), **res, "provenance": provenance()})
    log.info("diagnostics of %s: %s", checkpoint, res["stats"])
    return res



"""The regression job (Figs 9, 11, 12): f̂_lin with the full-data pNTK of one checkpoint vs its network.

It reads the kernel stores through their manifests (never a half-written store), the checkpoint and the
prepared data; scripts/regression.py and scripts/diagnostics_regression.py call `regression_job`.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from .._version import __version__
from ..data import open_prepared
from ..provenance import atomic_write_json, provenance, sha256_file
from ..runs import checkpoint_meta
from ..store import read_block
from ..store.paths import StorePaths
from ..train import load_checkpoint
from .linearized import linearized_predict, regression_summary
from .memory import release_freed_memory
from .options import SolverOptions

log = logging.getLogger(__name__)


def model_outputs(checkpoint: str | Path, x: np.ndarray, batch: int = 512) -> np.ndarray:
    """f(x) of the checkpoint's model in eval mode, float64. x (N, C, H, W) → (N, O)."""
    import torch

    model, _ = load_checkpoint(checkpoint)
    model = model.double()
    with torch.no_grad():
        outs = [model(torch.as_tensor(x[s:s + batch], dtype=torch.float64)) for s in range(0, len(x), batch)]
    return torch.cat(outs).numpy()


def epoch_regression(*, data_path, checkpoint, manifest_dd, manifest_xd, regression_cfg: dict,
                     predictions_path: str | Path) -> dict:
    """Figs 9, 11, 12: f̂_lin with the full-data pNTK (one-vs-rest, prior mean f0) vs the SGD model."""
    import xarray as xr

    data = open_prepared(data_path)
    tr, te, labels = data.train_indices, data.test_indices, data.y
    f0_d = model_outputs(checkpoint, data.x[tr])  # (N, O)
    f0_x = model_outputs(checkpoint, data.x[te])  # (M, O)
    del data  # the inputs (0.74 GB of float32 at CIFAR-10) are not needed by the solve: off its peak
    release_freed_memory()
    o = f0_d.shape[1]
    y_d = np.eye(o)[labels[tr]]  # (N, O)
    for manifest in (manifest_dd, manifest_xd):
        json.loads(Path(manifest).read_text())  # raises unless the store was finalized
    k_dd = _ordered(StorePaths.of(manifest_dd).store, tr, tr)  # (N, N), streamed
    k_xd = _ordered(StorePaths.of(manifest_xd).store, te, tr)  # (M, N), streamed: 2 GB of float32 at CIFAR-10
    times = list(regression_cfg["times"])
    options = SolverOptions.from_config(regression_cfg)
    pred, info = linearized_predict(k_dd, k_xd, f0_d, f0_x, y_d, options=options, return_info=True, log=log)
    summary = regression_summary(pred, labels[te])
    out = {"flin_test_acc": summary["accuracy"], "flin_test_mse": summary["mse"],
           "model_test_acc": float((f0_x.argmax(1) == labels[te]).mean()),
           "flin_model_agreement": float((pred.argmax(1) == f0_x.argmax(1)).mean()),
           "solver": {k: v for k, v in info.items() if isinstance(v, (int, float, str, bool, type(None)))}}
    coords = {"test_index": te, "output": np.arange(o)}
    ds = xr.Dataset({"flin": (("test_index", "output"), pred), "f0": (("test_index", "output"), f0_x),
                     "label": (("test_index",), labels[te])}, coords=coords)
    if times:
        pt = linearized_predict(k_dd, k_xd, f0_d, f0_x, y_d, t=np.asarray(times),
                                options=options.replace(solver="eigh"), log=log)
        ds["flin_t"] = (("time", "test_index", "output"), pt)
        ds = ds.assign_coords(time=np.asarray(times, dtype=float))
        out["flin_t_test_acc"] = {str(t): float((pt[k].argmax(1) == labels[te]).mean()) for k, t in enumerate(times)}
    describe_predictions(ds, checkpoint=checkpoint, manifests={"dd": manifest_dd, "xd": manifest_xd},
                         regression_cfg=regression_cfg, solver_info=info)
    tmp = Path(predictions_path).with_name(Path(predictions_path).name + ".tmp")
    ds.to_netcdf(tmp, engine="scipy")
    tmp.replace(predictions_path)
    return out


VARIABLE_DESCRIPTIONS = {
    "flin": "prediction of the linearised network at t = infinity (kernel regression with the pNTK, "
            "prior mean f0; paper Eq. 6), one-vs-rest",
    "f0": "outputs of the checkpoint's network (eval mode): the prior mean of the regression",
    "label": "true class label of the test example",
    "flin_t": "prediction of the linearised network after gradient flow for time t (solver eigh)",
    "test_index": "row of the example in the prepared data store",
    "output": "output (class) index",
    "time": "training time t of flin_t",
}


def describe_predictions(ds, *, checkpoint, manifests: dict, regression_cfg: dict, solver_info: dict) -> None:
    """Attributes of predictions.nc (netCDF3 attributes: text and numbers only): what kernel and solver made
    the predictions, from which checkpoint and kernel stores (path and sha256), and which pntk."""
    for name, text in VARIABLE_DESCRIPTIONS.items():
        if name in ds.variables:
            ds[name].attrs["description"] = text
    attrs = {"title": "pntk kernel regression predictions on the test split", "kernel_kind": "pntk",
             "solver": str(solver_info.get("solver")),
             "ridge": float(solver_info.get("ridge", regression_cfg["ridge"])),
             "t": " ".join(str(float(t)) for t in regression_cfg["times"]) or "inf",
             "checkpoint": str(checkpoint), "checkpoint_sha256": sha256_file(checkpoint),
             "pntk_version": __version__}
    for key, path in manifests.items():
        attrs[f"manifest_{key}"], attrs[f"manifest_{key}_sha256"] = str(path), sha256_file(path)
    for key, value in solver_info.items():  # every scalar the solver reported (converged, residual, ...)
        if key in ("solver", "kind") or not isinstance(value, (bool, int, float, str)):
            continue
        if isinstance(value, bool):
            value = int(value)
        elif isinstance(value, int) and not -2**31 <= value < 2**31:
            value = float(value)  # netCDF3 integers are 32-bit (memory caps of 8 GiB are not)
        attrs[f"solver_{key}"] = value
    ds.attrs.update(attrs)


def _ordered(store: Path, row_ids: np.ndarray, col_ids: np.ndarray):
    """The store's kernel array if its rows and columns are exactly these examples in this order (the
    solvers stream it tile by tile: memory bounded by a tile, not by N), else a dense float64 copy."""
    import zarr

    from ..store.remote import zarr_store

    g = zarr.open_group(zarr_store(store, read_only=True), mode="r")
    if np.array_equal(g["row"][:], row_ids) and np.array_equal(g["col"][:], col_ids):
        return g["kernel"]
    return read_block(store, row_ids, col_ids).astype(np.float64)


# --- the job: scripts/regression.py and scripts/diagnostics_regression.py
def regression_job(sm) -> dict:
    """Rule regression's work on the Snakemake job `sm`: epoch_regression → output.json, output.predictions."""
    res = epoch_regression(data_path=sm.input.data, checkpoint=sm.input.checkpoint, manifest_dd=sm.input.dd,
                           manifest_xd=sm.input.xd, regression_cfg=sm.params.regression,
                           predictions_path=sm.output.predictions)
    atomic_write_json(sm.output.json, {"meta": checkpoint_meta(sm.input.checkpoint), **res,
                                       "provenance": provenance()})
    log.info("regression: f_lin test acc %.4f, model test acc %.4f", res["flin_test_acc"], res["model_test_acc"])
    return res

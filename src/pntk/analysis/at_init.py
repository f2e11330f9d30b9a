"""Networks at initialisation only (`diagnostics.at_init`): the statistics of Θ(D,D) and Θ̂(D,D) at epoch 0.

The width claims of claims.csv are tested at epoch 0 (Figs 2–6, Theorems 1 and 5, Remark 3.3.3, the ConvNet's
λmin), where a network trained on D is still its initialisation. Deciding them takes more seeds and widths than
training each network on D affords (benchmarks/BENCHMARKS.md, ConvNet width claims), so these networks are built
from their seed, never trained, and only the kernels on D are computed: the same engine, method and dtype as a
kernel job, the same statistics as a checkpoint's diagnostics (`pntk.analysis.diagnostics.kernel_statistics`),
in memory (no store: nothing else reads these kernels). Statistics that need X or a trained network (Figs 7–12,
Theorem 6) come from the trained runs only.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

from ..data import open_prepared
from ..models import ModelSpec, init_model
from ..provenance import atomic_write_json, provenance
from ..runs import Run
from ..store import tiles
from . import diagnostics as dg
from .checkpoint import subsets

log = logging.getLogger(__name__)


def kernels_at_init(model, x_d, kernels_cfg: dict) -> dict:
    """{"entk": (N, N, O, O), "pntk": (N, N), "methods": {kind: method}} of `model` on the images x_d (N, C, H, W),
    as a kernel job computes the diagonal tile of a symmetric store."""
    import torch

    dtype = getattr(torch, kernels_cfg["dtype"])
    out: dict = {"methods": {}}
    for kind in ("entk", "pntk"):
        method = tiles.tile_method(model, x_d, x_d, same_inputs=True, kind=kind, method=kernels_cfg["method"],
                                   dtype=dtype)
        out[kind] = tiles.compute_tile(model, x_d, x_d, same_inputs=True, kind=kind, method=method,
                                       batch_size=kernels_cfg["batch_size"], dtype=dtype,
                                       allow_tf32=kernels_cfg.get("allow_tf32", False))
        out["methods"][kind] = method
    return out


def at_init_job(out_json: str | Path, networks: list[Run], *, data_path, data_cfg: dict, kernels_cfg: dict,
                model_entry: dict, python_path=()) -> dict:
    """Statistics on D of each network (runs with trained_on "init", one model) → `out_json`:
    {"networks": [{"meta": {..., "epoch": 0}, "stats": {...}, "methods": ..., "seconds": ...}], "provenance"}."""
    import torch

    data = open_prepared(data_path)
    d_ids, _ = subsets(data, data_cfg)  # D, as the diagnostics of a checkpoint read it
    x_d = torch.as_tensor(data.x[d_ids], device=kernels_cfg["device"])  # (N, C, H, W)
    records = []
    for net in networks:
        if net.trained_on != "init":
            raise ValueError(f"at_init_job: {net.name} is not a network at initialisation (trained_on 'init')")
        t0 = time.perf_counter()
        spec = ModelSpec.from_entry(model_entry, net.width, data.in_shape, data.num_classes, python_path)
        model = init_model(spec, net.seed).to(kernels_cfg["device"])
        k = kernels_at_init(model, x_d, kernels_cfg)
        stats = dg.kernel_statistics(k["entk"], k["pntk"])
        seconds = time.perf_counter() - t0
        log.info("%s at initialisation: eNTK and pNTK on D (%d points) and their statistics in %.1f s: %s",
                 net.name, len(d_ids), seconds, stats)
        records.append({"meta": {**net.meta(), "epoch": 0}, "stats": stats, "methods": k["methods"],
                        "seconds": seconds, "n_train_subset": len(d_ids)})
    res = {"networks": records, "provenance": provenance()}
    atomic_write_json(out_json, res)
    return res

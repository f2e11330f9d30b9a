"""Active learning: acquisition time of one cycle, NTK look-ahead (pNTK vs eNTK vs first-logit) and
NTK look-ahead vs naive SGD look-ahead (thesis §3.5: pNTK ≈ 15% of eNTK time; NTK look-ahead > 100×
faster than retraining per candidate).

Setup: digits (prepared in a temporary folder), --arch (FCN-3) of width --width trained by SGD (MSE) on
--initial random labels (ALConfig defaults), then
  A. one acquisition of --k labels from a pool subset of --pool candidates with MLMOC under each
     kernel (kernel Θ([L;S],[L;S]) + one factorisation + vectorised scores), median of --repeats;
  B. on a tiny pool of --tiny candidates: MLMOC-pNTK vs naive look-ahead that trains the network on
     L ∪ {(x', y')} per candidate, (i) from scratch for the cycle's epochs (what the next cycle
     does) and (ii) fine-tuning f_L for --finetune-epochs; plus the Spearman rank correlation of
     the MLMOC and naive scores.

    python benchmarks/bench_active.py                 # ~1-2 min on 2 CPU cores
    python benchmarks/bench_active.py --device cuda --pool 2000
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from pntk.active.loop import ALConfig, acquire_mlmoc
from pntk.active.naive import naive_scores
from pntk.active.training import fit
from pntk.data import open_prepared, prepare_dataset
from pntk.models import ModelSpec, init_model
from pntk.provenance import machine_description


def timed(fn, repeats: int) -> tuple[float, list]:
    """Median wall time of `repeats` calls, and every call's result."""
    times, outs = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        outs.append(fn())
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), outs


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="fcn", choices=["fcn", "convnet", "resnet18", "wrn16"])
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--initial", type=int, default=50)
    ap.add_argument("--pool", type=int, default=500)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--tiny", type=int, default=20)
    ap.add_argument("--finetune-epochs", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=None, help="write the numbers as JSON here")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    with tempfile.TemporaryDirectory() as tmp:
        prepare_dataset("digits", None, Path(tmp) / "digits.zarr", seed=0)
        d = open_prepared(Path(tmp) / "digits.zarr")
    x = torch.as_tensor(d.x[d.train_indices], device=dev)
    y = torch.as_tensor(d.y[d.train_indices], device=dev)
    cfg = ALConfig(arch=a.arch, width=a.width, depth=a.depth, device=a.device)
    spec = ModelSpec(a.arch, a.width, (1, 8, 8), 10, a.depth)
    rng = np.random.default_rng(0)
    perm = torch.as_tensor(rng.permutation(len(x)), device=dev)
    lab, pool = perm[:a.initial], perm[a.initial:a.initial + a.pool]
    model = fit(init_model(spec, 0).to(dev), x[lab], y[lab], cfg, cfg.epochs, 0)
    xl, yl, xs = x[lab], y[lab], x[pool]
    acquire_mlmoc(model, xl, yl, xs[:20], 2, kind="entk")  # warm-up (lazy imports, allocator)

    res = {"machine": machine_description(), "date": datetime.date.today().isoformat(), "device": str(dev),
           "model": f"{a.arch}-{a.depth} width {a.width}", "n_labelled": a.initial, "pool": a.pool, "k": a.k, "A": {}}
    print(f"# {res['machine']}; {res['model']}; |L| = {a.initial}, |S| = {a.pool}, k = {a.k}, O = 10")
    print(f"{'strategy':<22}{'kernel s':>10}{'score s':>10}{'total s':>10}")
    for name, kind, seq in (("mlmoc-pntk", "pntk", False), ("mlmoc-first_logit", "first_logit", False),
                            ("mlmoc-entk", "entk", False), ("mlmoc-pntk-seq", "pntk", True),
                            ("mlmoc-entk-seq", "entk", True)):
        total, outs = timed(lambda kind=kind, seq=seq: acquire_mlmoc(model, xl, yl, xs, a.k, kind=kind, sequential=seq,
                                                  y_s=y[pool]), a.repeats)
        ks, ss = (statistics.median(o[1][key] for o in outs) for key in ("kernel_seconds", "score_seconds"))
        res["A"][name] = {"kernel_seconds": ks, "score_seconds": ss, "total_seconds": total}
        print(f"{name:<22}{ks:>10.3f}{ss:>10.3f}{total:>10.3f}")
    A = res["A"]
    res["pntk_over_entk"] = A["mlmoc-pntk"]["total_seconds"] / A["mlmoc-entk"]["total_seconds"]
    res["pntk_over_entk_kernel_only"] = A["mlmoc-pntk"]["kernel_seconds"] / A["mlmoc-entk"]["kernel_seconds"]
    print(f"pNTK / eNTK acquisition time: {res['pntk_over_entk']:.3f} "
          f"(kernel only {res['pntk_over_entk_kernel_only']:.3f})")

    xt = xs[:a.tiny]
    t_ntk, outs = timed(lambda: acquire_mlmoc(model, xl, yl, xt, 1, kind="pntk"), a.repeats)
    info = outs[-1][1]
    scratch = dataclasses.replace(cfg, naive_epochs=None, retrain="cold")  # what a cold-started cycle does
    t_scratch, (sc_scratch,) = timed(lambda: naive_scores(model, xl, yl, xt, scratch, 0, spec), 1)
    ft = dataclasses.replace(cfg, naive_epochs=a.finetune_epochs)
    t_ft, (sc_ft,) = timed(lambda: naive_scores(model, xl, yl, xt, ft, 0), 1)
    from scipy.stats import spearmanr

    res["B"] = {"tiny_pool": a.tiny, "mlmoc_pntk_seconds": t_ntk, "naive_scratch_seconds": t_scratch,
                "naive_finetune_seconds": t_ft, "finetune_epochs": a.finetune_epochs, "train_epochs": cfg.epochs,
                "naive_scratch_over_pntk": t_scratch / t_ntk, "naive_finetune_over_pntk": t_ft / t_ntk,
                "spearman_scratch": float(spearmanr(info["scores"].numpy(), sc_scratch.numpy()).statistic),
                "spearman_finetune": float(spearmanr(info["scores"].numpy(), sc_ft.numpy()).statistic)}
    B = res["B"]
    print(f"\n# tiny pool |S| = {a.tiny}: MLMOC-pNTK {t_ntk:.3f}s; naive retrain from scratch ({cfg.epochs} "
          f"epochs) {t_scratch:.2f}s = {B['naive_scratch_over_pntk']:.0f}x; naive fine-tune "
          f"({a.finetune_epochs} epochs) {t_ft:.2f}s = {B['naive_finetune_over_pntk']:.0f}x")
    print(f"Spearman(MLMOC, naive): scratch {B['spearman_scratch']:.2f}, fine-tune {B['spearman_finetune']:.2f}")
    if a.out:
        a.out.write_text(json.dumps(res, indent=2) + "\n")
    return res


if __name__ == "__main__":
    main()

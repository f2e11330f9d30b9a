"""Pool-based active learning loop (thesis Algorithm 1) with NTK look-ahead and baseline strategies.

    for cycle 0..cycles:  train f_L by SGD (warm: from f_L of the previous cycle, as Algorithm 1; cold: from
                          the seed's initialisation; active.retrain) → test accuracy
                          acquire `per_cycle` labels from a random pool subset S of `pool_subset`

Strategy names (also the `{strategy}` wildcard of the workflow):
    random | entropy | margin            baselines on softmax(f_L) over S
    mlmoc-{pntk,entk,first_logit}[-seq]  NTK look-ahead (pntk.active); -seq: sequential block updates
    naive                                look-ahead by SGD retraining per candidate (pntk.active.naive) on the
                                         first `naive_pool` candidates of S
Rows (tidy): strategy, kernel, seed, cycle, n_labels, test_acc, acquisition_seconds (time spent
acquiring the labels added since the previous cycle; NaN at cycle 0), candidates (candidates scored by
that acquisition: |S|, or naive_pool for naive; 0 at cycle 0), train_seconds.
The per-run JSON also records, for batch MLMOC, "block_check" (pntk.active.blockcheck: the block update's
acquisitions against direct solves, computed after the timed acquisition) and, for mlmoc-pntk, "warm_cold"
(the final labelled set trained both ways, pntk.active.training.other_start).
"""
from __future__ import annotations

import copy
import logging
import sys
import time
from dataclasses import asdict

import numpy as np
import torch
import torch.nn.functional as F

from ..data import open_prepared
from ..kernels import empirical_kernel
from ..models import ModelSpec
from ..provenance import atomic_write_json, atomic_write_text, provenance
from ..train import evaluate, progress_line
from .blockcheck import check_acquisition, summarise
from .lookahead import LookAhead
from .naive import naive_scores
from .settings import COLUMNS, WARM_COLD, ALConfig, parse_strategy
from .training import other_start, outputs, retrain

log = logging.getLogger(__name__)

# ------------------------------------------------------------------------------------------------
# acquisition functions: return positions into x_s of the k chosen candidates


def acquire_uncertainty(model, x_s, k: int, kind: str) -> np.ndarray:
    p = F.softmax(outputs(model, x_s).double(), dim=1)  # (|S|, O)
    if kind == "entropy":
        score = -(p * p.clamp_min(1e-300).log()).sum(1)
    else:  # margin: smallest top-1 minus top-2 probability first
        top = p.topk(2, dim=1).values
        score = -(top[:, 0] - top[:, 1])
    return score.topk(k).indices.cpu().numpy()


def acquire_mlmoc(model, x_l, y_l, x_s, k: int, *, kind: str = "pntk", sequential: bool = False,
                  y_s: torch.Tensor | None = None, ridge: float = 1e-3, reference: str = "model",
                  method: str = "auto", dtype: str = "float32", keep: bool = False) -> tuple[np.ndarray, dict]:
    """Top-k MLMOC candidates. y_l (|L|,) labels; y_s (|S|,) true labels (needed when sequential).

    One kernel Θ([L;S], [L;S]) of the trained model (eval mode: BatchNorm frozen), one factorisation,
    vectorised scores. Returns positions into x_s and {kernel_seconds, score_seconds, scores} (the
    scores of the first query); keep: also the flat float64 kernel, q, f0 and λ the look-ahead used
    (kernel, q, f0, lam), for the block check."""
    km = copy.deepcopy(model).eval()
    if dtype == "float64":
        km = km.double()
    p0 = next(km.parameters())
    x = torch.cat([x_l, x_s]).to(p0.device, p0.dtype)  # (P, *in_shape)
    t0 = time.perf_counter()
    kern = empirical_kernel(km, x, kind=kind, method=method, layout="flat")  # (P, P) or eNTK (P·O, P·O)
    f0 = outputs(km, x).double()  # (P, O)
    t1 = time.perf_counter()
    o = f0.shape[1]
    la = LookAhead(kern, f0, F.one_hot(y_l.long(), o).double().to(f0.device), len(x_l), ridge=ridge,
                   reference=reference)
    first = la.scores()  # (|S|,)
    if not sequential:
        chosen = first.topk(k).indices.cpu().numpy()
    else:
        if y_s is None:
            raise ValueError("sequential MLMOC needs the true labels y_s of the candidates")
        chosen, sc = [], first
        for t in range(k):
            j = int(sc.argmax())
            la.add(j, int(y_s[j]))  # true label enters A⁻¹ by the block update; no SGD
            chosen.append(j)
            if t < k - 1:
                sc = la.scores()
        chosen = np.asarray(chosen)
    info = {"kernel_seconds": t1 - t0, "score_seconds": time.perf_counter() - t1, "scores": first.cpu()}
    if keep:  # what pntk.active.blockcheck recomputes by direct solves, after the timed acquisition
        info.update(kernel=la.k, q=la.q, f0=f0, lam=la.lam)
    return chosen, info


# ------------------------------------------------------------------------------------------------
# the loop


def run_active_learning(x_pool: np.ndarray, y_pool: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                        strategy: str, seed: int, cfg: ALConfig, num_classes: int | None = None
                        ) -> tuple[list[dict], dict]:
    """Run one strategy for one seed. Returns (rows, meta) with meta['selected'][c] the pool positions
    labelled at cycle c (cycle 0: the random initial set, the same for every strategy of a seed), and for
    batch MLMOC meta['block_check'], for WARM_COLD strategies meta['warm_cold'] (module doc)."""
    st = parse_strategy(strategy)
    if st.method == "naive":
        cfg.check_naive()
    budget = cfg.check_budget(st.kernel) if st.method == "mlmoc" else 0  # sequential: not checked
    dev = torch.device(cfg.device)
    xp, yp = torch.as_tensor(x_pool, device=dev), torch.as_tensor(y_pool, device=dev).long()
    xt, yt = torch.as_tensor(x_test, device=dev), torch.as_tensor(y_test, device=dev).long()
    o = int(num_classes or int(yp.max()) + 1)
    need = cfg.initial + cfg.cycles * cfg.per_cycle
    if need > len(xp):
        raise ValueError(f"active: initial + cycles × per_cycle = {need} labels exceed the pool of {len(xp)}")
    spec = ModelSpec(cfg.arch, cfg.width, tuple(xp.shape[1:]), o, cfg.depth)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0]))
    labelled = list(rng.choice(len(xp), cfg.initial, replace=False))
    selected, rows, acq_s, n_cand = [list(map(int, labelled))], [], float("nan"), 0
    cycle_seconds: list[float] = []  # wall time of each finished cycle (training + acquisition), for the ETA
    checks, check_sizes, check_s, model = [], [], 0.0, None
    for cycle in _cycles(cfg.cycles + 1, f"{strategy} seed {seed}"):
        t0 = t_cycle = time.perf_counter()
        lab = torch.as_tensor(labelled, device=dev)
        model = retrain(model, spec, seed, xp[lab], yp[lab], cfg)  # warm (Algorithm 1) or cold: active.retrain
        train_s = time.perf_counter() - t0
        acc = evaluate(model, xt, yt, cfg.loss)[1]
        rows.append({"strategy": st.method, "kernel": st.kernel, "seed": seed, "cycle": cycle,
                     "n_labels": len(labelled), "test_acc": acc, "acquisition_seconds": acq_s,
                     "candidates": n_cand, "train_seconds": train_s})
        acq = f"acquisition {acq_s:.2f}s" if cycle else "initial labels"  # cycle 0 acquired nothing
        log.info("%s seed %d cycle %d/%d: %d labels, test acc %.4f (%s, training %.2fs) | %s",
                 strategy, seed, cycle, cfg.cycles, len(labelled), acc, acq, train_s,
                 progress_line(cycle_seconds, cfg.cycles - cycle))
        if cycle == cfg.cycles:
            break
        unl = np.setdiff1d(np.arange(len(xp)), labelled)
        sub_rng = np.random.default_rng(np.random.SeedSequence([seed, 1, cycle]))
        pool = sub_rng.choice(unl, min(cfg.pool_subset, len(unl)), replace=False)  # S, in random order
        k = min(cfg.per_cycle, len(pool))
        pool_t = torch.as_tensor(pool, device=dev)
        xs = xp[pool_t]
        n_cand, info = len(pool), {}
        t0 = time.perf_counter()
        if st.method == "random":
            pick = np.random.default_rng(np.random.SeedSequence([seed, 2, cycle])).choice(len(pool), k, replace=False)
        elif st.method in ("entropy", "margin"):
            pick = acquire_uncertainty(model, xs, k, st.method)
        elif st.method == "naive":  # the first naive_pool candidates of S (random order), scored over all of S
            n_cand = min(cfg.naive_pool, len(pool))
            pick = naive_scores(model, xp[lab], yp[lab], xs, cfg, seed, spec, n_cand).topk(k).indices.numpy()
        else:
            pick, info = acquire_mlmoc(model, xp[lab], yp[lab], xs, k, kind=st.kernel,
                                       sequential=st.method == "mlmoc-seq", y_s=yp[pool_t],
                                       ridge=cfg.ridge, reference=cfg.reference, method=cfg.kernel_method,
                                       dtype=cfg.kernel_dtype, keep=budget > 0)
        acq_s = time.perf_counter() - t0
        if budget:  # outside the timed acquisition: the direct solves are a check, not the method
            checks.append(check_acquisition(info["kernel"], info["q"], info["f0"], yp[lab], len(lab), info["scores"],
                                            pick, k, lam=info["lam"], reference=cfg.reference, budget=budget))
            check_sizes.append(len(pool))
            check_s += time.perf_counter() - t0 - acq_s
        del info  # the eNTK's flat kernel is the largest array here
        new = [int(pool[i]) for i in pick]
        labelled += new
        selected.append(new)
        cycle_seconds.append(time.perf_counter() - t_cycle)
    meta = {"strategy": strategy, "method": st.method, "kernel": st.kernel, "seed": seed,
            "config": asdict(cfg), "selected": selected}
    if checks:
        meta["block_check"] = {**summarise(checks, check_sizes), "seconds": check_s}
        log.info("%s seed %d: block update vs direct solves: %d of %d cycles identical (largest relative score "
                 "difference %.2g)", strategy, seed, meta["block_check"]["identical_cycles"], len(checks),
                 meta["block_check"]["max_rel_score_diff"])
    if strategy in WARM_COLD:
        other = "cold" if cfg.retrain == "warm" else "warm"
        meta["warm_cold"] = {cfg.retrain: rows[-1]["test_acc"], other: other_start(selected, spec, seed, xp, yp, xt,
                                                                                      yt, cfg),
                             "loop": cfg.retrain, "labels": len(labelled), "epochs": cfg.epochs}
    return rows, meta


def _cycles(n: int, desc: str):
    """range(n); a tqdm bar when stderr is a terminal (job logs get one line per cycle instead)."""
    if not sys.stderr.isatty():
        return range(n)
    from tqdm import tqdm

    return tqdm(range(n), desc=desc, unit="cycle")


def run_from_store(data_path, strategy: str, seed: int, cfg: ALConfig) -> tuple[list[dict], dict]:
    """run_active_learning with pool = train split and test = test split of a prepared data store."""
    d = open_prepared(data_path)
    tr, te = d.train_indices, d.test_indices
    rows, meta = run_active_learning(d.x[tr], d.y[tr], d.x[te], d.y[te], strategy, seed, cfg, d.num_classes)
    meta.update(dataset=d.attrs["name"], data_fingerprint=d.fingerprint,
                selected_rows=[[int(tr[i]) for i in c] for c in meta["selected"]])
    return rows, meta


def write_results(rows: list[dict], meta: dict, csv_path, json_path) -> None:
    """Tidy CSV and its provenance JSON (config, seed, selections, git describe), each atomically."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    atomic_write_json(json_path, {**meta, "provenance": provenance()})
    atomic_write_text(csv_path, buf.getvalue())

"""Pool-based active learning loop (thesis Algorithm 1) with NTK look-ahead and baseline strategies.

    for cycle 0..cycles:  train f_L by SGD (from the seed's initialisation) → test accuracy
                          acquire `per_cycle` labels from a random pool subset S of `pool_subset`

Strategy names (also the `{strategy}` wildcard of the workflow):
    random | entropy | margin            baselines on softmax(f_L) over S
    mlmoc-{pntk,entk,first_logit}[-seq]  NTK look-ahead (pntk.active); -seq: sequential block updates
    naive                                look-ahead by SGD fine-tuning per candidate (tiny pools only)
Rows (tidy): strategy, kernel, seed, cycle, n_labels, test_acc, acquisition_seconds (time spent
acquiring the labels added since the previous cycle; NaN at cycle 0), candidates (|S| of that
acquisition; 0 at cycle 0), train_seconds.
"""
from __future__ import annotations

import copy
import logging
import math
import sys
import time
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..kernels import empirical_kernel
from ..models import ModelSpec, init_model
from ..sgd import SGD
from ..train import epoch_order, evaluate, loss_fn, progress_line
from .lookahead import REFERENCES, LookAhead

log = logging.getLogger(__name__)

COLUMNS = ["strategy", "kernel", "seed", "cycle", "n_labels", "test_acc", "acquisition_seconds", "candidates",
           "train_seconds"]
KERNELS = ("pntk", "entk", "first_logit")
BASELINES = ("random", "entropy", "margin", "naive")


@dataclass(frozen=True)
class ALConfig:
    initial: int = 50
    per_cycle: int = 10
    cycles: int = 5
    pool_subset: int = 500
    arch: str = "fcn"
    width: int = 64
    depth: int | None = 3
    epochs: int = 40
    batch_size: int = 32
    # MSE keeps f_L close to the one-hot targets on L, which the look-ahead algebra assumes (d0 ≈ 0). With the
    # He/LeCun init the network's initial outputs are O(1), and MSE on 50-100 labels keeps much of that random
    # part; a little weight decay shrinks it (digits, seeds 0-2, every strategy: 0.67-0.76 test accuracy at 50
    # labels and 0.79-0.91 at 100, against 0.39-0.72 and 0.18-0.81 at lr 0.05 without decay). More decay (0.03)
    # gains ~1 point but makes retraining depart from the linearised look-ahead MLMOC scores.
    lr: float = 0.02
    momentum: float = 0.9
    weight_decay: float = 0.01
    loss: str = "mse"
    ridge: float = 1e-3
    reference: str = "model"
    kernel_method: str = "auto"
    kernel_dtype: str = "float32"
    naive_pool: int = 10
    naive_epochs: int | None = None  # None: retrain from the seed's init for `epochs`; int: fine-tune θ_L
    device: str = "cpu"

    def __post_init__(self):
        for key in ("initial", "per_cycle", "pool_subset", "width", "epochs", "batch_size", "naive_pool"):
            if getattr(self, key) < 1:
                raise ValueError(f"active.{key}: must be >= 1, got {getattr(self, key)}")
        if self.per_cycle > self.pool_subset:
            raise ValueError(f"active.per_cycle ({self.per_cycle}) exceeds active.pool_subset ({self.pool_subset})")
        if self.naive_epochs is not None and self.naive_epochs < 1:
            raise ValueError(f"active.naive_epochs: must be >= 1 or null, got {self.naive_epochs}")
        if self.reference not in REFERENCES:
            raise ValueError(f"active.reference: {self.reference!r}, expected one of {REFERENCES}")
        if self.loss not in ("mse", "cross_entropy"):
            raise ValueError(f"active.loss: {self.loss!r}, expected 'mse' or 'cross_entropy'")
        if self.kernel_dtype not in ("float32", "float64"):
            raise ValueError(f"active.kernel_dtype: {self.kernel_dtype!r}, expected float32 or float64")

    @classmethod
    def from_dict(cls, d: dict) -> "ALConfig":
        """Build from the workflow's `active` block (keys that are not fields are ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass(frozen=True)
class Strategy:
    name: str  # full name, e.g. "mlmoc-pntk-seq"
    method: str  # random | entropy | margin | naive | mlmoc | mlmoc-seq
    kernel: str  # pntk | entk | first_logit | none


def parse_strategy(name: str) -> Strategy:
    if name in BASELINES:
        return Strategy(name, name, "none")
    parts = name.split("-")
    if parts[0] == "mlmoc" and len(parts) in (2, 3) and parts[1] in KERNELS and parts[2:] in ([], ["seq"]):
        return Strategy(name, "mlmoc-seq" if parts[2:] else "mlmoc", parts[1])
    raise ValueError(f"active.strategies: unknown strategy {name!r}; expected one of {', '.join(BASELINES)} "
                     f"or mlmoc-{{{','.join(KERNELS)}}}[-seq]")


# ------------------------------------------------------------------------------------------------
# training


def fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: ALConfig, epochs: int, seed: int) -> nn.Module:
    """SGD on (x, y) in place; batch order depends only on (seed, epoch). Returns the model (eval mode)."""
    opt = SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    model.train()
    for epoch in range(epochs):
        order = epoch_order(len(x), seed, epoch).to(x.device)
        bounds = list(range(0, len(x), cfg.batch_size)) + [len(x)]
        if len(bounds) > 2 and bounds[-1] - bounds[-2] == 1:
            del bounds[-2]  # no batch of one sample: BatchNorm cannot train on it
        for s, e in zip(bounds[:-1], bounds[1:]):
            idx = order[s:e]
            loss = loss_fn(cfg.loss, model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return model.eval()


@torch.no_grad()
def outputs(model: nn.Module, x: torch.Tensor, batch: int = 2048) -> torch.Tensor:
    """(N, O) eval-mode outputs."""
    model.eval()
    return torch.cat([model(x[s:s + batch]) for s in range(0, len(x), batch)])


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
                  method: str = "auto", dtype: str = "float32") -> tuple[np.ndarray, dict]:
    """Top-k MLMOC candidates. y_l (|L|,) labels; y_s (|S|,) true labels (needed when sequential).

    One kernel Θ([L;S], [L;S]) of the trained model (eval mode: BatchNorm frozen), one factorisation,
    vectorised scores. Returns positions into x_s and {kernel_seconds, score_seconds, scores} (the
    scores of the first query)."""
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
    return chosen, {"kernel_seconds": t1 - t0, "score_seconds": time.perf_counter() - t1, "scores": first.cpu()}


def naive_scores(model, x_l, y_l, x_s, cfg: ALConfig, seed: int, spec: ModelSpec | None = None) -> Tensor:
    """(|S|,) look-ahead by brute force, Σ_{x∈S} ‖f_L(x) − f_new(x)‖₂ with f_new the network trained
    on L ∪ {(x', y')} per candidate: from the seed's initialisation for cfg.epochs when
    cfg.naive_epochs is None (needs spec; what the next cycle would do), else a copy of f_L
    fine-tuned for cfg.naive_epochs. The quantity MLMOC approximates."""
    if cfg.naive_epochs is None and spec is None:
        raise ValueError("naive look-ahead from scratch needs the model spec")
    f_s = outputs(model, x_s)  # (|S|, O)
    pseudo = f_s.argmax(1)
    scores = torch.empty(len(x_s), dtype=torch.float64)
    for j in range(len(x_s)):
        x = torch.cat([x_l, x_s[j:j + 1]])
        y = torch.cat([y_l, pseudo[j:j + 1]])
        if cfg.naive_epochs is None:
            m = fit(init_model(spec, seed).to(x.device), x, y, cfg, cfg.epochs, seed)
        else:
            m = fit(copy.deepcopy(model), x, y, cfg, cfg.naive_epochs, seed)
        scores[j] = torch.linalg.vector_norm(outputs(m, x_s) - f_s, dim=1).sum()
    return scores


# ------------------------------------------------------------------------------------------------
# the loop


def run_active_learning(x_pool: np.ndarray, y_pool: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                        strategy: str, seed: int, cfg: ALConfig, num_classes: int | None = None
                        ) -> tuple[list[dict], dict]:
    """Run one strategy for one seed. Returns (rows, meta) with meta['selected'][c] the pool positions
    labelled at cycle c (cycle 0: the random initial set, the same for every strategy of a seed)."""
    st = parse_strategy(strategy)
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
    for cycle in _cycles(cfg.cycles + 1, f"{strategy} seed {seed}"):
        t0 = t_cycle = time.perf_counter()
        lab = torch.as_tensor(labelled, device=dev)
        model = fit(init_model(spec, seed).to(dev), xp[lab], yp[lab], cfg, cfg.epochs, seed)
        train_s = time.perf_counter() - t0
        acc = evaluate(model, xt, yt, cfg.loss)[1]
        rows.append({"strategy": st.method, "kernel": st.kernel, "seed": seed, "cycle": cycle,
                     "n_labels": len(labelled), "test_acc": acc, "acquisition_seconds": acq_s,
                     "candidates": n_cand, "train_seconds": train_s})
        log.info("%s seed %d cycle %d/%d: %d labels, test acc %.4f (acquisition %.2fs, training %.2fs) | %s",
                 strategy, seed, cycle, cfg.cycles, len(labelled), acc, acq_s, train_s,
                 progress_line(cycle_seconds, cfg.cycles - cycle))
        if cycle == cfg.cycles:
            break
        unl = np.setdiff1d(np.arange(len(xp)), labelled)
        sub_rng = np.random.default_rng(np.random.SeedSequence([seed, 1, cycle]))
        size = cfg.naive_pool if st.method == "naive" else cfg.pool_subset
        pool = sub_rng.choice(unl, min(size, len(unl)), replace=False)  # candidate subset S
        k = min(cfg.per_cycle, len(pool))
        pool_t = torch.as_tensor(pool, device=dev)
        xs = xp[pool_t]
        t0 = time.perf_counter()
        if st.method == "random":
            pick = np.random.default_rng(np.random.SeedSequence([seed, 2, cycle])).choice(len(pool), k, replace=False)
        elif st.method in ("entropy", "margin"):
            pick = acquire_uncertainty(model, xs, k, st.method)
        elif st.method == "naive":
            pick = naive_scores(model, xp[lab], yp[lab], xs, cfg, seed, spec).topk(k).indices.numpy()
        else:
            pick, _ = acquire_mlmoc(model, xp[lab], yp[lab], xs, k, kind=st.kernel,
                                    sequential=st.method == "mlmoc-seq", y_s=yp[pool_t],
                                    ridge=cfg.ridge, reference=cfg.reference, method=cfg.kernel_method,
                                    dtype=cfg.kernel_dtype)
        acq_s, n_cand = time.perf_counter() - t0, len(pool)
        new = [int(pool[i]) for i in pick]
        labelled += new
        selected.append(new)
        cycle_seconds.append(time.perf_counter() - t_cycle)
    meta = {"strategy": strategy, "method": st.method, "kernel": st.kernel, "seed": seed,
            "config": asdict(cfg), "selected": selected}
    return rows, meta


def _cycles(n: int, desc: str):
    """range(n); a tqdm bar when stderr is a terminal (job logs get one line per cycle instead)."""
    if not sys.stderr.isatty():
        return range(n)
    from tqdm import tqdm

    return tqdm(range(n), desc=desc, unit="cycle")


def ci95(values: np.ndarray) -> float:
    """Half-width of the 95% t-interval of the mean (0 for fewer than 2 values)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return 0.0
    from scipy import stats

    return float(stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values)))


def run_from_store(data_path, strategy: str, seed: int, cfg: ALConfig) -> tuple[list[dict], dict]:
    """run_active_learning with pool = train split and test = test split of a prepared data store."""
    from ..data import open_prepared

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

    from ..provenance import atomic_write_json, atomic_write_text, provenance

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    atomic_write_json(json_path, {**meta, "provenance": provenance()})
    atomic_write_text(csv_path, buf.getvalue())

"""What an active-learning run is, without torch: its settings (ALConfig), strategy names, the columns of its
tidy CSV and the interval of its figures. The loop, the look-ahead and the retraining import it; so do the
report's active-learning figures, which need no torch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

REFERENCES = ("model", "flin")  # what the look-ahead linearises around (pntk.active.lookahead)
RETRAIN = ("warm", "cold")  # how f_L is retrained each cycle (pntk.active.training)
COLUMNS = ["strategy", "kernel", "seed", "cycle", "n_labels", "test_acc", "acquisition_seconds", "candidates",
           "train_seconds"]
KERNELS = ("pntk", "entk", "first_logit")
BASELINES = ("random", "entropy", "margin", "naive")
WARM_COLD = ("mlmoc-pntk",)  # strategies whose final labelled set is also trained the other way (al-warm-cold)


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
    # Thesis Algorithm 1: "Train f_{L_t} on L_{t+1}, using SGD, to obtain f_{L_{t+1}}" (warm start).
    retrain: str = "warm"
    # Naive look-ahead (pntk.active.naive): scores naive_pool candidates of S, more than it labels (else it
    # takes every candidate: random acquisition), each fine-tuned from f_L for §2.4's 15 epochs.
    naive_pool: int = 30
    naive_epochs: int | None = 15  # None: what the loop's next cycle does (retrain, epochs)
    # Block updates vs direct solves (pntk.active.blockcheck), candidates per batch-MLMOC acquisition: all of S
    # for scalar kernels (a (|L|+1)² solve each); the eNTK's (|L|·O + O)² solves cost ~O³ more, so its best 20.
    block_check: int = 500
    block_check_entk: int = 20
    device: str = "cpu"

    def __post_init__(self):
        for key in ("initial", "per_cycle", "pool_subset", "width", "epochs", "batch_size", "naive_pool"):
            if getattr(self, key) < 1:
                raise ValueError(f"active.{key}: must be >= 1, got {getattr(self, key)}")
        if self.per_cycle > self.pool_subset:
            raise ValueError(f"active.per_cycle ({self.per_cycle}) exceeds active.pool_subset ({self.pool_subset})")
        if self.naive_epochs is not None and self.naive_epochs < 1:
            raise ValueError(f"active.naive_epochs: must be >= 1 or null, got {self.naive_epochs}")
        if self.retrain not in RETRAIN:
            raise ValueError(f"active.retrain: {self.retrain!r}, expected one of {RETRAIN}")
        for key in ("block_check", "block_check_entk"):
            if 0 < getattr(self, key) < self.per_cycle or getattr(self, key) < 0:
                raise ValueError(f"active.{key}: {getattr(self, key)} candidates cannot contain the "
                                 f"active.per_cycle = {self.per_cycle} chosen; use 0 (no check) or >= {self.per_cycle}")
        if self.reference not in REFERENCES:
            raise ValueError(f"active.reference: {self.reference!r}, expected one of {REFERENCES}")
        if self.loss not in ("mse", "cross_entropy"):
            raise ValueError(f"active.loss: {self.loss!r}, expected 'mse' or 'cross_entropy'")
        if self.kernel_dtype not in ("float32", "float64"):
            raise ValueError(f"active.kernel_dtype: {self.kernel_dtype!r}, expected float32 or float64")

    def check_naive(self) -> None:
        """The naive strategy's sizes: more candidates than labels per cycle, all drawn from S."""
        if not self.per_cycle < self.naive_pool <= self.pool_subset:
            raise ValueError(f"active.naive_pool: {self.naive_pool}, expected more than active.per_cycle = "
                             f"{self.per_cycle} (else naive look-ahead takes every candidate: random acquisition) "
                             f"and at most active.pool_subset = {self.pool_subset} (its candidates come from S)")

    def check_budget(self, kernel: str) -> int:
        """Candidates per batch-MLMOC acquisition checked against direct solves (0: none)."""
        return self.block_check_entk if kernel == "entk" else self.block_check

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


def ci95(values: np.ndarray) -> float:
    """Half-width of the 95% t-interval of the mean (0 for fewer than 2 values)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return 0.0
    from scipy import stats

    return float(stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values)))

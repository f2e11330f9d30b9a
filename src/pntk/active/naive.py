"""Naive look-ahead (thesis §2.4, Fig 2.1a "Naive"): MLMOC with the network actually retrained per candidate.

The look-ahead MLMOC approximates is f_L →(L⁺) f_{L⁺}: retraining that *starts from f_L* (§2.2; Eq. 2.11
linearises around θ_L). §2.4: "For the naïve version, we retrain the neural network for 15 epochs using SGD."
So by default (active.naive_epochs = 15) each candidate gets a copy of f_L fine-tuned for 15 epochs on
L ∪ {(x', y')}; naive_epochs = null instead does exactly what the loop's next cycle would do
(active.retrain, active.epochs). The scores sum over the same U as MLMOC's (the candidate subset S of
active.pool_subset), but only the first active.naive_pool candidates of S are scored (S is in random order):
scoring more candidates than it labels is what makes it a look-ahead, and its time is per candidate.
"""
from __future__ import annotations

import copy

import torch
from torch import Tensor

from ..models import ModelSpec
from .settings import ALConfig
from .training import fit, outputs, retrain


def naive_scores(model, x_l, y_l, x_u, cfg: ALConfig, seed: int, spec: ModelSpec | None = None,
                 candidates: int | None = None) -> Tensor:
    """(candidates,) Σ_{x∈U} ‖f_L(x) − f_new(x)‖₂ for the first `candidates` points x' of x_u (all if None),
    U = x_u, f_new the network retrained on L ∪ {(x', argmax f_L(x'))} (module doc). The quantity MLMOC
    approximates."""
    if cfg.naive_epochs is None and cfg.retrain == "cold" and spec is None:
        raise ValueError("naive look-ahead retrained from the initialisation needs the model spec")
    n = len(x_u) if candidates is None else int(candidates)
    if not 0 < n <= len(x_u):
        raise ValueError(f"naive look-ahead: {n} candidates out of {len(x_u)} points of U")
    f_u = outputs(model, x_u)  # (|U|, O)
    pseudo = f_u[:n].argmax(1)
    scores = torch.empty(n, dtype=torch.float64)
    for j in range(n):
        x = torch.cat([x_l, x_u[j:j + 1]])
        y = torch.cat([y_l, pseudo[j:j + 1]])
        if cfg.naive_epochs is None:
            m = retrain(copy.deepcopy(model), spec, seed, x, y, cfg)
        else:
            m = fit(copy.deepcopy(model), x, y, cfg, cfg.naive_epochs, seed)
        scores[j] = torch.linalg.vector_norm(outputs(m, x_u) - f_u, dim=1).sum()
    return scores

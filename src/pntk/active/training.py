"""SGD for the active-learning loop: one fit, eval-mode outputs, and retraining warm or cold.

Thesis Algorithm 1 warm-starts every cycle ("Train f_{L_t} on L_{t+1}, using SGD, to obtain f_{L_{t+1}}"), and
Theorem 2.2.1 says that in the infinite-width limit this ends where training from the initialisation on the
last labelled set ends (cold start). `active.retrain` picks the loop's way (default warm, as Algorithm 1);
:func:`other_start` trains the final labelled set the other way for the claim al-warm-cold.
"""
from __future__ import annotations

import torch
from torch import nn

from ..models import ModelSpec, init_model
from ..train import epoch_order, evaluate, loss_fn
from ..train.sgd import SGD
from .settings import RETRAIN, ALConfig


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


def retrain(prev: nn.Module | None, spec: ModelSpec, seed: int, x: torch.Tensor, y: torch.Tensor, cfg: ALConfig,
            how: str | None = None) -> nn.Module:
    """f_{L_{t+1}} on (x, y) for cfg.epochs: from `prev` (warm; trained in place) or from the seed's
    initialisation (cold, or the first cycle). `how` overrides cfg.retrain."""
    how = how or cfg.retrain
    if how not in RETRAIN:
        raise ValueError(f"active.retrain: {how!r}, expected one of {RETRAIN}")
    start = init_model(spec, seed).to(x.device) if prev is None or how == "cold" else prev
    return fit(start, x, y, cfg, cfg.epochs, seed)


def other_start(labelled_per_cycle: list[list[int]], spec: ModelSpec, seed: int, xp, yp, xt, yt,
                cfg: ALConfig) -> float:
    """Test accuracy of the final labelled set trained the way the loop did not: cold (from the init, one
    fit) when the loop warm-starts; warm (the loop's sequence of labelled sets, each fit starting from the
    previous network) when it cold-starts. labelled_per_cycle: the positions labelled at each cycle."""
    other = "cold" if cfg.retrain == "warm" else "warm"
    sets, lab = [], []
    for new in labelled_per_cycle:
        lab = lab + list(new)
        sets.append(torch.as_tensor(lab, device=xp.device))
    model = None
    for idx in (sets[-1:] if other == "cold" else sets):
        model = retrain(model, spec, seed, xp[idx], yp[idx], cfg, how=other)
    return float(evaluate(model, xt, yt, cfg.loss)[1])

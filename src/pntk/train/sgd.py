"""SGD with momentum and weight decay, step for step what ``torch.optim.SGD`` computes on one device.

Why not torch's: constructing ``torch.optim.Optimizer`` imports ``torch._dynamo`` (its methods are wrapped
by ``torch._disable_dynamo``, which imports the compiler on first call): ≈ 2.7 s of CPU on this project's
development VM, in every training job and every active-learning job — longer than most of their training.
The update is torch's single-tensor SGD (``torch/optim/sgd.py``, dampening 0, no Nesterov, not maximize),
so trajectories are bitwise equal to it (tests/test_train.py compares them); ``load_state_dict`` also takes
the state dict of a ``torch.optim.SGD`` (resume files written before this class existed).
"""
from __future__ import annotations

from collections.abc import Iterable

import torch


class SGD:
    def __init__(self, params: Iterable[torch.nn.Parameter], *, lr: float, momentum: float = 0.0,
                 weight_decay: float = 0.0):
        self.params = [p for p in params]
        if not self.params:
            raise ValueError("SGD: no parameters to optimise")
        if lr <= 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD: lr {lr} must be > 0, momentum {momentum} and weight_decay {weight_decay} ≥ 0")
        self.lr, self.momentum, self.weight_decay = float(lr), float(momentum), float(weight_decay)
        self.buffers: list[torch.Tensor | None] = [None] * len(self.params)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad.detach_().zero_()

    @torch.no_grad()
    def step(self) -> None:
        for i, p in enumerate(self.params):
            if p.grad is None:  # as torch: parameters without a gradient are skipped (their buffer kept)
                continue
            grad = p.grad
            if self.weight_decay:
                grad = grad.add(p, alpha=self.weight_decay)
            if self.momentum:
                buf = self.buffers[i]
                if buf is None:
                    buf = self.buffers[i] = torch.clone(grad).detach()
                else:
                    buf.mul_(self.momentum).add_(grad)  # dampening 0: alpha = 1 - 0
                grad = buf
            p.add_(grad, alpha=-self.lr)

    def state_dict(self) -> dict:
        return {"lr": self.lr, "momentum": self.momentum, "weight_decay": self.weight_decay,
                "momentum_buffers": [None if b is None else b.clone() for b in self.buffers]}

    def load_state_dict(self, state: dict) -> None:
        if "momentum_buffers" in state:
            buffers = state["momentum_buffers"]
        elif "state" in state:  # torch.optim.SGD's: {"state": {index: {"momentum_buffer": t}}, "param_groups": ...}
            buffers = [state["state"].get(i, state["state"].get(str(i), {})).get("momentum_buffer")
                       for i in range(len(self.params))]
        else:
            raise ValueError(f"SGD state dict: expected 'momentum_buffers' or torch's 'state', got {sorted(state)}")
        if len(buffers) != len(self.params):
            raise ValueError(f"SGD state dict: {len(buffers)} momentum buffers for {len(self.params)} parameters")
        self.buffers = [None if b is None else b.to(p.device, p.dtype).clone() for b, p in zip(buffers, self.params)]

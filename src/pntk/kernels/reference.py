"""Reference eNTK: plain autograd, one forward per sample and one backward per (sample, output).

The oracle every fast path is tested against. It always builds the full eNTK
Θ_ab(x, x') = ∇θ f_a(x) · ∇θ f_b(x') and derives the other kinds from it by their definitions,
so it does not share the row trick of the fast methods.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ._common import (
    blocked_kernel,
    contract_rows,
    default_batch_size,
    mirror_lower,
    side_block,
    trainable_parameters,
)


def per_sample_jacobian(model: nn.Module, xb: Tensor, params: list[Tensor]) -> Tensor:
    """Per-sample Jacobian of all outputs w.r.t. ``params``: (n, O, P), P = total size of params."""
    jrows = []
    for n in range(xb.shape[0]):
        out = model(xb[n:n + 1])  # (1, O)
        o = out.shape[1]
        per_output = []
        for a in range(o):
            grads = torch.autograd.grad(out[0, a], params, retain_graph=a < o - 1, allow_unused=True)
            flat = [torch.zeros(p.numel(), dtype=p.dtype, device=p.device) if g is None else g.reshape(-1)
                    for g, p in zip(grads, params)]  # each (P_k,)
            per_output.append(torch.cat(flat))  # (P,)
        jrows.append(torch.stack(per_output))  # (O, P)
    return torch.stack(jrows)  # (n, O, P)


def reduce_entk(entk: Tensor, kind: str) -> Tensor:
    """eNTK (N1, N2, O, O) -> ``kind`` by definition."""
    o = entk.shape[-1]
    if kind == "entk":
        return entk
    if kind == "pntk":  # NTK of sum_a f_a / sqrt(O) = (1/O) sum_ab Θ_ab
        return entk.sum(dim=(2, 3)) / o  # (N1, N2)
    if kind == "first_logit":
        return entk[:, :, 0, 0]  # (N1, N2)
    if kind == "trace":
        return torch.diagonal(entk, dim1=2, dim2=3).sum(-1) / o  # (N1, N2, O) -> (N1, N2)
    raise ValueError(f"unknown kind {kind!r}")


def _plain(k: Tensor, lower: bool) -> Tensor:
    """The oracle contracts every pair; K(x, x) is made exactly symmetric from its lower triangle."""
    return mirror_lower(k) if lower else k


def kernel(model: nn.Module, x1: Tensor, x2: Tensor | None, *, kind: str, num_outputs: int,
           batch_size: int | None, progress: bool | None = None) -> Tensor:
    """Reference kernel of ``kind``; shapes as in :func:`pntk.kernels.empirical_kernel`."""
    params = list(trainable_parameters(model).values())
    num_params = sum(p.numel() for p in params)
    dtype = params[0].dtype
    if batch_size is None:
        batch_size = default_batch_size(num_params, num_outputs, dtype.itemsize, x1.device)
    block = side_block(batch_size, num_outputs)
    entk = blocked_kernel(
        featurize=lambda xb: per_sample_jacobian(model, xb, params),  # (n, O, P)
        contract=lambda j1, j2, lower: _plain(contract_rows(j1, j2, diagonal=False), lower),  # (n1, n2, O, O)
        x1=x1, x2=x2, block=block, tail=(num_outputs, num_outputs), dtype=dtype,
        progress=progress)
    return reduce_entk(entk, kind)

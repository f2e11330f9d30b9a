"""Jacobian method: torch.func ``vmap(jacrev(...))`` over ``functional_call``, contracted per tensor.

For a block of n samples it materializes the per-sample Jacobian rows J (n, R, P_k) of every
trainable parameter tensor k and accumulates Σ_k J1_k J2_kᵀ. Also used by the structured method
for the parameters it has no layer rule for (``per_sample_rows`` with a subset of parameters).
"""
from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn
from torch.func import functional_call, jacrev, vmap

from ._common import (
    JacobianRows,
    add_rows,
    blocked_kernel,
    default_batch_size,
    finish,
    mirror_lower,
    pair_layout,
    result_tail,
    side_block,
    trainable_parameters,
)


def per_sample_rows(model: nn.Module, xb: Tensor, jrows: JacobianRows, names: list[str]) -> list[Tensor]:
    """Per-sample Jacobian rows of the parameters ``names``: list of (n, R, P_k).

    Row r is ∇ of sum_a C[r, a] f_a(x). Other parameters enter as constants. Falls back to a
    per-sample autograd loop when the model cannot run under ``vmap`` (e.g. data-dependent Python).
    """
    all_params = dict(model.named_parameters())
    wrt = {k: all_params[k].detach() for k in names}
    const = {k: p.detach() for k, p in all_params.items() if k not in wrt}
    cot = jrows.cotangents  # (R, O)

    def f(p: dict[str, Tensor], x: Tensor) -> Tensor:  # x: (*in_shape) -> (R,)
        out = functional_call(model, (p, const), (x.unsqueeze(0),))  # (1, O)
        return cot @ out[0]  # (R, O) @ (O,) -> (R,)

    n = xb.shape[0]
    try:
        with warnings.catch_warnings():
            # vmap runs an op without a batching rule (e.g. attention's fused kernel) as a loop and warns
            # about "a performance drop" on every call: the result is exact, and the warning filled job logs.
            warnings.filterwarnings("ignore", message="There is a performance drop", category=UserWarning)
            jac = vmap(jacrev(f), in_dims=(None, 0))(wrt, xb)  # name -> (n, R, *shape)
    except (RuntimeError, NotImplementedError) as err:  # e.g. data-dependent control flow
        if "vmap" not in str(err) and "functorch" not in str(err):
            raise
        return _loop_rows(model, xb, jrows, names)
    return [jac[k].reshape(n, jrows.num_rows, -1) for k in names]  # (n, R, *shape) -> (n, R, P_k)


def _loop_rows(model: nn.Module, xb: Tensor, jrows: JacobianRows, names: list[str]) -> list[Tensor]:
    """Same as per_sample_rows with one forward per sample and one backward per (sample, row)."""
    all_params = dict(model.named_parameters())
    params = [all_params[k] for k in names]
    out_rows: list[list[Tensor]] = [[] for _ in names]
    for n in range(xb.shape[0]):
        out = model(xb[n:n + 1])[0]  # (O,)
        s = jrows.cotangents @ out  # (R,)
        per_row = [torch.autograd.grad(s[r], params, retain_graph=True, allow_unused=True)
                   for r in range(jrows.num_rows)]
        for k, p in enumerate(params):
            g = [torch.zeros_like(p) if pr[k] is None else pr[k] for pr in per_row]
            out_rows[k].append(torch.stack(g).reshape(jrows.num_rows, -1))  # (R, P_k)
    return [torch.stack(r) for r in out_rows]  # (n, R, P_k)


def contract_tensors(j1: list[Tensor], j2: list[Tensor], diagonal: bool, lower: bool = False) -> Tensor:
    """Σ over parameter tensors of row inner products -> (n1, n2) or (n1, n2, R, R); ``lower``: j2 is j1,
    K(x, x) from its lower triangle (exactly symmetric)."""
    acc = None
    for a, b in zip(j1, j2):
        acc = add_rows(acc, a, a if lower else b, diagonal, lower)  # GEMMs accumulating in place, row layout
    k = pair_layout(acc, j1[0].shape[0], j2[0].shape[0], j1[0].shape[1], diagonal)
    return mirror_lower(k) if lower else k


def kernel(model: nn.Module, x1: Tensor, x2: Tensor | None, *, jrows: JacobianRows,
           batch_size: int | None, progress: bool | None = None, flat: bool = False) -> Tensor:
    """Kernel via per-sample Jacobians; shapes as in :func:`pntk.kernels.empirical_kernel`."""
    params = trainable_parameters(model)
    names = list(params)
    dtype = params[names[0]].dtype
    r = jrows.num_rows
    if batch_size is None:
        num_params = sum(p.numel() for p in params.values())
        batch_size = default_batch_size(num_params, r, dtype.itemsize, x1.device)
    raw = blocked_kernel(
        featurize=lambda xb: per_sample_rows(model, xb, jrows, names),  # list of (n, R, P_k)
        contract=lambda a, b, lower: contract_tensors(a, b, jrows.diagonal, lower),
        x1=x1, x2=x2, block=side_block(batch_size, r), tail=result_tail(jrows), dtype=dtype,
        progress=progress, flat=flat)
    return finish(raw, jrows)

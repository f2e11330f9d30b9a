"""Pieces shared by every kernel method: kinds as Jacobian "rows", blocking, model state, budgets.

Every kind is a contraction of Jacobian *rows*: a row r is the gradient of the scalar
``sum_a C[r, a] f_a(x)`` for a cotangent matrix ``C`` of shape (R, O):

    kind         C (R, O)          pairing          result
    pntk         ones(1, O)/sqrt O  full (R = 1)     (N1, N2)
    first_logit  e_0  (1, O)        full (R = 1)     (N1, N2)
    entk         I_O  (O, O)        full             (N1, N2, O, O)
    trace        I_O  (O, O)        diagonal, × 1/O  (N1, N2)

"full" contracts every row pair (r, s) -> (N1, N2, R, R); "diagonal" only r = s, summed -> (N1, N2).
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ._progress import Progress

log = logging.getLogger("pntk.kernels")

DEFAULT_MEMORY_BYTES = 1 << 30  # per-sample-gradient budget when batch_size is None (CPU)


@dataclass(frozen=True)
class JacobianRows:
    """How a kernel kind is built from Jacobian rows (see module docstring)."""

    cotangents: Tensor  # (R, O)
    diagonal: bool      # True: sum_r <J_r(x), J_r(x')> -> (N1, N2); False: all (r, s) -> (N1, N2, R, R)
    scale: float        # multiplies the result
    squeeze: bool       # full with R = 1: return (N1, N2) instead of (N1, N2, 1, 1)

    @property
    def num_rows(self) -> int:
        return self.cotangents.shape[0]


def jacobian_rows(kind: str, num_outputs: int, dtype: torch.dtype, device: torch.device) -> JacobianRows:
    """JacobianRows of ``kind`` for a model with ``num_outputs`` outputs."""
    o = num_outputs
    if kind == "pntk":
        c = torch.full((1, o), 1.0 / math.sqrt(o), dtype=dtype, device=device)  # (1, O)
        return JacobianRows(c, diagonal=False, scale=1.0, squeeze=True)
    if kind == "first_logit":
        c = torch.zeros(1, o, dtype=dtype, device=device)  # (1, O)
        c[0, 0] = 1.0
        return JacobianRows(c, diagonal=False, scale=1.0, squeeze=True)
    eye = torch.eye(o, dtype=dtype, device=device)  # (O, O)
    if kind == "entk":
        return JacobianRows(eye, diagonal=False, scale=1.0, squeeze=False)
    if kind == "trace":
        return JacobianRows(eye, diagonal=True, scale=1.0 / o, squeeze=False)
    raise ValueError(f"unknown kind {kind!r}")


def result_tail(jrows: JacobianRows) -> tuple[int, ...]:
    """Trailing shape of a raw kernel block: () for diagonal, (R, R) for full."""
    return () if jrows.diagonal else (jrows.num_rows, jrows.num_rows)


def finish(k: Tensor, jrows: JacobianRows) -> Tensor:
    """Raw (N1, N2[, R, R]) -> the kind's result (scale, squeeze); a flat raw (N1·R, N2·R) keeps its layout."""
    if jrows.scale != 1.0:
        k = k * jrows.scale
    if jrows.squeeze and k.dim() == 4:
        k = k[:, :, 0, 0]  # (N1, N2, 1, 1) -> (N1, N2)
    return k


def gram(a: Tensor, b: Tensor, out: Tensor | None = None) -> Tensor:
    """a (M, P) @ b (M', P)ᵀ -> (M, M'), into ``out`` if given (a reused buffer skips the page faults of a
    fresh allocation)."""
    return torch.mm(a, b.T) if out is None else torch.mm(a, b.T, out=out)


# Kernel blocks are accumulated in "row layout": a 2-D matrix whose GEMMs write in place —
# (n1, n2) for a diagonal pairing, (n1·R, n2·R) for a full one; pair_layout views it as (n1, n2, R, R).
def flat_rows(j: Tensor, diagonal: bool) -> Tensor:
    """Per-sample rows j (n, R, P) as a matrix: (n, R·P) for diagonal (Σ_r is then one GEMM), else (n·R, P)."""
    n, r, p = j.shape
    return j.reshape(n, r * p) if diagonal else j.reshape(n * r, p)


def add_rows(acc: Tensor | None, j1: Tensor, j2: Tensor, diagonal: bool, lower: bool = False) -> Tensor:
    """acc (row layout) += inner products of rows j1 (n1, R, P), j2 (n2, R, P); a new acc when None.
    ``lower``: j2 is j1 and only sample pairs n ≥ m are needed (see ``lower_chunks``; mirror afterwards)."""
    a = flat_rows(j1, diagonal)  # (n1, R·P) or (n1·R, P)
    b = a if j2 is j1 else flat_rows(j2, diagonal)
    if not lower:
        if acc is None:
            return gram(a, b)  # (n1, n2) or (n1·R, n2·R)
        return acc.addmm_(a, b.T)  # GEMM accumulating in place: no temporary of the block's size
    per = a.shape[0] // j1.shape[0]  # rows per sample: 1 (diagonal) or R
    acc = a.new_zeros(a.shape[0], b.shape[0]) if acc is None else acc
    for s0, s1 in lower_chunks(j1.shape[0], per):
        acc[s0 * per:s1 * per, :s1 * per].addmm_(a[s0 * per:s1 * per], b[:s1 * per].T)  # rows s0:s1, columns ≤ s1
    return acc


TRI_ROWS = 128  # GEMM rows per chunk of a lower-triangle contraction: smaller GEMMs lose more than they save


def lower_chunks(n: int, rows_per_sample: int = 1) -> list[tuple[int, int]]:
    """Sample ranges (s0, s1) of a symmetric contraction done as row chunks against columns 0:s1: every pair
    n ≥ m is covered (and the upper part of each diagonal chunk). Up to 16 chunks (≈ 53 % of the full work)."""
    chunks = max(1, min(16, n * rows_per_sample // TRI_ROWS))
    edges = [n * c // chunks for c in range(chunks + 1)]
    return [(edges[c], edges[c + 1]) for c in range(chunks) if edges[c + 1] > edges[c]]


def mirror_lower(k: Tensor) -> Tensor:
    """(n, n[, R, R]) whose pairs n ≥ m are right -> the exactly symmetric kernel: the strict upper triangle
    from the lower one (R × R blocks transposed), diagonal entries (K + Kᵀ)/2."""
    n = k.shape[0]
    low = torch.tril(torch.ones(n, n, dtype=torch.bool, device=k.device), -1)  # (n, n): m < n
    if k.dim() == 4 and k.permute(0, 2, 1, 3).is_contiguous():  # a view of row layout: stay in it
        r = k.shape[2]
        flat = k.permute(0, 2, 1, 3).reshape(n * r, n * r)  # (n·R, n·R), no copy
        mask = low.repeat_interleave(r, 0).repeat_interleave(r, 1)  # (n·R, n·R): sample blocks m < n
        out = torch.where(mask, flat, flat.T).view(n, r, n, r)  # symmetric K ⟺ flat = flatᵀ
        idx = torch.arange(n, device=k.device)
        d = out[idx, :, idx, :]  # (n, R, R) diagonal blocks, as computed
        out[idx, :, idx, :] = 0.5 * (d + d.transpose(1, 2))
        return out.permute(0, 2, 1, 3)  # (n, n, R, R) view of the row-layout result
    low = low.view(n, n, *([1] * (k.dim() - 2)))
    out = torch.where(low, k, _mirror(k))  # lower from k, upper from the mirror of its lower
    idx = torch.arange(n, device=k.device)
    d = k[idx, idx]  # (n[, R, R])
    out[idx, idx] = 0.5 * (d + d.transpose(-1, -2)) if k.dim() == 4 else d
    return out


def pair_layout(acc: Tensor, n1: int, n2: int, r: int, diagonal: bool) -> Tensor:
    """Row layout -> (n1, n2) for diagonal, else the view (n1, n2, R, R) of (n1·R, n2·R)."""
    if diagonal:
        return acc
    return acc.view(n1, r, n2, r).permute(0, 2, 1, 3)  # (n1, R, n2, R) -> (n1, n2, R, R)


def contract_rows(j1: Tensor, j2: Tensor, diagonal: bool, lower: bool = False) -> Tensor:
    """Inner products of per-sample gradient rows.

    j1: (n1, R, P), j2: (n2, R, P) -> (n1, n2) if diagonal else (n1, n2, R, R); ``lower``: K(x, x) of j1 = j2
    from its lower triangle, mirrored (exactly symmetric).
    """
    k = pair_layout(add_rows(None, j1, j2, diagonal, lower), j1.shape[0], j2.shape[0], j1.shape[1], diagonal)
    return mirror_lower(k) if lower else k


def side_block(batch_size: int, num_rows: int) -> int:
    """Samples per block on each side so that two blocks of rows fit in batch_size rows.

    The bound "at most batch_size x P per-sample gradient values held" holds whenever
    batch_size >= 2 * num_rows; below that a block is one sample (the minimum).
    """
    return max(1, batch_size // (2 * num_rows))


def default_batch_size(num_params: int, num_rows: int, itemsize: int, device: torch.device) -> int:
    """Rows of per-sample gradients that fit the memory budget (at least 2 * num_rows)."""
    budget = DEFAULT_MEMORY_BYTES
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        budget = max(budget, free // 4)
    else:
        try:
            import psutil

            budget = min(budget, psutil.virtual_memory().available // 4)
        except ImportError:  # pragma: no cover - psutil is a dependency
            pass
    return max(2 * num_rows, budget // max(1, num_params * itemsize))


def _mirror(t: Tensor) -> Tensor:
    """(a, b[, R, R]) -> (b, a[, R, R]ᵀ): K(x', x) from K(x, x')."""
    t = t.transpose(0, 1)
    return t.transpose(2, 3) if t.dim() == 4 else t


def blocked_kernel(
    featurize: Callable[[Tensor], Any],
    contract: Callable[[Any, Any, bool], Tensor],
    x1: Tensor,
    x2: Tensor | None,
    block: int,
    tail: tuple[int, ...],
    dtype: torch.dtype,
    progress: bool | None = None,
    flat: bool = False,
) -> Tensor:
    """Assemble K (N1, N2, *tail) from blocks of ``block`` samples per side; ``flat`` with tail (R, R): the
    row layout (N1·R, N2·R) instead (row n·R + r), which the blocks' contractions produce: no transposing copy.

    ``featurize(xb)`` maps a block of inputs to features (tensors with samples on dim 0),
    ``contract(f1, f2, lower)`` two feature sets to a (n1, n2, *tail) block; ``lower=True`` (f2 is f1) asks for
    the exactly symmetric K(x, x) of one block, computed from its lower triangle. With ``x2 is None`` only
    blocks j >= i are computed and mirrored (tail (R, R) is transposed too). At most two blocks of features
    are alive at any time. ``progress``: see ``_progress.py``.
    """
    sym = x2 is None
    xb2 = x1 if sym else x2
    n1, n2 = x1.shape[0], xb2.shape[0]
    starts1 = range(0, n1, block)
    pairs = [(i, j) for i in starts1 for j in range(i if sym else 0, n2, block)]
    ticker = Progress(sum(min(block, n1 - i) * min(block, n2 - j) for i, j in pairs),
                      f"kernel {n1}×{n2} in {len(pairs)} block pairs", log, progress)
    flat = flat and len(tail) == 2
    r = tail[0] if flat else 1
    k = k_flat = None
    if len(pairs) > 1 and flat:
        k_flat = torch.empty(n1 * r, n2 * r, dtype=dtype, device=x1.device)  # (N1·R, N2·R)
        k = k_flat.view(n1, r, n2, r).permute(0, 2, 1, 3)  # its (N1, N2, R, R) view: blocks written through it
    elif len(pairs) > 1:
        k = torch.empty(n1, n2, *tail, dtype=dtype, device=x1.device)  # (N1, N2, *tail)
    try:
        for i in starts1:
            f1 = featurize(x1[i:i + block])
            for j in range(i if sym else 0, n2, block):
                same = sym and j == i
                if same:
                    kb = contract(f1, f1, True)  # (b1, b1, *tail), exactly symmetric
                else:
                    kb = contract(f1, featurize(xb2[j:j + block]), False)  # (b1, b2, *tail)
                ticker.advance(kb.shape[0] * kb.shape[1])
                if k is None:  # one block pair is the whole kernel: no copy into a result (row layout: a view)
                    return kb.permute(0, 2, 1, 3).reshape(n1 * r, n2 * r) if flat else kb.contiguous()
                k[i:i + block, j:j + block] = kb
                if sym and not same:
                    k[j:j + block, i:i + block] = _mirror(kb)
                del kb
            del f1
    finally:
        ticker.close()
    return k_flat if flat else k


@contextmanager
def evaluation_mode(model: nn.Module):
    """model.eval() for the duration; every submodule's training flag restored afterwards."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, flag in flags:
            m.training = flag


@contextmanager
def tf32_mode(allow: bool):
    """TF32 for matmuls and cuDNN convolutions set to ``allow`` for the duration, restored afterwards.

    PyTorch's defaults are matmul off but cuDNN on, so a ConvNet's kernel on an Ampere+ GPU would be computed
    with 10-bit mantissas unless both are switched off: kernel values are compared across methods and
    widths at the 1e-3 level, so TF32 is opt-in (config ``kernels.allow_tf32``)."""
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = bool(allow)
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def trainable_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """name -> parameter with requires_grad (tied parameters once, under their first name)."""
    return {n: p for n, p in model.named_parameters() if p.requires_grad}

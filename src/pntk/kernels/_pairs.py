"""Position-pair contractions of matmul-like layers as large GEMMs (notation of ``_layers.py``).

A layer with patches U (n, g, L, din) and output gradients D (n, R, g, L, dout) adds, per group,

    K[n, m, r, s] = Σ_{l,k} UU[n,l; m,k] · (D1[n,r,l] · D2[m,s,k]),    UU = U1 U2ᵀ over din.

Two exact forms, both built from GEMMs over all samples of a chunk at once (not per sample pair):

"diagonal"  (kind trace, or R = 1: pNTK, first logit) Σ_r D1[n,r,l]·D2[m,r,k] is one GEMM DD over (r, o),
            so K[n, m] = Σ_{l,k} (UU ∘ DD)[n,l; m,k]: two GEMMs of (n1·L) × (n2·L) and one elementwise pass.
"full"      (eNTK, R > 1) UU is folded into D2 first — no (R, R, L, L) intermediate per pair:
            E[m; n,l; o,s] = Σ_k UU[n,l; m,k] D2[m,k; o,s]     one GEMM per sample m, (n1·L × L) @ (L × dout·R)
            K[n, m]        = D1[n] (R × L·dout) @ E[m; n] (L·dout × R)       one batched GEMM over n per m
            cost per pair L·(L·din + L·R·dout + R²·dout) instead of R²·din·dout for explicit gradients.

Side-2 samples go in chunks whose intermediates stay within CHUNK_ELEMENTS; the buffers are allocated once
per call (``Scratch``) and reused: a fresh buffer per chunk page-faults, which cost as much as the math.
``lower``: f1 is f2 (x2 = None) and only pairs n ≥ m are needed (the caller mirrors the rest): a chunk of
side-2 samples starting at m0 skips rows n < m0, about half the work.
"""
from __future__ import annotations

import torch
from torch import Tensor

CHUNK_ELEMENTS = 1 << 21  # intermediates of one side-2 chunk (16 MiB in float64: L3, not L2, sized)


class Scratch:
    """Flat buffers reused by every layer and chunk of one contraction, viewed at the size asked for."""

    def __init__(self):
        self._flat: dict[str, Tensor] = {}

    def get(self, name: str, shape: tuple[int, ...], like: Tensor) -> Tensor:
        numel = 1
        for s in shape:
            numel *= s
        buf = self._flat.get(name)
        if buf is None or buf.numel() < numel or buf.dtype != like.dtype or buf.device != like.device:
            buf = self._flat[name] = like.new_empty(numel)
        return buf[:numel].view(shape)


def _chunk(per_sample: int) -> int:
    """Side-2 samples per chunk for ``per_sample`` intermediate elements each."""
    return max(1, CHUNK_ELEMENTS // max(1, per_sample))


def accumulate(acc: Tensor, u1: Tensor, d1: Tensor, u2: Tensor, d2: Tensor, diagonal: bool, lower: bool,
               scratch: Scratch) -> None:
    """acc += the weight term by position pairs. acc in row layout (see ``_common``): (n1, n2) for a diagonal
    pairing, else (n1·R, n2·R). U (n, g, L, din), D (n, R, g, L, dout)."""
    n1, g, npos, din = u1.shape
    n2, r = u2.shape[0], d1.shape[1]
    for gi in range(g):
        a1 = u1[:, gi].reshape(n1 * npos, din)  # (n1·L, din), rows (n, l)
        a2 = u2[:, gi].reshape(n2 * npos, din)  # (n2·L, din)
        if diagonal or r == 1:
            _diagonal_form(acc, a1, d1[:, :, gi], a2, d2[:, :, gi], npos, lower, scratch, full=not diagonal)
        else:
            _full_form(acc.view(n1, r, n2, r), a1, d1[:, :, gi], a2, d2[:, :, gi], npos, lower, scratch)


def _diagonal_form(acc, a1, d1, a2, d2, npos, lower, scratch, full):
    """K[n, m] += Σ_{l,k} UU ∘ DD, DD summed over the rows r. d (n, R, L, dout); acc (n1, n2), or (n1, n2) with
    R = 1 when ``full`` (row layout of a single row)."""
    n1, r, _, dout = d1.shape
    n2 = d2.shape[0]
    b1 = d1.permute(0, 2, 1, 3).reshape(n1 * npos, r * dout)  # (n1·L, R·dout), rows (n, l)
    b2 = d2.permute(0, 2, 1, 3).reshape(n2 * npos, r * dout)  # (n2·L, R·dout)
    cm = _chunk(2 * npos * npos * n1)
    for m0 in range(0, n2, cm):
        m1 = min(m0 + cm, n2)
        lo = m0 if lower else 0
        rows, cols = slice(m0 * npos, m1 * npos), slice(lo * npos, n1 * npos)
        uu = torch.mm(a2[rows], a1[cols].T, out=scratch.get("uu", ((m1 - m0) * npos, (n1 - lo) * npos), a1))
        dd = torch.mm(b2[rows], b1[cols].T, out=scratch.get("dd", uu.shape, a1))  # (cm·L, cn·L) [(m,k); (n,l)]
        uu.mul_(dd)
        part = uu.view(m1 - m0, npos, n1 - lo, npos).sum(3).sum(1)  # (cm, cn): Σ over k, then l
        acc[lo:, m0:m1] += part.T


def _full_form(acc4, a1, d1, a2, d2, npos, lower, scratch):
    """acc4 (n1, R, n2, R) += K[n, :, m, :] by the E fold. d (n, R, L, dout)."""
    n1, r, _, dout = d1.shape
    n2 = d2.shape[0]
    q = npos * dout
    e1 = d1.reshape(n1, r, q)  # (n1, R, L·dout), contiguous over (l, o)
    e2 = d2.permute(0, 2, 3, 1).reshape(n2, npos, dout * r)  # (n2, L, dout·R): rows k, columns (o, s)
    cm = _chunk(n1 * npos * (dout * r + npos))
    out = scratch.get("kk", (n1, r, r), a1)
    for m0 in range(0, n2, cm):
        m1 = min(m0 + cm, n2)
        lo = m0 if lower else 0
        cn = n1 - lo
        uut = torch.mm(a2[m0 * npos:m1 * npos], a1[lo * npos:].T,
                       out=scratch.get("uu", ((m1 - m0) * npos, cn * npos), a1))  # (cm·L, cn·L) [(m,k); (n,l)]
        e = torch.bmm(uut.view(m1 - m0, npos, cn * npos).transpose(1, 2), e2[m0:m1],
                      out=scratch.get("e", (m1 - m0, cn * npos, dout * r), a1))  # (cm, cn·L, dout·R)
        e = e.view(m1 - m0, cn, q, r)  # (m; n, (l, o), s)
        for j in range(m1 - m0):
            kb = torch.bmm(e1[lo:], e[j], out=out[:cn])  # (cn, R, R): D1[n] @ E[m; n]
            acc4[lo:, :, m0 + j, :] += kb


def flops(pairs: float, r: int, diagonal: bool, g: int, npos: int, din: int, dout: int) -> tuple[float, float]:
    """(FLOPs, time-weighted FLOPs) of the weight term by position pairs, ``pairs`` sample pairs. The weighted
    figure divides each stage by its measured efficiency against a large GEMM (``EFFICIENCY``)."""
    if diagonal or r == 1:
        gemm = 2.0 * pairs * g * npos * npos * (din + r * dout)
        elementwise = 2.0 * pairs * g * npos * npos
        return gemm + elementwise, gemm + elementwise / EFFICIENCY["elementwise"]
    uu = 2.0 * pairs * g * npos * npos * din
    fold = 2.0 * pairs * g * npos * npos * r * dout  # E: GEMMs with inner dimension L
    small = 2.0 * pairs * g * npos * r * r * dout  # D1 @ E: GEMMs with R rows
    return uu + fold + small, uu + fold / EFFICIENCY["fold"] + small / EFFICIENCY["rows"]


# Rates of the stages relative to a large GEMM of the same dtype, measured on the default ConvNet's layers
# (L = 16, din 288, dout 32, R = 10, 1 thread, AMD EPYC, 2026-12-07: benchmarks/BENCHMARKS.md "Kernel engine").
EFFICIENCY = {"fold": 0.5, "rows": 0.3, "elementwise": 0.1}

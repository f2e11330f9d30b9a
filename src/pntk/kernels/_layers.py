"""Layer rules of the structured method: features from (layer input, output gradient), contractions.

Notation: n samples in a block, R Jacobian rows, "Rp" row pairs (R² for full, R for diagonal).
A matmul-like layer (Linear, Conv2d) is written canonically as
    U (n, g, L, din)       layer-input patches: g groups, L positions, din = fan-in per group
    D (n, R, g, L, dout)   gradient of row r w.r.t. the layer output at each position
    per-sample weight gradient  G[n, r, g] = Σ_l D[n, r, g, l]ᵀ U[n, g, l]   (dout, din)
    per-sample bias gradient    b[n, r]    = Σ_l D[n, r, :, l]                (g·dout,)
and contributes Σ_g <G1[n, r, g], G2[m, s, g]> to K[n, m, r, s] (+ <b1, b2> with a bias). Modes:
    "gram"      L = 1:  (U1 U2ᵀ [+ 1]) ∘ (D1 D2ᵀ)         two GEMMs, no per-sample gradients
    "explicit"  build G (per-sample gradient, unfold + bmm), contract G1 G2ᵀ
    "pairs"     Σ_{l,l'} (U1[n,l]·U2[m,l']) (D1[n,r,l]·D2[m,s,l'])   (position pairs, no G; as GEMMs over
                all samples of a chunk, see ``_pairs.py``)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import _common, _pairs
from ._common import flat_rows
from ._pairs import Scratch

PATCH_ELEMENTS = 1 << 22  # patches unfolded at a time for explicit conv gradients on the CPU (32 MiB in float64)


# ----------------------------------------------------------------------------- canonical forms
def linear_u(x: Tensor) -> Tensor:
    """Linear input (n, *, din) -> U (n, 1, L, din), L = prod(*)."""
    n, din = x.shape[0], x.shape[-1]
    return x.reshape(n, 1, -1, din)  # (n, 1, L, din)


def _padded(m: nn.Conv2d, x: Tensor) -> tuple[Tensor, tuple[int, int]]:
    """Input padded the way nn.Conv2d pads it when that is not plain symmetric zero padding."""
    if m.padding_mode == "zeros" and not isinstance(m.padding, str):
        return x, tuple(m.padding)
    left, right, top, bottom = m._reversed_padding_repeated_twice  # how nn.Conv2d pads
    if m.padding_mode == "zeros" and left == right and top == bottom:
        return x, (top, left)  # symmetric 'same'/'valid'
    mode = "constant" if m.padding_mode == "zeros" else m.padding_mode
    return F.pad(x, m._reversed_padding_repeated_twice, mode=mode), (0, 0)  # (n, Cin, H', W')


def conv_u(m: nn.Conv2d, x: Tensor) -> Tensor:
    """Conv2d input (n, Cin, H, W) -> patches U (n, g, L, din), din = Cin/g·kh·kw."""
    x, pad = _padded(m, x)
    u = F.unfold(x, m.kernel_size, dilation=m.dilation, padding=pad, stride=m.stride)  # (n, Cin·kh·kw, L)
    n, g = x.shape[0], m.groups
    return u.view(n, g, -1, u.shape[-1]).transpose(2, 3)  # (n, g, din, L) -> (n, g, L, din)


def _from_patches(m: nn.Conv2d, x: Tensor, npos: int) -> bool:
    """Per-sample conv gradients from unfolded patches (one batched GEMM) rather than a convolution with n·g
    groups. On the CPU the grouped convolution runs group by group (and float64 has no oneDNN kernel), which
    loses on small images; on large ones the patches cost more than they save. Measured per layer (1 thread,
    AMD EPYC, 2026-12-07): patches win at L ≤ 16, and at L ≤ 64 in float64 or with din ≥ 1024 (1.2–1.5×);
    the grouped convolution wins at L = 256 in float32 and at L = 1024 (2.5×). GPUs: always the convolution."""
    if x.device.type != "cpu":
        return False
    din = m.weight[0].numel()
    return npos <= 16 or (npos <= 64 and (x.dtype == torch.float64 or din >= 1024))


def conv_weight_grad(m: nn.Conv2d, x: Tensor, dy: Tensor) -> Tensor:
    """Per-sample Conv2d weight gradients: x (n, Cin, H, W), dy (n, R, Cout, Ho, Wo) -> (n, R, Cout·Cin/g·kh·kw),
    from patches (PATCH_ELEMENTS at a time) or by one weight-backward of a convolution with n·g groups per
    row, whichever ``_from_patches`` says is faster."""
    n, r = dy.shape[:2]
    g, npos = m.groups, dy.shape[-1] * dy.shape[-2]
    if _from_patches(m, x, npos):
        step = max(1, PATCH_ELEMENTS // (g * npos * m.weight[0].numel()))  # samples whose patches fit
        parts = []
        for i in range(0, n, step):
            u = conv_u(m, x[i:i + step])  # (c, g, L, din)
            parts.append(weight_grad(u, matmul_d(dy[i:i + step], "conv", g)))  # (c, R, g·dout·din)
        return parts[0] if len(parts) == 1 else torch.cat(parts)
    x, pad = _padded(m, x)
    xg = x.reshape(1, -1, *x.shape[2:])  # (1, n·Cin, H', W'): samples become groups
    w = x.new_empty(1).expand(n * m.out_channels, *m.weight.shape[1:])  # shape only: (n·Cout, Cin/g, kh, kw)
    jrows = []
    for i in range(r):
        gy = dy[:, i].reshape(1, -1, *dy.shape[3:])  # (n, Cout, Ho, Wo) -> (1, n·Cout, Ho, Wo)
        gw = torch.ops.aten.convolution_backward(gy, xg, w, None, m.stride, pad, m.dilation, False, [0, 0],
                                                 n * m.groups, [False, True, False])[1]  # (n·Cout, Cin/g, kh, kw)
        jrows.append(gw.view(n, -1))  # (n, Cout·Cin/g·kh·kw)
    return jrows[0].unsqueeze(1) if r == 1 else torch.stack(jrows, 1)  # (n, R, P_w)


def matmul_d(dy: Tensor, kind: str, g: int) -> Tensor:
    """Output gradients -> D (n, R, g, L, dout).

    Linear: dy (n, R, *, dout). Conv2d: dy (n, R, Cout, Ho, Wo).
    """
    n, r = dy.shape[:2]
    if kind == "linear":
        return dy.reshape(n, r, 1, -1, dy.shape[-1])  # (n, R, 1, L, dout)
    d = dy.reshape(n, r, g, dy.shape[2] // g, -1)  # (n, R, g, dout, L)
    return d.transpose(3, 4)  # (n, R, g, L, dout)


def weight_grad(u: Tensor, d: Tensor) -> Tensor:
    """Per-sample weight gradients G: U (n, g, L, din), D (n, R, g, L, dout) -> (n, R, g·dout·din)."""
    n, g, npos, din = u.shape
    r, dout = d.shape[1], d.shape[-1]
    dt = d.permute(0, 2, 1, 4, 3).reshape(n * g, r * dout, npos)  # (n·g, R·dout, L)
    gw = torch.bmm(dt, u.reshape(n * g, npos, din))  # (n·g, R·dout, din)
    gw = gw.view(n, g, r, dout * din).transpose(1, 2)  # (n, R, g, dout·din)
    return gw.reshape(n, r, g * dout * din)  # (n, R, g·dout·din)


def bias_grad(dy: Tensor, kind: str) -> Tensor:
    """Per-sample bias gradients from output gradients (see matmul_d) -> (n, R, Cout)."""
    n, r = dy.shape[:2]
    if kind == "linear":
        return dy.reshape(n, r, -1, dy.shape[-1]).sum(2)  # (n, R, L, dout) -> (n, R, dout)
    return dy.flatten(3).sum(-1)  # (n, R, Cout, Ho·Wo) -> (n, R, Cout)


def bn_grads(m: nn.modules.batchnorm._BatchNorm, x: Tensor, dy: Tensor, weight: bool, bias: bool) -> list[Tensor]:
    """Eval-mode BatchNorm y = x̂ γ + β per channel: per-sample grads of γ, β, each (n, R, C).

    x: (n, C, *), dy: (n, R, C, *).
    """
    shape = (1, -1) + (1,) * (x.dim() - 2)  # broadcast (C,) over (n, C, *)
    out = []
    spatial = tuple(range(3, dy.dim()))  # the * dims of dy (n, R, C, *)
    if weight:
        xhat = (x - m.running_mean.view(shape)) * torch.rsqrt(m.running_var.view(shape) + m.eps)  # (n, C, *)
        prod = dy * xhat.unsqueeze(1)  # (n, R, C, *)
        out.append(prod.sum(spatial) if spatial else prod)  # (n, R, C)
    if bias:
        out.append(dy.sum(spatial) if spatial else dy)  # (n, R, C)
    return out


# ----------------------------------------------------------------------------- contractions
def gram_accumulate(acc: Tensor, u1: Tensor, d1: Tensor, u2: Tensor, d2: Tensor, sw2: float, sb2: float,
                    diagonal: bool, lower: bool, scratch: Scratch) -> None:
    """Linear layer with L = 1, y = s_w W x + s_b b: acc += (s_w² U1U2ᵀ + s_b²) ∘ D1D2ᵀ, two GEMMs and one
    fused multiply-add pass. U (n, din), D (n, R, dout); acc in row layout ((n1, n2) diagonal, else
    (n1·R, n2·R), see ``_common``). The weight is trainable (s_w² > 0); s_b² = 0 when the bias is not.
    ``lower``: side 2 is side 1 and only pairs n ≥ m are needed (row chunks against columns 0:s1)."""
    n1, r, _ = d1.shape
    a = flat_rows(d1, diagonal)  # (n1, R·dout) or (n1·R, dout)
    b = a if d2 is d1 else flat_rows(d2, diagonal)
    per = a.shape[0] // n1  # rows per sample
    for s0, s1 in _common.lower_chunks(n1, per) if lower else [(0, n1)]:
        c1 = s1 if lower else d2.shape[0]  # samples of side 2 in this chunk's columns
        rows, cols = slice(s0 * per, s1 * per), slice(0, c1 * per)
        dd = torch.mm(a[rows], b[cols].T, out=scratch.get("dd", ((s1 - s0) * per, c1 * per), a))  # D1D2ᵀ
        uu = torch.mm(u1[s0:s1], u2[:c1].T, out=scratch.get("uu", (s1 - s0, c1), a))  # (ns, c1)
        if sb2 != 0.0:
            uu.add_(sb2 / sw2)  # s_w² (UU + s_b²/s_w²) = s_w² UU + s_b²
        target = acc[rows, cols]
        if not diagonal:  # broadcast UU over the row pairs of (ns, R, c1, R)
            uu, dd, target = uu.view(s1 - s0, 1, c1, 1), dd.view(s1 - s0, r, c1, r), target.view(s1 - s0, r, c1, r)
        target.addcmul_(uu, dd, value=sw2)


# ----------------------------------------------------------------------------- FLOP model
def matmul_costs(pairs: float, n_feat: int, r: int, diagonal: bool, g: int, npos: int, din: int, dout: int,
                 bias: bool) -> dict[str, tuple[float, float, float]]:
    """FLOPs of each mode for one matmul-like layer with a trainable weight: (per-sample features, contraction,
    time-weighted contraction: FLOPs divided by the stage's efficiency against a large GEMM — what the modes are
    chosen by).

    ``pairs``: sample pairs contracted (n1·n2, or n(n+1)/2 for a symmetric kernel); ``n_feat``: samples
    featurized. gram: the GEMMs U1U2ᵀ (din) and D1D2ᵀ (Rp·dout per pair) and the Hadamard product
    accumulated (Rp multiply-adds, 1 for diagonal); the bias enters as "+ s_b²", one add per pair.
    explicit: per-sample weight gradients (bmm over L), their Gram and the bias gradients' Gram.
    pairs: see ``_pairs.py``. Forward and backward passes are counted by the caller.
    """
    rp = r if diagonal else r * r
    bias_gram = 2.0 * pairs * rp * g * dout if bias else 0.0  # Gram of per-sample bias gradients
    costs = {}
    if npos == 1 and g == 1:  # listed first: preferred on ties
        con = 2.0 * pairs * (din + rp * dout + (1 if diagonal else rp)) + (pairs if bias else 0.0)
        costs["gram"] = (0.0, con, con)
    con = 2.0 * pairs * rp * g * din * dout + bias_gram
    costs["explicit"] = (2.0 * n_feat * r * g * npos * din * dout, con, con)
    con, weighted = _pairs.flops(pairs, r, diagonal, g, npos, din, dout)
    costs["pairs"] = (0.0, con + bias_gram, weighted + bias_gram)
    return costs

"""Analytic infinite-width NNGP and NTK of the zoo's ConvNet (ReLU CNN with global average pooling).

The infinite-width counterpart of ``pntk.models.ConvNet`` in NTK parameterization: ``depth`` 3×3 convolutions
(zero padding 1, the strides of ``pntk.models.convnet_strides``), each followed by a ReLU, global average pooling
over the P positions of the last layer, and a dense readout. Every conv's weights are N(0, 1) scaled by
σ_w/√(9·C_in), σ_w² = 2 (the He init of the zoo's convs: c_σ = 2 of the CNN-GAP of Arora et al. 2019); the
readout's by σ_r/√width, σ_r² = 1 (its LeCun init); no biases (the zoo's are 0 at init; under the standard
parameterization their share of the kernel vanishes with width). For a pair of images a, b and positions p, q
(Arora et al. 2019, CNTK with GAP; the same recursion as ``relu_fcn_kernels`` with a 3×3 joint shift):

    Σ⁰(p, q)  = x_a(p)·x_b(q)                                   (channel inner product)
    K¹(p, q)  = σ_w²/(9C) Σ_δ Σ⁰(s·p+δ, s·q+δ)                 Θ¹ = K¹       (δ over the 3×3 taps, s the stride)
    for each next layer, with E, Ė the ReLU moments of K^{l-1} (as in ``relu_fcn_kernels``):
      K^l(p, q) = σ_w²/9 Σ_δ E(s·p+δ, s·q+δ)
      Θ^l(p, q) = K^l(p, q) + σ_w²/9 Σ_δ (Ė·Θ^{l-1})(s·p+δ, s·q+δ)
    readout:  NNGP = σ_r² mean_{p,q} E^L(p, q)       NTK = NNGP + σ_r² mean_{p,q} (Ė^L·Θ^L)(p, q)

A position with zero variance (a zero patch, no bias) has E = Ė = 0: its pre-activation is exactly 0 and
torch's ReLU has derivative 0 there, as in the finite network.

Cost: the joint shift is separable (a 1-D operator along rows times one along columns), and only position pairs
that reach the pooled output are kept: before a stride-s layer those whose offsets are multiples of s. On 8×8
digits (depth 8) that is 1,024 of 4,096 pairs at the two 8×8 layers.
"""
from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

_TAPS = (-1, 0, 1)


@dataclass(frozen=True)
class _Axis:
    """One spatial axis of every layer: the position pairs kept and the 1-D joint-shift operators between them."""
    pairs: list[np.ndarray]  # per layer output l: (n_l, 2) position pairs (p, q) kept along this axis
    inputs: np.ndarray  # (n_in, 2) input position pairs the first conv reads
    shift: list[np.ndarray]  # per layer l: (n_l, n_{l-1}) 0/1 operator, Σ_δ over the taps valid on both sides


def _axis(size: int, strides: list[int]) -> _Axis:
    """Walk back from the pooled output (every pair of the last layer) to the input along one axis of `size`."""
    sizes = [size]
    for s in strides:
        sizes.append((sizes[-1] - 1) // s + 1)  # 3×3, padding 1
    need = [(p, q) for p in range(sizes[-1]) for q in range(sizes[-1])]
    pairs, shift = [], []
    for layer in range(len(strides) - 1, -1, -1):
        s, n_in = strides[layer], sizes[layer]
        index: dict[tuple[int, int], int] = {}
        cols: list[list[int]] = []
        for p, q in need:
            row = []
            for d in _TAPS:
                a, b = s * p + d, s * q + d
                if 0 <= a < n_in and 0 <= b < n_in:
                    row.append(index.setdefault((a, b), len(index)))
            cols.append(row)
        op = np.zeros((len(need), len(index)))
        for j, row in enumerate(cols):
            op[j, row] = 1.0
        pairs.append(np.asarray(need, dtype=np.int64).reshape(-1, 2))
        shift.append(op)
        need = sorted(index, key=index.get)
    return _Axis(pairs[::-1], np.asarray(need, dtype=np.int64).reshape(-1, 2), shift[::-1])


def _variances(x: torch.Tensor, strides: list[int], sw2: float) -> list[torch.Tensor]:
    """Per image and layer, K^l(p, p): (N, H_l, W_l). The diagonal needs only the diagonal below it."""
    v = (x * x).sum(1)  # (N, H, W)
    fan = x.shape[1]
    out = []
    for s in strides:
        h, w = v.shape[1:]
        vp = torch.nn.functional.pad(v, (1, 1, 1, 1))
        ho, wo = (h - 1) // s + 1, (w - 1) // s + 1
        acc = sum(vp[:, 1 + d1:1 + d1 + s * (ho - 1) + 1:s, 1 + d2:1 + d2 + s * (wo - 1) + 1:s]
                  for d1 in _TAPS for d2 in _TAPS)
        out.append(acc * (sw2 / (9 * fan)))
        v, fan = out[-1] / 2, 1  # E[relu(u)²] = K/2
    return out


def _moments(k: torch.Tensor, norm: torch.Tensor, inv: torch.Tensor, live: torch.Tensor | None,
             self_pair: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """2π·E[relu(u)relu(v)] and 2π·E[relu'(u)relu'(v)] of (u, v) with covariance k, √(K_aa·K_bb) = norm, its
    inverse `inv` (0 where norm is 0) and `live` = norm > 0 (None: everywhere). The 1/(2π) is left to the caller.
    `self_pair` marks an image with itself at one position (ρ = 1: E = K/2, Ė = ½ exactly, as the variances' own
    recursion has it; arccos would turn a rounding error ε in ρ into √(2ε) and, layer after layer, 1e-6)."""
    rho = inv.mul_(k).clamp_(-1.0, 1.0)  # where norm is 0, k is 0 and ρ = 0: E = 0 below
    if self_pair is not None:
        rho.masked_fill_(self_pair, 1.0)
    rest = torch.arccos(rho).neg_().add_(math.pi)  # π − φ
    # (sin φ + (π − φ) cos φ)·norm = (√(1 − ρ²) + (π − φ)·ρ)·norm
    e = torch.mul(rho, rho).neg_().add_(1.0).sqrt_().addcmul_(rest, rho).mul_(norm)
    return e, (rest if live is None else rest.mul_(live))


class _Plan:
    """Operators and gathered variances for one input geometry; `block` evaluates a block of image pairs.

    Pair tensors are laid out (r, B, c): r the kept row pairs, B the image pairs of a block, c the kept column
    pairs, so that both 1-D shifts are single GEMMs: (r', r) @ (r, B·c) and (r·B, c) @ (c, c')."""

    def __init__(self, shape: tuple[int, int, int], depth: int, sw2: float, sr2: float, dtype: torch.dtype):
        from ..models import convnet_strides

        c, h, w = shape
        self.strides = convnet_strides(h, depth)
        self.rows, self.cols = _axis(h, self.strides), _axis(w, self.strides)
        self.channels, self.sw2, self.sr2 = c, sw2, sr2
        self.a_h = [torch.as_tensor(a, dtype=dtype) for a in self.rows.shift]  # (r_l, r_{l-1})
        self.a_wt = [torch.as_tensor(a.T.copy(), dtype=dtype) for a in self.cols.shift]  # (c_{l-1}, c_l)
        self.same_position = [torch.as_tensor((ph[:, 0] == ph[:, 1])[:, None, None] & (pw[:, 0] == pw[:, 1]))
                              for ph, pw in zip(self.rows.pairs, self.cols.pairs)]  # (r_l, 1, c_l): p = q

    def side(self, x: torch.Tensor, which: int) -> dict:
        """One side of a pair block (n images): inputs at the kept pairs (C, r, n, c), and per layer the standard
        deviations, their inverses (0 where 0) and whether all are positive, each (r_l, n, c_l)."""
        ih, iw = self.rows.inputs[:, which], self.cols.inputs[:, which]
        xs = x[:, :, ih][:, :, :, iw].permute(1, 2, 0, 3)  # (C, r_in, n, c_in)
        sd, inv, live = [], [], []
        for v, ph, pw in zip(_variances(x, self.strides, self.sw2), self.rows.pairs, self.cols.pairs):
            s = v[:, ph[:, which]][:, :, pw[:, which]].sqrt().permute(1, 0, 2).contiguous()  # (r_l, n, c_l)
            sd.append(s)
            inv.append(torch.where(s > 0, 1.0 / s.clamp(min=torch.finfo(s.dtype).tiny), 0.0))
            live.append(None if bool((s > 0).all()) else (s > 0).to(s.dtype))
        return {"x": xs, "sd": sd, "inv": inv, "live": live, "flat": x.reshape(len(x), -1)}

    def _shift(self, t: torch.Tensor, layer: int) -> torch.Tensor:
        """Σ over the 3×3 joint shifts: (r_{l-1}, B, c_{l-1}) → (r_l, B, c_l)."""
        r, b, c = t.shape
        t = torch.mm(t.reshape(r * b, c), self.a_wt[layer]).reshape(r, b * self.a_wt[layer].shape[1])
        return torch.mm(self.a_h[layer], t).reshape(-1, b, self.a_wt[layer].shape[1])

    @staticmethod
    def _outer(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a[:, :, None] * b[:, None]).flatten(1, 2)  # (r, na, c) ⊗ (r, nb, c) → (r, na·nb, c)

    def _relu(self, layer: int, k: torch.Tensor, a: dict, b: dict, same: torch.Tensor):
        """2π·(E, Ė) of layer `layer`'s pre-activation covariances k (r_l, B, c_l)."""
        la, lb = a["live"][layer], b["live"][layer]
        live = None if la is None and lb is None else self._outer(
            torch.ones_like(a["sd"][layer]) if la is None else la,
            torch.ones_like(b["sd"][layer]) if lb is None else lb)
        self_pair = same & self.same_position[layer] if bool(same.any()) else None
        return _moments(k, self._outer(a["sd"][layer], b["sd"][layer]), self._outer(a["inv"][layer], b["inv"][layer]),
                        live, self_pair)

    def block(self, a: dict, b: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(NNGP, NTK) between the images of side `a` (na) and side `b` (nb): each (na, nb)."""
        na, nb = a["flat"].shape[0], b["flat"].shape[0]
        same = (a["flat"][:, None] == b["flat"][None]).all(-1).reshape(1, -1, 1)  # (1, B, 1) one image, both sides
        t = torch.einsum("cjak,cjbk->jabk", a["x"], b["x"]).flatten(1, 2)  # Σ⁰ (r_in, B, c_in)
        k = self._shift(t, 0).mul_(self.sw2 / (9 * self.channels))  # (r_0, B, c_0)
        theta = k.clone()
        e, e_dot = self._relu(0, k, a, b, same)  # both carry a factor 2π
        scale = self.sw2 / (9 * 2 * math.pi)
        for layer in range(1, len(self.strides)):
            k = self._shift(e, layer).mul_(scale)
            theta = self._shift(e_dot.mul_(theta), layer).mul_(scale).add_(k)
            e, e_dot = self._relu(layer, k, a, b, same)
        nngp = e.mean(dim=(0, 2)).mul_(self.sr2 / (2 * math.pi))  # (B,)
        ntk = e_dot.mul_(theta).mean(dim=(0, 2)).mul_(self.sr2 / (2 * math.pi)).add_(nngp)
        return nngp.reshape(na, nb), ntk.reshape(na, nb)


def entries_per_pair(shape: tuple[int, int, int], depth: int) -> int:
    """Position pairs the recursion keeps for one image pair, summed over the layers (what its cost scales with:
    3,584 for 8×8 digits at depth 8)."""
    from ..models import convnet_strides

    _, h, w = shape
    strides = convnet_strides(h, depth)
    rows, cols = _axis(h, strides), _axis(w, strides)
    return sum(len(r) * len(c) for r, c in zip(rows.pairs, cols.pairs))


# CPU seconds per kept position pair and image pair on one thread (the whole recursion: shifts, moments), 8×8
# digits at depth 8 (3,584 kept pairs) in blocks of 16 × 16 images, AMD EPYC, 2026-12-07: 41 µs per image pair
# in float32, 100 µs in float64 (benchmarks/bench_cntk.py). A second worker thread gains 1.3× (float32) to 1.5×.
SECONDS_PER_ENTRY = {"float32": 1.15e-8, "float64": 2.8e-8}
SECOND_WORKER_GAIN = 0.3


def cpu_seconds(n1: int, n2: int | None, shape: tuple[int, int, int], depth: int, dtype: str = "float32") -> float:
    """Estimated one-thread CPU seconds of :func:`relu_cnn_gap_kernels` for N1 × N2 images (n2 None: symmetric)."""
    pairs = n1 * (n1 + 1) / 2 if n2 is None else n1 * n2
    return pairs * entries_per_pair(shape, depth) * SECONDS_PER_ENTRY[dtype]


def regression_cpu_hours(n_train: int, n_test: int, shape: tuple[int, int, int], depth: int,
                         dtype: str = "float32") -> float:
    """Estimated one-core hours of the kernels a regression needs: train × train (symmetric) and test × train."""
    return (cpu_seconds(n_train, None, shape, depth, dtype) + cpu_seconds(n_test, n_train, shape, depth, dtype)) / 3600


def _numpy(x: Any) -> np.ndarray:
    return np.asarray(x.detach().cpu() if hasattr(x, "detach") else x)


def relu_cnn_gap_kernels(x1: Any, x2: Any = None, *, depth: int = 8, sigma_w: float = math.sqrt(2.0),
                         sigma_readout: float = 1.0, block: int = 16, dtype: torch.dtype | str = torch.float64,
                         workers: int = 1, log=None) -> tuple[np.ndarray, np.ndarray]:
    """Infinite-width (NNGP, NTK) of the zoo's ConvNet of `depth` conv layers, each of shape (N1, N2), float64.

    ``x1`` (N1, C, H, W), ``x2`` (N2, C, H, W) or None for x2 = x1 (then only blocks on and above the diagonal are
    computed). Images are taken ``block`` at a time per side; ``dtype`` is the working precision (float32: the
    default regression's kernels within 5e-7 of float64's, its 450 predictions the same). ``workers``
    threads take blocks in turn, each with one torch thread (torch's own threads gain nothing at these sizes; the
    thread count is restored afterwards).
    """
    dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    a = torch.as_tensor(_numpy(x1), dtype=dtype)  # (N1, C, H, W)
    b = a if x2 is None else torch.as_tensor(_numpy(x2), dtype=dtype)  # (N2, C, H, W)
    if a.ndim != 4 or b.ndim != 4 or a.shape[1:] != b.shape[1:]:
        raise ValueError(f"relu_cnn_gap_kernels: x1 and x2 must be (N, C, H, W) of one image shape, got "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")
    if depth < 1 or workers < 1:
        raise ValueError(f"relu_cnn_gap_kernels: depth and workers must be >= 1, got {depth} and {workers}")
    plan = _Plan(tuple(a.shape[1:]), depth, sigma_w**2, sigma_readout**2, dtype)
    sa = [plan.side(a[i:i + block], 0) for i in range(0, len(a), block)]  # (p, q): a at p, b at q
    sb = [plan.side(b[j:j + block], 1) for j in range(0, len(b), block)]
    nngp = np.empty((len(a), len(b)))
    ntk = np.empty((len(a), len(b)))
    todo = [(i, j) for i in range(len(sa)) for j in range(len(sb)) if x2 is not None or j >= i]

    def one(ij: tuple[int, int]) -> None:
        i, j = ij
        k, t = plan.block(sa[i], sb[j])
        if x2 is None and j == i:  # exactly symmetric: (a, b) and (b, a) round differently within a block
            k, t = (k + k.T) / 2, (t + t.T) / 2
        rs = slice(i * block, i * block + sa[i]["flat"].shape[0])
        cs = slice(j * block, j * block + sb[j]["flat"].shape[0])
        nngp[rs, cs], ntk[rs, cs] = k.numpy(), t.numpy()
        if x2 is None and j > i:
            nngp[cs, rs], ntk[cs, rs] = k.numpy().T, t.numpy().T

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(workers) as pool:
            for n, _ in enumerate(pool.map(one, todo), 1):
                if log is not None and n % max(1, len(todo) // 10) == 0:
                    log.info("CNTK-GAP (depth %d): %d of %d blocks of %d × %d images", depth, n, len(todo), block,
                             block)
    finally:
        torch.set_num_threads(threads)
    return nngp, ntk

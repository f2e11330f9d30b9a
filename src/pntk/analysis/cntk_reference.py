"""The oracle of :mod:`pntk.analysis.cntk`: the same recursion over every position pair, written as it reads.

Small inputs only (memory N1·N2·(H·W)² per layer); the tests and ``benchmarks/bench_cntk.py`` compare against it.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..models import convnet_strides


def _shift_pairs(t, s, ho, wo):
    """Σ over the 3×3 joint shifts of (B, H, W, H, W), zero padding 1, stride s → (B, ho, wo, ho, wo)."""
    tp = F.pad(t, (1, 1) * 4)
    return sum(tp[:, d1:d1 + s * (ho - 1) + 1:s, d2:d2 + s * (wo - 1) + 1:s,
                  d1:d1 + s * (ho - 1) + 1:s, d2:d2 + s * (wo - 1) + 1:s] for d1 in range(3) for d2 in range(3))


def _shift_diag(v, s, ho, wo):
    vp = F.pad(v, (1, 1, 1, 1))
    return sum(vp[:, d1:d1 + s * (ho - 1) + 1:s, d2:d2 + s * (wo - 1) + 1:s] for d1 in range(3) for d2 in range(3))


def reference_kernels(x1: torch.Tensor, x2: torch.Tensor, depth: int, sw2: float = 2.0,
                      sr2: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(NNGP, NTK) (N1, N2) of the CNTK-GAP recursion written out over all (H·W)² position pairs of each image pair:
    no pruning, no separable shifts, one (N1·N2, H, W, H, W) tensor per layer. ``x1``, ``x2``: (N, C, H, W)."""
    c, h, w = x1.shape[1:]
    n1, n2 = len(x1), len(x2)
    t = torch.einsum("achw,bcij->abhwij", x1, x2).reshape(n1 * n2, h, w, h, w)
    v1, v2 = (x1 * x1).sum(1), (x2 * x2).sum(1)
    same = (x1.reshape(n1, -1)[:, None] == x2.reshape(n2, -1)[None]).all(-1).reshape(-1, 1, 1, 1, 1)

    def relu(k, v1, v2, ho, wo):
        norm = (v1[:, None, :, :, None, None] * v2[None, :, None, None, :, :]).sqrt().reshape(k.shape)
        live = norm > 0
        rho = torch.where(live, k / torch.where(live, norm, 1.0), 0.0).clamp(-1, 1)
        eye = torch.eye(ho * wo, dtype=torch.bool).reshape(1, ho, wo, ho, wo)
        rho = torch.where(same & eye, 1.0, rho)  # an image with itself at one position: ρ = 1
        phi = torch.arccos(rho)
        return (torch.where(live, norm * (torch.sin(phi) + (math.pi - phi) * rho) / (2 * math.pi), 0.0),
                torch.where(live, (math.pi - phi) / (2 * math.pi), 0.0))

    e = e_dot = theta = None
    for i, s in enumerate(convnet_strides(h, depth)):
        ho, wo = (h - 1) // s + 1, (w - 1) // s + 1
        f = sw2 / (9 * (c if i == 0 else 1))
        k = _shift_pairs(t if i == 0 else e, s, ho, wo) * f
        theta = k.clone() if i == 0 else k + _shift_pairs(e_dot * theta, s, ho, wo) * f
        v1, v2 = _shift_diag(v1, s, ho, wo) * f, _shift_diag(v2, s, ho, wo) * f
        e, e_dot = relu(k, v1, v2, ho, wo)
        v1, v2, h, w = v1 / 2, v2 / 2, ho, wo
    nngp = sr2 * e.mean(dim=(1, 2, 3, 4))
    ntk = nngp + sr2 * (e_dot * theta).mean(dim=(1, 2, 3, 4))
    return nngp.reshape(n1, n2).numpy(), ntk.reshape(n1, n2).numpy()

"""Nyström preconditioning on adaptively chosen landmarks: block randomly pivoted Cholesky.

Uniform landmark columns (``preconditioners.nystrom``) waste rank on near-duplicate points and leave
large residuals where the data are sparse. Randomly pivoted Cholesky (Chen, Epperly, Tropp & Webber,
"Randomly pivoted Cholesky: practical approximation of a kernel matrix with few entry evaluations",
CPAM 2024; block variant as their Alg. 3) samples each block of pivots with probability proportional to
the diagonal of the current residual Θ − F Fᵀ, so its trace error is near the best rank-k error. The
factor F (n, k) gives Θ̂ = F Fᵀ — the Nyström approximation on the chosen pivots — and CG is
preconditioned as in Frangella–Tropp–Udell, P⁻¹ = (c + μ) U (Λ̂ + μI)⁻¹ Uᵀ + (I − UUᵀ), written in F
and the eigenpairs FᵀF = W diag(λ̂) Wᵀ of the small (k, k) Gram matrix (F W λ̂^{-1/2} = U):

    P⁻¹ r = r − F W diag((λ̂ − c) / (λ̂ (λ̂ + μ))) Wᵀ Fᵀ r

so the (n, k) factor is never orthonormalised. (The plain Woodbury form (Θ̂ + μI)⁻¹ maps the captured
part of the spectrum to ≈ μ instead of c + μ: with a small ridge that costs hundreds of iterations.)
Cost: the k pivot rows of Θ (one ``pread`` per tile column each, no pass over the store), n·k²/2
flops for the block updates, n·k² for FᵀF and a (k, k) eigh.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from .preconditioners import RANK_RTOL, _small_eigh, storage_eps

BLOCK = 256  # pivots per block: large enough for BLAS-3 updates, small enough to stay adaptive


@dataclass
class PivotedCholeskyPreconditioner:
    F: torch.Tensor  # (n, k): Θ̂ = F Fᵀ
    W: torch.Tensor  # (k, k') eigenvectors of FᵀF with eigenvalues above RANK_RTOL·λ̂_1
    eigenvalues: torch.Tensor  # (k',) λ̂ of Θ̂, descending
    pivots: np.ndarray  # rows of Θ the factor was built from
    level: float  # c: mean of diag(Θ − Θ̂), where the unresolved part of the spectrum sits on average
    floor: float  # pivot eigenvalues below this were dropped (rounding noise of the stored Θ)
    seconds: float

    @property
    def rank(self) -> int:
        return int(self.eigenvalues.numel())

    @property
    def lam_max(self) -> float:
        return float(self.eigenvalues[0]) if self.rank else 0.0

    def for_shift(self, mu: float):
        """P⁻¹ for Θ + μI as a callable (n, R) → (n, R); μ = 0 with c = 0 (exactly low rank, no ridge) is
        floored at RANK_RTOL·λ̂_1 so that P stays positive definite."""
        mu_p = max(float(mu), RANK_RTOL * max(self.lam_max, 1e-300))
        lam = self.eigenvalues
        core = (self.W * ((lam - self.level) / (lam * (lam + mu_p)))) @ self.W.T  # (k, k)
        F = self.F

        def apply(r: torch.Tensor) -> torch.Tensor:  # (n, R)
            return r - F @ (core @ (F.T @ r))

        return apply

    def summary(self) -> dict:
        return dict(nystrom_landmarks="rpcholesky", nystrom_columns=int(self.pivots.size), nystrom_rank=self.rank,
                    nystrom_level=self.level, nystrom_lambda_max=self.lam_max,
                    nystrom_lambda_min=float(self.eigenvalues[-1]) if self.rank else 0.0,
                    nystrom_shift=self.floor, nystrom_seconds=round(self.seconds, 3))


def rp_cholesky(op, rank: int, *, seed: int = 0, diagonal: torch.Tensor | None = None,
                block: int = BLOCK) -> PivotedCholeskyPreconditioner:
    """Rank-≤``rank`` block RPCholesky factor of the symmetric operator ``op`` (Θ, without its ridge).

    op: a ZarrKernelOperator (``.rows(idx)``, ``.diagonal()``, ``.ridge``, ``.shape``). Each block samples
    ``block`` pivots ∝ the residual diagonal (without replacement), reads their rows, subtracts what F
    already explains, and keeps the part of the pivot block above the rounding floor of the stored
    kernel (an eigenvalue filter instead of a plain Cholesky: near-duplicate pivots cannot blow F up).
    Stops at ``rank`` columns or when the residual trace is at the floor (Θ exactly low rank).
    """
    t0 = time.perf_counter()
    n = op.shape[0]
    ridge = float(getattr(op, "ridge", 0.0))
    d = (op.diagonal() if diagonal is None else diagonal).to(torch.float64).clone() - ridge  # diag Θ (n,)
    dev = d.device
    mean_diag = max(float(d.mean()), 1e-300)
    floor = max(block * storage_eps(op) * mean_diag, 1e-300)
    k_max = max(1, min(int(rank), n))
    F = torch.empty(n, k_max, dtype=torch.float64, device=dev)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    k, chosen = 0, np.zeros(n, dtype=bool)
    pivots: list[np.ndarray] = []
    while k < k_max:
        weights = d.clamp_min(0).cpu()
        weights[torch.from_numpy(chosen)] = 0.0
        live = int((weights > 0).sum())
        if live == 0 or float(weights.sum()) <= n * floor:
            break
        b = min(block, k_max - k, live)
        s = np.sort(torch.multinomial(weights, b, replacement=False, generator=gen).numpy())
        chosen[s] = True
        G = op.rows(s).T.contiguous()  # (n, b) = Θ[:, s] (Θ symmetric)
        if k:
            G -= F[:, :k] @ F[torch.as_tensor(s, device=dev), :k].T  # residual columns (Θ − F Fᵀ)[:, s]
        lam, V = _small_eigh(G[torch.as_tensor(s, device=dev)])  # (b,), (b, b): the residual's pivot block
        keep = lam > max(floor, RANK_RTOL * float(lam[0])) if lam.numel() and float(lam[0]) > 0 else lam > math.inf
        m = int(keep.sum())
        pivots.append(s)
        if m == 0:
            continue  # every sampled pivot was explained to rounding: its residual was noise
        m = min(m, k_max - k)
        new = G @ (V[:, :m] / lam[:m].sqrt())  # (n, m): Nyström of the residual on the pivot block
        F[:, k : k + m] = new
        d -= (new * new).sum(1)
        k += m
    F = F[:, :k].contiguous() if k < k_max else F
    return from_factor(F, pivots=np.sort(np.concatenate(pivots)) if pivots else np.zeros(0, dtype=np.int64),
                       level=float(d.clamp_min(0).sum()) / n, floor=floor, t0=t0)


def from_factor(F: torch.Tensor, *, pivots: np.ndarray, level: float, floor: float,
                t0: float | None = None) -> PivotedCholeskyPreconditioner:
    """The preconditioner of a factor F (n, k) with F Fᵀ ⪯ Θ and `level` = mean of diag(Θ − F Fᵀ)."""
    gram = F.T @ F  # (k, k)
    # FᵀF = W diag(λ̂) Wᵀ: λ̂ are Θ̂'s eigenvalues. On all threads (k = 4000: 13 s on 2 against 23 s on one);
    # the pivot blocks' small eigh stay on one (see preconditioners._one_thread).
    lam, W = torch.linalg.eigh(0.5 * (gram + gram.T))
    lam, W = lam.flip(0), W.flip(1)
    keep = lam > RANK_RTOL * float(lam[0]) if lam.numel() and float(lam[0]) > 0 else lam > math.inf
    return PivotedCholeskyPreconditioner(F=F, W=W[:, keep].contiguous(), eigenvalues=lam[keep], pivots=pivots,
                                         level=level, floor=floor,
                                         seconds=0.0 if t0 is None else time.perf_counter() - t0)

"""Preconditioners for CG on Θ + μI: Jacobi and a randomized Nyström approximation.

Nyström (landmark columns, as in Falkon; preconditioner of Frangella, Tropp & Udell 2021,
"Randomized Nyström preconditioning"): sample ℓ columns S of Θ uniformly without replacement
(one streaming pass, no products), C = Θ[:, S] (n, ℓ), W = Θ[S, S] (ℓ, ℓ), then
    Θ̂ = C (W + νI)⁻¹ Cᵀ = U diag(λ̂) Uᵀ          (U (n, k) orthonormal, k ≤ ℓ)
    P⁻¹ = (c + μ) U (Λ̂ + μI)⁻¹ Uᵀ + (I − UUᵀ)
ν (≈ ℓ · storage eps · mean diag W) keeps the factorisation of W stable; Θ̂ ⪯ Θ. The complement
level c is λ̂_k (FTU), or — when the sample had numerical rank < ℓ (duplicate rows, a low-rank Θ)
— the mean of what Θ̂ leaves on the diagonal, tr(Θ − Θ̂)/(n − k), which is ≈ 0 for an exactly
low-rank Θ. With the top of the spectrum flattened to ≈ c + μ, CG sees the spectrum of the tail.
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass

import numpy as np
import torch

RANK_RTOL = 1e-10  # λ̂ below this fraction of λ̂_1 are dropped: rounding noise of the Gram matrices


def jacobi(diag: torch.Tensor):
    """P⁻¹ = diag(Θ + μI)⁻¹ as a function of μ → callable (n, R) → (n, R)."""

    def make(mu: float):
        dinv = (1.0 / (diag + mu).clamp_min(1e-300)).reshape(-1, 1)  # (n, 1)
        return lambda r: dinv * r

    return make


@dataclass
class NystromPreconditioner:
    U: torch.Tensor  # (n, k) orthonormal
    eigenvalues: torch.Tensor  # (k,) λ̂, descending, > 0
    level: float  # c: where the flattened top of the spectrum sits (before + μ)
    columns: int  # ℓ sampled
    shift: float  # ν added to W
    seconds: float

    @property
    def rank(self) -> int:
        return int(self.eigenvalues.numel())

    def for_shift(self, mu: float):
        """P⁻¹ for Θ + μI → callable (n, R) → (n, R). μ = 0 with c = 0 (exactly low rank, no ridge)
        would make P singular: a floor of RANK_RTOL·λ̂_1 keeps it positive definite."""
        lam1 = float(self.eigenvalues[0]) if self.rank else 1.0
        mu_p = max(float(mu), RANK_RTOL * lam1)
        scale = ((self.level + mu_p) / (self.eigenvalues + mu_p) - 1.0).reshape(-1, 1)  # (k, 1)
        U = self.U

        def apply(r: torch.Tensor) -> torch.Tensor:  # (n, R)
            return r + U @ (scale * (U.T @ r))

        return apply

    def summary(self) -> dict:
        lam = self.eigenvalues
        return dict(nystrom_columns=self.columns, nystrom_rank=self.rank, nystrom_level=self.level,
                    nystrom_lambda_max=float(lam[0]) if self.rank else 0.0,
                    nystrom_lambda_min=float(lam[-1]) if self.rank else 0.0,
                    nystrom_shift=self.shift, nystrom_seconds=round(self.seconds, 3))


@contextlib.contextmanager
def _one_thread():
    """Small (ℓ × ℓ) eigh on one thread: MKL's threaded eigh of 1000 × 1000 took 21 s on 2 threads of a
    busy 2-core machine against 0.9 s on one (measured); single-threaded it is ~1 s at most anyway."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _small_eigh(M: torch.Tensor):
    """Eigenpairs of a small symmetric matrix, descending."""
    with _one_thread():
        lam, V = torch.linalg.eigh(0.5 * (M + M.T))
    return lam.flip(0), V.flip(1)


def _panels_(X: torch.Tensor, fn, rows: int = 4096) -> torch.Tensor:
    """X[r] = fn(X[r]) for row panels r, in place (fn must keep the panel's shape): a product with a
    small square matrix without a second (n, ℓ) copy."""
    for r0 in range(0, X.shape[0], rows):
        X[r0 : r0 + rows] = fn(X[r0 : r0 + rows])
    return X


def _eig_of_gram(F: torch.Tensor, rtol: float):
    """F (n, m) → (V (m, k), λ (k,)) with FᵀF V = V diag(λ), λ descending and > rtol·λ_1."""
    lam, V = _small_eigh(F.T @ F)
    keep = lam > rtol * float(lam[0]) if lam.numel() and float(lam[0]) > 0 else lam > math.inf
    return V[:, keep], lam[keep]


def _rotation(U: torch.Tensor, lam: torch.Tensor):
    """U (n, k) with UᵀU ≈ I and Θ̂ = U diag(λ) Uᵀ → (M (k, k), λ') with U M orthonormal and
    Θ̂ = (U M) diag(λ') (U M)ᵀ: the second pass that removes U's orthogonality error."""
    V2, s2 = _eig_of_gram(U, 0.0)  # UᵀU = V2 diag(s2) V2ᵀ
    half = V2 * s2.sqrt()  # (k, k): U = (U V2 s2^{-1/2}) (V2 s2^{1/2})ᵀ
    lam2, Z = _small_eigh(half.T @ torch.diag(lam) @ half)  # core E^{1/2} Λ E^{1/2} = Z diag(λ') Zᵀ
    return (V2 / s2.sqrt()) @ Z, lam2.clamp_min(0)


def storage_eps(op) -> float:
    """Unit roundoff of the kernel's stored dtype (float32 stores carry float32 rounding)."""
    dtype = getattr(op.k, "dtype", np.float64)
    dtype = torch.empty(0, dtype=dtype).numpy().dtype if isinstance(dtype, torch.dtype) else np.dtype(dtype)
    return float(np.finfo(dtype).eps) if dtype.kind == "f" else float(np.finfo(np.float64).eps)


def nystrom(op, rank: int, *, seed: int = 0, diagonal: torch.Tensor | None = None) -> NystromPreconditioner:
    """Rank-≤``rank`` Nyström preconditioner of the square operator ``op`` (one pass over its tiles).

    op: a ZarrKernelOperator (anything with .shape, .columns(idx), .k, .ridge); diagonal: its diagonal
    (n,) if already read (else read from the diagonal tiles). The approximation is of Θ without the
    operator's ridge: use ``for_shift(ridge + jitter)``. Memory: one (n, ℓ) float64 matrix (two when
    the sample's numerical rank is below ℓ) plus row panels.
    """
    t0 = time.perf_counter()
    n = op.shape[0]
    ell = max(1, min(int(rank), n))
    idx = np.sort(np.random.default_rng(seed).choice(n, size=ell, replace=False))
    C = op.columns(idx)  # (n, ℓ) float64, one pass; columns of Θ + ridge·I
    ridge = float(getattr(op, "ridge", 0.0))
    if ridge:  # approximate Θ itself: the ridge goes into μ exactly (FTU), Nyström of Θ + ridge·I is not exact
        C[torch.as_tensor(idx, device=C.device), torch.arange(ell, device=C.device)] -= ridge
    W = C[torch.as_tensor(idx, device=C.device)]  # (ℓ, ℓ) = Θ[S, S]
    W = 0.5 * (W + W.T)
    mean_w = max(float(W.diagonal().mean()), 0.0)
    nu = max(ell * storage_eps(op) * mean_w, 1e-300)
    eye = torch.eye(ell, dtype=W.dtype, device=W.device)
    L, info = torch.linalg.cholesky_ex(W + nu * eye)
    for _ in range(20):  # ν grows ×10 until W + νI factors (rounding can make W indefinite)
        if int(info) == 0:
            break
        nu *= 10
        L, info = torch.linalg.cholesky_ex(W + nu * eye)
    if int(info) != 0:
        raise FloatingPointError(f"{op.where}: Nyström core Θ[S,S] + νI not positive definite up to ν={nu:.2e}")
    F = _panels_(C, lambda rows, lt=L.T: torch.linalg.solve_triangular(lt, rows, upper=True, left=False))  # C L⁻ᵀ
    del C, W, L  # Θ̂ = F Fᵀ, F (n, ℓ) in C's memory
    # Eigenpairs of Θ̂ from ℓ × ℓ Gram matrices only (BLAS-3 and a small eigh, much faster than a QR
    # or SVD of the tall F): U = F V λ^{-1/2} is orthonormal only up to eps·λ_1/λ_k, and P⁻¹ = I + U D Uᵀ
    # is positive definite only if U is orthonormal to well below min(1 + D), so a second pass on U
    # (whose Gram matrix ≈ I is perfectly conditioned) follows. Products overwrite their operand in row
    # panels, so one (n, ℓ) matrix is resident (two only when the rank drops below ℓ).
    V, lam = _eig_of_gram(F, RANK_RTOL)
    A = V / lam.sqrt()
    F = _panels_(F, lambda rows: rows @ A) if A.shape[1] == F.shape[1] else F @ A  # (n, k), UᵀU ≈ I
    rot, lam = _rotation(F, lam)
    U = _panels_(F, lambda rows: rows @ rot)  # (n, k) orthonormal: Θ̂ = U diag(λ̂) Uᵀ
    del F
    k = int(lam.numel())
    if k == ell:
        level = float(lam[-1])
    else:  # the sample's numerical rank ran out: c = mean of the diagonal Θ̂ leaves, ≈ 0 if Θ is low rank
        diag = op.diagonal() if diagonal is None else diagonal  # of Θ + ridge·I
        resid_trace = float(diag.sum()) - ridge * n - float(lam.sum())
        level = max(resid_trace, 0.0) / max(n - k, 1)
    return NystromPreconditioner(U=U, eigenvalues=lam, level=level, columns=ell, shift=nu,
                                 seconds=time.perf_counter() - t0)

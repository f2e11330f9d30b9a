"""Nyström preconditioning on adaptively chosen landmarks: block randomly pivoted Cholesky.

Uniform landmark columns (``preconditioners.nystrom``) waste rank on near-duplicate points and leave
large residuals where the data are sparse. Randomly pivoted Cholesky (Chen, Epperly, Tropp & Webber,
"Randomly pivoted Cholesky: practical approximation of a kernel matrix with few entry evaluations",
CPAM 2024; block variant as their Alg. 3) samples each block of pivots with probability proportional to
the diagonal of the current residual Θ − F Fᵀ, so its trace error is near the best rank-k error. The
factor F (n, k) gives Θ̂ = F Fᵀ — the Nyström approximation on the chosen pivots — and CG on Θ + μI is
preconditioned by σ (Θ̂ + σI)⁻¹ with σ = c + μ, c the mean of diag(Θ − Θ̂), by Woodbury:

    P⁻¹ r = r − F (σI + FᵀF)⁻¹ Fᵀ r

Along Θ̂'s eigenvectors P⁻¹(Θ + μI) ≈ σ(λ̂ + μ)/(λ̂ + σ) ∈ [μ, σ]; on the rest it is Θ − Θ̂ + μI ≥ μ:
the captured top of the spectrum lands inside the range of the uncaptured rest, as in Frangella–Tropp–
Udell's form (c + μ) U (Λ̂ + μI)⁻¹ Uᵀ + (I − UUᵀ), without its eigendecomposition. (σ = μ, the plain
(Θ̂ + μI)⁻¹, maps the captured part to ≈ μ, below the rest's floor: hundreds of iterations with a small
ridge.) σI + FᵀF has eigenvalues ≥ σ, so its Cholesky factor is stable and P stays definite whatever
rounding did to F.

Precision and cost (n = 50,000, k = 12,000): F is kept in the stored kernel's precision — a float32 store
gets a float32 F (2.4 GB instead of 4.8) whose block updates run at float32 matmul speed (n·k² flops in
all) — while FᵀF and both products of P⁻¹ are float64, over float64 row panels of F: P⁻¹ subtracts
from r a projection of almost the same size, so float32 sums (≈ 1e-6 relative) would leave errors in
the top directions far above their true size, and σI + FᵀF must be the Gram of the F that is applied.
FᵀF is built once at the end (n·k² flops, the triangle by column blocks) and factored in place (k³/3,
no eigh of ≈ 9k³); its buffer holds one (k, k) matrix. Reading the k pivot rows is one ``pread`` per tile
column each, no pass over the store. P⁻¹ costs two panel passes over F per CG iteration.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from scipy.linalg import lapack

from .preconditioners import RANK_RTOL, _small_eigh, storage_eps

BLOCK = 256  # pivots per block: large enough for BLAS-3 updates, small enough to stay adaptive
PANEL_BYTES = 96 << 20  # float64 row panel of F for FᵀF: large enough for BLAS-3, small next to F itself
# ... and for P⁻¹'s two thin products, which are memory-bound: an L2-sized panel stays in cache between its
# conversion and its product (n = 50,000, k = 12,000, 10 columns: 1.7 s per P⁻¹ against 2.2 s at 96 MB)
APPLY_PANEL_BYTES = 2 << 20


def _panels(F: torch.Tensor, nbytes: int | None = None):
    """(r0, r1, F[r0:r1] as float64) over row panels of F (n, k), converted into one reused buffer."""
    n, k = F.shape
    rows = max(16, (PANEL_BYTES if nbytes is None else nbytes) // (8 * max(k, 1)))
    if F.dtype == torch.float64:
        for r0 in range(0, n, rows):
            yield r0, min(r0 + rows, n), F[r0 : r0 + rows]
        return
    buf = torch.empty(min(rows, n), k, dtype=torch.float64, device=F.device)
    for r0 in range(0, n, rows):
        r1 = min(r0 + rows, n)
        panel = buf[: r1 - r0]
        panel.copy_(F[r0:r1])
        yield r0, r1, panel


def gram64(F: torch.Tensor, out: torch.Tensor | None = None, col_block: int = 1024) -> torch.Tensor:
    """FᵀF (k, k) in float64 from F (n, k) of any float dtype: the lower triangle by column blocks over
    float64 row panels (n·k² flops), mirrored; into ``out`` when given (no second (k, k) buffer)."""
    k = F.shape[1]
    G = torch.zeros(k, k, dtype=torch.float64, device=F.device) if out is None else out.zero_()
    for _, _, P in _panels(F):  # P (rows, k) float64
        for c0 in range(0, k, col_block):
            c1 = min(c0 + col_block, k)
            G[c0:, c0:c1].addmm_(P[:, c0:].T, P[:, c0:c1])  # (k − c0, c1 − c0): the block column's lower part
    for c0 in range(0, k, col_block):  # mirror: upper blocks from the lower ones, diagonal blocks symmetrised
        c1 = min(c0 + col_block, k)
        G[c0:c1, c0:c1] = 0.5 * (G[c0:c1, c0:c1] + G[c0:c1, c0:c1].T)
        G[c0:c1, c1:] = G[c1:, c0:c1].T
    return G


def _lapack_in_place(t: torch.Tensor) -> bool:
    return t.device.type == "cpu"


def _top_eigenvalue(gram: torch.Tensor, iterations: int = 30, rtol: float = 1e-4) -> float:
    """λ_1 of a PSD (k, k) matrix by power iteration from its largest-diagonal column: an estimate from
    below (kernels have a clear top eigenvalue), used for floors and the log only."""
    if gram.numel() == 0:
        return 0.0
    v = gram[:, int(torch.argmax(gram.diagonal()))].clone()
    lam = 0.0
    for _ in range(iterations):
        norm = float(v.norm())
        if norm == 0.0:
            return 0.0
        v /= norm
        w = gram @ v
        lam_new = float(v @ w)
        v = w
        if abs(lam_new - lam) <= rtol * lam_new:
            return lam_new
        lam = lam_new
    return lam


@dataclass
class PivotedCholeskyPreconditioner:
    F: torch.Tensor  # (n, k), in the stored kernel's precision: Θ̂ = F Fᵀ
    core: torch.Tensor  # (k, k) float64: FᵀF, then overwritten by the Cholesky factor of σI + FᵀF
    pivots: np.ndarray  # rows of Θ the factor was built from
    level: float  # c: mean of diag(Θ − Θ̂), where the unresolved part of the spectrum sits on average
    floor: float  # pivot eigenvalues below this were dropped (rounding noise of the stored Θ)
    last_pivot: float  # smallest residual eigenvalue of the last pivot block kept: where Θ̂ was cut
    seconds: float

    def __post_init__(self):
        self._sigma = None  # the σ whose factor `core` holds (None: it holds FᵀF)
        self.lam_max = _top_eigenvalue(self.core)  # λ̂_1

    @property
    def rank(self) -> int:
        return int(self.F.shape[1])

    def _factor(self, sigma: float):
        """The lower Cholesky factor of σI + FᵀF. On the CPU in place in `core` (LAPACK on the Fortran
        view of the symmetric C-order matrix: no copy, so one (k, k) buffer in all). Another σ rebuilds
        FᵀF first."""
        if self._sigma == sigma:
            return self._chol
        if self._sigma is not None:
            gram64(self.F, out=self.core)
        self.core.diagonal().add_(sigma)
        if not _lapack_in_place(self.core):  # a GPU: torch's Cholesky (one more (k, k) buffer while it runs)
            L, info = torch.linalg.cholesky_ex(self.core)
            self.core, info = L, int(info)
        else:
            a = self.core.numpy().T
            L, info = lapack.dpotrf(a, lower=1, overwrite_a=1, clean=0)
            if not np.shares_memory(L, a):
                raise RuntimeError("dpotrf did not factor in place")
        if info != 0:
            raise FloatingPointError(f"Cholesky of σI + FᵀF failed (info {info}, σ = {sigma:.3e})")
        self._sigma, self._chol = sigma, L
        return L

    def for_shift(self, mu: float):
        """P⁻¹ for Θ + μI as a callable (n, R) float64 → (n, R) float64. σ = c + μ; σ = 0 (an exactly
        low-rank Θ without ridge) is floored at RANK_RTOL·λ̂_1 so that P stays positive definite.
        The callable is valid until for_shift is called with another μ (the factor is overwritten)."""
        sigma = max(self.level + float(mu), RANK_RTOL * max(self.lam_max, 1e-300))
        chol = self._factor(sigma)
        F = self.F

        def solve(y: torch.Tensor) -> torch.Tensor:  # (R, k) → (k, R) = (σI + FᵀF)⁻¹ yᵀ
            if isinstance(chol, torch.Tensor):
                return torch.cholesky_solve(y.T, chol)
            x, info = lapack.dpotrs(chol, y.T.numpy(), lower=1)
            return torch.from_numpy(x)

        def apply(r: torch.Tensor) -> torch.Tensor:  # (n, R)
            if self._sigma != sigma:
                raise RuntimeError("this P⁻¹ was overwritten by for_shift with another shift")
            y = torch.zeros(r.shape[1], F.shape[1], dtype=torch.float64, device=r.device)  # (R, k) = (Fᵀ r)ᵀ
            for r0, r1, P in _panels(F, APPLY_PANEL_BYTES):
                y.addmm_(r[r0:r1].T, P)  # rᵀF: the fast layout for a thin r
            y = solve(y)
            out = r.clone()
            for r0, r1, P in _panels(F, APPLY_PANEL_BYTES):
                out[r0:r1].sub_(P @ y)
            return out

        return apply

    def summary(self) -> dict:
        return dict(nystrom_landmarks="rpcholesky", nystrom_columns=int(self.pivots.size), nystrom_rank=self.rank,
                    nystrom_level=self.level, nystrom_lambda_max=self.lam_max, nystrom_last_pivot=self.last_pivot,
                    nystrom_factor_dtype=str(self.F.dtype).replace("torch.", ""),
                    nystrom_shift=self.floor, nystrom_seconds=round(self.seconds, 3))


def factor_dtype(op) -> torch.dtype:
    """float32 for a float32 store (its values carry float32 rounding anyway), else float64."""
    return torch.float32 if storage_eps(op) > 1e-10 else torch.float64


def rp_cholesky(op, rank: int, *, seed: int = 0, diagonal: torch.Tensor | None = None,
                block: int = BLOCK, dtype: torch.dtype | None = None) -> PivotedCholeskyPreconditioner:
    """Rank-≤``rank`` block RPCholesky factor of the symmetric operator ``op`` (Θ, without its ridge).

    op: a ZarrKernelOperator (``.rows(idx)``, ``.diagonal()``, ``.ridge``, ``.shape``). Each block samples
    ``block`` pivots ∝ the residual diagonal (without replacement), reads their rows, subtracts what F
    already explains, and keeps the part of the pivot block above the rounding floor of the stored
    kernel (an eigenvalue filter instead of a plain Cholesky: near-duplicate pivots cannot blow F up).
    Stops at ``rank`` columns or when the residual trace is at the floor (Θ exactly low rank).
    dtype: of F (default ``factor_dtype(op)``); the residual columns and diagonal are float64.
    """
    t0 = time.perf_counter()
    n = op.shape[0]
    ridge = float(getattr(op, "ridge", 0.0))
    d = (op.diagonal() if diagonal is None else diagonal).to(torch.float64).clone() - ridge  # diag Θ (n,)
    dev = d.device
    dtype = factor_dtype(op) if dtype is None else dtype
    mean_diag = max(float(d.mean()), 1e-300)
    floor = max(block * storage_eps(op) * mean_diag, 1e-300)
    k_max = max(1, min(int(rank), n))
    F = torch.empty(n, k_max, dtype=dtype, device=dev)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    k, chosen, last_pivot = 0, np.zeros(n, dtype=bool), 0.0
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
        s_dev = torch.as_tensor(s, device=dev)
        G = op.rows(s).T.contiguous()  # (n, b) float64 = Θ[:, s] (Θ symmetric)
        if k:
            G -= (F[:, :k] @ F[s_dev, :k].T).to(torch.float64)  # residual columns (Θ − F Fᵀ)[:, s]
        lam, V = _small_eigh(G[s_dev])  # (b,), (b, b): the residual's pivot block
        keep = lam > max(floor, RANK_RTOL * float(lam[0])) if lam.numel() and float(lam[0]) > 0 else lam > math.inf
        m = int(keep.sum())
        pivots.append(s)
        if m == 0:
            continue  # every sampled pivot was explained to rounding: its residual was noise
        m = min(m, k_max - k)
        new = G @ (V[:, :m] / lam[:m].sqrt())  # (n, m) float64: Nyström of the residual on the pivot block
        del G
        F[:, k : k + m] = new
        d -= (new * new).sum(1)
        last_pivot = float(lam[m - 1])
        k += m
    if k < k_max:
        F = F[:, :k].contiguous()
    return PivotedCholeskyPreconditioner(
        F=F, core=gram64(F), pivots=np.sort(np.concatenate(pivots)) if pivots else np.zeros(0, np.int64),
        level=float(d.clamp_min(0).sum()) / n, floor=floor, last_pivot=last_pivot,
        seconds=time.perf_counter() - t0)


def from_factor(F: torch.Tensor, *, pivots: np.ndarray, level: float, floor: float,
                t0: float | None = None) -> PivotedCholeskyPreconditioner:
    """The preconditioner of any factor F (n, k) with `level` = mean of diag(Θ − F Fᵀ)."""
    return PivotedCholeskyPreconditioner(F=F, core=gram64(F), pivots=pivots, level=level, floor=floor, last_pivot=0.0,
                                         seconds=0.0 if t0 is None else time.perf_counter() - t0)

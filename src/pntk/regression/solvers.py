"""Linear algebra for kernel regression: a streamed kernel operator, Cholesky with jitter,
preconditioned CG on many right-hand sides, and finite-time weights from an eigendecomposition.

Everything computes in float64 torch tensors on a chosen device (CPU or CUDA); kernels may be
np.ndarray, torch.Tensor or zarr.Array (or a path to a Zarr group holding array ``kernel``).
Kernel layouts: pNTK (N1, N2); eNTK (N1, N2, O, O), flattened to (N1·O, N2·O) with row n*O+a.
"""
from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Union

import numpy as np
import torch

_LOG = logging.getLogger("pntk.regression")
LogLike = Union[logging.Logger, logging.LoggerAdapter, Callable[[str], None], None]


def emit(log: LogLike, msg: str, level: int = logging.INFO) -> None:
    """Send ``msg`` to a Logger (at ``level``) or to a callable (INFO and above); None → module logger."""
    log = _LOG if log is None else log
    if isinstance(log, (logging.Logger, logging.LoggerAdapter)):
        log.log(level, msg)
    elif level >= logging.INFO:
        log(msg)


def open_kernel(k):
    """A str/PathLike names a Zarr group with array ``kernel``; anything else is returned as is."""
    if isinstance(k, (str, os.PathLike)):
        import zarr

        try:
            return zarr.open_group(str(k), mode="r")["kernel"]
        except (KeyError, FileNotFoundError) as e:
            raise ValueError(f"{k}: expected a Zarr group with array 'kernel' ({e})") from e
    if not hasattr(k, "shape") or not hasattr(k, "__getitem__"):
        raise TypeError(f"kernel must be an ndarray, torch.Tensor, zarr.Array or path; got {type(k)}")
    return k


def _to_torch(b, device) -> torch.Tensor:
    t = b if isinstance(b, torch.Tensor) else torch.from_numpy(np.asarray(b))
    return t.to(device=device, dtype=torch.float64)


class ZarrKernelOperator:
    """Θ (+ ridge·I when square) as a linear operator of flat shape (N1·O, N2·O).

    matmat streams row blocks (whole chunk-rows of tiles; split into groups of whole chunk-columns
    when one chunk-row exceeds ``block_bytes`` in float64), so only one block is resident at a time.
    ``symmetric=True`` (square Θ(D,D)): square blocks of whole tiles, only the upper block triangle
    is read and each off-diagonal block B_IJ serves both B_IJ v_J and B_IJᵀ v_I, halving the reads.
    Works for any sliceable kernel (zarr.Array, np.ndarray, torch.Tensor).
    """

    def __init__(self, k, *, ridge: float = 0.0, block_bytes: int = 64 << 20, device="cpu",
                 symmetric: bool = False):
        self.k = open_kernel(k)
        shape = tuple(self.k.shape)
        if len(shape) not in (2, 4) or (len(shape) == 4 and shape[2] != shape[3]):
            raise ValueError(f"kernel shape {shape}: expected (N1, N2) or (N1, N2, O, O)")
        self.n1, self.n2 = shape[:2]
        self.o = shape[2] if len(shape) == 4 else 1
        self.shape = (self.n1 * self.o, self.n2 * self.o)  # flat (N1·O, N2·O)
        self.ridge = float(ridge)
        self.device = torch.device(device)
        if self.ridge and self.n1 != self.n2:
            raise ValueError(f"ridge needs a square kernel; got {shape}")
        chunks = getattr(self.k, "chunks", None) if not isinstance(self.k, (np.ndarray, torch.Tensor)) else None
        tr, tc = (int(chunks[0]), int(chunks[1])) if chunks else (1, 1)
        per = 8 * self.o * self.o  # float64 bytes of one (sample, sample) entry
        if symmetric:
            if self.n1 != self.n2:
                raise ValueError(f"symmetric needs a square kernel; got {shape}")
            side = max(tr, math.isqrt(block_bytes // per) // tr * tr)  # square blocks of whole tiles
            self.block_rows = self.block_cols = min(side, self.n1)
        else:
            rows = max(tr, (block_bytes // max(1, per * self.n2)) // tr * tr)
            self.block_rows = min(rows, self.n1)
            cols = max(tc, (block_bytes // max(1, per * self.block_rows)) // tc * tc)
            self.block_cols = min(cols, self.n2)
        self.symmetric = symmetric
        self.tile = (tr, tc)
        self._buf = None  # reused float64 block buffer for chunked (zarr) kernels
        self.passes = 0  # full sweeps over the kernel (one per matmat)
        self.read_seconds = 0.0
        if symmetric:
            self.check_symmetric()  # only the upper block triangle is read: it must stand for the lower

    @property
    def block_nbytes(self) -> int:
        return 8 * self.o * self.o * self.block_rows * self.block_cols

    def block(self, r0: int, r1: int, c0: int, c1: int) -> torch.Tensor:
        """Sample rows r0:r1, cols c0:c1 → float64 (Δr·O, Δc·O) on the device (no ridge).

        Arrays with chunks (zarr) are read one tile at a time into a reused float64 buffer: one
        multi-chunk read makes zarr decode in a thread pool whose per-thread malloc arenas keep
        ~100 MB of freed buffers resident (measured), so a single small read path keeps RSS flat.
        The returned tensor may be that buffer: use it before the next call to ``block``.
        """
        t0 = time.perf_counter()
        o, br, bc = self.o, r1 - r0, c1 - c0
        if self.tile == (1, 1):  # in memory: a slice (a copy only for dtype/layout conversion)
            t = _to_torch(self.k[r0:r1, c0:c1], self.device)
            if t.ndim == 4:  # (r, c, O, O) → (r, O, c, O) → (r·O, c·O): row index n*O+a
                t = t.permute(0, 2, 1, 3).reshape(br * o, bc * o)
        else:
            if self._buf is None or self._buf.size < br * bc * o * o:
                self._buf = np.empty(max(br * bc, self.block_rows * self.block_cols) * o * o)
            buf = self._buf[: br * bc * o * o].reshape(br, o, bc, o)  # (r, O, c, O)
            tr, tc = self.tile
            for i in range(r0, r1, tr):
                i1 = min(i + tr, r1)
                for j in range(c0, c1, tc):
                    j1 = min(j + tc, c1)
                    tile = np.asarray(self.k[i:i1, j:j1]).reshape(i1 - i, j1 - j, o, o)
                    buf[i - r0 : i1 - r0, :, j - c0 : j1 - c0, :] = tile.transpose(0, 2, 1, 3)
            t = torch.from_numpy(buf.reshape(br * o, bc * o)).to(self.device)  # (r·O, c·O)
        self.read_seconds += time.perf_counter() - t0
        return t

    def _blocks(self):
        """(r0, r1, c0, c1) sample ranges of the blocks to read: all, or the upper triangle."""
        for r0 in range(0, self.n1, self.block_rows):
            r1 = min(r0 + self.block_rows, self.n1)
            for c0 in range(r0 if self.symmetric else 0, self.n2, self.block_cols):
                yield r0, r1, c0, min(c0 + self.block_cols, self.n2)

    def matmat(self, v: torch.Tensor) -> torch.Tensor:
        """(N2·O, R) → (N1·O, R), streaming the kernel once."""
        if v.shape[0] != self.shape[1]:
            raise ValueError(f"matmat: operand has {v.shape[0]} rows, kernel has {self.shape[1]} columns")
        o = self.o
        out = torch.zeros(self.shape[0], v.shape[1], dtype=torch.float64, device=self.device)
        for r0, r1, c0, c1 in self._blocks():
            b = self.block(r0, r1, c0, c1)  # (Δr·O, Δc·O)
            out[r0 * o : r1 * o] += b @ v[c0 * o : c1 * o]
            if self.symmetric and c0 != r0:  # mirrored block B_JI = B_IJᵀ
                out[c0 * o : c1 * o] += b.T @ v[r0 * o : r1 * o]
        if self.ridge:
            out += self.ridge * v
        self.passes += 1
        if not bool(torch.isfinite(out).all()) and bool(torch.isfinite(v).all()):
            raise ValueError("kernel contains NaN/inf (unwritten tiles of a store are NaN)")
        return out

    __call__ = matmat

    def diagonal(self) -> torch.Tensor:
        """Diagonal (N·O,) of Θ + ridge, read from the diagonal tiles only (Jacobi preconditioner)."""
        if self.n1 != self.n2:
            raise ValueError("diagonal needs a square kernel")
        step = self.tile[0] if self.tile[0] > 1 else self.block_rows
        parts = [torch.diagonal(self.block(i, min(i + step, self.n1), i, min(i + step, self.n1))).clone()
                 for i in range(0, self.n1, step)]
        return torch.cat(parts) + self.ridge

    def to_dense(self) -> torch.Tensor:
        """Fresh float64 (N1·O, N2·O) tensor on the device, ridge on the diagonal; filled blockwise."""
        o = self.o
        out = torch.empty(self.shape, dtype=torch.float64, device=self.device)
        for r0, r1, c0, c1 in self._blocks():
            b = self.block(r0, r1, c0, c1)
            out[r0 * o : r1 * o, c0 * o : c1 * o] = b
            if self.symmetric and c0 != r0:
                out[c0 * o : c1 * o, r0 * o : r1 * o] = b.T
        if self.ridge:
            out.diagonal().add_(self.ridge)
        return out

    def check_symmetric(self, rtol: float = 1e-4) -> None:
        """Compare tile (0,1) with tile (1,0)ᵀ: catches stores holding only one triangle."""
        tr = self.tile[0] if self.tile[0] > 1 else 256
        tr = tr if tr < self.n1 else self.n1 // 2
        if self.n1 != self.n2 or tr < 1:
            return
        e = min(2 * tr, self.n1)
        a, b = self.block(0, tr, tr, e).clone(), self.block(tr, e, 0, tr)
        scale = max(float(a.abs().max()), float(b.abs().max()), 1e-300)
        if float((a - b.T).abs().max()) > rtol * scale:
            raise ValueError("kernel is not symmetric (tile (0,1) != tile (1,0)ᵀ): "
                             "is only one triangle stored?")


def cholesky_solve(K, B, ridge: float = 0.0, log: LogLike = None, *, overwrite: bool = False,
                   max_tries: int = 12, rtol: float | None = None):
    """Solve (K + ridge·I) X = B in float64 by Cholesky → (X, jitter_used).

    K (n, n), B (n, R). If K + ridge is not numerically positive definite (factorization fails, or
    min pivot² ≤ rtol·max diag with rtol = 10·n·eps), jitter 1e-10·mean(diag) is added and grown
    ×10 per try; the value used is logged (WARNING). After ``max_tries`` falls back to an eigh
    pseudo-inverse (logged), so the result is always finite. ``overwrite`` lets a float64 torch K
    be modified in place (its diagonal). Returns X as a torch.Tensor if B is one, else np.ndarray.
    """
    as_numpy = not isinstance(B, torch.Tensor)
    dev = K.device if isinstance(K, torch.Tensor) else torch.device("cpu")
    src = K
    K = _to_torch(K, dev)
    src_ptr = src.data_ptr() if isinstance(src, torch.Tensor) else np.asarray(src).ctypes.data
    if not overwrite and K.data_ptr() == src_ptr:  # no conversion copy was made: do not touch input
        K = K.clone()
    Bt = _to_torch(B, dev)
    n = K.shape[0]
    if not (torch.isfinite(K.sum()) and torch.isfinite(Bt).all()):  # sum: no n×n bool temporary
        raise ValueError("cholesky_solve: kernel or right-hand side contains NaN/inf "
                         "(unwritten tiles of a store are NaN)")
    d = K.diagonal()
    if ridge:
        d.add_(ridge)
    rtol = 10 * n * np.finfo(np.float64).eps if rtol is None else rtol
    dmax = float(d.max()) if n else 1.0
    mean = float(d.mean()) if n else 1.0
    base = 1e-10 * (mean if mean > 0 else 1.0)
    L = torch.empty_like(K)
    info = torch.empty((), dtype=torch.int32, device=dev)
    jitter = 0.0
    for attempt in range(max_tries + 1):
        if attempt:
            new = base * 10 ** (attempt - 1)
            d.add_(new - jitter)
            jitter = new
        torch.linalg.cholesky_ex(K, out=(L, info))
        piv = L.diagonal()
        if int(info) == 0 and float(piv.min()) ** 2 > rtol * dmax:
            if jitter:
                emit(log, f"cholesky: kernel not numerically positive definite; added jitter "
                          f"{jitter:.3e} (= {jitter / max(mean, 1e-300):.1e}·mean diag)",
                     logging.WARNING)
            X = torch.cholesky_solve(Bt, L)
            return (X.cpu().numpy() if as_numpy else X), jitter
    del L
    d.sub_(jitter)
    emit(log, f"cholesky: failed with jitter up to {jitter:.3e}; using eigh pseudo-inverse",
         logging.WARNING)
    X = eigh_solve(K, Bt)
    return (X.cpu().numpy() if as_numpy else X), jitter


def eigh_solve(K: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """Pseudo-inverse solve via eigh (eigenvalues ≤ n·eps·λmax are dropped)."""
    lam, V = torch.linalg.eigh(K)
    g = finite_time_weights(lam, torch.tensor([math.inf], dtype=lam.dtype, device=lam.device))[0]
    return V @ (g[:, None] * (V.T @ B))


def finite_time_weights(evals: torch.Tensor, t) -> torch.Tensor:
    """g_t(λ) = (1 − e^{−tλ})/λ, the spectral form of Θ^{-1}(I − e^{−tΘ}).

    evals (n,), t (T,) → (T, n). λ ≤ 0 (numerical noise of a PSD kernel) uses the limit g = t;
    t = inf gives 1/λ, with λ ≤ n·eps·λmax treated as 0 (pseudo-inverse: g = 0).
    """
    t = torch.as_tensor(t, dtype=torch.float64, device=evals.device).reshape(-1, 1)  # (T, 1)
    lam = evals.to(torch.float64).reshape(1, -1)  # (1, n)
    if torch.any(t < 0):
        raise ValueError("time t must be >= 0")
    pos = lam > 0
    safe = torch.where(pos, lam, torch.ones_like(lam))
    tf = torch.where(torch.isinf(t), torch.zeros_like(t), t)  # finite stand-in for t = inf
    g = torch.where(pos, -torch.expm1(-tf * safe) / safe, tf.expand(-1, lam.shape[1]))  # (T, n)
    cut = lam.shape[1] * np.finfo(np.float64).eps * float(lam.abs().max()) if lam.numel() else 0.0
    keep = lam > cut
    ginf = torch.where(keep, 1.0 / torch.where(keep, lam, torch.ones_like(lam)), torch.zeros_like(lam))
    return torch.where(torch.isinf(t), ginf.expand_as(g), g)


@dataclass
class CGInfo:
    iterations: int
    converged: bool
    rel_residual: list = field(default_factory=list)  # per column ‖b − A x‖/‖b‖ (recursive)
    seconds: float = 0.0


def cg_solve(op, B, *, precond=None, tol: float = 1e-8, maxiter: int | None = None,
             log: LogLike = None, log_every: int = 25):
    """Preconditioned CG on all R columns of B (n, R) at once: R independent CGs, vectorised.

    op: callable or object with .matmat, (n, R) → (n, R), symmetric positive definite.
    precond: inverse diagonal (n,) tensor (Jacobi) or callable (n, R) → (n, R), or None.
    Stops when every column has ‖r‖ ≤ tol·‖b‖ or after maxiter (default min(10n, 2000)) iterations.
    Returns (X torch float64 (n, R), CGInfo).
    """
    t0 = time.perf_counter()
    A = op.matmat if hasattr(op, "matmat") else op
    B = B if isinstance(B, torch.Tensor) else torch.from_numpy(np.asarray(B, dtype=np.float64))
    B = B.to(torch.float64)
    vec = B.ndim == 1
    B = B.reshape(B.shape[0], -1)  # (n, R)
    n = B.shape[0]
    maxiter = min(10 * n, 2000) if maxiter is None else maxiter
    if precond is None:
        M = lambda r: r  # noqa: E731
    elif callable(precond):
        M = precond
    else:
        dinv = precond.to(B).reshape(-1, 1)
        M = lambda r: dinv * r  # noqa: E731
    X = torch.zeros_like(B)
    R = B.clone()
    Z = M(R)
    P = Z.clone()
    rz = (R * Z).sum(0)
    bnorm = B.norm(dim=0)
    bnorm = torch.where(bnorm > 0, bnorm, torch.ones_like(bnorm))
    broken = torch.zeros(B.shape[1], dtype=torch.bool, device=B.device)
    rel = R.norm(dim=0) / bnorm
    it = 0
    while it < maxiter:
        active = (rel > tol) & ~broken
        if not bool(active.any()):
            break
        it += 1
        AP = A(P)
        pap = (P * AP).sum(0)
        bad = active & ~(pap > 0)
        if bool(bad.any()):
            emit(log, f"cg: pᵀAp ≤ 0 in columns {bad.nonzero().flatten().tolist()} at iteration "
                      f"{it}: matrix not positive definite; freezing them", logging.WARNING)
            broken |= bad
            active &= ~bad
        alpha = torch.where(active, rz / torch.where(pap > 0, pap, torch.ones_like(pap)),
                            torch.zeros_like(pap))
        X += alpha * P
        R -= alpha * AP
        Z = M(R)
        rz_new = (R * Z).sum(0)
        beta = torch.where(active, rz_new / torch.where(rz != 0, rz, torch.ones_like(rz)),
                           torch.zeros_like(rz))
        P = Z + beta * P
        rz = rz_new
        rel = R.norm(dim=0) / bnorm
        if log_every and it % log_every == 0:
            emit(log, f"cg: iteration {it}, max rel residual {float(rel.max()):.3e}", logging.DEBUG)
    converged = bool(((rel <= tol) & ~broken).all())
    info = CGInfo(it, converged, rel.tolist(), time.perf_counter() - t0)
    emit(log, f"cg: {it} iterations, max rel residual {float(rel.max()):.3e} (tol {tol:g}), "
              f"{'converged' if converged else 'NOT converged'}, {info.seconds:.2f} s",
         logging.INFO if converged else logging.WARNING)
    return (X[:, 0] if vec else X), info

"""Linear algebra for kernel regression: Cholesky with jitter, finite-time weights from an
eigendecomposition, and preconditioned CG on many right-hand sides that never hands back a result
it did not converge to (it escalates with a logged jitter, or raises NotConvergedError).

Everything computes in float64 torch tensors on a chosen device (CPU or CUDA). The streamed kernel
operator lives in ``pntk.regression.operator`` (re-exported here), preconditioners in
``pntk.regression.preconditioners``.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Union

import numpy as np
import torch

from .operator import ZarrKernelOperator, kernel_operand  # noqa: F401  (re-exported)

_LOG = logging.getLogger("pntk.regression")
LogLike = Union[logging.Logger, logging.LoggerAdapter, Callable[[str], None], None]


def emit(log: LogLike, msg: str, level: int = logging.INFO) -> None:
    """Send ``msg`` to a Logger (at ``level``) or to a callable (INFO and above); None → module logger."""
    log = _LOG if log is None else log
    if isinstance(log, (logging.Logger, logging.LoggerAdapter)):
        log.log(level, msg)
    elif level >= logging.INFO:
        log(msg)


def _to_torch(b, device) -> torch.Tensor:
    t = b if isinstance(b, torch.Tensor) else torch.from_numpy(np.asarray(b))
    return t.to(device=device, dtype=torch.float64)


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


MAX_JITTER = 1e-2  # largest jitter an iterative solve may add, relative to the mean diagonal


class NotConvergedError(RuntimeError):
    """An iterative solve that did not reach its tolerance, even with jitter: no result is returned."""


@dataclass
class CGInfo:
    iterations: int
    converged: bool
    rel_residual: list = field(default_factory=list)  # per column ‖b − A x‖/‖b‖ (true residual if verified)
    seconds: float = 0.0
    reason: str = ""  # converged | max iterations | stagnated | diverged | breakdown | non-finite
    history: list = field(default_factory=list)  # max relative residual after each iteration
    verified: bool = False  # rel_residual was recomputed as B − A X with one more product


class _Progress:
    """INFO lines while CG runs, so a job log shows it is alive: every 5 % of the iteration budget,
    each new decade of the residual, or every 30 s; with an ETA from the residual's decay so far."""

    def __init__(self, log: LogLike, name: str, maxiter: int, tol: float):
        self.log, self.name, self.maxiter, self.tol = log, name, maxiter, tol
        self.t0 = self.last = time.perf_counter()
        self.every, self.logged = max(1, maxiter // 20), 1.0

    def __call__(self, it: int, res: float) -> None:
        now = time.perf_counter()
        if not (it % self.every == 0 or res < self.logged / 10 or now - self.last >= 30):
            return
        self.logged, self.last = res, now
        per_it = (now - self.t0) / it
        rate = -math.log(res) / it if 0 < res < 1 else 0.0  # e-folds per iteration (relative residual starts at 1)
        left = math.log(res / self.tol) / rate if rate > 0 else math.inf
        left = min(left, self.maxiter - it) if res > self.tol else 0
        emit(self.log, f"{self.name}: iteration {it}/{self.maxiter}, max rel residual {res:.2e} (tol {self.tol:g}), "
                       f"{per_it:.2f} s/iteration, ETA ~{left * per_it:.0f} s")


def _preconditioner(precond):
    if precond is None:
        return lambda r: r
    if callable(precond):
        return precond
    d = precond.reshape(-1, 1)  # inverse diagonal (Jacobi)
    return lambda r: d.to(r) * r


def cg_solve(op, B, *, precond=None, tol: float = 1e-8, maxiter: int | None = None, log: LogLike = None,
             shift: float = 0.0, name: str = "cg", verify: bool = True, stall_window: int | None = None):
    """Preconditioned CG on all R columns of B (n, R) at once: R independent CGs, vectorised.

    op: callable or object with .matmat, (n, R) → (n, R), symmetric positive (semi)definite; the
    system is (op + shift·I) X = B. precond: inverse diagonal (n,) tensor, callable (n, R) → (n, R), or None.
    Stops when every column has ‖r‖ ≤ tol·‖b‖; then (verify) recomputes r = B − A X with one more
    product and restarts from X (at most twice) if the recursive residual drifted from the true one.
    Gives up — converged=False, with the reason — after maxiter (default min(10n, 2000)) iterations,
    when the best residual has not halved for ``stall_window`` (default max(25, maxiter/5))
    iterations (e.g. a singular Θ with targets outside its range), when it exceeds 10⁶·‖b‖, or on
    pᵀAp ≤ 0. Returns (X torch float64 (n, R) — (n,) for a 1-D B —, CGInfo).
    """
    t0 = time.perf_counter()
    A0 = op.matmat if hasattr(op, "matmat") else op
    A = (lambda v: A0(v) + shift * v) if shift else A0
    B = B if isinstance(B, torch.Tensor) else torch.from_numpy(np.asarray(B, dtype=np.float64))
    vec = B.ndim == 1
    B = B.to(torch.float64).reshape(B.shape[0], -1)  # (n, R)
    n = B.shape[0]
    maxiter = min(10 * n, 2000) if maxiter is None else int(maxiter)
    stall_window = max(25, maxiter // 5) if stall_window is None else stall_window
    M = _preconditioner(precond)
    bnorm = B.norm(dim=0)
    bnorm = torch.where(bnorm > 0, bnorm, torch.ones_like(bnorm))
    X, R = torch.zeros_like(B), B.clone()
    Z = M(R)
    P, rz, rel = Z.clone(), (R * Z).sum(0), R.norm(dim=0) / bnorm
    it, restarts, reason, verified, history = 0, 0, "max iterations", False, []
    best, best_at = float(rel.max()), 0
    progress = _Progress(log, name, maxiter, tol)
    while True:
        active = rel > tol
        if not bool(active.any()):
            if not verify:
                reason = "converged"
                break
            rel = (R := B - A(X)).norm(dim=0) / bnorm  # true residual
            verified = True
            if bool((rel <= tol).all()):
                reason = "converged"
                break
            if restarts == 2 or it >= maxiter:
                reason = "true residual above tol"
                break
            restarts += 1  # residual replacement: restart CG from X on the true residual
            emit(log, f"{name}: recursive residual drifted (true {float(rel.max()):.2e}); restarting from "
                      f"the current iterate", logging.DEBUG)
            Z = M(R)
            P, rz, verified = Z.clone(), (R * Z).sum(0), False
            continue
        if it >= maxiter:
            break
        it += 1
        AP = A(P)
        pap = (P * AP).sum(0)
        if not bool((pap[active] > 0).all()):
            reason = "breakdown (pᵀAp ≤ 0: not positive definite)"
            break
        alpha = torch.where(active, rz / torch.where(pap > 0, pap, torch.ones_like(pap)), torch.zeros_like(pap))
        X += alpha * P
        R -= alpha * AP
        rel = R.norm(dim=0) / bnorm
        worst = float(rel.max())
        history.append(worst)
        if not math.isfinite(worst) or not bool(torch.isfinite(X).all()):
            reason = "non-finite iterate"
            break
        if worst > 1e6:  # CG residuals stay ≤ √κ·‖b‖ on a PD system: singular, or κ > 10¹²
            reason = "diverged"
            break
        if worst < 0.5 * best:
            best, best_at = worst, it
        elif it - best_at >= stall_window:
            reason = "stagnated"
            break
        Z = M(R)
        rz_new = (R * Z).sum(0)
        beta = torch.where(active, rz_new / torch.where(rz != 0, rz, torch.ones_like(rz)), torch.zeros_like(rz))
        P = Z + beta * P
        rz = rz_new
        progress(it, worst)
    converged = reason == "converged"
    info = CGInfo(it, converged, rel.tolist(), time.perf_counter() - t0, reason, history, verified)
    emit(log, f"{name}: {it} iterations, max rel residual {float(rel.max()):.3e} (tol {tol:g}), "
              f"{'converged' if converged else 'NOT converged: ' + reason}, {info.seconds:.2f} s",
         logging.INFO if converged else logging.WARNING)
    return (X[:, 0] if vec else X), info


def solve_escalating(op, B, *, make_precond, tol: float, maxiter: int | None, log: LogLike, name: str,
                     where: str, mean_diag: float, level: float, lam_max: float, max_escalations: int = 4):
    """CG on (op + j·I) X = B, j = 0 first; if CG gives up, retry with jitter j (logged, WARNING).

    make_precond(j) → the preconditioner for shift j. The first jitter is the largest of
    1e-8·mean_diag; level/κ_budget — ``level`` is where the preconditioned spectrum's top sits
    (Nyström: c; Jacobi: mean diag) and κ_budget = (maxiter / ln(2/tol))² the condition number
    CG can handle in its budget —; and eps·lam_max/tol, below which the true residual of the
    solution (‖x‖ ~ ‖b‖/j) cannot reach tol in float64. Then ×100 per try, at most
    MAX_JITTER·mean_diag (more would answer a different question). After ``max_escalations``
    jittered tries, or that largest jitter, raises NotConvergedError naming ``where`` and the
    residual: never a result that did not converge.
    Returns (X, CGInfo of the last try, jitter, attempts: list of dicts).
    """
    n = B.shape[0]
    budget = min(10 * n, 2000) if maxiter is None else int(maxiter)
    kappa_budget = max((budget / math.log(2 / tol)) ** 2, 2.0)
    jitter, attempts = 0.0, []
    for attempt in range(max_escalations + 1):
        X, info = cg_solve(op, B, precond=make_precond(jitter), tol=tol, maxiter=maxiter, log=log,
                           shift=jitter, name=name)
        res = max(info.rel_residual, default=0.0)
        attempts.append(dict(jitter=jitter, iterations=info.iterations, reason=info.reason, residual=res))
        if info.converged:
            if jitter:
                emit(log, f"{name}: converged only with jitter {jitter:.3e} (= {jitter / mean_diag:.1e}·mean "
                          f"diag) on the diagonal: results are those of Θ + (ridge + jitter)·I", logging.WARNING)
            return X, info, jitter, attempts
        if attempt == max_escalations or jitter >= MAX_JITTER * mean_diag:
            break
        floor = np.finfo(np.float64).eps * lam_max / tol
        jitter = max(1e-8 * mean_diag, level / kappa_budget, floor) if jitter == 0 else 100 * jitter
        jitter = min(jitter, MAX_JITTER * mean_diag)
        emit(log, f"{name} on {where}: {info.reason} after {info.iterations} iterations (max rel residual "
                  f"{res:.2e} > tol {tol:g}); retrying with jitter {jitter:.3e} (= {jitter / mean_diag:.1e}·mean "
                  f"diag) added to the diagonal", logging.WARNING)
    tried = ", ".join(f"jitter {a['jitter']:.1e}: {a['reason']} at {a['residual']:.2e}" for a in attempts)
    raise NotConvergedError(f"{name} did not converge on {where}: max relative residual {res:.3e} > tol {tol:g} "
                            f"({tried}). Use a ridge > 0, a larger maxiter or Nyström rank, or a dense solver.")

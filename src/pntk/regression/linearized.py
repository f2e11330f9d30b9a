"""Linearized (kernel) regression with a pNTK or eNTK: predictions of the linearized network
at infinite or finite training time, from kernels in memory or streamed from Zarr stores.

    f_lin(x) = f0(x) + Θ(x,D) Θ(D,D)^{-1} (Y − f0(D))                                  (t = ∞)
    f_t(x)   = f0(x) − Θ(x,D) Θ(D,D)^{-1} (I − e^{−tΘ(D,D)}) (f0(D) − Y)              (finite t)

Solvers (dispatch table ``SOLVERS``): dense float64 Cholesky with jitter, eigendecomposition (the
only one for finite t), and two out-of-core CGs whose products stream tiles from the store:
Nyström-preconditioned ("nystrom", see ``pntk.regression.preconditioners``) and Jacobi-preconditioned ("cg").
An iterative solve that does not converge is retried with a logged jitter (recorded in the info)
or raises ``NotConvergedError``: predictions are only returned for a converged solve.
"""
from __future__ import annotations

import enum
import logging
import time

import numpy as np
import torch

from .memory import (
    NYSTROM_RANK,
    nystrom_rank,
    preconditioner_bytes,
    rank_cut_reason,
    release_freed_memory,
    resident_plan,
    sketch_block,
    streaming_workers,
)
from .options import SolverOptions
from .preconditioners import jacobi, nystrom
from .rpcholesky import factor_dtype, rp_cholesky
from .solvers import (
    LogLike,
    NotConvergedError,
    ZarrKernelOperator,
    cg_solve,
    cholesky_solve,
    emit,
    finite_time_weights,
    kernel_operand,
    solve_escalating,
)

__all__ = ["Solver", "linearized_predict", "accuracy", "regression_summary", "default_memory_cap",
           "ZarrKernelOperator", "cholesky_solve", "cg_solve", "finite_time_weights", "NotConvergedError",
           "choose_solver"]


class Solver(str, enum.Enum):
    AUTO = "auto"
    CHOLESKY = "cholesky"
    EIGH = "eigh"
    CG = "cg"  # Jacobi-preconditioned
    NYSTROM = "nystrom"  # Nyström-preconditioned CG


# float64 n×n matrices a dense solver keeps resident: Cholesky K + L; eigh K + V + workspace.
DENSE_COPIES = {Solver.CHOLESKY: 2, Solver.EIGH: 3}
NYSTROM_MAXITER = 500  # default iteration budget of the Nyström-preconditioned CG


def default_memory_cap(device) -> int:
    """Half the available RAM (CPU) or 80 % of free device memory (CUDA)."""
    device = torch.device(device)
    if device.type == "cuda":
        return int(0.8 * torch.cuda.mem_get_info(device)[0])
    import psutil

    return int(0.5 * psutil.virtual_memory().available)


def _as_f64(x, name: str, shape: tuple, device) -> torch.Tensor:
    if x is None:  # f0 = 0: regression from a zero function
        return torch.zeros(shape, dtype=torch.float64, device=device)
    t = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))
    if tuple(t.shape) != shape:
        raise ValueError(f"{name}: shape {tuple(t.shape)}, expected {shape}")
    t = t.to(device=device, dtype=torch.float64)
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name}: contains NaN/inf")
    return t


def _targets(y_d, n: int, o: int, device) -> torch.Tensor:
    """(N,) integer labels → one-hot (N, O); (N, O) targets pass through."""
    y = y_d if isinstance(y_d, torch.Tensor) else torch.from_numpy(np.asarray(y_d))
    if y.ndim == 1 and not y.is_floating_point():
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= o):
            raise ValueError(f"y_d: labels must lie in [0, {o}); got [{int(y.min())}, {int(y.max())}]")
        y = torch.nn.functional.one_hot(y.long(), o)
    elif y.ndim == 1 and o == 1:  # (N,) real targets, single output
        y = y.reshape(n, 1)
    return _as_f64(y, "y_d", (n, o), device)


def _check_shapes(k_dd, k_xd):
    sd, sx = tuple(k_dd.shape), tuple(k_xd.shape)
    if len(sd) not in (2, 4) or sd[0] != sd[1] or (len(sd) == 4 and sd[2] != sd[3]):
        raise ValueError(f"k_dd: shape {sd}, expected (N, N) pNTK or (N, N, O, O) eNTK")
    if len(sx) != len(sd) or sx[1] != sd[0] or sx[2:] != sd[2:]:
        raise ValueError(f"k_xd: shape {sx}, expected (M, {sd[0]}{', ' if sd[2:] else ''}"
                         f"{', '.join(map(str, sd[2:]))}) to match k_dd {sd}")
    return sd[0], sx[0]


def _solve_cholesky(A, rhs, ctx):
    t0 = time.perf_counter()
    K = A.to_dense()  # (n, n) with ridge on the diagonal
    t1 = time.perf_counter()
    alpha, jitter = cholesky_solve(K, rhs, 0.0, ctx["log"], overwrite=True)
    ctx["info"].update(jitter=jitter, load_seconds=round(t1 - t0, 3),
                       factor_solve_seconds=round(time.perf_counter() - t1, 3))
    return alpha


def _iterative_info(A, info, jitter, attempts, ctx) -> None:
    ctx["info"].update(cg_iterations=sum(a["iterations"] for a in attempts), cg_converged=info.converged,
                       cg_max_rel_residual=max(info.rel_residual, default=0.0), cg_tol=ctx["tol"],
                       cg_attempts=attempts, jitter=jitter, kernel_passes=A.passes,
                       read_seconds=round(A.read_seconds, 3), pass_seconds=round(A.pass_seconds, 3),
                       threads=A.threads)


def _solve_cg(A, rhs, ctx):
    diag = A.diagonal()
    mean_diag = max(float(diag.mean()), 1e-300)
    alpha, info, jitter, attempts = solve_escalating(
        A, rhs, make_precond=jacobi(diag), tol=ctx["tol"], maxiter=ctx["maxiter"], log=ctx["log"],
        name="cg", where=A.where, mean_diag=mean_diag, level=mean_diag, lam_max=float(diag.sum()))
    _iterative_info(A, info, jitter, attempts, ctx)
    return alpha


LANDMARKS = ("rpcholesky", "uniform")


def _solve_nystrom(A, rhs, ctx):
    diag = A.diagonal()
    mean_diag = max(float(diag.mean()), 1e-300)
    rank = ctx["rank"]
    if ctx["landmarks"] == "rpcholesky":
        pre = rp_cholesky(A, rank, seed=0, diagonal=diag, block=ctx["block"])
        emit(ctx["log"], f"nystrom (randomly pivoted Cholesky): {pre.pivots.size} pivot rows → rank {pre.rank}, "
                         f"λ̂_max {pre.lam_max:.3e}, residual diagonal mean {pre.level:.3e} "
                         f"({pre.level / mean_diag:.1e}·mean diag), {pre.seconds:.1f} s")
        level, lam_max = pre.level, pre.lam_max
        # glibc keeps freed blocks of tile size in its heap: 82 MiB of a 64 MiB-cap solve on a 6,000² store
        # was such garbage before the sketch (measured). Hand them back before CG's tile buffers.
        release_freed_memory()  # the sketch's per-block temporaries
    elif ctx["landmarks"] == "uniform":
        pre = nystrom(A, rank, seed=0, diagonal=diag)
        lam = pre.eigenvalues
        emit(ctx["log"], f"nystrom: {pre.columns} landmark columns → rank {pre.rank}, λ̂ from {float(lam[0]):.3e} "
                         f"to {float(lam[-1]):.3e}, tail level c = {pre.level:.3e} "
                         f"({pre.level / mean_diag:.1e}·mean diag), {pre.seconds:.1f} s")
        level, lam_max = pre.level, float(lam[0]) if pre.rank else float(diag.sum())
    else:
        raise ValueError(f"landmarks: expected one of {LANDMARKS}, got {ctx['landmarks']!r}")
    alpha, info, jitter, attempts = solve_escalating(
        A, rhs, make_precond=lambda jitter: pre.for_shift(A.ridge + jitter), tol=ctx["tol"],
        maxiter=ctx["maxiter"] or NYSTROM_MAXITER, log=ctx["log"], name="nystrom-pcg", where=A.where,
        mean_diag=mean_diag, level=level + A.ridge, lam_max=lam_max)
    ctx["info"].update(pre.summary())
    _iterative_info(A, info, jitter, attempts, ctx)
    return alpha


def _solve_eigh(A, rhs, ctx):
    """Returns (T, n, R) coefficient blocks, one per time (t = inf when ctx['times'] is None)."""
    t0 = time.perf_counter()
    K = A.to_dense()
    t1 = time.perf_counter()
    lam, V = torch.linalg.eigh(K)  # K = V diag(λ) Vᵀ
    del K
    ctx["info"].update(load_seconds=round(t1 - t0, 3), eigh_seconds=round(time.perf_counter() - t1, 3))
    times = ctx["times"] if ctx["times"] is not None else np.array([np.inf])
    g = finite_time_weights(lam, times)  # (T, n)
    w = V.T @ rhs  # (n, R)
    ctx["info"].update(eig_min=float(lam[0]), eig_max=float(lam[-1]))
    return V, g[:, :, None] * w[None]  # V (n, n), coefficients (T, n, R)


SOLVERS = {Solver.CHOLESKY: _solve_cholesky, Solver.CG: _solve_cg, Solver.EIGH: _solve_eigh,
           Solver.NYSTROM: _solve_nystrom}


def choose_solver(solver, n: int, cap: int, finite_t: bool, log: LogLike = None) -> Solver:
    """The solver to run. auto: eigh for finite t; Cholesky when its dense float64 copies
    (K and its factor, 2·8·n² bytes) fit under the cap, else Nyström-PCG; the choice is logged with
    the memory figure and the cap."""
    try:
        choice = Solver(solver)
    except ValueError:
        raise ValueError(f"solver={solver!r}: expected one of {[s.value for s in Solver]}") from None
    if choice is Solver.AUTO:
        dense = DENSE_COPIES[Solver.CHOLESKY] * 8 * n * n
        if finite_t:
            choice, why = Solver.EIGH, "finite t needs the eigendecomposition"
        elif dense <= cap:
            choice, why = Solver.CHOLESKY, f"dense Cholesky needs {dense / 2**30:.2f} GiB ≤ cap {cap / 2**30:.2f} GiB"
        else:
            choice, why = Solver.NYSTROM, (f"dense Cholesky would need {dense / 2**30:.2f} GiB (2 × 8·n², n = {n}) "
                                           f"> cap {cap / 2**30:.2f} GiB: out-of-core Nyström-preconditioned CG")
        emit(log, f"solver auto → {choice.value}: {why}")
    if finite_t and choice is not Solver.EIGH:
        raise ValueError(f"finite t needs solver='eigh' (got {choice.value!r})")
    return choice


def linearized_predict(k_dd, k_xd, f0_d, f0_x, y_d, *, options: SolverOptions | None = None, t=None,
                       log: LogLike = None, return_info=False, **changes):
    """Predictions of the linearized model at time t (t=None: infinite time), float64 numpy.

    f_lin(x) = f0(x) + Θ(x,D) Θ(D,D)^{-1} (Y − f0(D))                      (t=None)
    f_t(x)   = f0(x) − Θ(x,D) Θ(D,D)^{-1} (I − e^{−tΘ(D,D)}) (f0(D) − Y)  (finite t, via eigh)

    Shapes: pNTK: k_dd (N,N), k_xd (M,N), f0_d (N,O), f0_x (M,O), y_d (N,O) targets or (N,) int
            labels (one-hot) → (M,O): one solve with O right-hand sides (one-vs-rest form).
            eNTK: k_dd (N,N,O,O), k_xd (M,N,O,O) flattened to (N·O, N·O), row n*O+a → (M,O).
    Kernels: np.ndarray | torch.Tensor | zarr.Array | path of a Zarr group with array ``kernel``.
    f0_d / f0_x may be None (zero function). ridge: λ added to the diagonal of Θ(D,D); with
            ridge_scale="mean_diagonal" a fraction of the mean diagonal of Θ(D,D) (scale-free: the same
            number means the same regularisation for any network), "absolute" (default) as given.
    t: None, a scalar → (M,O), or a 1-D array of times → (len(t),M,O); t=0 gives f0.
    options: how to solve (SolverOptions: solver, ridge, ridge_scale, tol, maxiter, rank, landmarks,
            memory_cap_bytes, device, threads; SolverOptions.from_config reads a config's `regression:`); any
            of them may also be given as a keyword, which replaces that option.
    solver: "cholesky" | "eigh" | "nystrom" | "cg" | "auto". auto: finite t → eigh; else cholesky when
            the dense float64 K and its factor (2·8·n² bytes, n = N·O for eNTK, N for pNTK) fit under
            memory_cap_bytes (default: half the available RAM, or 80 % of free GPU memory),
            otherwise "nystrom": CG preconditioned by ``rank`` Nyström landmark columns (default
            NYSTROM_RANK, fewer if the preconditioner does not fit the cap beside the streaming buffers, CG
            vectors and sketch temporaries: ``pntk.regression.memory``),
            streaming tiles from the store; landmarks "rpcholesky" (default: pivots ∝ the residual
            diagonal, read as rows; F in the store's precision, Woodbury preconditioner σ(Θ̂ + σI)⁻¹) or
            "uniform" (columns drawn uniformly in one pass, FTU form). "cg" is the same CG with a
            Jacobi preconditioner.
    tol / maxiter: CG stopping rule (relative residual per right-hand side; the final residual is
            recomputed). A CG that does not converge is retried with jitter on the diagonal (logged,
            info["jitter"]); if that fails too, NotConvergedError names the store and the residual.
    threads: workers that read/decode tiles in parallel (default torch.get_num_threads()).
    device: torch device for all arithmetic ("cpu", "cuda", ...).
    log: logging.Logger or callable(str); default the ``pntk.regression`` logger.
    return_info: also return a dict (solver, sizes, jitter, CG iterations/residual, seconds).
    """
    t_start = time.perf_counter()
    opts = (options or SolverOptions()).replace(**changes)
    solver, ridge, ridge_scale, tol, maxiter = opts.solver, opts.ridge, opts.ridge_scale, opts.tol, opts.maxiter
    rank, landmarks, memory_cap_bytes, threads = opts.rank, opts.landmarks, opts.memory_cap_bytes, opts.threads
    device = torch.device(opts.device)
    k_dd, k_xd = kernel_operand(k_dd), kernel_operand(k_xd)
    n_d, n_x = _check_shapes(k_dd, k_xd)
    entk = len(k_dd.shape) == 4
    if entk:
        o = k_dd.shape[2]
    else:
        ref = next((a for a in (f0_d, y_d, f0_x) if a is not None and np.ndim(a) == 2), None)
        if ref is None:
            raise ValueError("pNTK: cannot infer the number of outputs O; pass f0_d or (N, O) y_d")
        o = ref.shape[1]
    f0d = _as_f64(f0_d, "f0_d", (n_d, o), device)
    f0x = _as_f64(f0_x, "f0_x", (n_x, o), device)
    resid = _targets(y_d, n_d, o, device) - f0d  # Y − f0(D), (N, O)
    rhs = resid.reshape(n_d * o, 1) if entk else resid  # eNTK: (N·O, 1), index n*O+a; pNTK: (N, O)
    n = rhs.shape[0]

    times = None if t is None else np.asarray(t, dtype=np.float64)
    if times is not None and times.ndim > 1:
        raise ValueError(f"t: expected a scalar or 1-D array, got shape {times.shape}")
    cap = int(memory_cap_bytes) if memory_cap_bytes is not None else default_memory_cap(device)
    choice = choose_solver(solver, n, cap, times is not None, log)
    dense_bytes = DENSE_COPIES.get(choice, 0) * 8 * n * n
    if memory_cap_bytes is not None and dense_bytes > cap:
        emit(log, f"{choice.value}: needs ~{dense_bytes / 2**20:.0f} MiB dense, above the cap "
                  f"{cap / 2**20:.0f} MiB (explicitly requested; running anyway)", logging.WARNING)
    block_bytes = int(min(max(cap // 4, 1 << 20), 256 << 20))
    A = ZarrKernelOperator(k_dd, block_bytes=block_bytes, device=device, symmetric=True, threads=threads)
    ridge_given = float(ridge)
    if ridge_scale == "mean_diagonal":
        ridge = ridge_given * float(A.diagonal().mean())  # the diagonal tiles only
        emit(log, f"ridge {ridge_given:g} × mean diagonal of Θ(D,D) = {ridge:.6g}")
    elif ridge_scale != "absolute":
        raise ValueError(f"ridge_scale: expected 'absolute' or 'mean_diagonal', got {ridge_scale!r}")
    A.ridge = float(ridge)
    release_freed_memory()  # the symmetry check's and the diagonal's tile reads: freed, but kept by the heap
    Ax = ZarrKernelOperator(k_xd, block_bytes=block_bytes, device=device, threads=threads)
    if A.stored_block_nbytes > block_bytes:
        emit(log, f"one tile ({A.stored_block_nbytes / 2**20:.0f} MiB as stored) exceeds the streaming budget "
                  f"{block_bytes / 2**20:.0f} MiB (cap/4): memory use follows the tile size", logging.WARNING)
    info = dict(solver=choice.value, kind="entk" if entk else "pntk", n_train=n_d, n_test=n_x,
                n_outputs=o, system_size=n, n_rhs=rhs.shape[1], ridge=float(ridge), ridge_given=ridge_given,
                ridge_scale=ridge_scale, tol=float(tol),
                memory_cap_bytes=cap, dense_bytes=dense_bytes, block_bytes=A.block_nbytes,
                device=str(device), store=type(k_dd).__module__.split(".")[0], kernel=A.where)
    emit(log, f"linearized_predict: {info['kind']} N={n_d} M={n_x} O={o} → system {n}×{n} with "
              f"{rhs.shape[1]} rhs; solver={choice.value} (dense {dense_bytes / 2**20:.0f} MiB, "
              f"cap {cap / 2**20:.0f} MiB, tiles {A.block_nbytes / 2**20:.1f} MiB in float64 on "
              f"{A.threads} thread{'s' * (A.threads != 1)}) on {device}")
    itemsize = factor_dtype(A).itemsize  # rp_cholesky keeps F in the store's precision
    overhead = 0.0
    if choice in (Solver.NYSTROM, Solver.CG) and not isinstance(k_dd, (np.ndarray, torch.Tensor)):
        workers, overhead = streaming_workers(A.stored_block_nbytes, A.threads, len(A.tiles()), n, rhs.shape[1],
                                              landmarks, choice is Solver.NYSTROM, cap)
        if workers < A.threads:
            emit(log, f"streaming on {workers} worker(s) instead of {A.threads}: each holds a stored tile of "
                      f"{A.stored_block_nbytes / 2**20:.0f} MiB, within the cap {cap / 2**20:.0f} MiB")
            A.threads = Ax.threads = workers
        if overhead > cap:
            emit(log, f"memory cap {cap / 2**20:.0f} MiB below what streaming this store needs: one stored "
                      f"tile ({A.stored_block_nbytes / 2**20:.0f} MiB, fixed when the store was written), its float64 "
                      f"strip, the CG vectors and the sketch's temporaries take {overhead / 2**20:.0f} MiB; the "
                      f"solve exceeds the cap by that and a rank-1 preconditioner", logging.WARNING)
        info["memory_overhead_bytes"] = int(overhead)
    ctx = dict(log=log, tol=tol, maxiter=maxiter, times=times, info=info, landmarks=landmarks,
               rank=nystrom_rank(n, rank, cap, landmarks, itemsize, overhead), block=sketch_block(n, cap))
    if choice is Solver.NYSTROM and ctx["rank"] < min(NYSTROM_RANK if rank is None else rank, n):
        emit(log, f"nystrom: rank cut to {ctx['rank']} so that "
                  f"{rank_cut_reason(n, landmarks, itemsize, cap, overhead)}", logging.WARNING)
    if choice in (Solver.NYSTROM, Solver.CG):
        _make_resident_if_it_fits(A, k_dd, n, rhs.shape[1], cap, ctx, itemsize, choice)
    if choice is Solver.EIGH:
        V, coef = SOLVERS[choice](A, rhs, ctx)  # V (n, n), coef (T, n, R)
        n_t, r = coef.shape[0], coef.shape[2]
        alphas = torch.einsum("nk,tkr->ntr", V, coef).reshape(n, n_t * r)  # V g_t Vᵀ(Y − f0), (n, T·R)
        del V, coef
        out = Ax.matmat(alphas).reshape(-1, n_t, r).permute(1, 0, 2)  # (T, M·O or M, R)
        out = out.reshape(n_t, n_x, o) + f0x  # (T, M, O)
        out = out[0] if times is None or times.ndim == 0 else out
    else:
        alpha = SOLVERS[choice](A, rhs, ctx)  # (n, R)
        alpha = alpha if isinstance(alpha, torch.Tensor) else torch.from_numpy(alpha)
        out = Ax.matmat(alpha.to(device)).reshape(n_x, o) + f0x  # (M·O, 1) or (M, O) → (M, O)
    pred = out.cpu().numpy()
    if not np.isfinite(pred).all():
        raise FloatingPointError("linearized_predict: non-finite predictions (check the kernel)")
    info["seconds"] = round(time.perf_counter() - t_start, 3)
    return (pred, info) if return_info else pred


def _make_resident_if_it_fits(A, k_dd, n, rhs, cap, ctx, itemsize, choice) -> None:
    """Keep Θ(D, D)'s tiles in memory (host RAM, or the GPU with device=cuda) when they, the preconditioner and
    the CG vectors fit under the cap: every CG product then multiplies kept tiles instead of reading the store
    (the same arithmetic: the same predictions). An in-memory kernel already is; a store that does not fit
    streams, as before."""
    if isinstance(k_dd, (np.ndarray, torch.Tensor)):
        ctx["info"].update(resident=True, resident_bytes=0)  # already in memory: nothing to load
        return
    pre = preconditioner_bytes(n, ctx["rank"], ctx["landmarks"], itemsize, choice is Solver.NYSTROM)
    workers = min(A.threads, len(A.tiles()))
    fits, held = resident_plan(A.resident_nbytes, n, rhs, pre, cap, workers)
    what = (f"Θ(D,D) {A.resident_nbytes / 2**30:.2f} GiB as stored + preconditioner {pre / 2**30:.2f} GiB + CG "
            f"vectors and strips = {held / 2**30:.2f} GiB")
    if fits:
        t0 = time.perf_counter()
        A.make_resident()
        emit(ctx["log"], f"resident: {what} ≤ cap {cap / 2**30:.2f} GiB; tiles read once in "
                         f"{time.perf_counter() - t0:.1f} s, every product from memory ({A.device})")
    else:
        emit(ctx["log"], f"streaming: {what} > cap {cap / 2**30:.2f} GiB; every product reads the store")
    ctx["info"].update(resident=fits, resident_bytes=int(A.resident_nbytes) if fits else 0,
                       resident_needs_bytes=int(held))


def _labels(labels) -> np.ndarray:
    lab = labels.cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    return lab.argmax(-1) if lab.ndim == 2 else lab.astype(np.int64)


def accuracy(pred, labels):
    """Fraction of argmax(pred) == labels. pred (..., M, O); labels (M,) ints or (M, O) one-hot.
    Returns a float for (M, O) predictions, an array for leading axes (e.g. (T, M, O))."""
    p = pred.cpu().numpy() if isinstance(pred, torch.Tensor) else np.asarray(pred)
    acc = (p.argmax(-1) == _labels(labels)).mean(-1)  # (...,)
    return float(acc) if np.ndim(acc) == 0 else acc


def regression_summary(pred, labels) -> dict:
    """accuracy, mse (vs one-hot targets, mean over samples and outputs), per-class accuracy and
    sizes; lists per time for (T, M, O) predictions. JSON-serialisable."""
    p = pred.cpu().numpy() if isinstance(pred, torch.Tensor) else np.asarray(pred, dtype=np.float64)
    lab = _labels(labels)
    m, o = p.shape[-2:]
    if lab.shape != (m,):
        raise ValueError(f"labels: shape {lab.shape}, expected ({m},) or ({m}, {o})")
    onehot = np.eye(o)[lab]  # (M, O)
    hit = p.argmax(-1) == lab  # (..., M)
    per_class = [(hit[..., lab == c].mean(-1) if (lab == c).any() else np.full(hit.shape[:-1], np.nan))
                 for c in range(o)]  # O × (...)
    def tolist(a):  # NaN (class absent) → None, so the dict stays valid JSON
        a = np.asarray(a, dtype=np.float64)
        return np.where(np.isnan(a), None, a).tolist() if a.ndim else (None if np.isnan(a) else float(a))
    return dict(n=int(m), n_outputs=int(o), accuracy=tolist(hit.mean(-1)),
                mse=tolist(((p - onehot) ** 2).mean((-2, -1))),
                per_class_accuracy=tolist(np.stack(per_class, -1)),
                finite=bool(np.isfinite(p).all()))

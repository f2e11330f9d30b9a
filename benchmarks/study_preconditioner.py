"""Why Nyström-PCG needs the iterations it needs on a kernel store: the preconditioned spectrum.

For each RPCholesky rank: Θ̂'s eigenvalue profile (λ̂_k / mean diagonal), then preconditioned CG on one
right-hand side with its Lanczos coefficients kept, whose Ritz values bound the preconditioned spectrum
(κ, largest and smallest eigenvalue), and the iterations of the solver's own vectorised CG on all O
one-hot right-hand sides. Variants of the preconditioner (--variants):

    solver     the solver's: σ (Θ̂ + σI)⁻¹, σ = c + μ, by Woodbury on the pivoted-Cholesky factor
               (until 2026-12-01 the Frangella–Tropp–Udell form from FᵀF's eigh: the same κ, see BENCHMARKS)
    diag       P = F Fᵀ + diag(Θ − F Fᵀ) + μI by Woodbury (a Jacobi correction of the residual)
    deflate:S  F extended by the residual's top-S directions (one power iteration on Θ − F Fᵀ)

BENCHMARKS.md, "Why 45 iterations at initialisation", has its numbers on the CIFAR-10 init store:

    python benchmarks/study_preconditioner.py --store …/epoch000/kernels/pntk-train-train.zarr \\
        --ranks 5000,8000 --variants solver,diag,deflate:500
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import zarr

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from pntk.regression.operator import ZarrKernelOperator
from pntk.regression.rpcholesky import PivotedCholeskyPreconditioner, from_factor, gram64, rp_cholesky
from pntk.regression.solvers import cg_solve


def lanczos_cg(op, apply_p, b: torch.Tensor, tol: float, maxiter: int) -> dict:
    """PCG on one column b (n, 1); the CG coefficients give the Lanczos matrix of P⁻¹A, whose extreme
    Ritz values approach the extreme eigenvalues of the preconditioned operator."""
    x, r = torch.zeros_like(b), b.clone()
    z = apply_p(r)
    p, rz = z.clone(), float((r * z).sum())
    alphas, betas, hist = [], [], []
    for _ in range(maxiter):
        ap = op.matmat(p)
        a = rz / float((p * ap).sum())
        x += a * p
        r -= a * ap
        hist.append(float(r.norm() / b.norm()))
        z = apply_p(r)
        rz_new = float((r * z).sum())
        alphas.append(a)
        betas.append(rz_new / rz)
        p, rz = z + betas[-1] * p, rz_new
        if hist[-1] < tol:
            break
    k = len(alphas)
    t = np.zeros((k, k))
    for j in range(k):
        t[j, j] = 1 / alphas[j] + (betas[j - 1] / alphas[j - 1] if j else 0.0)
        if j + 1 < k:
            t[j, j + 1] = t[j + 1, j] = math.sqrt(betas[j]) / alphas[j]
    ritz = np.linalg.eigvalsh(t)
    return dict(iterations=k, ritz_min=float(ritz[0]), ritz_max=float(ritz[-1]), kappa=float(ritz[-1] / ritz[0]))


def deflated(op, pre: PivotedCholeskyPreconditioner, mu: float, diag: torch.Tensor, s: int):
    """F extended by G, G Gᵀ = E Q (QᵀEQ)⁺ QᵀE ⪯ E = Θ − F Fᵀ, Q from one power iteration on E."""
    F, n = pre.F.double(), pre.F.shape[0]

    def resid(v):  # (n, s): E v (the operator carries the ridge μ)
        return op.matmat(v) - mu * v - F @ (F.T @ v)

    q = torch.linalg.qr(torch.randn(n, s, generator=torch.Generator().manual_seed(1), dtype=torch.float64)).Q
    q = torch.linalg.qr(resid(q)).Q
    y = resid(q)
    lam, w = torch.linalg.eigh(0.5 * (q.T @ y + y.T @ q))
    keep = lam > 1e-10 * lam.max()
    f2 = torch.cat([F, y @ (w[:, keep] / lam[keep].sqrt())], 1)
    level = float((diag - (f2 * f2).sum(1)).clamp_min(0).sum()) / n
    top = lam.flip(0)
    return (from_factor(f2, pivots=pre.pivots, level=level, floor=pre.floor),
            dict(residual_norm=float(top[0]), residual_s=float(top[int(keep.sum()) - 1])))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", type=Path, required=True, help="a pNTK train×train store")
    ap.add_argument("--ranks", default="5000", help="RPCholesky ranks, comma-separated")
    ap.add_argument("--variants", default="solver", help="solver, diag, deflate:S (comma-separated)")
    ap.add_argument("--ridge", type=float, default=0.01, help="μ as a fraction of the mean diagonal")
    ap.add_argument("--tol", type=float, default=1e-6)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    g = zarr.open_group(str(args.store), mode="r")
    labels = g["row_label"][:]
    y = torch.from_numpy(np.eye(int(labels.max()) + 1)[labels])  # (n, O) one-hot
    diag = ZarrKernelOperator(g["kernel"], symmetric=True, threads=args.threads).diagonal().double()
    md = float(diag.mean())
    mu = args.ridge * md
    op = ZarrKernelOperator(g["kernel"], ridge=mu, symmetric=True, threads=args.threads)
    for rank in (int(r) for r in args.ranks.split(",")):
        t0 = time.perf_counter()
        pre = rp_cholesky(op, rank, seed=0, diagonal=diag + mu)
        sketch_s = time.perf_counter() - t0
        lam = torch.linalg.eigvalsh(gram64(pre.F)).flip(0) / md  # Θ̂'s eigenvalues, descending
        print(json.dumps(dict(rank=pre.rank, sketch_s=round(sketch_s, 1), level=pre.level / md,
                              lam_over_mean_diag={k: float(lam[k - 1]) for k in (100, 1000, 2000, 4000, 8000, 16000)
                                                  if k <= lam.numel()})), flush=True)
        for variant in args.variants.split(","):
            t0, extra = time.perf_counter(), {}
            if variant == "solver":
                apply_p = pre.for_shift(mu)
            elif variant == "diag":
                f = pre.F.double()
                d_inv = 1.0 / ((diag - (f * f).sum(1)).clamp_min(0) + mu)  # (n,)
                chol = torch.linalg.cholesky(torch.eye(f.shape[1], dtype=torch.float64) + f.T @ (d_inv[:, None] * f))

                def apply_p(r, d_inv=d_inv, chol=chol, f=f):
                    z = d_inv[:, None] * r
                    return z - d_inv[:, None] * (f @ torch.cholesky_solve(f.T @ z, chol))
            elif variant.startswith("deflate:"):
                p2, extra = deflated(op, pre, mu, diag, int(variant.split(":")[1]))
                extra = {k: v / md for k, v in extra.items()}
                apply_p = p2.for_shift(mu)
            else:
                raise SystemExit(f"--variants: unknown {variant!r}")
            setup_s = time.perf_counter() - t0
            one = lanczos_cg(op, apply_p, y[:, :1].contiguous(), args.tol, 300)
            _, info = cg_solve(op, y, precond=apply_p, tol=args.tol, maxiter=300, log=lambda m: None, name=variant)
            print(json.dumps(dict(rank=rank, variant=variant, setup_s=round(setup_s, 1), **extra,
                                  lanczos_kappa=one["kappa"], p_eig_max=one["ritz_max"] / md,
                                  p_eig_min=one["ritz_min"] / md, iterations=info.iterations,
                                  converged=info.converged, cg_s=round(info.seconds, 1))), flush=True)


if __name__ == "__main__":
    main()

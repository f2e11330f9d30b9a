"""Analytic infinite-width NNGP and NTK of the ReLU FCN in NTK parameterization (the ConvNet's: .cntk).

Matches ``pntk.models.FCN`` with ``parameterization="ntk"`` (``NTKLinear``: W, b ~ N(0, 1),
h = σ_w/√fan_in · W x + σ_b · b), ``depth`` = number of Linear layers, ReLU after every layer but
the readout. With inputs flattened to x ∈ R^D (Jacot et al. 2018; Lee et al. 2019; arc-cosine
kernel of Cho & Saul 2009):

    K¹(x, x') = σ_w²/D · x·x' + σ_b²                      Θ¹ = K¹
    for l = 2 … depth, with ρ = K^{l-1}(x,x') / sqrt(K^{l-1}(x,x) K^{l-1}(x',x')), φ = arccos ρ:
      E[relu(u) relu(v)]  = sqrt(K^{l-1}(x,x) K^{l-1}(x',x')) · (sin φ + (π − φ) cos φ) / (2π)
      E[relu'(u) relu'(v)] = (π − φ) / (2π)
      K^l = σ_w² E[relu relu] + σ_b²                       Θ^l = K^l + σ_w² E[relu' relu'] Θ^{l-1}

The NNGP is K^depth and the NTK is Θ^depth: the kernel of *one* output (every output has the same
one; the infinite-width eNTK is Θ ⊗ I_O and the infinite-width pNTK is Θ itself).
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from .diagnostics import frobenius_distance, tidy_rows


def _flat(x: Any, name: str) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    a = np.asarray(x, dtype=np.float64)
    if a.ndim < 2:
        raise ValueError(f"{name}: expected (N, D) or (N, C, H, W) inputs, got shape {a.shape}")
    return a.reshape(a.shape[0], -1)  # (N, D)


def relu_fcn_kernels(x1: Any, x2: Any = None, depth: int = 3, sigma_w: float = math.sqrt(2.0),
                     sigma_b: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Infinite-width (NNGP, NTK) of the NTK-parameterised ReLU FCN, each of shape (N1, N2).

    ``x1`` (N1, D…), ``x2`` (N2, D…) or None for x2 = x1; inputs are flattened per sample.
    ``depth`` counts Linear layers (depth 1 is the linear model: both kernels are σ_w²/D x·x' + σ_b²).
    """
    if depth < 1:
        raise ValueError(f"relu_fcn_kernels: depth must be >= 1, got {depth}")
    a = _flat(x1, "x1")
    b = a if x2 is None else _flat(x2, "x2")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"relu_fcn_kernels: x1 and x2 feature sizes differ ({a.shape[1]} vs {b.shape[1]})")
    d = a.shape[1]
    sw2, sb2 = sigma_w**2, sigma_b**2
    k12 = sw2 / d * (a @ b.T) + sb2  # (N1, N2)
    k11 = sw2 / d * (a * a).sum(1) + sb2  # (N1,) diagonal K(x1, x1)
    k22 = sw2 / d * (b * b).sum(1) + sb2  # (N2,)
    ntk = k12.copy()
    for _ in range(depth - 1):
        norm = np.sqrt(np.outer(k11, k22))  # (N1, N2)
        rho = np.clip(k12 / norm, -1.0, 1.0)
        phi = np.arccos(rho)
        e_relu = norm * (np.sin(phi) + (math.pi - phi) * rho) / (2 * math.pi)  # (N1, N2)
        e_drelu = (math.pi - phi) / (2 * math.pi)  # (N1, N2)
        k12 = sw2 * e_relu + sb2
        ntk = k12 + sw2 * e_drelu * ntk
        k11 = sw2 * k11 / 2 + sb2  # φ = 0 on the diagonal: E[relu(u)²] = K/2
        k22 = sw2 * k22 / 2 + sb2
    return k12, ntk


def infinite_distances(ntk_inf: Any, *, entk: Any = None, pntk: Any = None,
                       first_logit: Any = None) -> dict[str, float]:
    """Relative Frobenius distances of finite-width kernels from the analytic NTK ``ntk_inf`` (N, N).

    ``infinite_rel_dist_entk``        = ‖Θ − Θ_∞⊗I_O‖_F / ‖Θ_∞⊗I_O‖_F   (entk: (N, N, O, O))
    ``infinite_rel_dist_pntk``        = ‖Θ̂ − Θ_∞‖_F / ‖Θ_∞‖_F           (pntk: (N, N))
    ``infinite_rel_dist_first_logit`` = ‖Θ_11 − Θ_∞‖_F / ‖Θ_∞‖_F        (first_logit: (N, N))
    Only the keys whose kernel is given are returned.
    """
    t = np.asarray(ntk_inf, dtype=np.float64)
    den = float(np.linalg.norm(t))
    out: dict[str, float] = {}
    if entk is not None:
        e = np.asarray(entk, dtype=np.float64)
        if e.ndim != 4 or e.shape[:2] != t.shape:
            raise ValueError(f"infinite_distances: entk must be (N, N, O, O) with N={t.shape[0]}, got {e.shape}")
        o = e.shape[2]
        ref = np.einsum("nm,ab->nmab", t, np.eye(o))  # Θ_∞ ⊗ I_O as (N, N, O, O)
        out["infinite_rel_dist_entk"] = float(np.linalg.norm(e - ref) / (den * math.sqrt(o)))
    for name, k in (("pntk", pntk), ("first_logit", first_logit)):
        if k is not None:
            k = np.asarray(k, dtype=np.float64)
            if k.shape != t.shape:
                raise ValueError(f"infinite_distances: {name} must have shape {t.shape}, got {k.shape}")
            out[f"infinite_rel_dist_{name}"] = float(np.linalg.norm(k - t) / den)
    return out


def infinite_width_rows(x: Any, *, widths, seeds, depth: int = 3, num_classes: int = 10,
                        dataset: str = "", kernel_fn: Callable | None = None) -> list[dict]:
    """Tidy rows (statistics of :func:`infinite_distances` + ``frobenius_distance``) for NTK-param FCNs.

    For every width and seed, ``init_model(ModelSpec("fcn", width, x.shape[1:], num_classes, depth,
    "ntk"), seed)`` in float64 at initialisation (epoch 0) is compared with the analytic NTK of
    :func:`relu_fcn_kernels` on ``x`` (N, C, H, W). ``kernel_fn(model, x, kind)`` returns the eNTK
    (N, N, O, O) for kind "entk" and the pNTK (N, N) for "pntk"; default
    ``pntk.kernels.empirical_kernel(model, x, kind=kind)``.
    """
    import torch

    from ..models import ModelSpec, init_model

    if kernel_fn is None:
        from ..kernels import empirical_kernel

        def kernel_fn(model, xx, kind):
            return empirical_kernel(model, xx, kind=kind)

    xt = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    if xt.ndim != 4:
        raise ValueError(f"infinite_width_rows: x must be (N, C, H, W), got shape {tuple(xt.shape)}")
    _, ntk = relu_fcn_kernels(xt, depth=depth)
    rows = []
    for w in widths:
        spec = ModelSpec("fcn", int(w), tuple(xt.shape[1:]), num_classes, depth, "ntk")
        for s in seeds:
            model = init_model(spec, int(s)).double().eval()
            entk = np.asarray(kernel_fn(model, xt, "entk").detach().cpu(), dtype=np.float64)  # (N, N, O, O)
            pntk = np.asarray(kernel_fn(model, xt, "pntk").detach().cpu(), dtype=np.float64)  # (N, N)
            stats = {**infinite_distances(ntk, entk=entk, pntk=pntk),
                     "frobenius_distance": frobenius_distance(entk, pntk)["frobenius_distance"]}
            meta = {"dataset": dataset, "arch": "fcn", "width": int(w), "seed": int(s), "epoch": 0}
            rows += tidy_rows(meta, stats)
    return rows


ANALYTIC_ARCHS = ("fcn", "convnet")  # the built-in architectures with an analytic infinite-width NTK here


def analytic_ntk(arch: str, depth: int, x1: Any, x2: Any = None, *, dtype: str = "float32", workers: int = 1,
                 log=None) -> np.ndarray:
    """The infinite-width NTK (N1, N2) of the built-in `arch` of `depth` (its layer count as the zoo counts it):
    :func:`relu_fcn_kernels` for "fcn" (float64), :func:`pntk.analysis.cntk.relu_cnn_gap_kernels` for "convnet"
    (working precision `dtype`, `workers` threads)."""
    if arch == "fcn":
        return relu_fcn_kernels(x1, x2, depth=depth)[1]
    if arch == "convnet":
        from .cntk import relu_cnn_gap_kernels

        return relu_cnn_gap_kernels(x1, x2, depth=depth, dtype=dtype, workers=workers, log=log)[1]
    raise ValueError(f"analytic_ntk: no analytic infinite-width NTK of {arch!r}; have {ANALYTIC_ARCHS}")


def infinite_regression(x_train: Any, y_train: Any, x_test: Any, y_test: Any, *, depth: int, num_classes: int,
                        memory_cap_bytes: int, arch: str = "fcn", max_cpu_hours: float = math.inf,
                        cntk_dtype: str = "float32", workers: int = 1, log=None) -> dict:
    """Kernel regression with the analytic NTK of `arch` at `depth` (NTK parameterization: the network's
    infinite-width counterpart; prior mean 0, one-hot targets, t = ∞) on the whole train split, scored on the test
    split: the paper §5's "NTKs of infinite-width counterparts". Returns {test_acc, n_train, n_test, arch, depth,
    solver}. ValueError when the train×train kernel and its factor (2 · 8 · N² bytes) exceed the memory cap, or
    when the ConvNet's kernels (working precision `cntk_dtype`, `workers` threads) would take more than
    `max_cpu_hours` of one core (:func:`.cntk.cpu_seconds`)."""
    from ..regression import linearized_predict

    n = len(x_train)
    if 16 * n * n > memory_cap_bytes:
        raise ValueError(f"infinite regression on {n} train points needs {16 * n * n / 2**30:.1f} GiB for a dense "
                         f"solve, above regression.memory_cap_gb ({memory_cap_bytes / 2**30:.1f} GiB)")
    if arch == "convnet":
        from .cntk import regression_cpu_hours

        shape = tuple(np.shape(x_train)[1:])
        hours = regression_cpu_hours(n, len(x_test), shape, depth, cntk_dtype)
        if hours > max_cpu_hours:
            raise ValueError(f"the ConvNet's analytic NTK on {n} + {len(x_test)} images of {shape} would take "
                             f"≈ {hours:.3g} CPU-hours, above infinite.max_cntk_cpu_hours ({max_cpu_hours:g})")
    opts = {"dtype": cntk_dtype, "workers": workers, "log": log}
    k_dd = analytic_ntk(arch, depth, x_train, **opts)  # (N, N)
    k_xd = analytic_ntk(arch, depth, x_test, x_train, **opts)  # (M, N)
    y = np.eye(num_classes)[np.asarray(y_train)]  # (N, O) one-hot
    pred, info = linearized_predict(k_dd, k_xd, None, None, y, solver="cholesky", return_info=True, log=log)
    acc = float((pred.argmax(1) == np.asarray(y_test)).mean())
    return {"test_acc": acc, "n_train": n, "n_test": len(x_test), "arch": arch, "depth": depth,
            "solver": {k: v for k, v in info.items() if isinstance(v, (int, float, str, bool))}}

"""Analytic infinite-width kernels vs hand recursion and vs wide NTK-parameterised FCNs."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pntk.analysis.infinite import infinite_distances, infinite_width_rows, relu_fcn_kernels
from pntk.models import ModelSpec, init_model

SW, SB = math.sqrt(2.0), 0.1


def test_depth1_is_linear_kernel():
    x = np.random.default_rng(0).normal(size=(5, 7))
    nngp, ntk = relu_fcn_kernels(x, depth=1)
    want = SW**2 / 7 * x @ x.T + SB**2
    np.testing.assert_allclose(nngp, want)
    np.testing.assert_allclose(ntk, want)


def test_diagonal_matches_hand_recursion():
    x = np.random.default_rng(1).normal(size=(3, 4))
    nngp, ntk = relu_fcn_kernels(x, depth=4, sigma_w=1.3, sigma_b=0.4)
    for i in range(3):
        k = 1.3**2 / 4 * x[i] @ x[i] + 0.4**2
        t = k
        for _ in range(3):  # angle 0: E relu² = K/2, E relu'² = 1/2
            k = 1.3**2 * k / 2 + 0.4**2
            t = k + 1.3**2 / 2 * t
        assert nngp[i, i] == pytest.approx(k, rel=1e-12)
        assert ntk[i, i] == pytest.approx(t, rel=1e-12)


def test_orthogonal_inputs_hand_value():
    # x ⊥ x', |x|² = |x'|² = D, σ_b = 0, depth 2: K¹ = diag σ_w² = 2, off 0 → φ = π/2
    x = np.array([[1.0, 1.0], [1.0, -1.0]])
    nngp, ntk = relu_fcn_kernels(x, depth=2, sigma_w=SW, sigma_b=0.0)
    assert nngp[0, 1] == pytest.approx(2 * 2 * 1 / (2 * math.pi))  # σ_w² · K · 1/(2π)
    assert ntk[0, 1] == pytest.approx(nngp[0, 1])  # Θ¹ off-diagonal is 0
    assert ntk[0, 0] == pytest.approx(2 + 2 * 0.5 * 2)


def test_symmetric_psd_and_cross_block():
    rng = np.random.default_rng(2)
    x, z = rng.normal(size=(6, 3, 2, 2)), rng.normal(size=(2, 12))
    nngp, ntk = relu_fcn_kernels(x, depth=3)
    np.testing.assert_allclose(ntk, ntk.T, rtol=1e-12)
    assert np.linalg.eigvalsh(ntk).min() > 0
    assert np.linalg.eigvalsh(nngp).min() > 0
    full = relu_fcn_kernels(np.concatenate([x.reshape(6, -1), z]), depth=3)[1]
    np.testing.assert_allclose(relu_fcn_kernels(x, z, depth=3)[1], full[:6, 6:], rtol=1e-12)


def test_infinite_distances():
    t = np.array([[2.0, 0.5], [0.5, 1.0]])
    e = np.einsum("nm,ab->nmab", t, np.eye(3))
    d = infinite_distances(t, entk=e, pntk=t, first_logit=1.1 * t)
    assert d["infinite_rel_dist_entk"] == 0 and d["infinite_rel_dist_pntk"] == 0
    assert d["infinite_rel_dist_first_logit"] == pytest.approx(0.1)
    e2 = e.copy()
    e2[0, 0, 0, 1] = 1.0
    assert infinite_distances(t, entk=e2)["infinite_rel_dist_entk"] == pytest.approx(
        1.0 / (np.linalg.norm(t) * math.sqrt(3)))


# ----------------------------------------------------------------------------- wide networks
D_SHAPE = (1, 2, 4)  # inputs of 8 features
DEPTH = 3


def _inputs() -> torch.Tensor:
    g = torch.Generator().manual_seed(123)
    x = torch.randn(4, *D_SHAPE, generator=g, dtype=torch.float64)
    x[3] = -0.5 * x[0]  # an anti-correlated pair exercises φ near π
    return x


def _empirical(width: int, seed: int, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(NTK of logit 0, readout-layer part of it) of one NTK-param FCN, by autograd, float64."""
    spec = ModelSpec("fcn", width, D_SHAPE, num_classes=2, depth=DEPTH, parameterization="ntk")
    model = init_model(spec, seed).double().eval()
    params = list(model.parameters())
    ro = {id(p) for p in model.readout.parameters()}
    out = model(x)[:, 0]  # (N,)
    jac, jac_ro = [], []
    for n in range(x.shape[0]):
        grads = torch.autograd.grad(out[n], params, retain_graph=True)
        jac.append(torch.cat([g.reshape(-1) for g in grads]))  # (P,)
        jac_ro.append(torch.cat([g.reshape(-1) for g, p in zip(grads, params) if id(p) in ro]))
    j, jr = torch.stack(jac), torch.stack(jac_ro)  # (N, P), (N, P_readout)
    return (j @ j.T).numpy(), (jr @ jr.T).numpy()


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_wide_fcn_matches_analytic_ntk():
    x = _inputs()
    nngp, ntk = relu_fcn_kernels(x, depth=DEPTH)
    errs, errs_nngp = {}, {}
    for width, seeds in ((128, (0, 1, 2, 3)), (4096, (0, 1))):
        e = [_empirical(width, s, x) for s in seeds]
        errs[width] = np.mean([_rel(k, ntk) for k, _ in e])
        # readout-layer contribution σ_w²/w φ·φ' + σ_b² is a one-network NNGP estimate
        errs_nngp[width] = np.mean([_rel(k_ro, nngp) for _, k_ro in e])
    # relative error ~ 1/sqrt(width): ≈ 0.15 at 128, ≈ 0.04 (NTK) / 0.065 (NNGP) at 4096
    assert errs[4096] < errs[128], errs
    assert errs[4096] < 0.1, errs
    assert errs_nngp[4096] < errs_nngp[128] and errs_nngp[4096] < 0.1, errs_nngp


def test_matches_kernel_engine():
    from pntk import kernels

    x = _inputs()
    spec = ModelSpec("fcn", 64, D_SHAPE, num_classes=2, depth=DEPTH, parameterization="ntk")
    model = init_model(spec, 0).double()
    got = kernels.empirical_kernel(model, x, kind="first_logit", method="reference")
    want, _ = _empirical(64, 0, x)
    np.testing.assert_allclose(np.asarray(got.detach().cpu()), want, rtol=1e-10)


def _autograd_kernel(model, x, kind):
    """eNTK (N, N, O, O) or pNTK (N, N) by a plain autograd loop (small models only)."""
    params = list(model.parameters())
    out = model(x)  # (N, O)
    n, o = out.shape
    j = torch.stack([torch.stack([torch.cat([g.reshape(-1) for g in torch.autograd.grad(
        out[i, a], params, retain_graph=True)]) for a in range(o)]) for i in range(n)])  # (N, O, P)
    entk = torch.einsum("nap,mbp->nmab", j, j)  # (N, N, O, O)
    return entk if kind == "entk" else entk.sum((2, 3)) / o


def test_infinite_width_rows():
    from pntk.analysis.diagnostics import TIDY_COLUMNS

    x = _inputs()
    rows = infinite_width_rows(x, widths=[16, 1024], seeds=[0, 1], depth=DEPTH, num_classes=3,
                               dataset="toy", kernel_fn=_autograd_kernel)
    stats = {"infinite_rel_dist_entk", "infinite_rel_dist_pntk", "frobenius_distance"}
    assert {r["statistic"] for r in rows} == stats and len(rows) == 2 * 2 * 3
    assert all(list(r) == list(TIDY_COLUMNS) and np.isfinite(r["value"]) for r in rows)

    def mean(stat, w):
        return np.mean([r["value"] for r in rows if r["statistic"] == stat and r["width"] == w])

    for stat in stats:
        assert mean(stat, 1024) < mean(stat, 16), stat

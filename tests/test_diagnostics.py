"""Every diagnostic against a hand-computed case."""
from __future__ import annotations

import math

import numpy as np
import pytest

from pntk.analysis import diagnostics as dg

# One input, two outputs: Θ = [[2, 1], [1, 2]]; pNTK = (2+1+1+2)/2 = 3.
ONE = np.array([[2.0, 1.0], [1.0, 2.0]]).reshape(1, 1, 2, 2)


def _two_input_entk() -> np.ndarray:
    k = np.zeros((2, 2, 2, 2))
    k[0, 0] = [[2, 1], [1, 2]]
    k[1, 1] = [[3, 0], [0, 1]]
    k[0, 1] = [[1, 0.5], [0, 1]]
    k[1, 0] = k[0, 1].T
    return k


def _random_kernels(n=5, o=3, p=40, seed=0):
    j = np.random.default_rng(seed).normal(size=(n, o, p))  # per-output Jacobians
    entk = np.einsum("nap,mbp->nmab", j, j)  # (N, N, O, O)
    pntk = entk.sum((2, 3)) / o  # NTK of Σ f_a / √O
    return entk, pntk


def test_entk_matrix_row_index_is_n_times_o_plus_a():
    entk, _ = _random_kernels()
    m = dg.entk_matrix(entk)
    assert m.shape == (15, 15)
    assert m[1 * 3 + 2, 4 * 3 + 0] == entk[1, 4, 2, 0]
    np.testing.assert_allclose(m, m.T)


def test_kron_identity_is_zero_distance_zero_ratio_equal_spectra():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(4, 6))
    k = a @ a.T + 0.1 * np.eye(4)
    entk = dg.kron_identity(k, 3)
    np.testing.assert_allclose(dg.entk_matrix(entk), np.kron(k, np.eye(3)))
    assert dg.frobenius_distance(entk, k)["frobenius_distance"] == 0
    r = dg.diagonal_ratio(entk)
    assert all(v == 0 for v in r.values()), r
    s = dg.spectrum_differences(entk, k)
    for key in ("lambda_max_rel_diff", "lambda_min_rel_diff", "cond_rel_diff"):
        assert s[key] == pytest.approx(0, abs=1e-10)
    np.testing.assert_allclose(np.linalg.eigvalsh(dg.entk_matrix(entk)),
                               np.repeat(np.linalg.eigvalsh(k), 3), rtol=1e-10)


def test_diagonal_ratio_hand_values():
    r = dg.diagonal_ratio(ONE)
    assert r["offdiag_ratio"] == pytest.approx(0.5)  # √(1+1) / √(4+4)
    r = dg.diagonal_ratio(_two_input_entk())
    # diag² : 8 + 10 + 2 + 2 = 22 ; off² : 2 + 0 + 0.25 + 0.25 = 2.5
    assert r["offdiag_ratio"] == pytest.approx(math.sqrt(2.5 / 22))
    assert r["offdiag_ratio_same_input"] == pytest.approx(math.sqrt(2 / 18))
    assert r["offdiag_ratio_pairwise"] == pytest.approx((0.5 + 0 + 2 * math.sqrt(0.25 / 2)) / 4)
    assert r["offdiag_mean_abs_ratio"] == pytest.approx((3 / 8) / (12 / 8))
    # thesis Fig 3.2: |Σ off-diagonal| and |Σ diagonal| per block, each averaged over the 4 blocks
    assert r["offdiag_block_ratio"] == pytest.approx(((2 + 0 + 0.5 + 0.5) / 4) / ((4 + 4 + 2 + 2) / 4))


def test_frobenius_distance_hand_value():
    # Θ − 3·I = [[-1, 1], [1, -1]] → ‖·‖ = 2 ; ‖Θ‖ = √10
    d = dg.frobenius_distance(ONE, np.array([[3.0]]))
    assert d["frobenius_distance"] == pytest.approx(2 / math.sqrt(10))
    # Fig 3 caption: |‖Θ‖ − ‖Θ̂⊗I‖| / ‖Θ‖ with ‖3·I₂‖ = 3√2
    assert d["frobenius_norm_rel_diff"] == pytest.approx(abs(math.sqrt(10) - 3 * math.sqrt(2)) / math.sqrt(10))
    assert d["first_logit_fro"] == 2.0 and d["pntk_fro"] == 3.0


def test_norm_difference_never_exceeds_the_distance():
    for seed in range(5):
        entk, pntk = _random_kernels(p=30, seed=seed)
        d = dg.frobenius_distance(entk, pntk)
        assert d["frobenius_norm_rel_diff"] <= d["frobenius_distance"] + 1e-12  # reverse triangle inequality
        assert d["first_logit_fro"] == pytest.approx(np.linalg.norm(entk[:, :, 0, 0]))


def test_spectrum_differences_hand_values():
    s = dg.spectrum_differences(ONE, np.array([[3.0]]))  # eig(Θ) = {1, 3}, eig(Θ̂) = {3}
    assert s["lambda_max_entk"] == pytest.approx(3) and s["lambda_min_entk"] == pytest.approx(1)
    assert s["lambda_max_rel_diff"] == pytest.approx(0, abs=1e-12)
    assert s["lambda_min_rel_diff"] == pytest.approx(2)
    assert s["cond_entk"] == pytest.approx(3) and s["cond_pntk"] == pytest.approx(1)
    assert s["cond_rel_diff"] == pytest.approx(2 / 3)


def test_spectrum_singular_kernel_gives_inf_cond_and_nan_diff():
    entk = dg.kron_identity(np.ones((2, 2)), 2)  # rank 1 → λ_min = 0
    s = dg.spectrum_differences(entk, -np.ones((2, 2)))
    assert math.isinf(s["cond_entk"]) and math.isnan(s["cond_rel_diff"])


def test_random_jacobian_kernels_are_consistent():
    entk, pntk = _random_kernels(p=4000)
    d = dg.frobenius_distance(entk, pntk)["frobenius_distance"]
    assert 0 < d < 1
    s = dg.spectrum_differences(entk, pntk)
    assert s["lambda_max_entk"] >= s["lambda_max_pntk"] * 0.5
    with pytest.raises(ValueError, match="pntk"):
        dg.frobenius_distance(entk, pntk[:3, :3])
    with pytest.raises(ValueError, match="entk"):
        dg.diagonal_ratio(pntk)


def test_prediction_gaps_hand_values():
    f = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    g = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    y = np.array([0, 1, 1])
    r = dg.prediction_gaps(f, g, y)
    assert r["pred_rel_diff"] == pytest.approx(math.sqrt(2 / 3))
    assert r["acc_entk"] == pytest.approx(2 / 3) and r["acc_pntk"] == pytest.approx(1 / 3)
    assert r["acc_diff"] == pytest.approx(1 / 3) and r["acc_abs_diff"] == pytest.approx(1 / 3)
    assert r["argmax_agreement"] == pytest.approx(2 / 3)
    assert r["pred_rms_diff"] == pytest.approx(math.sqrt(2 / 3))  # one point differs by (−1, 1)
    assert (r["only_entk_correct"], r["only_pntk_correct"]) == (1, 0)  # point 1: only the eNTK is right
    assert dg.prediction_gaps(f, g, np.eye(2)[y]) == r  # one-hot labels
    with pytest.raises(ValueError):
        dg.prediction_gaps(f, g[:2], y)


def test_tidy_rows():
    meta = {"dataset": "digits", "arch": "fcn", "width": np.int64(64), "seed": 1, "epoch": 0, "kind": "x"}
    stats = {"frobenius_distance": dg.frobenius_distance(ONE, np.array([[3.0]]))["frobenius_distance"],
             "spec": {"cond": np.float32(2.0)}}
    rows = dg.tidy_rows(meta, stats)
    assert [r["statistic"] for r in rows] == ["frobenius_distance", "spec.cond"]
    assert list(rows[0]) == [*dg.TIDY_COLUMNS, "kind"]
    assert rows[1]["value"] == 2.0 and isinstance(rows[0]["width"], int)
    with pytest.raises(ValueError, match="epoch"):
        dg.tidy_rows({k: v for k, v in meta.items() if k != "epoch"}, stats)
    with pytest.raises(ValueError, match="scalar"):
        dg.tidy_rows(meta, {"bad": np.ones(3)})

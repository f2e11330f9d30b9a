"""Iterative solvers never hand back garbage: singular kernels escalate (jitter recorded) and then
equal a dense solve of the same jittered system; Nyström-PCG equals Cholesky; auto's choice is logged."""
import logging

import numpy as np
import pytest
import torch
import zarr

from pntk.kernels import empirical_kernel
from pntk.models import FCN
from pntk.regression import NotConvergedError, choose_solver, linearized_predict, rpcholesky
from pntk.regression.preconditioners import nystrom
from pntk.regression.rpcholesky import rp_cholesky
from pntk.regression.solvers import ZarrKernelOperator, cg_solve
from pntk.store import zarr_store as kstore


def rel(a, b):
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(np.asarray(b)))


def dense_reference(k, kx, y, shift):
    """Θx (Θ + shift·I)⁻¹ Y in float64 numpy (f0 = 0)."""
    return kx @ np.linalg.solve(k + shift * np.eye(len(k)), y)


@pytest.fixture(scope="module")
def pntk_problem():
    """pNTK of a small random FCN on clustered inputs (a real pNTK spectrum), 300 train + 40 test."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, 340)
    x = torch.tensor(rng.normal(size=(5, 12))[labels] + 0.7 * rng.normal(size=(340, 12)))  # (340, 12)
    torch.manual_seed(0)
    k = empirical_kernel(FCN(12, 64, 5, depth=3).double(), x, kind="pntk").numpy()  # (340, 340) float64
    return dict(k=k[:300, :300], kx=k[300:, :300], y=np.eye(5)[labels[:300]])


def singular_kernels():
    """(name, Θ over 50 train + 7 test points, labels (50, 3)) — labels the kernel cannot fit."""
    rng = np.random.default_rng(1)
    y = np.eye(3)[rng.integers(0, 3, 50)]
    ones = np.ones((57, 57))  # Θ = 11ᵀ: issue 13's 5.9e17 predictions from CG
    x = rng.normal(size=(57, 4))
    gram = x @ x.T  # rank 4
    xd = np.concatenate([x[:40], x[:10], x[50:]])  # 10 duplicated train rows with their own labels
    dup = np.exp(-((xd[:, None] - xd[None]) ** 2).sum(-1) / 4)
    return [("ones", ones, y), ("rank4-gram", gram, y), ("duplicate-rows", dup, y)]


@pytest.mark.parametrize("name,k,y", singular_kernels(), ids=lambda v: v if isinstance(v, str) else "")
@pytest.mark.parametrize("solver", ["cg", "nystrom"])
def test_singular_kernel_escalates_to_a_recorded_jitter(name, k, y, solver, caplog):
    kdd, kxd = k[:50, :50], k[50:, :50]
    with caplog.at_level(logging.WARNING, logger="pntk.regression"):
        pred, info = linearized_predict(kdd, kxd, None, None, y, solver=solver, tol=1e-8, rank=20,
                                        return_info=True)
    assert info["cg_converged"] and info["jitter"] > 0 and np.isfinite(pred).all()
    assert any("jitter" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    # the answer is exactly that of the jittered system, solved densely
    assert rel(pred, dense_reference(kdd, kxd, y, info["jitter"])) <= 1e-6
    if solver == "nystrom" and name != "duplicate-rows":
        # exactly low rank: the sample finds the whole range, a tiny jitter suffices and the answer is
        # the pseudo-inverse one (Jacobi CG needs ~1e-3·mean diag; the RBF's tail needs more too)
        lam, V = np.linalg.eigh(kdd)
        keep = lam > 1e-9 * lam[-1]
        pinv = kxd @ (V[:, keep] / lam[keep]) @ V[:, keep].T @ y
        assert info["jitter"] <= 1e-5 * np.trace(kdd) / 50 and rel(pred, pinv) <= 1e-4


def test_cg_on_inconsistent_singular_system_reports_failure():
    k = torch.ones(40, 40, dtype=torch.float64)
    b = torch.eye(40, dtype=torch.float64)[:, :3]  # not in the range of 11ᵀ
    x, info = cg_solve(lambda v: k @ v, b, tol=1e-10, maxiter=500)
    assert not info.converged and info.reason in ("breakdown (pᵀAp ≤ 0: not positive definite)", "diverged",
                                                  "stagnated", "non-finite iterate")


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-8), ("float32", 1e-5)])
def test_nystrom_pcg_equals_cholesky(tmp_path, pntk_problem, dtype, tol):
    p = pntk_problem
    path = tmp_path / "k.zarr"
    g = zarr.open_group(path, mode="w")
    g.create_array("kernel", shape=p["k"].shape, chunks=(64, 64), dtype=dtype)[...] = p["k"].astype(dtype)
    pred, info = linearized_predict(str(path), p["kx"], None, None, p["y"], solver="nystrom", rank=60,
                                    tol=1e-12, return_info=True)
    truth = dense_reference(p["k"], p["kx"], p["y"], 0.0)  # float64 kernel
    assert info["jitter"] == 0 and info["cg_converged"] and info["nystrom_rank"] == 60
    assert info["nystrom_factor_dtype"] == dtype  # F in the store's precision
    assert info["cg_iterations"] > 1  # rank 60 < 300: the preconditioner does not make it trivial
    assert rel(pred, truth) <= tol
    stored = np.triu(p["k"].astype(dtype)).astype(np.float64)  # the system the store holds: its upper
    stored = stored + np.triu(stored, 1).T  # triangle (float32 rounding need not keep Θ symmetric)
    assert rel(pred, dense_reference(stored, p["kx"], p["y"], 0.0)) <= 1e-8
    chol = linearized_predict(str(path), p["kx"], None, None, p["y"], solver="cholesky")
    assert rel(pred, chol) <= 1e-8


def test_nystrom_preconditioner_cuts_iterations(pntk_problem):
    p = pntk_problem
    its = {}
    for solver, rank in [("cg", None), ("nystrom", 30), ("nystrom", 120)]:
        _, info = linearized_predict(p["k"], p["kx"], None, None, p["y"], solver=solver, rank=rank, tol=1e-8,
                                     return_info=True)
        its[(solver, rank)] = info["cg_iterations"]
    assert its[("nystrom", 120)] < its[("nystrom", 30)] < its[("cg", None)]


def test_nystrom_factorisation(pntk_problem):
    k = pntk_problem["k"]
    op = ZarrKernelOperator(k, symmetric=True, block_bytes=8 * 64 * 64)
    full = nystrom(op, len(k))  # every column: Θ̂ = Θ
    lam = np.linalg.eigvalsh(k)[::-1]
    top = full.eigenvalues.numpy()[:20]
    assert np.allclose(top, lam[:20], rtol=1e-8)
    part = nystrom(op, 40, seed=3)
    u = part.U.numpy()
    assert np.allclose(u.T @ u, np.eye(part.rank), atol=1e-10)  # orthonormal
    assert np.all(part.eigenvalues.numpy() <= lam[: part.rank] * (1 + 1e-8))  # Θ̂ ⪯ Θ
    apply = part.for_shift(0.0)
    pinv = apply(torch.eye(len(k), dtype=torch.float64)).numpy()  # P⁻¹ (n, n)
    assert np.allclose(pinv, pinv.T, atol=1e-12) and np.linalg.eigvalsh(pinv)[0] > 0


def test_low_rank_plus_ridge_converges_at_once():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(120, 5))
    k = x @ x.T  # rank 5; with ridge 0.1 every other eigenvalue is 0.1: Nyström of rank ≥ 5 is exact
    y = rng.normal(size=(100, 2))
    _, info = linearized_predict(k[:100, :100], k[100:, :100], None, None, y, ridge=0.1, solver="nystrom",
                                 rank=10, tol=1e-10, return_info=True)
    assert info["cg_iterations"] <= 3 and info["jitter"] == 0


def test_auto_choice_is_logged():
    msgs = []
    n = 1000
    assert choose_solver("auto", n, 16 * n * n, False, msgs.append).value == "cholesky"
    assert choose_solver("auto", n, 16 * n * n - 1, False, msgs.append).value == "nystrom"
    assert choose_solver("auto", n, 1, True, msgs.append).value == "eigh"
    assert "auto → cholesky" in msgs[0] and "0.01 GiB ≤ cap 0.01 GiB" in msgs[0]
    assert "auto → nystrom" in msgs[1] and "> cap" in msgs[1] and "n = 1000" in msgs[1]
    assert "auto → eigh" in msgs[2]
    assert choose_solver("cg", n, 1, False, msgs.append).value == "cg" and len(msgs) == 3  # explicit: no line
    with pytest.raises(ValueError, match="finite t"):
        choose_solver("nystrom", n, 1, True)


def test_auto_switches_to_nystrom_through_linearized_predict(pntk_problem, caplog):
    p = pntk_problem
    with caplog.at_level(logging.INFO, logger="pntk.regression"):
        pred, info = linearized_predict(p["k"], p["kx"], None, None, p["y"], memory_cap_bytes=16 * 300 * 300 - 1,
                                        tol=1e-10, return_info=True)
    assert info["solver"] == "nystrom"
    assert any("solver auto → nystrom" in r.getMessage() for r in caplog.records)
    assert rel(pred, dense_reference(p["k"], p["kx"], p["y"], 0.0)) <= 1e-7


def test_progress_lines_with_eta(pntk_problem):
    msgs = []
    p = pntk_problem
    linearized_predict(p["k"], p["kx"], None, None, p["y"], solver="cg", tol=1e-8, maxiter=400, log=msgs.append)
    progress = [m for m in msgs if m.startswith("cg: iteration ")]
    assert progress and all("ETA ~" in m and "/400" in m for m in progress)


def test_threaded_products_are_deterministic(tmp_path, pntk_problem):
    k = pntk_problem["k"].astype(np.float32)
    g = zarr.open_group(tmp_path / "k.zarr", mode="w")
    g.create_array("kernel", shape=k.shape, chunks=(50, 50), dtype="f4")[...] = k
    v = torch.randn(300, 4, dtype=torch.float64)
    op = ZarrKernelOperator(g["kernel"], symmetric=True, threads=2)
    a, b = op.matmat(v), op.matmat(v)
    assert torch.equal(a, b) and op.passes == 2
    assert np.allclose(a.numpy(), k.astype(np.float64) @ v.numpy(), rtol=1e-12, atol=1e-10)


def test_store_codec_float32_uncompressed_and_old_stores_read(tmp_path, pntk_problem):
    ids = np.arange(300)
    common = dict(kind="pntk", row_ids=ids, col_ids=ids, row_labels=ids % 5, col_labels=ids % 5, tile=128)
    new = kstore.create_store(tmp_path / "new.zarr", dtype="float32", **common)["kernel"]
    f64 = kstore.create_store(tmp_path / "f64.zarr", dtype="float64", **common)["kernel"]
    assert new.compressors == () and len(f64.compressors) == 1
    old = zarr.open_group(tmp_path / "old.zarr", mode="w")  # a float32 store written before: zstd
    old = old.create_array("kernel", shape=(300, 300), chunks=(128, 128), dtype="f4")
    assert len(old.compressors) == 1
    for arr in (new, old):
        arr[...] = pntk_problem["k"].astype(np.float32)
        pred = linearized_predict(arr, pntk_problem["kx"], None, None, pntk_problem["y"], solver="nystrom",
                                  rank=50, tol=1e-10)
        assert rel(pred, dense_reference(pntk_problem["k"], pntk_problem["kx"], pntk_problem["y"], 0)) <= 1e-5


def test_not_converged_error_names_the_store(tmp_path, pntk_problem):
    p = pntk_problem
    g = zarr.open_group(tmp_path / "named.zarr", mode="w")
    g.create_array("kernel", shape=p["k"].shape, chunks=(100, 100), dtype="f8")[...] = p["k"]
    with pytest.raises(NotConvergedError, match=r"nystrom-pcg did not converge on store .*named\.zarr.*residual"):
        linearized_predict(str(tmp_path / "named.zarr"), p["kx"], None, None, p["y"], solver="nystrom", rank=5,
                           tol=1e-14, maxiter=1)


@pytest.mark.parametrize("stored", ["uncompressed", "zstd", "memory"])
def test_operator_rows_equal_the_kernel(tmp_path, pntk_problem, stored):
    k = pntk_problem["k"].astype(np.float32)
    if stored == "memory":
        arr = k
    else:
        ids = np.arange(300)
        kw = dict(kind="pntk", row_ids=ids, col_ids=ids, row_labels=ids % 5, col_labels=ids % 5, tile=128)
        arr = kstore.create_store(tmp_path / "k.zarr", dtype="float32", **kw)["kernel"] if stored == "uncompressed" \
            else zarr.open_group(tmp_path / "k.zarr", mode="w").create_array("kernel", shape=k.shape, chunks=(128, 128),
                                                                            dtype="f4")
        arr[...] = k
    op = ZarrKernelOperator(arr, symmetric=True)
    assert (op.raw is not None) == (stored == "uncompressed")
    idx = np.array([0, 5, 127, 128, 200, 255, 256, 299])  # both sides of every tile edge, the padded edge tile
    assert np.array_equal(op.rows(idx).numpy(), k[idx].astype(np.float64))
    v = torch.randn(300, 3, dtype=torch.float64)
    stored_sym = np.triu(k).astype(np.float64) + np.triu(k, 1).T.astype(np.float64)
    assert np.allclose(op.matmat(v).numpy(), stored_sym @ v.numpy(), rtol=1e-12, atol=1e-9)


def test_operator_rows_of_an_entk(pntk_problem):
    rng = np.random.default_rng(4)
    k4 = rng.normal(size=(20, 20, 3, 3))
    flat = k4.transpose(0, 2, 1, 3).reshape(60, 60)
    op = ZarrKernelOperator(k4)
    idx = np.array([1, 2, 3, 31, 59])
    assert np.array_equal(op.rows(idx).numpy(), flat[idx])


def test_rp_cholesky_is_the_nystrom_approximation_on_its_pivots(pntk_problem, monkeypatch):
    k = pntk_problem["k"]
    op = ZarrKernelOperator(k, symmetric=True, block_bytes=8 * 64 * 64)
    pre = rp_cholesky(op, 40, seed=1, block=16)
    assert pre.rank == 40 and pre.pivots.size >= 40
    s = pre.pivots
    nys = k[:, s] @ np.linalg.pinv(k[np.ix_(s, s)], rcond=1e-12) @ k[s]  # Θ[:,S] Θ[S,S]⁺ Θ[S,:]
    approx = pre.F.numpy() @ pre.F.numpy().T
    assert np.abs(approx - nys).max() <= 1e-6 * np.abs(k).max()
    lam = np.linalg.eigvalsh(k - approx)
    assert lam[0] >= -1e-8 * np.abs(k).max()  # Θ̂ ⪯ Θ
    assert np.isclose(pre.level, np.trace(k - approx) / 300, rtol=1e-6)
    # adaptive pivots leave less than uniform columns of the same number on this clustered kernel
    uniform = nystrom(op, 40, seed=1)
    u = uniform.U.numpy()
    assert np.trace(k - approx) < np.trace(k - (u * uniform.eigenvalues.numpy()) @ u.T)
    # the preconditioner is σ (Θ̂ + σI)⁻¹ with σ = c + μ (Woodbury on F), whatever μ the calls go through
    for mu in (0.3, 0.0, 0.3):
        sigma = max(pre.level + mu, 1e-10 * np.linalg.eigvalsh(approx).max())  # floored: P stays definite
        want = sigma * np.linalg.inv(approx + sigma * np.eye(300))
        p_inv = pre.for_shift(mu)(torch.eye(300, dtype=torch.float64)).numpy()
        assert np.allclose(p_inv, want, rtol=1e-7, atol=1e-9)
    assert pre.lam_max == pytest.approx(np.linalg.eigvalsh(approx).max(), rel=1e-3)
    with monkeypatch.context() as m:  # the GPU's branch (torch's Cholesky, not LAPACK in place), on the CPU
        m.setattr(rpcholesky, "_lapack_in_place", lambda t: False)
        gpu_way = rp_cholesky(op, 40, seed=1, block=16).for_shift(0.3)(torch.eye(300, dtype=torch.float64))
    assert torch.allclose(gpu_way, pre.for_shift(0.3)(torch.eye(300, dtype=torch.float64)), rtol=1e-9, atol=1e-12)
    stale = pre.for_shift(0.1)
    pre.for_shift(0.2)  # refactors the one (k, k) buffer: the first callable must not run on it
    with pytest.raises(RuntimeError, match="overwritten"):
        stale(torch.eye(300, dtype=torch.float64))


@pytest.mark.parametrize("landmarks", ["rpcholesky", "uniform"])
def test_both_landmark_choices_equal_cholesky(tmp_path, pntk_problem, landmarks):
    p = pntk_problem
    ids = np.arange(300)
    kw = dict(kind="pntk", row_ids=ids, col_ids=ids, row_labels=ids % 5, col_labels=ids % 5, tile=128)
    arr = kstore.create_store(tmp_path / "k.zarr", dtype="float64", **kw)["kernel"]
    arr[...] = p["k"]
    pred, info = linearized_predict(arr, p["kx"], None, None, p["y"], solver="nystrom", rank=60, tol=1e-12,
                                    return_info=True, landmarks=landmarks)
    assert info["cg_converged"] and info["jitter"] == 0 and info["cg_iterations"] > 1
    assert rel(pred, dense_reference(p["k"], p["kx"], p["y"], 0.0)) <= 1e-8
    assert info["nystrom_rank"] <= 60


def test_float32_factor_takes_the_iterations_of_a_float64_one(pntk_problem, monkeypatch):
    """A float32 store gets a float32 F (half the memory at n = 50,000); FᵀF and P⁻¹'s products run in
    float64 row panels (several here), so CG needs what it needs with a float64 F."""
    monkeypatch.setattr(rpcholesky, "PANEL_BYTES", 8 * 60 * 64)  # 64-row panels: 5 over n = 300
    p = pntk_problem
    op = ZarrKernelOperator(p["k"].astype("float32"), ridge=1e-3, symmetric=True, block_bytes=4 * 64 * 64)
    its = {}
    for dtype in (torch.float32, torch.float64):
        pre = rp_cholesky(op, 60, seed=0, dtype=dtype, block=16)
        assert pre.F.dtype == dtype
        f64 = pre.F.double()
        assert torch.allclose(rpcholesky.gram64(pre.F, col_block=16), f64.T @ f64, rtol=1e-12, atol=1e-10)
        _, info = cg_solve(op, torch.from_numpy(p["y"]), precond=pre.for_shift(op.ridge), tol=1e-10)
        assert info.converged
        its[dtype] = info.iterations
    assert its[torch.float32] <= 1.05 * its[torch.float64] + 1, its  # (the two factors differ by rounding)


def test_rp_cholesky_stops_at_the_rank_of_a_low_rank_kernel():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(80, 6))
    k = x @ x.T  # rank 6
    pre = rp_cholesky(ZarrKernelOperator(k, symmetric=True), 50, block=8)
    assert pre.rank == 6 and pre.level <= 1e-8 * np.trace(k) / 80


def test_streaming_pass_restores_torch_threads(tmp_path, pntk_problem):
    """Tile workers run their ops on one torch thread each (W workers × T threads oversubscribed the
    cores: a pass took twice as long); the caller's thread count is back afterwards."""
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        op = ZarrKernelOperator(pntk_problem["k"], symmetric=True, threads=2, block_bytes=8 * 64 * 64)
        seen = []
        op.stream(lambda *a: seen.append(torch.get_num_threads()))
        assert seen and set(seen) == {1} and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)

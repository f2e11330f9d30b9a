"""Kernel regression: solvers agree, finite time, pNTK ≡ block-diagonal eNTK, jitter, out-of-core CG.
Singular kernels, escalation, Nyström preconditioning and auto's choice: tests/test_solvers.py."""
import json
import logging
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.linalg
import torch
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st

import pntk
from pntk.regression import accuracy, linearized_predict, regression_summary
from pntk.regression.solvers import NotConvergedError, ZarrKernelOperator, cg_solve, cholesky_solve, finite_time_weights


def rel(a, b):
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(np.asarray(b)))


def flat(k):
    """(N1, N2, O, O) → (N1·O, N2·O), row n*O+a; 2-D unchanged."""
    if k.ndim == 2:
        return k
    n1, n2, o, _ = k.shape
    return k.transpose(0, 2, 1, 3).reshape(n1 * o, n2 * o)


def make_problem(kind, n=60, m=17, o=3, seed=0):
    """Random PSD kernel over n train + m test points (NTK-like: features + a constant mode)."""
    rng = np.random.default_rng(seed)
    rows = (n + m) * (o if kind == "entk" else 1)
    phi = rng.normal(size=(rows, 2 * rows))
    kf = phi @ phi.T / phi.shape[1] + 0.5  # (rows, rows), PSD, moderately conditioned
    if kind == "entk":
        k = kf.reshape(n + m, o, n + m, o).transpose(0, 2, 1, 3)  # (n+m, n+m, O, O)
    else:
        k = kf
    k = np.ascontiguousarray(k)
    return dict(k_dd=k[:n, :n], k_xd=k[n:, :n], f0_d=0.1 * rng.normal(size=(n, o)),
                f0_x=0.1 * rng.normal(size=(m, o)), y_d=np.eye(o)[rng.integers(0, o, n)])


def direct(p, ridge=0.0):
    """Reference: f0(x) + Θxd (Θdd + λI)^{-1} (Y − f0(D)) with numpy."""
    kdd, kxd = flat(p["k_dd"]), flat(p["k_xd"])
    n, o = p["f0_d"].shape
    eye = np.eye(kdd.shape[0])
    r = (p["y_d"] - p["f0_d"]).reshape(kdd.shape[0], -1)  # (N, O) or (N·O, 1)
    return p["f0_x"] + (kxd @ np.linalg.solve(kdd + ridge * eye, r)).reshape(p["f0_x"].shape)


def write_store(path_or_store, k, tile, dtype="f8", name="kernel"):
    g = zarr.open_group(path_or_store, mode="a")
    chunks = (tile, tile) + k.shape[2:]
    a = g.create_array(name, shape=k.shape, chunks=chunks, dtype=dtype, compressors=None)
    a[...] = k.astype(dtype)
    return a


@pytest.fixture(params=["pntk", "entk"])
def problem(request):
    return make_problem(request.param)


def test_solvers_agree_in_memory(problem):
    ref = direct(problem, ridge=1e-3)
    for solver in ["cholesky", "eigh", "cg", "nystrom", "auto"]:
        pred = linearized_predict(**problem, ridge=1e-3, solver=solver, tol=1e-12)
        assert pred.dtype == np.float64 and pred.shape == problem["f0_x"].shape
        assert rel(pred, ref) <= 1e-6, solver
    as_torch = {k: torch.as_tensor(v) for k, v in problem.items()}
    assert rel(linearized_predict(**as_torch, ridge=1e-3), ref) <= 1e-6


def test_ridge_relative_to_the_mean_diagonal(problem, tmp_path):
    """ridge_scale="mean_diagonal": λ = ridge × mean diag Θ(D,D), for every solver and for a store (numpy
    reference with the λ computed here); the λ used is reported."""
    lam = 0.01 * np.mean(np.diag(flat(problem["k_dd"])))
    ref = direct(problem, ridge=lam)
    store = tmp_path / "dd.zarr"
    write_store(str(store), problem["k_dd"], 16)
    for solver in ["cholesky", "eigh", "cg", "nystrom"]:
        for k_dd in (problem["k_dd"], store):
            pred, info = linearized_predict(**{**problem, "k_dd": k_dd}, ridge=0.01, ridge_scale="mean_diagonal",
                                            solver=solver, tol=1e-12, return_info=True)
            assert rel(pred, ref) <= 1e-6, (solver, k_dd)
            assert info["ridge"] == pytest.approx(lam) and info["ridge_given"] == 0.01
    assert rel(linearized_predict(**problem, ridge=0.01), direct(problem, ridge=0.01)) <= 1e-6  # absolute
    with pytest.raises(ValueError, match="ridge_scale"):
        linearized_predict(**problem, ridge=0.01, ridge_scale="trace")


@pytest.mark.parametrize("kind,dtype,tile", [("pntk", "f8", 16), ("pntk", "f4", 23), ("entk", "f8", 13)])
def test_zarr_store_ragged_tiles(tmp_path, kind, dtype, tile):
    p = make_problem(kind, n=75, m=19)  # 75 and 19 are not multiples of the tile
    path = tmp_path / "k.zarr"
    write_store(path, p["k_dd"], tile, dtype)
    kxd = write_store(tmp_path / "x.zarr", p["k_xd"], tile, dtype)
    mem = dict(p, k_dd=p["k_dd"].astype(dtype), k_xd=p["k_xd"].astype(dtype))
    ref = direct(mem)
    tol = 1e-6
    for solver, cap in [("cholesky", None), ("eigh", None), ("cg", None), ("nystrom", None), ("auto", 1 << 14)]:
        pred, info = linearized_predict(str(path), kxd, p["f0_d"], p["f0_x"], p["y_d"], solver=solver,
                                        memory_cap_bytes=cap, tol=1e-12, return_info=True, rank=20)
        assert rel(pred, ref) <= tol, solver
    assert info["solver"] == "nystrom" and info["cg_converged"] and info["cg_iterations"] > 0
    assert str(path) in info["kernel"]


@settings(max_examples=25, deadline=None)
@given(n1=st.integers(1, 30), n2=st.integers(1, 30), o=st.integers(1, 3), tile=st.integers(1, 13),
       block_kib=st.integers(1, 16), square=st.booleans(), f32=st.booleans())
def test_operator_tilings(n1, n2, o, tile, block_kib, square, f32):
    n2 = n1 if square else n2
    rng = np.random.default_rng(n1 * 1000 + n2)
    shape = (n1, n2, o, o) if o > 1 else (n1, n2)
    k = rng.normal(size=shape)
    k = (k + np.swapaxes(np.swapaxes(k, 0, 1), 2, 3) if o > 1 else k + k.T) if square else k
    arr = write_store(zarr.storage.MemoryStore(), k, tile, "f4" if f32 else "f8")
    k = arr[...].astype(np.float64)
    ridge = 0.25 if square else 0.0
    dense = flat(k) + ridge * np.eye(n1 * o, n2 * o) if square else flat(k)
    v = rng.normal(size=(n2 * o, 2))
    for src, sym in [(arr, False), (k, False), (arr, True), (k, True)]:
        if sym and not square:
            continue
        for threads in (1, 3):
            op = ZarrKernelOperator(src, ridge=ridge, block_bytes=block_kib * 1024, symmetric=sym, threads=threads)
            assert np.allclose(op.matmat(torch.from_numpy(v)).numpy(), dense @ v, atol=1e-10)
            assert np.array_equal(op.to_dense().numpy(), dense)
            cols = np.flatnonzero(rng.random(n2 * o) < 0.4)
            assert np.array_equal(op.columns(cols).numpy(), dense[:, cols])
            if square:
                assert np.array_equal(op.diagonal().numpy(), np.diag(dense))


@pytest.mark.parametrize("local", [True, False])
def test_diagonal_holds_one_tile_at_a_time(tmp_path, local):
    """Θ's diagonal from its diagonal tiles, one tile in memory at a time (at N = 50,000 keeping them all
    alive cost 2 GB on top of the solver). numpy's buffers are traced by tracemalloc, torch's are not:
    the tiles read from the store are numpy arrays (a chunk buffer for a local store, zarr's output else)."""
    import tracemalloc

    n, tile = 1200, 200  # six diagonal tiles of 160 KB as float32
    rng = np.random.default_rng(5)
    k = rng.normal(size=(n, n))
    arr = write_store(str(tmp_path / "k.zarr") if local else zarr.storage.MemoryStore(), k + k.T, tile, "f4")
    op = ZarrKernelOperator(arr, symmetric=True, threads=1)
    assert (op.raw is not None) == local
    tracemalloc.start()
    try:
        diagonal = op.diagonal()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert np.array_equal(diagonal.numpy(), np.diag(arr[...]).astype(np.float64))
    assert peak <= 2.5 * tile * tile * 4, f"{peak / (tile * tile * 4):.1f} tiles alive at once"


def test_finite_time(problem):
    p = problem
    f0 = linearized_predict(**p, t=0.0)
    assert np.array_equal(f0, p["f0_x"])
    lam_min = np.linalg.eigvalsh(flat(p["k_dd"]))[0]
    ts = np.array([0.0, 0.3, 2.0, 60.0 / lam_min])
    preds = linearized_predict(**p, t=ts)
    assert preds.shape == (4,) + p["f0_x"].shape
    assert np.array_equal(preds[0], p["f0_x"])
    assert rel(preds[-1], linearized_predict(**p, solver="cholesky")) <= 1e-6
    kdd, kxd = flat(p["k_dd"]), flat(p["k_xd"])  # expm reference at t = 0.3
    r = (p["f0_d"] - p["y_d"]).reshape(kdd.shape[0], -1)
    ref = p["f0_x"] - (kxd @ np.linalg.solve(kdd, (np.eye(len(kdd)) - scipy.linalg.expm(-0.3 * kdd)) @ r)
                       ).reshape(p["f0_x"].shape)
    assert rel(preds[1], ref) <= 1e-8
    with pytest.raises(ValueError, match="finite t"):
        linearized_predict(**p, t=1.0, solver="cg")


def test_finite_time_weights_limits():
    lam = torch.tensor([-1e-17, 0.0, 1e-30, 1e-3, 2.0], dtype=torch.float64)
    g = finite_time_weights(lam, [0.0, 5.0, np.inf]).numpy()
    assert np.isfinite(g).all() and np.all(g[0] == 0)
    assert np.allclose(g[1, :3], 5.0) and np.isclose(g[1, 3], -np.expm1(-5e-3) / 1e-3)
    assert np.allclose(g[2], [0, 0, 0, 1e3, 0.5])  # t=∞: pseudo-inverse, null modes dropped


def test_pntk_equals_block_diagonal_entk():
    p = make_problem("pntk", n=40, m=11, o=4)
    eye = np.eye(4)
    e = dict(p, k_dd=p["k_dd"][:, :, None, None] * eye, k_xd=p["k_xd"][:, :, None, None] * eye)
    for kw in [dict(solver="cholesky"), dict(solver="cg", tol=1e-12), dict(solver="nystrom", tol=1e-12),
               dict(t=[0.5, 3.0])]:
        assert rel(linearized_predict(**e, **kw), linearized_predict(**p, **kw)) <= 1e-9, kw


def test_singular_kernel_gets_jitter(caplog):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 5))
    x = np.concatenate([x, x[:10]])  # 10 duplicated training points → Θ(D,D) singular
    xt = rng.normal(size=(7, 5))
    xa = np.concatenate([x, xt])
    k = np.exp(-((xa[:, None] - xa[None]) ** 2).sum(-1) / 10)
    y = np.eye(3)[rng.integers(0, 3, 40)][np.r_[0:40, 0:10]]  # duplicates carry the same label
    args = (k[:50, :50], k[50:, :50], None, None, y)
    with caplog.at_level(logging.WARNING, logger="pntk.regression"):
        pred, info = linearized_predict(*args, solver="cholesky", return_info=True)
    assert np.isfinite(pred).all() and info["jitter"] > 0
    assert any("jitter" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    msgs = []
    _, jit = cholesky_solve(k[:50, :50], y, log=msgs.append)
    assert jit > 0 and any("jitter" in m for m in msgs)
    assert rel(linearized_predict(*args, solver="eigh"), pred) <= 1e-3  # pinv vs tiny jitter


def test_cg_info_and_nonconvergence(caplog, tmp_path):
    p = make_problem("pntk")
    _, info = linearized_predict(**p, solver="cg", tol=1e-9, return_info=True)
    assert info["cg_converged"] and 0 < info["cg_iterations"] < 60 and info["jitter"] == 0
    # one product per iteration, one to verify the final residual (B − A X, not the recursion's)
    assert info["cg_max_rel_residual"] <= 1e-9 and info["kernel_passes"] == info["cg_iterations"] + 1
    write_store(tmp_path / "k.zarr", p["k_dd"], 16)
    with caplog.at_level(logging.WARNING, logger="pntk.regression"), \
            pytest.raises(NotConvergedError, match=r"k\.zarr.*max relative residual \d"):
        linearized_predict(str(tmp_path / "k.zarr"), **{k: v for k, v in p.items() if k != "k_dd"},
                           solver="cg", maxiter=2)  # a budget no jitter can rescue: never a result
    assert any("NOT converged" in r.getMessage() for r in caplog.records)
    assert any("retrying with jitter" in r.getMessage() for r in caplog.records)
    b = torch.randn(30, 2, dtype=torch.float64)  # cg_solve on its own, callable operator
    a = torch.eye(30, dtype=torch.float64) * torch.linspace(1, 3, 30, dtype=torch.float64)
    x, inf = cg_solve(lambda v: a @ v, b, tol=1e-12)
    assert torch.allclose(a @ x, b) and inf.converged


@pytest.mark.parametrize("solver", ["cg", "cholesky"])
def test_store_with_one_triangle_is_refused(tmp_path, solver):
    p = make_problem("pntk", n=40)
    write_store(tmp_path / "k.zarr", np.triu(p["k_dd"]), 16)
    with pytest.raises(ValueError, match="not symmetric"):
        linearized_predict(str(tmp_path / "k.zarr"), p["k_xd"], p["f0_d"], p["f0_x"], p["y_d"], solver=solver)


def test_bad_inputs(tmp_path):
    p = make_problem("pntk")
    k = p["k_dd"].copy()
    k[20:30, 40:50] = np.nan  # an unwritten tile of a store
    write_store(tmp_path / "k.zarr", k, 16)
    for solver in ["cholesky", "cg"]:
        with pytest.raises(ValueError, match="NaN"):
            linearized_predict(str(tmp_path / "k.zarr"), **{k: v for k, v in p.items() if k != "k_dd"},
                               solver=solver)
    with pytest.raises(ValueError, match="k_xd"):
        linearized_predict(**dict(p, k_xd=p["k_xd"][:, :-1]))
    with pytest.raises(ValueError, match="f0_x"):
        linearized_predict(**dict(p, f0_x=p["f0_x"][:-1]))
    with pytest.raises(ValueError, match="solver"):
        linearized_predict(**p, solver="lu")
    with pytest.raises(ValueError, match="NaN"):
        linearized_predict(**dict(p, f0_d=p["f0_d"] * np.nan))
    with pytest.raises(ValueError, match="kernel"):
        linearized_predict(str("/nonexistent/k.zarr"), **{k: v for k, v in p.items() if k != "k_dd"})


def test_labels_accuracy_summary():
    p = make_problem("pntk", o=3)
    labels = p["y_d"].argmax(1)
    a = linearized_predict(**dict(p, y_d=labels))  # int labels → one-hot
    assert np.array_equal(a, linearized_predict(**p))
    train = linearized_predict(p["k_dd"], p["k_dd"], p["f0_d"], p["f0_d"], labels)
    assert accuracy(train, labels) == 1.0 and accuracy(train, p["y_d"]) == 1.0  # interpolation
    s = regression_summary(np.stack([p["f0_d"], train]), labels)
    assert s["accuracy"][1] == 1.0 and s["n"] == 60 and s["n_outputs"] == 3 and s["finite"]
    assert np.isclose(s["mse"][1], 0, atol=1e-12)
    json.dumps(regression_summary(train, labels))


CHILD = textwrap.dedent("""
    import json, resource, sys
    import numpy as np, torch, zarr
    from pntk.regression import linearized_predict
    def status_kib(key):  # VmRSS: resident now; VmHWM: peak resident of this process image
        return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(key + ":"))
    g = zarr.open_group(sys.argv[1], mode="r")
    cap, solver = int(sys.argv[2]), sys.argv[3]
    base = status_kib("VmRSS")  # after imports
    y = np.eye(10)[np.random.default_rng(1).integers(0, 10, g["kernel"].shape[0])]
    pred, info = linearized_predict(g["kernel"], g["kxd"], None, None, y, ridge=1e-2, tol=1e-8,
                                    memory_cap_bytes=cap, return_info=True, solver=solver)
    print(json.dumps(dict(info, base_kib=base, peak_kib=status_kib("VmHWM"), finite=bool(np.isfinite(pred).all()),
                          ru_maxrss_kib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)))
""")


@pytest.mark.slow  # 26 s: solves of a 288 MB store in fresh processes, each measuring its peak RSS
def test_out_of_core_cg_peak_rss(tmp_path):
    """N=6000 float64 kernel (288 MB) on disk, cap 64 MiB, 2 reader threads. Plain CG streams:
    peak RSS ≤ base + cap + 32 MiB. auto picks Nyström-PCG, whose (n, ℓ) columns are held to cap/2
    by a smaller rank (ℓ = 349): peak RSS ≤ base + cap + 96 MiB.

    Peak = VmHWM of the child, base = its VmRSS after imports. (ru_maxrss is not used for the
    assertion: on Linux it keeps the RSS of the forked pre-exec copy of this pytest process, i.e.
    the parent's ~0.7 GB, which would swamp the measurement; it is still reported.)
    Measured 2026-11-25 (AMD EPYC, 2 cores, one reader): CG extra peak ≈ 61 MiB with cap 64 MiB —
    ≈ 35 MiB of it a constant (zarr/torch first use), the rest the block buffer. 2026-11-30 (2 readers):
    CG 57–67 MiB; Nyström 117–145 MiB, of which the 16 MiB (n, ℓ) matrix is the only large array:
    the rest is MKL workspace and allocator retention of the GEMM/TRSM/eigh calls (≈ 10–25 MiB each)."""
    n, m, tile, ell = 6000, 100, 512, 0.35  # 6000 = 11·512 + 368: ragged last tile
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n + m, 32)) / np.sqrt(32)
    sq = (x**2).sum(1)
    g = zarr.open_group(tmp_path / "k.zarr", mode="w")
    kdd = g.create_array("kernel", shape=(n, n), chunks=(tile, tile), dtype="f8", compressors=None)
    kxd = g.create_array("kxd", shape=(m, n), chunks=(tile, tile), dtype="f8", compressors=None)
    for i in range(0, n, tile):  # RBF kernel, one chunk-row at a time
        kdd[i : i + tile] = np.exp(-(sq[i : i + tile, None] + sq[:n] - 2 * x[i : i + tile] @ x[:n].T) / (2 * ell**2))
    kxd[:] = np.exp(-(sq[n:, None] + sq[:n] - 2 * x[n:] @ x[:n].T) / (2 * ell**2))
    cap = 64 << 20
    src = os.path.dirname(os.path.dirname(pntk.__file__))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]), OMP_NUM_THREADS="2")
    for solver, expect, allowance in [("cg", "cg", 32 << 20), ("auto", "nystrom", 96 << 20)]:
        out = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "k.zarr"), str(cap), solver], env=env,
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]
        r = json.loads(out.stdout.strip().splitlines()[-1])
        extra = (r["peak_kib"] - r["base_kib"]) * 1024
        print(f"\nout-of-core {r['solver']}: kernel {8 * n * n / 2**20:.0f} MiB, cap {cap >> 20} MiB, extra peak RSS "
              f"{extra / 2**20:.1f} MiB (VmHWM − VmRSS after imports; ru_maxrss {r['ru_maxrss_kib'] >> 10} MiB, "
              f"base {r['base_kib'] >> 10} MiB), {r['cg_iterations']} iterations, {r['seconds']} s")
        assert r["solver"] == expect and r["cg_converged"] and r["finite"]
        assert extra < cap + allowance


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_matches_cpu(tmp_path):
    p = make_problem("entk")
    write_store(tmp_path / "k.zarr", p["k_dd"], 16)
    for kw in [dict(solver="cholesky"), dict(solver="cg", tol=1e-12), dict(solver="nystrom", tol=1e-12, rank=50),
               dict(t=[0.1, 1.0])]:
        gpu = linearized_predict(str(tmp_path / "k.zarr"), p["k_xd"], p["f0_d"], p["f0_x"], p["y_d"],
                                 device="cuda", **kw)
        assert rel(gpu, linearized_predict(**p, **kw)) <= 1e-6, kw

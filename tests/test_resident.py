"""In-memory regression: a store whose tiles, preconditioner and CG vectors fit under the cap is read once
and kept (float32 stays float32); every product then multiplies the kept tiles with the streaming path's own
workers and float64 strips — the same predictions bit for bit, the same failures (never garbage)."""
import numpy as np
import pytest
import torch

from pntk.kernels import empirical_kernel
from pntk.models import FCN
from pntk.regression import NotConvergedError, linearized, linearized_predict
from pntk.regression.linearized import resident_plan
from pntk.regression.solvers import ZarrKernelOperator
from pntk.store import zarr_store as kstore
from pntk.tiling import TileGrid


@pytest.fixture(scope="module")
def problem():
    """pNTK and eNTK of a small random FCN on clustered inputs, 260 train + 30 test, written as stores."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 290)
    x = torch.tensor(rng.normal(size=(4, 10))[labels] + 0.7 * rng.normal(size=(290, 10)))
    torch.manual_seed(0)
    model = FCN(10, 48, 4, depth=3).double()
    return dict(k=empirical_kernel(model, x, kind="pntk").numpy(),
                e=empirical_kernel(model, x[:60], kind="entk").numpy(), y=np.eye(4)[labels])


def store(path, k, n, tile, dtype="float32"):
    """Θ[:n, :n] as a symmetric store written tile by tile (upper tiles and their mirrors, as the workflow)."""
    ids = np.arange(n)
    kstore.create_store(path, kind="entk" if k.ndim == 4 else "pntk", row_ids=ids, col_ids=ids, row_labels=ids % 4,
                        col_labels=ids % 4, tile=tile, dtype=dtype, out_dim=k.shape[2] if k.ndim == 4 else None,
                        attrs={})
    grid = TileGrid(n, n, tile, symmetric=True)
    for i, j in grid.tiles():
        r, c = grid.slices(i, j)
        kstore.write_tile(path, i, j, k[r, c].astype(dtype))
    return str(path)


def run(path, kx, y, cap, **kw):
    msgs = []
    pred, info = linearized_predict(path, kx, None, None, y, memory_cap_bytes=cap, return_info=True, threads=2,
                                    log=msgs.append, **kw)
    return pred, info, msgs


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("solver,extra", [("nystrom", dict(rank=40)), ("nystrom", dict(rank=40, landmarks="uniform")),
                                          ("cg", {})], ids=["rpcholesky", "uniform", "jacobi"])
def test_resident_equals_streaming_bit_for_bit(tmp_path, problem, solver, extra, dtype, monkeypatch):
    k, y = problem["k"], problem["y"][:260]
    path = store(tmp_path / "k.zarr", k, 260, tile=100, dtype=dtype)  # ragged: 100, 100, 60
    kx = k[260:, :260]
    common = dict(solver=solver, tol=1e-10, ridge=0.01, ridge_scale="mean_diagonal", **extra)
    resident, r_info, r_log = run(path, kx, y, 64 << 20, **common)
    real = linearized.resident_plan  # the same cap (so the same rank, block and workers), the tiles said not to fit
    monkeypatch.setattr(linearized, "resident_plan", lambda *a: (False, real(*a)[1]))
    streamed, s_info, s_log = run(path, kx, y, 64 << 20, **common)
    assert not s_info["resident"] and r_info["resident"]
    assert any(m.startswith("streaming: ") for m in s_log) and any(m.startswith("resident: ") for m in r_log)
    assert r_info["resident_bytes"] == (100 * 260 + 100 * 160 + 60 * 60) * np.dtype(dtype).itemsize  # upper tiles
    assert np.array_equal(resident, streamed)  # the same arithmetic on the same values
    assert r_info["cg_iterations"] == s_info["cg_iterations"] and r_info["cg_converged"]
    stored = k[:260, :260].astype(dtype).astype(np.float64)
    lam = 0.01 * np.mean(np.diag(stored))
    dense = kx @ np.linalg.solve(stored + lam * np.eye(260), y)
    assert np.linalg.norm(resident - dense) / np.linalg.norm(dense) <= 1e-8


def test_resident_entk_store_equals_cholesky(tmp_path, problem):
    e, y = problem["e"], problem["y"][:50]  # (60, 60, 4, 4): 50 train, 10 test
    path = store(tmp_path / "e.zarr", e, 50, tile=20, dtype="float64")
    kx = e[50:, :50]
    pred, info, _ = run(path, kx, y, 64 << 20, solver="nystrom", rank=60, tol=1e-11)
    chol = linearized_predict(path, kx, None, None, y, solver="cholesky")
    assert info["resident"] and np.linalg.norm(pred - chol) / np.linalg.norm(chol) <= 1e-8


def test_resident_products_read_nothing(tmp_path, problem):
    path = store(tmp_path / "k.zarr", problem["k"], 260, tile=100)
    op = ZarrKernelOperator(path, symmetric=True, threads=2)
    v = torch.randn(260, 3, dtype=torch.float64)
    before = op.matmat(v)
    op.make_resident()
    reads = []
    op.raw.read_chunk = lambda *a: reads.append(a)  # any chunk read from now on is recorded
    op.k = None  # ... and so is any read through zarr
    assert torch.equal(op.matmat(v), before) and not reads
    idx = np.array([0, 99, 100, 150, 259])
    assert np.array_equal(op.rows(idx).numpy(), problem["k"][:260, :260].astype(np.float32)[idx].astype(np.float64))
    assert torch.equal(op.diagonal(), torch.from_numpy(np.diag(problem["k"][:260, :260]).astype(np.float32)).double())


def test_resident_solve_fails_like_the_streaming_one(tmp_path, problem):
    path = store(tmp_path / "named.zarr", problem["k"], 260, tile=100)
    with pytest.raises(NotConvergedError, match=r"did not converge on store .*named\.zarr"):
        run(path, problem["k"][260:, :260], problem["y"][:260], 64 << 20, solver="nystrom", rank=3, tol=1e-14,
            maxiter=1)


def test_resident_plan_counts_what_the_solve_holds():
    fits, held = resident_plan(op_bytes=6 * 2**30, n=50_000, rhs=10, pre_bytes=1.0 * 2**30, cap=8 * 2**30, workers=2)
    assert fits and 7 * 2**30 < held < 7.1 * 2**30  # tiles + preconditioner + CG vectors + strips
    assert not resident_plan(6 * 2**30, 50_000, 10, 2.5 * 2**30, 8 * 2**30, 2)[0]


def test_the_cap_counts_what_the_streaming_solve_holds(tmp_path, problem):
    """A tight cap takes fewer tile workers, and a cap below one worker's needs says by how much; the rank is
    the largest whose preconditioner fits beside the streaming buffers, CG vectors and sketch temporaries."""
    from pntk.regression.memory import nystrom_rank, preconditioner_bytes, sketch_block, solve_overhead

    path = store(tmp_path / "k.zarr", problem["k"], 260, tile=100)
    kx, y = problem["k"][260:, :260], problem["y"][:260]
    _, info, msgs = run(path, kx, y, 7 << 20, solver="nystrom", rank=200, tol=1e-8)  # two 4 MiB strips do not fit
    assert info["threads"] == 1 and any("streaming on 1 worker(s) instead of 2" in m for m in msgs)
    assert info["memory_overhead_bytes"] + preconditioner_bytes(260, info["nystrom_rank"], "rpcholesky", 4) <= 7 << 20
    _, info, msgs = run(path, kx, y, 2 << 20, solver="nystrom", rank=200, tol=1e-8)
    assert any(m.startswith("memory cap 2 MiB below what streaming this store needs") for m in msgs)
    n, cap = 50_000, 8 << 30  # the accounting alone, at the CIFAR-10 size
    overhead = solve_overhead(n, 10, "rpcholesky", True, cap) + 2 * (400e6 + 4e6)
    k = nystrom_rank(n, 20_000, cap, "rpcholesky", 4, overhead)
    fits = [preconditioner_bytes(n, r, "rpcholesky", 4) <= cap - overhead for r in (k, k + 1)]
    assert fits == [True, False]  # the largest rank that fits
    assert sketch_block(n, cap) == 256 and sketch_block(6000, 64 << 20) < 256

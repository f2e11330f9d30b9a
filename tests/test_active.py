"""Look-ahead active learning: block (Schur) updates vs direct solves, vectorised MLMOC vs a
per-candidate loop (pNTK and eNTK, both references), the loop's block check (batched direct solves, ties),
sequential updates, warm- and cold-started retraining, naive look-ahead, and a tiny end-to-end loop."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from pntk.active.blockcheck import RTOL, check_acquisition, compare
from pntk.active.lookahead import LookAhead, block_inverse_extend, direct_scores, flat_kernel, mlmoc_direct
from pntk.active.loop import (
    COLUMNS,
    ALConfig,
    acquire_mlmoc,
    acquire_uncertainty,
    parse_strategy,
    run_active_learning,
    run_from_store,
    write_results,
)
from pntk.active.naive import naive_scores
from pntk.active.training import fit, outputs, retrain
from pntk.kernels import empirical_kernel
from pntk.models import ModelSpec, init_model

F64 = torch.float64
N_OUT = 4  # outputs of the tiny real models


def rel(a, b) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


def onehot(y, o=N_OUT):
    return torch.nn.functional.one_hot(torch.as_tensor(y), o).to(F64)


def random_psd(n: int, seed: int, rank: int | None = None) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, rank or 2 * n, generator=g, dtype=F64)
    return x @ x.T / x.shape[1]


@pytest.fixture(scope="module")
def real_kernels():
    """pNTK (P,P) and eNTK (P,P,O,O) of a tiny float64 FCN on digits-like inputs, and its outputs f0."""
    torch.manual_seed(0)
    model = init_model(ModelSpec("fcn", 24, (1, 8, 8), N_OUT, 3), 0).double()
    x = torch.rand(30, 1, 8, 8, dtype=F64) * 2 - 1
    with torch.no_grad():
        f0 = model(x)
    return {"pntk": empirical_kernel(model, x, kind="pntk"), "entk": empirical_kernel(model, x, kind="entk"),
            "f0": f0, "y": torch.randint(0, N_OUT, (30,), generator=torch.Generator().manual_seed(1))}


# ------------------------------------------------------------------------------------------------
# block inverse


@pytest.mark.parametrize("m,q", [(1, 1), (7, 1), (12, 3), (20, 5)])
@pytest.mark.parametrize("seed", [0, 1])
def test_block_inverse_equals_direct_random_psd(m, q, seed):
    k = random_psd(m + q, seed) + 1e-3 * torch.eye(m + q, dtype=F64)
    got = block_inverse_extend(torch.linalg.inv(k[:m, :m]), k[:m, m:], k[m:, m:])
    assert rel(got, torch.linalg.inv(k)) <= 1e-8


def test_block_inverse_low_rank_kernel_with_ridge():
    """A rank-deficient Θ (more points than features) is fine once the ridge is on the diagonal."""
    k = random_psd(15, 3, rank=6) + 1e-2 * torch.eye(15, dtype=F64)
    got = block_inverse_extend(torch.linalg.inv(k[:14, :14]), k[:14, 14:], k[14:, 14:])
    assert rel(got @ k, torch.eye(15, dtype=F64)) <= 1e-8


@pytest.mark.parametrize("kind", ["pntk", "entk"])
def test_block_update_equals_direct_solve_real_kernel(real_kernels, kind):
    """f_lin+ by the rank-q correction (★) equals the solve on L ∪ {x'}, for every candidate."""
    k, f0, y = real_kernels[kind], real_kernels["f0"], real_kernels["y"]
    n_l, p = 10, len(f0)
    la = LookAhead(k, f0, onehot(y[:n_l]), n_l, ridge=1e-3)
    kf, q = flat_kernel(k)
    cand = range(n_l, p)
    for j, xj in enumerate(cand):
        lp = list(range(n_l)) + [xj]
        rows = (torch.tensor(lp)[:, None] * q + torch.arange(q)).reshape(-1)
        srows = (torch.tensor(list(cand))[:, None] * q + torch.arange(q)).reshape(-1)
        a = kf[rows][:, rows] + la.lam * torch.eye(len(rows), dtype=F64)
        yy = torch.cat([onehot(y[:n_l]), onehot([int(y[xj])])])
        direct = f0[list(cand)] + (kf[srows][:, rows] @ torch.linalg.solve(a, (yy - f0[lp]).reshape(len(rows), -1))
                                   ).reshape(len(srows) // q, N_OUT)
        assert rel(la.lookahead(j, int(y[xj])), direct) <= 1e-8
        # and the block-updated inverse equals the direct inverse
        a_inv = block_inverse_extend(la.a_inv, kf[:n_l * q][:, rows[-q:]], a[-q:, -q:])
        assert rel(a_inv, torch.linalg.inv(a)) <= 1e-8


# ------------------------------------------------------------------------------------------------
# vectorised MLMOC vs loop


@pytest.mark.parametrize("kind", ["pntk", "entk"])
@pytest.mark.parametrize("reference", ["model", "flin"])
def test_vectorised_scores_equal_loop(real_kernels, kind, reference):
    k, f0, y = real_kernels[kind], real_kernels["f0"], real_kernels["y"]
    n_l, p = 8, len(f0)
    la = LookAhead(k, f0, onehot(y[:n_l]), n_l, ridge=1e-3, reference=reference)
    labels = la.pseudo_labels()
    fast = la.scores(labels, chunk_bytes=8 * (p - n_l) * N_OUT * 5)  # chunks of 5 candidates
    h = la.f0_s if reference == "model" else la.f_lin
    slow = mlmoc_direct(k, f0, onehot(y[:n_l]), list(range(n_l)), list(range(n_l, p)), labels, h, lam=la.lam)
    assert rel(fast, slow) <= 1e-8


def test_flin_reference_ignores_the_fit_residual(real_kernels):
    """When f_L interpolates L (Y_L := f_L(L)), d0 = 0 and both references give the same scores."""
    k, f0 = real_kernels["pntk"], real_kernels["f0"]
    y_l = f0[:8].clone()
    a = LookAhead(k, f0, y_l, 8, ridge=1e-3, reference="model")
    b = LookAhead(k, f0, y_l, 8, ridge=1e-3, reference="flin")
    assert torch.allclose(a.offset, torch.zeros_like(a.offset), atol=1e-6 * float(f0.abs().max()))
    assert rel(a.scores(), b.scores()) <= 1e-5


# ------------------------------------------------------------------------------------------------
# block update vs direct solves of Θ(L⁺, L⁺) (thesis Fig 2.1a "NTK w/o Block"): the loop's check


@pytest.mark.parametrize("kind", ["pntk", "entk"])
@pytest.mark.parametrize("reference", ["model", "flin"])
def test_direct_scores_equal_block_scores_and_the_loop_reference(real_kernels, kind, reference):
    """The batched direct solves (a factorisation per candidate) give the block update's scores, and the
    per-candidate reference loop's, to float64 rounding; from the (P,P,O,O) kernel and from LookAhead's flat one."""
    k, f0, y = real_kernels[kind], real_kernels["f0"], real_kernels["y"]
    n_l, p = 9, len(f0)
    la = LookAhead(k, f0, onehot(y[:n_l]), n_l, ridge=1e-3, reference=reference)
    labels = la.pseudo_labels()
    cand = torch.arange(p - n_l)
    direct = direct_scores(k, f0, onehot(y[:n_l]), n_l, labels, cand, lam=la.lam, reference=reference,
                           chunk_bytes=1)  # one candidate per chunk
    flat = direct_scores(la.k, f0, onehot(y[:n_l]), n_l, labels, cand, lam=la.lam, reference=reference, q=la.q)
    h = la.f0_s if reference == "model" else la.f_lin
    loop = mlmoc_direct(k, f0, onehot(y[:n_l]), list(range(n_l)), list(range(n_l, p)), labels, h, lam=la.lam)
    assert rel(direct, la.scores(labels)) <= 1e-10
    assert rel(direct, loop) <= 1e-10 and rel(direct, flat) <= 1e-12
    f32 = la.k.to(torch.float32)  # a float32 flat kernel is used as its float64 values, slice by slice
    assert rel(direct_scores(f32, f0, onehot(y[:n_l]), n_l, labels, cand, lam=la.lam, reference=reference, q=la.q),
               direct_scores(f32.double(), f0, onehot(y[:n_l]), n_l, labels, cand, lam=la.lam, reference=reference,
                             q=la.q)) <= 1e-13
    some = torch.tensor([4, 0, 13])  # a subset, in any order, is scored as the same candidates
    assert rel(direct_scores(k, f0, onehot(y[:n_l]), n_l, labels, some, lam=la.lam, reference=reference),
               direct[some]) <= 1e-12


@pytest.mark.parametrize("kind, budget", [("pntk", 100), ("entk", 100), ("entk", 6)])
def test_block_check_of_a_real_acquisition(real_kernels, kind, budget):
    """check_acquisition on a float64 kernel: every candidate (budget ≥ |S|) or the block update's best 6 (the
    chosen 4 first): identical sets, exact, at rounding-level score differences."""
    k, f0, y = real_kernels[kind], real_kernels["f0"], real_kernels["y"]
    n_l = 10
    la = LookAhead(k, f0, onehot(y[:n_l]), n_l, ridge=1e-3)
    block = la.scores()
    chosen = block.topk(4).indices.numpy()
    res = check_acquisition(la.k, la.q, f0, y[:n_l], n_l, block, chosen, 4, lam=la.lam, reference="model",
                            budget=budget)
    assert res["identical"] and res["exact"] and res["tie_swaps"] == 0
    assert res["checked"] == min(budget, len(f0) - n_l) and res["max_rel_diff"] < 1e-10
    with pytest.raises(ValueError, match="active.block_check"):
        check_acquisition(la.k, la.q, f0, y[:n_l], n_l, block, chosen, 4, lam=la.lam, reference="model", budget=3)


def test_compare_counts_tie_swaps_as_identical_and_real_swaps_as_different():
    """Scores that agree to rounding may swap places at the k-th position (a tie); a candidate the direct solve
    ranks clearly below the boundary but the block update chose is a different acquisition."""
    block = np.array([5.0, 4.0, 3.0, 3.0, 1.0])
    checked = np.arange(5)
    chosen = np.array([0, 1, 2])  # block's top 3 (2 and 3 tie exactly)
    tie = compare(block, np.array([5.0, 4.0, 3.0, 3.0 * (1 + 1e-12), 1.0]), checked, chosen, 3)
    assert tie["identical"] and not tie["exact"] and tie["tie_swaps"] == 1
    real = compare(block, np.array([5.0, 4.0, 2.0, 3.0, 1.0]), checked, chosen, 3)
    assert not real["identical"] and not real["exact"] and real["max_rel_diff"] == pytest.approx(1 / 5)
    near = compare(block, np.array([5.0, 4.0, 3.0, 3.0 * (1 + 100 * RTOL), 1.0]), checked, chosen, 3)
    assert not near["identical"]  # beyond the tolerance: not a tie
    same = compare(block, block + 1e-13, checked, chosen, 3)
    assert same["exact"] and same["identical"]
    with pytest.raises(ValueError, match="among those checked"):
        compare(block, block[:2], np.array([0, 1]), chosen, 3)


# ------------------------------------------------------------------------------------------------
# sequential updates


@pytest.mark.parametrize("kind", ["pntk", "entk", "random"])
def test_sequential_updates_equal_direct_solve_on_union(real_kernels, kind):
    f0, y = real_kernels["f0"], real_kernels["y"]
    k = real_kernels.get(kind)
    if k is None:  # a random PSD scalar kernel
        k = random_psd(len(f0), 7)
    n_l, p = 9, len(f0)
    la = LookAhead(k, f0, onehot(y[:n_l]), n_l, ridge=1e-3)
    added = [3, 11, 0, 17]  # positions into S
    for j in added:
        la.add(j, int(y[n_l + j]))
    kf, q = flat_kernel(k)
    union = list(range(n_l)) + [n_l + j for j in added]
    rows = (torch.tensor(union)[:, None] * q + torch.arange(q)).reshape(-1)
    srows = torch.arange(n_l * q, p * q)
    a = kf[rows][:, rows] + la.lam * torch.eye(len(rows), dtype=F64)
    assert rel(la.a_inv, torch.linalg.inv(a)) <= 1e-8
    r = (onehot(y[union]) - f0[union]).reshape(len(rows), -1)
    flin = f0[n_l:] + (kf[srows][:, rows] @ torch.linalg.solve(a, r)).reshape(p - n_l, N_OUT)
    assert rel(la.f_lin, flin) <= 1e-8
    assert rel(kf[srows][:, rows] @ la.alpha(), kf[srows][:, rows] @ torch.linalg.solve(a, r)) <= 1e-8
    # posterior kernel Σ(S,S) given the union, without ridge on the S×S block (as predictions use it)
    sigma = kf[srows][:, srows] - kf[srows][:, rows] @ torch.linalg.solve(a, kf[rows][:, srows])
    assert rel(la.sigma, sigma) <= 1e-8
    # scores after the adds: labelled candidates are out, the rest equal the loop on the union
    labels = la.pseudo_labels()
    fast = la.scores(labels)
    slow = mlmoc_direct(k, f0, onehot(y[union]), union, list(range(n_l, p)), labels, la.model_out, lam=la.lam)
    active = la.active
    assert torch.isinf(fast[~active]).all()
    assert rel(fast[active], slow[active]) <= 1e-8


def test_add_twice_is_an_error(real_kernels):
    la = LookAhead(real_kernels["pntk"], real_kernels["f0"], onehot(real_kernels["y"][:5]), 5)
    la.add(2, 0)
    with pytest.raises(ValueError, match="already labelled"):
        la.add(2, 0)


def test_lookahead_rejects_bad_shapes(real_kernels):
    with pytest.raises(ValueError, match="expected P = n_l"):
        LookAhead(real_kernels["pntk"], real_kernels["f0"][:-1], onehot(real_kernels["y"][:5]), 5)
    with pytest.raises(ValueError, match="reference"):
        LookAhead(real_kernels["pntk"], real_kernels["f0"], onehot(real_kernels["y"][:5]), 5, reference="x")


# ------------------------------------------------------------------------------------------------
# strategies and the loop


def test_parse_strategy():
    assert parse_strategy("mlmoc-entk").method == "mlmoc"
    assert parse_strategy("mlmoc-pntk-seq").method == "mlmoc-seq"
    assert parse_strategy("mlmoc-first_logit-seq").kernel == "first_logit"
    assert parse_strategy("margin").kernel == "none"
    for bad in ("mlmoc", "mlmoc-trace-x", "bald", "mlmoc-pntk-seq-seq"):
        with pytest.raises(ValueError, match="active.strategies"):
            parse_strategy(bad)


def test_config_errors():
    with pytest.raises(ValueError, match="active.per_cycle"):
        ALConfig(per_cycle=600, pool_subset=500)
    with pytest.raises(ValueError, match="active.reference"):
        ALConfig(reference="network")
    with pytest.raises(ValueError, match="active.retrain"):
        ALConfig(retrain="hot")
    with pytest.raises(ValueError, match="active.block_check_entk"):
        ALConfig(per_cycle=10, block_check_entk=5)
    ALConfig(per_cycle=10, block_check=0, block_check_entk=0)  # 0: no check
    for naive_pool in (10, 5, 501):  # not above per_cycle (random acquisition), or beyond S
        with pytest.raises(ValueError, match="active.naive_pool"):
            ALConfig(per_cycle=10, pool_subset=500, naive_pool=naive_pool).check_naive()
    assert ALConfig.from_dict({"initial": 5, "strategies": ["random"], "enabled": True}).initial == 5


def test_schema_defaults_are_the_alconfig_defaults():
    """The workflow's `active:` defaults (config schema) and the library's ALConfig train the same network."""
    from pntk.config import validate_config

    cfg = validate_config({"models": [{"arch": "fcn", "widths": [8]}]}, check_files=False)
    assert ALConfig.from_dict(cfg["active"]) == ALConfig()


def test_uncertainty_baselines_pick_the_most_uncertain():
    class Fixed(torch.nn.Module):
        def __init__(self, logits):
            super().__init__()
            self.logits = logits

        def forward(self, x):
            return self.logits[x[:, 0].long()]

    logits = torch.tensor([[5.0, 0, 0], [0, 0, 0], [2.0, 2.0, -9], [3.0, 0, 0]])
    x = torch.arange(4.0)[:, None]
    assert set(acquire_uncertainty(Fixed(logits), x, 1, "entropy")) == {1}
    assert set(acquire_uncertainty(Fixed(logits), x, 1, "margin")) in ({1}, {2})


def test_mlmoc_and_naive_acquisition_agree_roughly():
    """On a tiny problem MLMOC's ranking correlates positively with brute-force fine-tuning."""
    torch.manual_seed(0)
    cfg = ALConfig(epochs=30, naive_epochs=30, lr=0.05, batch_size=16, weight_decay=0.0)  # not the defaults
    x = torch.randn(60, 1, 8, 8)
    y = (x.flatten(1)[:, :3].argmax(1))
    model = init_model(ModelSpec("fcn", 32, (1, 8, 8), 3, 3), 0)
    fit(model, x[:20], y[:20], cfg, cfg.epochs, 0)
    pick, info = acquire_mlmoc(model, x[:20], y[:20], x[20:], 5, kind="pntk", dtype="float64")
    naive = naive_scores(model, x[:20], y[:20], x[20:], cfg, 0)
    from scipy.stats import spearmanr

    assert len(set(pick.tolist())) == 5
    assert spearmanr(info["scores"].numpy(), naive.numpy()).statistic > 0.2


def test_tiny_loop_end_to_end(small_digits_store, tmp_path):
    cfg = ALConfig(initial=10, per_cycle=3, cycles=2, pool_subset=25, width=16, epochs=5, batch_size=16,
                   naive_pool=6, naive_epochs=2, block_check_entk=8)
    csvs = []
    for strategy in ("random", "margin", "mlmoc-pntk-seq", "mlmoc-entk", "mlmoc-pntk", "naive"):
        rows, meta = run_from_store(small_digits_store, strategy, 0, cfg)
        assert [r["n_labels"] for r in rows] == [10, 13, 16]
        flat = [i for c in meta["selected"] for i in c]
        assert len(set(flat)) == len(flat) == 16
        csv, js = tmp_path / f"{strategy}-s0.csv", tmp_path / f"{strategy}-s0.json"
        write_results(rows, meta, csv, js)
        df = pd.read_csv(csv)
        assert list(df.columns) == COLUMNS and np.isnan(df.acquisition_seconds[0])
        assert (df.acquisition_seconds[1:] >= 0).all() and df.test_acc.between(0, 1).all()
        assert df.candidates.tolist() == [0] + [6 if strategy == "naive" else 25] * 2
        rec = json.loads(js.read_text())
        assert rec["data_fingerprint"]
        check = rec.get("block_check")
        if strategy in ("mlmoc-entk", "mlmoc-pntk"):  # batch MLMOC: every cycle checked, not timed with it
            assert check["cycles"] == check["identical_cycles"] == 2 and check["candidates_per_cycle"] == [25, 25]
            assert check["checked_per_cycle"] == ([8, 8] if strategy == "mlmoc-entk" else [25, 25])
            assert check["max_rel_score_diff"] < 1e-9 and check["seconds"] > 0
        else:
            assert check is None  # sequential MLMOC and the baselines record none
        assert ("warm_cold" in rec) == (strategy == "mlmoc-pntk")
        csvs.append(csv)
    # every strategy of a seed starts from the same initial labels
    inits = {tuple(json.loads((tmp_path / f"{s}-s0.json").read_text())["selected"][0])
             for s in ("random", "margin", "naive")}
    assert len(inits) == 1
    from pntk.report.claims_active import active_extras
    from pntk.report.figures_active import render_all

    extras = active_extras(sorted(tmp_path.glob("*-s0.json")))
    assert extras["block"]["cycles"] == 4 and extras["warm_cold"]["seeds"] == [0] and extras["dataset"] == "digits"
    paths = render_all(csvs, tmp_path / "fig", formats=("png",), table=str(tmp_path / "active.csv"))
    assert sorted(p.name for p in paths) == ["active-accuracy.png", "active-time.png", "active.csv"]
    assert all(p.stat().st_size > 0 for p in paths)


# ------------------------------------------------------------------------------------------------
# retraining warm or cold, naive look-ahead


def _digits(store):
    from pntk.data import open_prepared

    d = open_prepared(store)
    tr, te = d.train_indices, d.test_indices
    return (torch.as_tensor(d.x[tr]), torch.as_tensor(d.y[tr]).long(), torch.as_tensor(d.x[te]),
            torch.as_tensor(d.y[te]).long(), ModelSpec("fcn", 16, tuple(d.in_shape), d.num_classes, 3))


def _params(m):
    return torch.cat([p.detach().reshape(-1) for p in m.parameters()])


def test_retrain_warm_continues_and_cold_restarts(small_digits_store):
    xp, yp, _, _, spec = _digits(small_digits_store)
    cfg = ALConfig(width=16, epochs=3, batch_size=16)
    first = retrain(None, spec, 0, xp[:10], yp[:10], cfg)  # the first cycle starts from the init either way
    assert torch.equal(_params(first), _params(fit(init_model(spec, 0), xp[:10], yp[:10], cfg, 3, 0)))
    before = _params(first).clone()
    warm = retrain(first, spec, 0, xp[:20], yp[:20], cfg)  # Algorithm 1: f_{L_t} trained on L_{t+1}
    assert warm is first and not torch.equal(_params(warm), before)
    expected = fit(init_model(spec, 0), xp[:10], yp[:10], cfg, 3, 0)
    assert torch.equal(_params(warm), _params(fit(expected, xp[:20], yp[:20], cfg, 3, 0)))
    cold = retrain(first, spec, 0, xp[:20], yp[:20], cfg, how="cold")
    assert cold is not first and torch.equal(_params(cold),
                                             _params(fit(init_model(spec, 0), xp[:20], yp[:20], cfg, 3, 0)))


@pytest.mark.parametrize("loop", ["warm", "cold"])
def test_warm_cold_record_trains_the_final_labelled_set_the_other_way(small_digits_store, loop, one_thread):
    """mlmoc-pntk's JSON records the final labelled set trained both ways: the loop's own accuracy, and the
    other way recomputed here by hand (cold: one fit from the init; warm: the chain over the cycles' sets)."""
    xp, yp, xt, yt, spec = _digits(small_digits_store)
    cfg = ALConfig(initial=10, per_cycle=3, cycles=2, pool_subset=25, width=16, epochs=4, batch_size=16,
                   retrain=loop, block_check=0)
    rows, meta = run_active_learning(xp.numpy(), yp.numpy(), xt.numpy(), yt.numpy(), "mlmoc-pntk", 0, cfg, 10)
    wc = meta["warm_cold"]
    assert wc["loop"] == loop and wc[loop] == rows[-1]["test_acc"] and wc["labels"] == 16
    sets = np.cumsum([len(c) for c in meta["selected"]])
    order = [i for c in meta["selected"] for i in c]
    model = None
    for n in (sets[-1:] if loop == "warm" else sets):  # the other way
        idx = torch.as_tensor(order[:n])
        model = retrain(model, spec, 0, xp[idx], yp[idx], cfg, how="cold" if loop == "warm" else "warm")
    from pntk.train import evaluate

    other = "cold" if loop == "warm" else "warm"
    assert wc[other] == evaluate(model, xt, yt, cfg.loss)[1]
    assert "warm_cold" not in run_active_learning(xp.numpy(), yp.numpy(), xt.numpy(), yt.numpy(), "random", 0,
                                                  cfg, 10)[1]


def test_naive_scores_candidates_over_all_of_u(small_digits_store):
    """Naive look-ahead scores its first n candidates by the output change over all of U, each from a copy of
    f_L fine-tuned naive_epochs on L ∪ {(x', argmax f_L(x'))}; naive_epochs None does what the loop's next
    cycle does (warm: fine-tune `epochs`)."""
    xp, yp, _, _, spec = _digits(small_digits_store)
    cfg = ALConfig(width=16, epochs=3, batch_size=16, naive_epochs=2)
    f_l = fit(init_model(spec, 0), xp[:10], yp[:10], cfg, 3, 0)
    before = _params(f_l).clone()
    xu = xp[10:30]
    got = naive_scores(f_l, xp[:10], yp[:10], xu, cfg, 0, spec, candidates=4)
    assert got.shape == (4,) and torch.equal(_params(f_l), before)  # f_L itself is not trained
    import copy

    for j in (0, 3):
        y_j = outputs(f_l, xu[j:j + 1]).argmax(1)
        m = fit(copy.deepcopy(f_l), torch.cat([xp[:10], xu[j:j + 1]]), torch.cat([yp[:10], y_j]), cfg, 2, 0)
        assert float(got[j]) == pytest.approx(float((outputs(m, xu) - outputs(f_l, xu)).norm(dim=1).sum()), rel=1e-6)
    import dataclasses

    same = naive_scores(f_l, xp[:10], yp[:10], xu, dataclasses.replace(cfg, naive_epochs=None), 0, spec, 2)
    assert torch.equal(same, naive_scores(f_l, xp[:10], yp[:10], xu, dataclasses.replace(cfg, naive_epochs=3), 0,
                                          spec, 2))
    with pytest.raises(ValueError, match="candidates"):
        naive_scores(f_l, xp[:10], yp[:10], xu, cfg, 0, spec, candidates=21)


@pytest.mark.parametrize("strategy, budget", [("mlmoc-pntk", 500), ("mlmoc-entk", 500), ("mlmoc-entk", 4)])
def test_loop_block_check_on_digits_in_float64(small_digits_store, strategy, budget, one_thread):
    """The loop's record on real digits with a float64 kernel: in every cycle the block update chose exactly the
    candidates the direct solves rank first (all of S, or the best 4 with the 3 chosen among them)."""
    xp, yp, xt, yt, _ = _digits(small_digits_store)
    cfg = ALConfig(initial=10, per_cycle=3, cycles=2, pool_subset=20, width=16, epochs=5, batch_size=16,
                   kernel_dtype="float64", block_check=budget, block_check_entk=budget)
    _, meta = run_active_learning(xp.numpy(), yp.numpy(), xt.numpy(), yt.numpy(), strategy, 0, cfg, 10)
    check = meta["block_check"]
    assert check["identical_cycles"] == check["exact_cycles"] == check["cycles"] == 2 and check["tie_swaps"] == 0
    assert check["checked_per_cycle"] == [min(budget, 20)] * 2 and check["max_rel_score_diff"] < 1e-12
    assert check["subset"] == ("every candidate" if budget >= 20 else "the block update's top candidates by score")


def test_naive_strategy_refuses_to_be_random_acquisition(small_digits_store):
    xp, yp, xt, yt, _ = _digits(small_digits_store)
    cfg = ALConfig(initial=10, per_cycle=5, cycles=1, pool_subset=20, width=16, epochs=1, naive_pool=5)
    with pytest.raises(ValueError, match="active.naive_pool"):
        run_active_learning(xp.numpy(), yp.numpy(), xt.numpy(), yt.numpy(), "naive", 0, cfg, 10)
def test_flat_entk_is_taken_as_it_is(real_kernels):
    """The eNTK handed over flat (empirical_kernel(..., layout="flat"), what acquire_mlmoc asks for) gives the
    same look-ahead as the (P, P, O, O) one, bit for bit; a flat kernel of the wrong size is refused."""
    k, f0, y = real_kernels["entk"], real_kernels["f0"], real_kernels["y"]
    p, o = k.shape[0], k.shape[2]
    flat = k.permute(0, 2, 1, 3).reshape(p * o, p * o)
    a = LookAhead(k, f0, onehot(y[:8]), 8, ridge=1e-3)
    b = LookAhead(flat, f0, onehot(y[:8]), 8, ridge=1e-3)
    assert b.q == o and torch.equal(a.scores(), b.scores()) and torch.equal(a.sigma, b.sigma)
    with pytest.raises(ValueError, match="expected P = n_l"):
        LookAhead(flat[:-1, :-1], f0, onehot(y[:8]), 8)

"""Block updates against full solves (thesis Fig 2.1a, "NTK" vs "NTK w/o Block"): does MLMOC's block update
(Eq. 2.12, :class:`pntk.active.lookahead.LookAhead`) acquire the same candidates as solving each candidate's
enlarged system Θ(L⁺, L⁺) directly (Eq. 2.11, :func:`pntk.active.lookahead.direct_scores`)?

Per acquisition (batch MLMOC, one per cycle) the candidates checked are all of S when the budget allows, else
the block update's best `budget` by score: the k it chose and the runners-up it ranked next, where a
disagreement would change the acquisition. The two chosen sets are compared as sets (the order within a
batch does not change what is labelled). Ties: two candidates whose scores agree to rounding may swap places
between two exact computations, so a difference counts as a tie swap, not a different acquisition, when every
candidate in the symmetric difference has a direct score within ``RTOL`` × max |score| of the k-th best direct
score (the boundary). A cycle is "identical" when the sets are equal or differ by tie swaps only; the record
keeps exact equality, tie swaps and the largest score difference apart so the report can say which.
"""
from __future__ import annotations

import numpy as np
import torch

from .lookahead import direct_scores

# Both ways compute the same float64 quantity from the same kernel; their scores differ by rounding
# (≈ 1e-15–1e-12 relative on digits, κ(A) up to ~1e5 with the default ridge). 1e-9 leaves three orders of
# magnitude above that and is still far below any real score gap between distinct candidates.
RTOL = 1e-9


def compare(block: np.ndarray, direct: np.ndarray, checked: np.ndarray, chosen: np.ndarray, k: int,
            rtol: float = RTOL) -> dict:
    """One acquisition: block scores (|S|,), direct scores of the `checked` positions (same order), the
    block update's `chosen` k positions. Returns {exact, identical, tie_swaps, max_rel_diff, checked}."""
    block, direct = np.asarray(block, float), np.asarray(direct, float)
    checked, chosen = np.asarray(checked, int), np.asarray(chosen, int)
    if not set(chosen.tolist()) <= set(checked.tolist()):
        raise ValueError("block check: the chosen candidates must be among those checked")
    scale = float(np.abs(direct).max()) or 1.0
    order = np.argsort(-direct, kind="stable")
    mine = set(checked[order[:k]].tolist())  # the direct solve's top k (positions into S)
    theirs = set(chosen.tolist())
    boundary = direct[order[k - 1]]  # the k-th best direct score
    by_pos = dict(zip(checked.tolist(), direct.tolist()))
    differ = sorted(mine ^ theirs)
    tied = all(abs(by_pos[j] - boundary) <= rtol * scale for j in differ)
    diff = np.abs(block[checked] - direct)
    return {"exact": not differ, "identical": tied, "tie_swaps": len(differ) // 2 if tied else 0,
            "max_rel_diff": float(diff.max() / scale), "checked": int(len(checked))}


def check_acquisition(kernel, q: int, f0, y_l, n_l: int, block_scores, chosen, k: int, *, lam: float,
                      reference: str, budget: int, rtol: float = RTOL) -> dict:
    """Direct-solve MLMOC of the candidates to check (all of S if budget ≥ |S|, else the block update's top
    `budget`) with the block update's pseudo-labels (argmax f_L), compared by :func:`compare`. kernel: flat
    (P·q, P·q) as LookAhead.k, P = [L; S]; f0 (P, O) f_L; y_l (|L|,) class labels of L."""
    block = block_scores.detach().cpu().numpy().astype(float)
    n_s = len(block)
    if budget < k:
        raise ValueError(f"block check: {budget} candidates cannot contain the {k} chosen (active.block_check)")
    chosen = np.asarray(chosen, int)
    picked = set(chosen.tolist())
    rest = [j for j in np.argsort(-block, kind="stable") if j not in picked]
    checked = np.arange(n_s) if budget >= n_s else np.concatenate([chosen, rest[:budget - len(chosen)]]).astype(int)
    f0 = torch.as_tensor(f0, dtype=torch.float64)
    labels = f0[n_l:].argmax(1)  # y' = argmax f_L(x'), as LookAhead.pseudo_labels
    y_onehot = torch.nn.functional.one_hot(torch.as_tensor(y_l).long().cpu(), f0.shape[1]).to(f0)
    direct = direct_scores(kernel, f0, y_onehot, n_l, labels, torch.as_tensor(checked), lam=lam,
                           reference=reference, q=q)
    return compare(block, direct.cpu().numpy(), checked, chosen, k, rtol)


def summarise(records: list[dict], n_candidates: list[int], rtol: float = RTOL) -> dict:
    """The per-run JSON's "block_check" from one :func:`compare` record per acquiring cycle (what
    pntk.report.claims_active.active_extras reads: identical_cycles, cycles; the rest says how)."""
    checked = [r["checked"] for r in records]
    every = all(c == n for c, n in zip(checked, n_candidates))
    return {"identical_cycles": sum(r["identical"] for r in records), "cycles": len(records),
            "exact_cycles": sum(r["exact"] for r in records), "tie_swaps": sum(r["tie_swaps"] for r in records),
            "max_rel_score_diff": max((r["max_rel_diff"] for r in records), default=float("nan")),
            "checked_per_cycle": checked, "candidates_per_cycle": list(n_candidates),
            "subset": "every candidate" if every else "the block update's top candidates by score",
            "rtol": rtol,
            "rule": "identical: the same chosen set, or differences only among candidates whose direct scores "
                    "are within rtol × max |score| of the k-th best (ties)"}

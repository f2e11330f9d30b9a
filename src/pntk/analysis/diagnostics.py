"""Statistics comparing the empirical NTK (eNTK) with the pseudo-NTK (pNTK).

Pure numpy/scipy; every function takes arrays (or anything ``np.asarray`` accepts, e.g. CPU
tensors) and returns plain Python floats in a dict whose keys are the *statistic names* used in
the tidy tables (``results/tables/*.csv``, columns :data:`TIDY_COLUMNS`).

Conventions
-----------
eNTK ``entk``: shape (N, N, O, O), ``entk[n, m, a, b] = ∇f_a(x_n) · ∇f_b(x_m)``. As an NO×NO
matrix the row index is ``n*O + a`` (:func:`entk_matrix`).
pNTK ``pntk``: shape (N, N), ``pntk[n, m] = (1/O) Σ_ab entk[n, m, a, b]`` (NTK of Σ_a f_a/√O).
``Θ̂⊗I_O`` in the flattening above is ``pntk[n, m] · δ_ab`` (:func:`kron_identity`).
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

TIDY_COLUMNS = ("dataset", "arch", "width", "seed", "epoch", "statistic", "value")


# ----------------------------------------------------------------------------- helpers
def _entk(entk: Any) -> np.ndarray:
    k = np.asarray(entk, dtype=np.float64)
    if k.ndim != 4 or k.shape[0] != k.shape[1] or k.shape[2] != k.shape[3]:
        raise ValueError(f"entk: expected shape (N, N, O, O), got {k.shape}")
    return k


def _pntk(pntk: Any, n: int | None = None) -> np.ndarray:
    k = np.asarray(pntk, dtype=np.float64)
    if k.ndim != 2 or k.shape[0] != k.shape[1]:
        raise ValueError(f"pntk: expected square shape (N, N), got {k.shape}")
    if n is not None and k.shape[0] != n:
        raise ValueError(f"pntk: expected N={n} to match the eNTK, got shape {k.shape}")
    return k


def entk_matrix(entk: Any) -> np.ndarray:
    """(N, N, O, O) eNTK → (N·O, N·O) matrix with row index n*O + a."""
    k = _entk(entk)
    n, _, o, _ = k.shape
    return k.transpose(0, 2, 1, 3).reshape(n * o, n * o)  # (N, O, N, O) → (NO, NO)


def kron_identity(pntk: Any, num_outputs: int) -> np.ndarray:
    """Θ̂ ⊗ I_O as an (N, N, O, O) array: ``out[n, m, a, b] = pntk[n, m] · δ_ab``."""
    k = _pntk(pntk)
    eye = np.eye(num_outputs)
    return np.einsum("nm,ab->nmab", k, eye)  # (N, N, O, O)


def _rel(a: float, b: float) -> float:
    """|a − b| / |a|; nan when a is 0 or either value is not finite."""
    if not (np.isfinite(a) and np.isfinite(b)) or a == 0:
        return float("nan")
    return float(abs(a - b) / abs(a))


# ----------------------------------------------------------------------------- Fig 2
def diagonal_ratio(entk: Any) -> dict[str, float]:
    """Off- versus on-diagonal mass of the O×O blocks Θ_nm = entk[n, m] (paper Fig 2).

    With D_nm = diag(Θ_nm) and R_nm = Θ_nm − diag(D_nm) (the off-diagonal entries):

    ``offdiag_ratio``            ‖R‖_F / ‖D‖_F over all pairs (n, m) jointly, i.e.
                                 sqrt(Σ_nm ‖R_nm‖²_F / Σ_nm ‖D_nm‖²_F)     ← headline statistic
    ``offdiag_ratio_same_input`` same, restricted to the N blocks with n = m
    ``offdiag_ratio_pairwise``   mean over the N² pairs of ‖R_nm‖_F / ‖D_nm‖_F
                                 (pairs with D_nm = 0 are skipped; noisy for n ≠ m at small width)
    ``offdiag_mean_abs_ratio``   mean |off-diagonal entry| / mean |diagonal entry| over all blocks
    ``offdiag_block_ratio``      mean over the N² blocks of |Σ_a≠b Θ_nm,ab| / the same mean of |Σ_a Θ_nm,aa|:
                                 the thesis' Fig 3.2 ("magnitude of sum of on-diagonal and off-diagonal
                                 elements", "the average of 1000×1000 kernels each having a shape of 10×10")

    All are 0 for Θ = K ⊗ I_O and shrink as the readout widens (Theorem 1). For O = 1 there are no
    off-diagonal entries and every ratio is 0.
    """
    k = _entk(entk)
    n, _, o, _ = k.shape
    eye = np.eye(o, dtype=bool)
    diag = k[..., eye]  # (N, N, O)
    off = k[..., ~eye]  # (N, N, O·(O−1))
    d2 = (diag**2).sum(-1)  # (N, N)
    r2 = (off**2).sum(-1)  # (N, N)
    same = np.arange(n)

    def ratio(num: float, den: float) -> float:
        return float(np.sqrt(num / den)) if den > 0 else float("nan")

    nz = d2 > 0
    pairwise = float(np.mean(np.sqrt(r2[nz] / d2[nz]))) if nz.any() else float("nan")
    mean_abs_off = float(np.abs(off).mean()) if off.size else 0.0
    mean_abs_diag = float(np.abs(diag).mean())
    sum_off = float(np.abs(off.sum(-1)).mean()) if off.size else 0.0  # mean over blocks of |Σ_a≠b Θ_ab|
    sum_diag = float(np.abs(diag.sum(-1)).mean())  # mean over blocks of |Σ_a Θ_aa|
    return {
        "offdiag_ratio": ratio(r2.sum(), d2.sum()),
        "offdiag_ratio_same_input": ratio(r2[same, same].sum(), d2[same, same].sum()),
        "offdiag_ratio_pairwise": pairwise,
        "offdiag_mean_abs_ratio": mean_abs_off / mean_abs_diag if mean_abs_diag > 0 else float("nan"),
        "offdiag_block_ratio": sum_off / sum_diag if sum_diag > 0 else float("nan"),
    }


# ----------------------------------------------------------------------------- Fig 3
def frobenius_distance(entk: Any, pntk: Any) -> dict[str, float]:
    """Relative Frobenius distance of the eNTK from Θ̂ ⊗ I_O (paper Fig 3, Theorem 1).

    ``frobenius_distance``      = ‖Θ − Θ̂⊗I_O‖_F / ‖Θ‖_F (Theorem 1's quantity), norms over all N²O² entries
                                  of the (N, N, O, O) arrays (equivalently of the NO×NO matrices)
    ``frobenius_norm_rel_diff`` = |‖Θ‖_F − ‖Θ̂⊗I_O‖_F| / ‖Θ‖_F, the Fig 3 caption's "relative difference in
                                  ‖Θ‖_F and ‖Θ̂ ⊗ I_O‖_F" (never larger than the distance)
    ``first_logit_fro``, ``pntk_fro``: ‖Θ_11‖_F (the first logit's kernel, entk[..., 0, 0]) and ‖Θ̂‖_F over
                                  D × D, whose distributions agree at initialisation (paper §3)
    """
    k = _entk(entk)
    p = _pntk(pntk, k.shape[0])
    diff = k - kron_identity(p, k.shape[2])
    den = float(np.linalg.norm(k))
    kron_norm = float(np.linalg.norm(p)) * np.sqrt(k.shape[2])  # ‖Θ̂⊗I_O‖_F = √O ‖Θ̂‖_F
    return {"frobenius_distance": float(np.linalg.norm(diff)) / den if den > 0 else float("nan"),
            "frobenius_norm_rel_diff": abs(den - kron_norm) / den if den > 0 else float("nan"),
            "first_logit_fro": float(np.linalg.norm(k[:, :, 0, 0])), "pntk_fro": float(np.linalg.norm(p))}


# ----------------------------------------------------------------------------- Figs 4–6
def spectrum_differences(entk: Any, pntk: Any) -> dict[str, float]:
    """Relative differences of extreme eigenvalues and condition number (paper Figs 4–6).

    Eigenvalues (``numpy.linalg.eigvalsh`` of the symmetrised matrices (A + Aᵀ)/2) of Θ(D, D) as an
    NO×NO matrix and of Θ̂(D, D) (N×N; Θ̂⊗I_O has the same eigenvalues, each with multiplicity O).
    cond = λ_max / λ_min, and +inf when λ_min ≤ 0 (numerically singular kernel).

    Keys: ``lambda_max_rel_diff`` = |λ_max(Θ) − λ_max(Θ̂)| / |λ_max(Θ)|, likewise
    ``lambda_min_rel_diff`` and ``cond_rel_diff`` (nan when a value is not finite), plus the raw
    values ``lambda_max_entk``, ``lambda_max_pntk``, ``lambda_min_entk``, ``lambda_min_pntk``,
    ``cond_entk``, ``cond_pntk``.
    """
    k = _entk(entk)
    p = _pntk(pntk, k.shape[0])
    m = entk_matrix(k)
    ev_e = np.linalg.eigvalsh((m + m.T) / 2)  # ascending
    ev_p = np.linalg.eigvalsh((p + p.T) / 2)

    def cond(ev: np.ndarray) -> float:
        return float(ev[-1] / ev[0]) if ev[0] > 0 else float("inf")

    out = {
        "lambda_max_entk": float(ev_e[-1]), "lambda_max_pntk": float(ev_p[-1]),
        "lambda_min_entk": float(ev_e[0]), "lambda_min_pntk": float(ev_p[0]),
        "cond_entk": cond(ev_e), "cond_pntk": cond(ev_p),
    }
    for s in ("lambda_max", "lambda_min", "cond"):
        out[f"{s}_rel_diff"] = _rel(out[f"{s}_entk"], out[f"{s}_pntk"])
    return out


def kernel_statistics(entk: Any, pntk: Any) -> dict[str, float]:
    """Every statistic of the kernels on D alone (Figs 2–5): block structure, distance and norms, spectra — what
    a checkpoint's diagnostics and a network at initialisation only (pntk.analysis.at_init) both compute."""
    stats = {}
    stats.update(diagonal_ratio(entk))
    stats.update(frobenius_distance(entk, pntk))
    stats.update(spectrum_differences(entk, pntk))
    return stats


# ----------------------------------------------------------------------------- Figs 7–8
def prediction_gaps(pred_entk: Any, pred_pntk: Any, labels: Any) -> dict[str, float]:
    """Gap between kernel-regression predictions with the eNTK and with the pNTK (Figs 7–8).

    ``pred_entk`` f_lin and ``pred_pntk`` f̂_lin: (M, O) outputs on M test points; ``labels``: (M,)
    integer classes or (M, O) one-hot/targets (argmax taken).

    ``pred_rel_diff``  = ‖f_lin − f̂_lin‖_F / ‖f_lin‖_F
    ``acc_entk``, ``acc_pntk``: fraction of argmax predictions equal to the label
    ``acc_diff``       = acc_entk − acc_pntk (signed; positive = eNTK more accurate)
    ``acc_abs_diff``   = |acc_diff|
    ``argmax_agreement``: fraction of points where both predict the same class
    ``pred_rms_diff``  = sqrt(mean_x ‖f_lin(x) − f̂_lin(x)‖²): Theorem 6's per-point difference, as an RMS over X
    ``only_entk_correct``, ``only_pntk_correct``: test points only one of the two got right (McNemar's counts)
    """
    f = np.asarray(pred_entk, dtype=np.float64)
    g = np.asarray(pred_pntk, dtype=np.float64)
    if f.ndim != 2 or f.shape != g.shape:
        raise ValueError(f"prediction_gaps: expected two (M, O) arrays of equal shape, got {f.shape} and {g.shape}")
    y = np.asarray(labels)
    if y.ndim == 2:
        y = y.argmax(1)
    if y.shape != (f.shape[0],):
        raise ValueError(f"prediction_gaps: labels must be (M,) or (M, O) with M={f.shape[0]}, got {np.shape(labels)}")
    den = float(np.linalg.norm(f))
    pe, pp = f.argmax(1), g.argmax(1)
    acc_e, acc_p = float((pe == y).mean()), float((pp == y).mean())
    return {
        "pred_rel_diff": float(np.linalg.norm(f - g)) / den if den > 0 else float("nan"),
        "acc_entk": acc_e, "acc_pntk": acc_p,
        "acc_diff": acc_e - acc_p, "acc_abs_diff": abs(acc_e - acc_p),
        "argmax_agreement": float((pe == pp).mean()),
        "pred_rms_diff": float(np.sqrt(((f - g) ** 2).sum(1).mean())),
        "only_entk_correct": float(((pe == y) & (pp != y)).sum()),
        "only_pntk_correct": float(((pp == y) & (pe != y)).sum()),
    }


# ----------------------------------------------------------------------------- tidy tables
def _flatten(stats: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in stats.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, f"{name}."))
        else:
            out[name] = v
    return out


def tidy_rows(meta: Mapping[str, Any], stats: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per statistic: columns (dataset, arch, width, seed, epoch, statistic, value).

    ``meta`` must hold dataset, arch, width, seed, epoch; any further keys are copied to every row
    as extra columns (after the standard ones). ``stats`` maps statistic name → scalar; nested dicts
    are flattened with "." (``{"spec": {"cond": 1}}`` → statistic ``spec.cond``). Values become
    floats (numpy/torch scalars accepted); non-scalar values raise ValueError.
    """
    missing = [c for c in TIDY_COLUMNS[:5] if c not in meta]
    if missing:
        raise ValueError(f"tidy_rows: meta is missing key(s) {missing}; expected {list(TIDY_COLUMNS[:5])}")
    clash = [c for c in ("statistic", "value") if c in meta]
    if clash:
        raise ValueError(f"tidy_rows: meta may not contain reserved key(s) {clash}")
    base = {c: meta[c] for c in TIDY_COLUMNS[:5]}
    base["width"], base["seed"], base["epoch"] = int(meta["width"]), int(meta["seed"]), int(meta["epoch"])
    extra = {k: v for k, v in meta.items() if k not in TIDY_COLUMNS}
    rows = []
    for name, val in _flatten(stats).items():
        arr = np.asarray(val.detach().cpu() if hasattr(val, "detach") else val)
        if arr.ndim != 0 or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise ValueError(f"tidy_rows: statistic {name!r} must be a scalar number, got {val!r}")
        rows.append({**base, "statistic": name, "value": float(arr), **extra})
    return rows

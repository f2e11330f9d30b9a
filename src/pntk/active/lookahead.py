"""Look-ahead active learning with neural tangent kernels: the linear algebra (Mohamadi 2023, Ch. 2).

The network f_L trained on the labelled set L is "retrained" on L ∪ {(x', y')} by its linearisation
around θ_L, with f0 = f_L as prior mean (kernel Θ of the trained network, BatchNorm frozen):

    f_lin+(x) = f0(x) + [Θ(x,L), Θ(x,x')] M⁻¹ [Y_L − f0(L); y' − f0(x')],   M = [[A, b], [bᵀ, c]]
    A = Θ(L,L) + λI,  b = Θ(L,x'),  c = Θ(x',x') + λI,  s = c − bᵀA⁻¹b    (Schur complement)
    M⁻¹ = [[A⁻¹ + A⁻¹b s⁻¹ bᵀA⁻¹, −A⁻¹b s⁻¹], [−s⁻¹bᵀA⁻¹, s⁻¹]]                 (block inverse)

Multiplying out, with r = Y_L − f0(L), k(x) = Θ(L,x) and f_lin(x) = f0(x) + k(x)ᵀA⁻¹r (the same
linearised model trained on L alone):

    f_lin+(x) = f0(x) + kᵀA⁻¹r + kᵀA⁻¹b s⁻¹bᵀA⁻¹r − kᵀA⁻¹b s⁻¹(y' − f0(x')) − Θ(x,x') s⁻¹bᵀA⁻¹r
                + Θ(x,x') s⁻¹(y' − f0(x'))
              = f_lin(x) + (Θ(x,x') − Θ(x,L)A⁻¹b) s⁻¹ (y' − f0(x') − bᵀA⁻¹r)
              = f_lin(x) + Σ(x,x') s⁻¹ (y' − f_lin(x')),                                    (★)

Σ(x,x') = Θ(x,x') − Θ(x,L)A⁻¹Θ(L,x') is the posterior kernel given L, s = Σ(x',x') + λI. So one
factorisation of A per cycle gives Σ on the candidate set S (one (|S|q)² matrix) and every candidate's
look-ahead model is a rank-q correction of f_lin: no per-candidate solve.

What f_lin is: f_lin(x) − f_L(x) = Θ(x,L)A⁻¹(Y_L − f_L(L)) =: d0(x). It is 0 only when the network
interpolates L (f_L(L) = Y_L); otherwise it is the change "retraining on L alone" would make, the same
for every candidate. MLMOC (thesis Eq. 2.13) measures from the network,

    MLMOC(x') = Σ_{x∈U} ‖f_L(x) − f_lin+(x)‖₂ = Σ_x ‖d0(x) + Σ(x,x') s⁻¹ (y' − f_lin(x'))‖₂,

(reference="model"); reference="flin" drops d0 and scores the change caused by x' alone. U is
estimated on the candidate subset S itself (a uniform sample of the pool; the scale |U|/|S| does not
change the ranking). y' = one-hot argmax of the current model (f_L; in sequential mode f_L plus the
corrections of the points labelled so far).

Kernels: scalar (N1, N2) — pNTK, first-logit, trace — used one-vs-rest: q = 1, the same scalar
correction Σ s⁻¹ for all O outputs (ρ has O columns); eNTK (N1, N2, O, O) flattened to (N1·O, N2·O)
with row n*O+a: q = O, s and Σ(x,x') are O×O blocks and ρ is one column of length O. The eNTK is best
handed over already flat (``empirical_kernel(..., layout="flat")``, how the engine computes it): then it
is only converted to float64, not transposed.

Sequential mode: after a query, (x*, y_true) enters L by the same block update of A⁻¹, and Σ, f_lin
by its posterior form Σ ← Σ − Σ(·,x*) s*⁻¹ Σ(x*,·), f_lin ← f_lin + Σ(·,x*) s*⁻¹ (y_true − f_lin(x*)).
"""
from __future__ import annotations

import torch
from torch import Tensor

from .settings import REFERENCES

__all__ = ["flat_kernel", "block_inverse_extend", "LookAhead", "mlmoc_direct", "direct_scores", "REFERENCES"]



def flat_kernel(k: Tensor, points: int | None = None, dtype: torch.dtype | None = torch.float64) -> tuple[Tensor, int]:
    """(N1, N2) → itself, q = 1; eNTK (N1, N2, O, O) → (N1·O, N2·O) with row n*O+a, q = O; in ``dtype`` (None: a
    2-D kernel as it is). A 2-D kernel over ``points`` samples with ``points·q`` rows is an eNTK already flat."""
    k = torch.as_tensor(k)
    k = k.to(torch.float64) if k.ndim != 2 or dtype is not None else k
    if k.ndim == 2:  # q = 1 unless the rows are a multiple of the points (the caller checks the sizes)
        flat = points and k.shape[0] > points and k.shape[0] % points == 0
        return k, k.shape[0] // points if flat else 1
    if k.ndim != 4 or k.shape[2] != k.shape[3]:
        raise ValueError(f"kernel: shape {tuple(k.shape)}, expected (N1, N2) or (N1, N2, O, O)")
    n1, n2, o, _ = k.shape
    return k.permute(0, 2, 1, 3).reshape(n1 * o, n2 * o), o  # (N1·O, N2·O)


def block_inverse_extend(a_inv: Tensor, b: Tensor, c: Tensor) -> Tensor:
    """Inverse of [[A, b], [bᵀ, c]] from A⁻¹ (m, m), b (m, q), c (q, q): shape (m+q, m+q).

    Uses the Schur complement s = c − bᵀA⁻¹b (q, q); costs O(m²q), no factorisation of the big block."""
    u = a_inv @ b  # (m, q)  A⁻¹b
    s = c - b.T @ u  # (q, q)  Schur complement
    s_inv = torch.linalg.inv(0.5 * (s + s.T))  # (q, q)
    tr = -u @ s_inv  # (m, q)  −A⁻¹b s⁻¹
    tl = a_inv - tr @ u.T  # (m, m)  A⁻¹ + A⁻¹b s⁻¹ bᵀA⁻¹
    return torch.cat([torch.cat([tl, tr], 1), torch.cat([tr.T, s_inv], 1)], 0)


def _cholesky(a: Tensor) -> tuple[Tensor, float]:
    """Lower Cholesky factor of a + δI and the jitter δ (0, or 1e-10 … 1e-4 × mean diagonal if needed)."""
    chol, info = torch.linalg.cholesky_ex(a)
    scale, jitter, delta = float(a.diagonal().mean().abs()) or 1.0, 1e-10, 0.0
    eye = torch.eye(len(a), dtype=a.dtype, device=a.device)
    while int(info) != 0:
        if jitter > 1e-4:
            raise ValueError("Θ(L,L) + ridge is not positive definite even with jitter 1e-4 × mean diagonal")
        delta = jitter * scale
        chol, info = torch.linalg.cholesky_ex(a + delta * eye)
        jitter *= 10
    return chol, delta


def _posterior(k_ss: Tensor, w: Tensor, block: int = 1024, tile: int = 256) -> Tensor:
    """Σ = Θ(S,S) − WᵀW (n, n) float64 for W (m, n) and Θ(S,S) in any float dtype, exactly symmetric: the lower
    triangle by column blocks (half the copy and half the GEMM, the largest costs of an eNTK acquisition), the
    upper one mirrored from it in ``tile``² tiles (whole block columns transpose 5× slower, measured)."""
    n = k_ss.shape[0]
    sigma = torch.empty(n, n, dtype=torch.float64, device=w.device)
    for c0 in range(0, n, block):
        c1 = min(c0 + block, n)
        low = sigma[c0:, c0:c1]  # (n − c0, c1 − c0): the block column's lower part
        low.copy_(k_ss[c0:, c0:c1])  # converted here: the float32 kernel is never copied whole
        low.addmm_(w[:, c0:].T, w[:, c0:c1], alpha=-1)
    for c0 in range(0, n, tile):
        c1 = min(c0 + tile, n)
        d = sigma[c0:c1, c0:c1]
        d.copy_(d.tril() + d.tril(-1).T)  # diagonal tile from its lower triangle
        for r0 in range(c1, n, tile):
            sigma[c0:c1, r0:r0 + tile] = sigma[r0:r0 + tile, c0:c1].T
    return sigma


class LookAhead:
    """Linearised look-ahead on a labelled set L and candidate set S (which also stands in for U).

    k:   kernel over the points P = [L; S] in that order, (P, P) scalar or (P, P, O, O) eNTK
    f0:  (P, O) network outputs f_L on P (the prior mean)
    y_l: (n_l, O) targets of L (one-hot for classification)
    ridge: λ = ridge × mean diagonal of Θ(L,L), added to the diagonal of every system
    reference: "model" (Σ_x ‖f_L − f_lin+‖, Eq. 2.13) or "flin" (Σ_x ‖f_lin − f_lin+‖)
    """

    def __init__(self, k: Tensor, f0: Tensor, y_l: Tensor, n_l: int, *, ridge: float = 1e-3,
                 reference: str = "model"):
        if reference not in REFERENCES:
            raise ValueError(f"active.reference: {reference!r}, expected one of {REFERENCES}")
        f0 = torch.as_tensor(f0, dtype=torch.float64)
        kf, q = flat_kernel(k, points=f0.shape[0], dtype=None)  # a flat kernel stays as computed (float32 too)
        f0 = f0.to(kf.device)
        y_l = torch.as_tensor(y_l, dtype=torch.float64, device=kf.device)
        p, o = f0.shape
        if kf.shape[0] != p * q or o % q or y_l.shape != (n_l, o) or not 0 < n_l < p:
            raise ValueError(f"LookAhead: kernel {tuple(k.shape)}, f0 {tuple(f0.shape)}, y_l "
                             f"{tuple(y_l.shape)}, n_l {n_l}: expected P = n_l + |S| points, 0 < n_l < P")
        self.k, self.q, self.o, self.c = kf, q, o, o // q
        self.n_s = p - n_l
        m = n_l * q
        eye = torch.eye(m, dtype=torch.float64, device=kf.device)
        k_l = kf[:m].to(torch.float64)  # (m, P) Θ(L, P): the only rows needed in float64 besides Σ
        self.lam = float(ridge) * float(k_l[:, :m].diagonal().mean())
        chol, jitter = _cholesky(k_l[:, :m] + self.lam * eye)
        self.lam += jitter  # the jitter becomes part of the ridge of every later system
        self.a_inv = torch.cholesky_inverse(chol)  # (m, m)  A⁻¹
        self.lab_rows = torch.arange(m, device=kf.device)  # flat rows of L (grows in sequential mode)
        self.resid = (y_l - f0[:n_l]).reshape(m, self.c)  # (n_l·q, c)  r = Y_L − f0(L)
        w = torch.linalg.solve_triangular(chol, k_l[:, m:], upper=False)  # (m, |S|q)  C⁻¹Θ(L,S)
        self.sigma = _posterior(kf[m:, m:], w)  # (|S|q, |S|q)  posterior kernel Σ(S,S)
        alpha = torch.cholesky_solve(self.resid, chol)  # (m, c)  A⁻¹r
        self.f0_s = f0[n_l:]  # (|S|, O)
        self.f_lin = self.f0_s + (k_l[:, m:].T @ alpha).reshape(self.n_s, o)  # (|S|, O); Θ(S,L) = Θ(L,S)ᵀ
        d0 = self.f_lin - self.f0_s  # f_lin − f_L on S
        self.offset = d0 if reference == "model" else torch.zeros_like(d0)  # (|S|, O)
        self.model_out = self.f0_s.clone()  # current model: f_L + corrections of sequential adds
        self.active = torch.ones(self.n_s, dtype=torch.bool, device=kf.device)

    # ---- per-candidate blocks -----------------------------------------------------------------
    def schur_blocks(self) -> Tensor:
        """(|S|, q, q) s_j = Σ(x_j, x_j) + λI."""
        s4 = self.sigma.reshape(self.n_s, self.q, self.n_s, self.q)
        idx = torch.arange(self.n_s, device=self.sigma.device)
        eye = torch.eye(self.q, dtype=torch.float64, device=self.sigma.device)
        return s4[idx, :, idx, :] + self.lam * eye  # (|S|, q, q)

    def pseudo_labels(self) -> Tensor:
        """(|S|,) argmax of the current model at the candidates."""
        return self.model_out.argmax(1)

    def _onehot(self, labels: Tensor) -> Tensor:
        return torch.nn.functional.one_hot(torch.as_tensor(labels, device=self.f_lin.device).long(),
                                           self.o).to(torch.float64)  # (|S|, O)

    def scores(self, labels: Tensor | None = None, *, chunk_bytes: int = 1 << 27) -> Tensor:
        """(|S|,) MLMOC of every candidate (−inf for labelled ones), summed over active S.

        labels: (|S|,) pseudo-labels y' (default: :meth:`pseudo_labels`). Vectorised over candidates
        in chunks of ≤ chunk_bytes of float64 (|S|, chunk, O) corrections."""
        labels = self.pseudo_labels() if labels is None else labels
        rho = (self._onehot(labels) - self.f_lin).reshape(self.n_s, self.q, self.c)  # (|S|, q, c)
        z = torch.linalg.solve(self.schur_blocks(), rho)  # (|S|, q, c)  s_j⁻¹ ρ_j
        s4 = self.sigma.reshape(self.n_s, self.q, self.n_s, self.q)  # (x, a, x', b)
        out = torch.full((self.n_s,), float("-inf"), dtype=torch.float64, device=z.device)
        step = max(1, chunk_bytes // (8 * self.n_s * self.o))
        mask = self.active.to(torch.float64)  # (|S|,) sum only over the unlabelled pool
        for j0 in range(0, self.n_s, step):
            js = slice(j0, j0 + step)
            delta = torch.einsum("xajb,jbc->xjac", s4[:, :, js, :], z[js])  # (|S|, J, q, c)
            delta = delta.reshape(self.n_s, -1, self.o) + self.offset[:, None, :]  # (|S|, J, O)
            out[js] = mask @ torch.linalg.vector_norm(delta, dim=2)  # (J,)
        return out.masked_fill(~self.active, float("-inf"))

    def lookahead(self, j: int, label: int) -> Tensor:
        """(|S|, O) f_lin+ on S for one candidate j with label y' by the rank-q correction (★)."""
        q = self.q
        rho = (self._onehot(torch.tensor([label]))[0] - self.f_lin[j]).reshape(q, self.c)  # (q, c)
        z = torch.linalg.solve(self.schur_blocks()[j], rho)  # (q, c)  s⁻¹ρ
        return self.f_lin + (self.sigma[:, j * q:(j + 1) * q] @ z).reshape(self.n_s, self.o)

    # ---- sequential update ----------------------------------------------------------------------
    def add(self, j: int, label: int) -> None:
        """Put candidate j with its true label into L: block update of A⁻¹, downdate of Σ, f_lin."""
        if not bool(self.active[j]):
            raise ValueError(f"candidate {j} is already labelled")
        q, m0 = self.q, self.k.shape[0] - self.n_s * self.q
        rows_j = m0 + j * q + torch.arange(q, device=self.k.device)  # flat rows of x_j in P
        eye = torch.eye(q, dtype=torch.float64, device=self.k.device)
        b = self.k[self.lab_rows][:, rows_j].to(torch.float64)  # (m, q)  Θ(L, x_j)
        c = self.k[rows_j][:, rows_j].to(torch.float64) + self.lam * eye  # (q, q)
        self.a_inv = block_inverse_extend(self.a_inv, b, c)
        self.lab_rows = torch.cat([self.lab_rows, rows_j])
        y = self._onehot(torch.tensor([label]))[0]  # (O,)
        self.resid = torch.cat([self.resid, (y - self.f0_s[j]).reshape(q, self.c)])
        sj = self.sigma[:, j * q:(j + 1) * q].clone()  # (|S|q, q)  Σ(S, x_j); Σ is updated in place below
        gain = sj @ torch.linalg.inv(sj[j * q:(j + 1) * q] + self.lam * eye)  # (|S|q, q)
        rho = (y - self.f_lin[j]).reshape(q, self.c)  # (q, c)  y − f_lin(x_j)
        step = (gain @ rho).reshape(self.n_s, self.o)  # (|S|, O)
        self.f_lin = self.f_lin + step
        self.model_out = self.model_out + step
        self.sigma.addmm_(gain, sj.T, alpha=-1)  # in place: Σ is the largest matrix here
        self.active[j] = False

    def alpha(self) -> Tensor:
        """(m, c) A⁻¹r on the current L (after sequential adds)."""
        return self.a_inv @ self.resid


def mlmoc_direct(k: Tensor, f0: Tensor, y_l: Tensor, labelled: list[int], cand: list[int],
                 labels: Tensor, h: Tensor, *, lam: float) -> Tensor:
    """Reference MLMOC by a direct solve per candidate (slow; for tests).

    Points are indices into P (rows of k / f0). labelled: L; cand: S (also the evaluation set, of
    which only points not in L count); y_l (|L|, O); labels (|S|,) pseudo-labels; h (|S|, O) the
    reference outputs (f_L for "model"). Returns (|S|,) Σ_{x∈S∖L} ‖h(x) − f_lin+(x)‖₂."""
    kf, q = flat_kernel(k)
    f0 = torch.as_tensor(f0, dtype=torch.float64)
    o = f0.shape[1]

    def rows(idx):
        return (torch.as_tensor(idx)[:, None] * q + torch.arange(q)).reshape(-1)  # flat rows

    ev = [i for i in cand if i not in labelled]
    h_ev = h[[cand.index(i) for i in ev]]  # (E, O)
    out = torch.empty(len(cand), dtype=torch.float64)
    for j, xj in enumerate(cand):
        lp = list(labelled) + [xj]
        y = torch.cat([torch.as_tensor(y_l, dtype=torch.float64),
                       torch.nn.functional.one_hot(torch.as_tensor([int(labels[j])]), o).to(torch.float64)])
        r = (y - f0[lp]).reshape(len(lp) * q, o // q)
        a = kf[rows(lp)][:, rows(lp)] + lam * torch.eye(len(lp) * q, dtype=torch.float64)
        f_plus = f0[ev] + (kf[rows(ev)][:, rows(lp)] @ torch.linalg.solve(a, r)).reshape(len(ev), o)
        out[j] = torch.linalg.vector_norm(h_ev - f_plus, dim=1).sum()
    return out


def direct_scores(k: Tensor, f0: Tensor, y_l: Tensor, n_l: int, labels: Tensor, candidates, *, lam: float,
                  reference: str = "model", q: int | None = None, chunk_bytes: int = 1 << 26) -> Tensor:
    """MLMOC of `candidates` (positions into S) without the block update: Eq. 2.11 solved directly.

    Same inputs as :class:`LookAhead` (points P = [L; S], S also the evaluation set U) and its λ (``la.lam``,
    jitter included; or, with q given, k already flat as ``LookAhead.k``: (P·q, P·q), row n*q+a); labels
    (|S|,) the pseudo-labels y'. For each candidate x_j the enlarged system
    Θ(L⁺, L⁺) + λI, L⁺ = L ∪ {x_j}, gets its own Cholesky factorisation (LU where that fails): nothing of
    Θ(L, L)'s factor, A⁻¹ or Σ is shared between candidates, so this is the "NTK w/o Block" of thesis
    Fig 2.1a. Batched over candidates in chunks of ≤ chunk_bytes of float64 systems. Returns
    (len(candidates),) Σ_{x∈S} ‖h(x) − f_lin+(x)‖₂ with h = f_L (reference "model") or f_lin on L ("flin",
    also by a direct solve)."""
    if reference not in REFERENCES:
        raise ValueError(f"active.reference: {reference!r}, expected one of {REFERENCES}")
    kf, q = flat_kernel(k) if q is None else (torch.as_tensor(k), int(q))  # a flat kernel: slices go float64
    f0 = torch.as_tensor(f0, dtype=torch.float64, device=kf.device)
    p, o = f0.shape
    c, m, n_s = o // q, n_l * q, p - n_l
    cand = torch.as_tensor(candidates, dtype=torch.long, device=kf.device).reshape(-1)
    r_l = (torch.as_tensor(y_l, dtype=torch.float64, device=kf.device) - f0[:n_l]).reshape(m, c)  # Y_L − f_L(L)
    y_s = torch.nn.functional.one_hot(torch.as_tensor(labels, device=kf.device).long(), o).to(torch.float64)
    r_s = (y_s - f0[n_l:]).reshape(n_s, q, c)  # (|S|, q, c)  y' − f_L(x') per candidate
    k_ll = kf[:m, :m].to(torch.float64) + lam * torch.eye(m, dtype=torch.float64, device=kf.device)  # (m, m)
    k_sl = kf[m:, :m].to(torch.float64)  # (|S|q, m)
    if reference == "model":
        h = f0[n_l:]
    else:
        h = f0[n_l:] + (k_sl @ torch.linalg.solve(k_ll, r_l)).reshape(n_s, o)  # f_lin on S, its own solve
    eye_q = torch.eye(q, dtype=torch.float64, device=kf.device)
    out = torch.empty(len(cand), dtype=torch.float64, device=kf.device)
    step = max(1, chunk_bytes // (8 * ((m + q) ** 2 + n_s * q * (q + c))))
    for j0 in range(0, len(cand), step):
        js = cand[j0:j0 + step]  # (J,)
        rows = m + js[:, None] * q + torch.arange(q, device=kf.device)  # (J, q) flat rows of x_j
        b = kf[:m][:, rows].permute(1, 0, 2).to(torch.float64)  # (J, m, q)  Θ(L, x_j)
        cc = kf[rows[:, :, None], rows[:, None, :]].to(torch.float64) + lam * eye_q  # (J, q, q)  Θ(x_j, x_j) + λI
        a = torch.cat([torch.cat([k_ll.expand(len(js), m, m), b], 2),
                       torch.cat([b.transpose(1, 2), cc], 2)], 1)  # (J, m+q, m+q)  Θ(L⁺, L⁺) + λI
        rhs = torch.cat([r_l.expand(len(js), m, c), r_s[js]], 1)  # (J, m+q, c)
        chol, info = torch.linalg.cholesky_ex(a)
        alpha = torch.cholesky_solve(rhs, chol)  # (J, m+q, c)
        bad = info != 0
        if bool(bad.any()):
            alpha[bad] = torch.linalg.solve(a[bad], rhs[bad])
        k_sx = kf[m:][:, rows].permute(1, 0, 2).to(torch.float64)  # (J, |S|q, q)  Θ(S, x_j)
        corr = torch.einsum("xm,jmc->jxc", k_sl, alpha[:, :m]) + torch.einsum("jxq,jqc->jxc", k_sx, alpha[:, m:])
        f_plus = f0[n_l:] + corr.reshape(len(js), n_s, o)  # (J, |S|, O)  f_lin+ on S
        out[j0:j0 + len(js)] = torch.linalg.vector_norm(h - f_plus, dim=2).sum(1)
    return out

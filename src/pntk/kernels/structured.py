"""Structured (layer-wise) method: kernels from layer inputs A and output gradients Δ.

One forward of a block records every handled layer's input A and output; R backward passes of the
row scalars Σ_n Σ_a C[r, a] f_a(x_n) give the output gradients Δ (n, R, ...). Each layer then adds
its term (see ``_layers.py``): a Linear layer (A₁A₂ᵀ + 1)∘(Δ₁Δ₂ᵀ) (pntk.layers.NTKLinear likewise,
with its constant weight/bias scales); a Conv2d the cheaper (by FLOPs)
of explicit per-sample gradients or position pairs; an eval-mode BatchNorm its per-channel affine
gradients. Every other trainable parameter (other modules, parameters used more than once, modules
called more than once) gets explicit per-sample gradients from ``jacobian.per_sample_rows``.

Which parameters a layer rule may claim is decided on a probe forward by inspecting the autograd
graph: the parameter must reach the output through exactly one edge, and its module must be called
exactly once with an output that reaches the model output. In-place ops that would modify a
recorded tensor are detected by version counters; such layers record copies instead.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import torch
from torch import Tensor, nn

from ..layers import NTKLinear
from . import _layers as L
from . import _pairs
from ._common import (
    DEFAULT_MEMORY_BYTES,
    JacobianRows,
    add_rows,
    blocked_kernel,
    finish,
    mirror_lower,
    pair_layout,
    result_tail,
    side_block,
    trainable_parameters,
)
from .jacobian import per_sample_rows

_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_BatchNorm = nn.modules.batchnorm._BatchNorm


def _scaled_linear(m: nn.Module) -> bool:
    """pntk.layers.NTKLinear: y = w_scale W x + b_scale b (a Linear rule with constant scales)."""
    return isinstance(m, NTKLinear) and type(m).forward is NTKLinear.forward


def _rule(m: nn.Module) -> str | None:
    """Layer rule for module m, or None (its parameters fall back to per-sample gradients)."""
    t = type(m)
    if (isinstance(m, nn.Linear) and t.forward is nn.Linear.forward) or _scaled_linear(m):
        return "linear"
    if isinstance(m, nn.Conv2d) and t.forward is nn.Conv2d.forward and t._conv_forward is nn.Conv2d._conv_forward:
        return "conv"
    if isinstance(m, _BN) and t.forward is _BatchNorm.forward \
            and m.running_mean is not None and m.running_var is not None:
        return "bn"  # eval mode with running statistics: affine per channel
    return None


@dataclass
class Layer:
    name: str
    module: nn.Module
    rule: str             # "linear" | "conv" | "bn"
    weight: bool          # weight is trainable and claimed by this rule
    bias: bool            # bias is trainable and claimed by this rule
    mode: str = "bn"      # "gram" | "explicit" | "pairs" | "bn"
    clone_in: bool = False
    clone_out: bool = False
    shape: tuple[int, int, int, int] = (1, 1, 1, 1)  # (g, L, din, dout) for matmul-like rules
    scale_w: float = 1.0  # y = scale_w W x + scale_b b (NTK parameterization), else 1
    scale_b: float = 1.0


@dataclass
class Plan:
    layers: list[Layer]
    fallback: list[str]        # parameter names handled by explicit per-sample gradients
    cost_structured: float     # time-weighted FLOP estimates for the whole kernel (see _layers.matmul_costs)
    cost_jacobian: float
    values_per_sample: float   # feature values held per sample (for the default block size)
    flops: dict[str, float] = field(default_factory=dict)  # the structured method's FLOPs by stage

    @property
    def cheaper_than_jacobian(self) -> bool:
        return self.cost_structured < self.cost_jacobian


@dataclass
class _Record:
    x: Tensor
    x_version: int
    x_requires_grad: bool  # the backward pass computes this layer's input gradient
    out: Tensor
    out_version: int


@dataclass
class _Capture:
    """Forward hooks recording (input, output) of the given layers; copies where asked."""

    layers: list[Layer]
    records: dict[str, list[_Record]] = field(default_factory=dict)
    handles: list = field(default_factory=list)

    def _hook(self, layer: Layer, module, args, kwargs, output):
        x = args[0] if args else next(iter(kwargs.values()))
        rec = _Record(x.detach().clone() if layer.clone_in else x.detach(), x._version, x.requires_grad,
                      output, output._version)
        self.records.setdefault(layer.name, []).append(rec)
        return output.clone() if layer.clone_out else None

    def __enter__(self):
        for layer in self.layers:
            self.handles.append(layer.module.register_forward_hook(partial(self._hook, layer), with_kwargs=True))
        return self

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()
        self.handles.clear()


def _graph(root) -> tuple[dict[int, int], set[int], list]:
    """Edge count into each leaf's AccumulateGrad (by id of the leaf) and ids of all graph nodes."""
    counts: dict[int, int] = {}
    keep, seen, stack = [], set(), [root] if root is not None else []
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        keep.append(node)  # keep wrappers alive so ids stay unique
        for nxt, _ in node.next_functions:
            if nxt is None:
                continue
            if hasattr(nxt, "variable"):
                counts[id(nxt.variable)] = counts.get(id(nxt.variable), 0) + 1
            stack.append(nxt)
    return counts, seen, keep


def make_plan(model: nn.Module, x1: Tensor, x2: Tensor | None, jrows: JacobianRows) -> Plan:
    """Decide per parameter: which layer rule (and mode) or per-sample-gradient fallback."""
    trainable = trainable_parameters(model)
    name_of = {id(p): n for n, p in trainable.items()}
    cands = []
    for mname, m in model.named_modules():
        rule = _rule(m)
        own = dict(m.named_parameters(recurse=False))
        if rule and any(p.requires_grad for p in own.values()):
            w, b = own.get("weight"), own.get("bias")
            layer = Layer(mname, m, rule, w is not None and w.requires_grad, b is not None and b.requires_grad)
            if _scaled_linear(m):
                layer.scale_w, layer.scale_b = float(m.w_scale), float(m.b_scale)
            cands.append(layer)
    with _Capture(cands) as cap:
        out = model(x1[:1])  # (1, O) probe
    counts, nodes, _keep = _graph(out.grad_fn)
    n1 = x1.shape[0]
    pairs = n1 * (n1 + 1) / 2 if x2 is None else n1 * x2.shape[0]  # sample pairs the kernel needs
    n_feat = n1 if x2 is None else n1 + x2.shape[0]
    r = jrows.num_rows
    rp = r if jrows.diagonal else r * r
    layers, claimed = [], set()
    cost_s = cost_j = per_sample = 0.0
    flops = dict.fromkeys(("forward", "backward", "per_sample_gradients", "contraction"), 0.0)
    for layer in cands:
        recs = cap.records.get(layer.name, [])
        ok = len(recs) == 1 and recs[0].out.grad_fn is not None and id(recs[0].out.grad_fn) in nodes
        m = layer.module
        layer.weight = layer.weight and ok and counts.get(id(m.weight), 0) == 1
        layer.bias = layer.bias and ok and counts.get(id(m.bias), 0) == 1
        if not (layer.weight or layer.bias):
            continue
        claimed.update(id(p) for p, use in ((m.weight, layer.weight), (m.bias, layer.bias)) if use)
        rec = recs[0]
        layer.clone_in = rec.x._version != rec.x_version
        layer.clone_out = rec.out._version != rec.out_version
        if layer.rule == "bn":
            c = m.num_features
            cost = 2.0 * pairs * rp * c * (layer.weight + layer.bias)
            cost_s, cost_j, per_sample = cost_s + cost, cost_j + cost, per_sample + r * c * 2
            flops["contraction"] += cost
        else:
            if layer.rule == "linear":
                (dout, din), g = m.weight.shape, 1
                npos = rec.x[0].numel() // din
            else:
                g, dout = m.groups, m.out_channels // m.groups
                din = m.in_channels // g * m.kernel_size[0] * m.kernel_size[1]
                npos = rec.out.shape[2] * rec.out.shape[3]
            layer.shape = (g, npos, din, dout)
            layer_fwd = 2.0 * n_feat * g * npos * din * dout
            flops["forward"] += layer_fwd
            flops["backward"] += r * layer_fwd if rec.x_requires_grad else 0.0  # R input-gradient passes
            if layer.weight:
                costs = L.matmul_costs(pairs, n_feat, r, jrows.diagonal, g, npos, din, dout, layer.bias)
                layer.mode = min(costs, key=lambda mode: costs[mode][0] + costs[mode][2])  # by weighted time
                feat, con, weighted = costs[layer.mode]
                cost_j += costs["explicit"][0] + costs["explicit"][1]
            else:  # bias only: per-sample bias gradients
                layer.mode, feat, con = "explicit", 0.0, 2.0 * pairs * rp * g * dout
                weighted = con
                cost_j += con
            cost_s += feat + weighted
            flops["per_sample_gradients"] += feat
            flops["contraction"] += con
            per_sample += {"gram": din + r * dout, "explicit": r * g * dout * (din + 1),
                           "pairs": g * npos * (din + r * dout)}[layer.mode]
        layers.append(layer)
    fallback = [name_of[i] for i in name_of if i not in claimed and counts.get(i, 0) > 0]
    p_fb = sum(trainable[n].numel() for n in fallback)
    if fallback:
        extra = 3.0 * flops["forward"]  # an extra forward/backward under vmap (a rough estimate)
        cost_j += 2.0 * pairs * rp * p_fb
        cost_s += 2.0 * pairs * rp * p_fb + extra
        flops["per_sample_gradients"] += extra
        flops["contraction"] += 2.0 * pairs * rp * p_fb
        per_sample += r * p_fb
    flops["total"] = sum(flops.values())
    return Plan(layers, fallback, cost_s, cost_j, per_sample, flops)


@dataclass
class Features:
    """Per-block features: explicit rows (n, R, P_k), gram (U, D, s_w², s_b²), pairs (U, D)."""

    explicit: list[Tensor] = field(default_factory=list)
    gram: list[tuple[Tensor, Tensor, float, float]] = field(default_factory=list)
    pairs: list[tuple[Tensor, Tensor]] = field(default_factory=list)


def featurize(model: nn.Module, xb: Tensor, jrows: JacobianRows, plan: Plan) -> Features:
    """Features of one block xb (n, *in_shape)."""
    feats = Features()
    r = jrows.num_rows
    if plan.layers:
        with _Capture(plan.layers) as cap:
            out = model(xb)  # (n, O)
        recs = []
        for layer in plan.layers:
            got = cap.records.get(layer.name, [])
            if len(got) != 1:
                raise RuntimeError(f"structured kernel: module {layer.name!r} was called {len(got)} times "
                                   "on this block but once when planning (data-dependent control flow?); "
                                   "use method='jacobian'")
            recs.append(got[0])
        outputs = [rec.out for rec in recs]
        per_row = []
        for i in range(r):
            s = (out * jrows.cotangents[i]).sum()  # Σ_n Σ_a C[i, a] f_a(x_n)
            per_row.append(torch.autograd.grad(s, outputs, retain_graph=i < r - 1, allow_unused=True))
        for layer, rec in zip(plan.layers, recs):
            if (not layer.clone_in and rec.x._version != rec.x_version) or \
                    (not layer.clone_out and rec.out._version != rec.out_version):
                raise RuntimeError(f"structured kernel: an in-place op modified the input/output of "
                                   f"{layer.name!r} on this block but not when planning")
        del out
        for k, (layer, rec) in enumerate(zip(plan.layers, recs)):
            gs = [torch.zeros_like(rec.out) if pr[k] is None else pr[k] for pr in per_row]
            dy = gs[0].unsqueeze(1) if r == 1 else torch.stack(gs, 1)  # (n, R, *out_shape)
            _layer_features(layer, rec.x, dy, feats)
        del recs, outputs, per_row, cap
    if plan.fallback:
        feats.explicit += per_sample_rows(model, xb, jrows, plan.fallback)  # list of (n, R, P_k)
    return feats


def _layer_features(layer: Layer, x: Tensor, dy: Tensor, feats: Features) -> None:
    m, n = layer.module, x.shape[0]
    if layer.rule == "bn":
        feats.explicit += L.bn_grads(m, x, dy, layer.weight, layer.bias)  # each (n, R, C)
        return
    if layer.mode == "gram":
        u = x if layer.rule == "linear" else L.conv_u(m, x)  # (n, din) or conv patches (n, 1, 1, din)
        u = u.reshape(n, -1)  # (n, din)
        d = dy.reshape(n, dy.shape[1], -1)  # (n, R, dout)
        feats.gram.append((u, d, layer.scale_w ** 2, layer.scale_b ** 2 if layer.bias else 0.0))  # weight trainable
        return
    if layer.bias:
        gb = L.bias_grad(dy, layer.rule)  # (n, R, Cout)
        feats.explicit.append(gb if layer.scale_b == 1.0 else gb * layer.scale_b)
    if not layer.weight:
        return
    if layer.mode == "explicit" and layer.rule == "conv":
        feats.explicit.append(L.conv_weight_grad(m, x, dy))  # (n, R, g·dout·din)
        return
    d = L.matmul_d(dy, layer.rule, m.groups if layer.rule == "conv" else 1)  # (n, R, g, L, dout)
    u = L.linear_u(x) if layer.rule == "linear" else L.conv_u(m, x)  # (n, g, L, din)
    u = u if layer.scale_w == 1.0 else u * layer.scale_w
    if layer.mode == "pairs":
        feats.pairs.append((u, d))
    else:
        feats.explicit.append(L.weight_grad(u, d))  # (n, R, g·dout·din)


def _samples_and_rows(f: Features) -> tuple[int, int]:
    """(n, R) of a block's features: every feature tensor starts with (n, R, ...)."""
    t = f.explicit[0] if f.explicit else f.gram[0][1] if f.gram else f.pairs[0][1]
    return t.shape[0], t.shape[1]


def contract(f1: Features, f2: Features, diagonal: bool, lower: bool = False) -> Tensor:
    """Σ over all terms -> (n1, n2) if diagonal else (n1, n2, R, R).

    Terms accumulate in place into one row-layout matrix (see ``_common``): GEMMs of explicit rows add
    into it directly, Linear Grams and position pairs through reused buffers, so a block costs about one
    block-sized allocation whatever the number of layers. ``lower``: f2 is f1; every term computes only the
    pairs n ≥ m (about half the work) and the result is mirrored, exactly symmetric."""
    (n1, r), (n2, _) = _samples_and_rows(f1), _samples_and_rows(f2)
    ref = f1.explicit[0] if f1.explicit else f1.gram[0][0] if f1.gram else f1.pairs[0][0]
    rows = 1 if diagonal else r
    acc, scratch = ref.new_zeros(n1 * rows, n2 * rows), L.Scratch()  # row layout
    for (u1, d1, w, b), (u2, d2, _, _) in zip(f1.gram, f2.gram):
        L.gram_accumulate(acc, u1, d1, u2, d2, w, b, diagonal, lower, scratch)
    for a, b in zip(f1.explicit, f2.explicit):
        add_rows(acc, a, a if lower else b, diagonal, lower)
    for (u1, d1), (u2, d2) in zip(f1.pairs, f2.pairs):
        _pairs.accumulate(acc, u1, d1, u2, d2, diagonal, lower, scratch)  # U (n, g, L, din), D (n, R, g, L, dout)
    k = pair_layout(acc, n1, n2, r, diagonal)
    return mirror_lower(k) if lower else k


def kernel(model: nn.Module, x1: Tensor, x2: Tensor | None, *, jrows: JacobianRows, batch_size: int | None,
           plan: Plan | None = None, progress: bool | None = None, flat: bool = False) -> Tensor:
    """Structured kernel; shapes as in :func:`pntk.kernels.empirical_kernel`."""
    plan = plan or make_plan(model, x1, x2, jrows)
    dtype = next(iter(trainable_parameters(model).values())).dtype
    n_max = max(x1.shape[0], 0 if x2 is None else x2.shape[0])
    if batch_size is None:
        block = max(1, int(DEFAULT_MEMORY_BYTES // (2 * max(1.0, plan.values_per_sample) * dtype.itemsize)))
    else:
        block = side_block(batch_size, jrows.num_rows)
    if not plan.layers and not plan.fallback:  # no parameter reaches the output
        n2 = x1.shape[0] if x2 is None else x2.shape[0]
        tail = result_tail(jrows)
        shape = (x1.shape[0] * tail[0], n2 * tail[0]) if flat and tail else (x1.shape[0], n2, *tail)
        return finish(torch.zeros(shape, dtype=dtype, device=x1.device), jrows)
    raw = blocked_kernel(
        featurize=lambda xb: featurize(model, xb, jrows, plan),
        contract=lambda a, b, lower: contract(a, b, jrows.diagonal, lower),
        x1=x1, x2=x2, block=min(block, n_max), tail=result_tail(jrows), dtype=dtype,
        progress=progress, flat=flat)
    return finish(raw, jrows)

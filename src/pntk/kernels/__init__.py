"""Empirical neural tangent kernels of any ``nn.Module`` (eNTK, pNTK, first-logit, trace).

    K = empirical_kernel(model, x1, x2=None, *, kind="pntk", method="auto", batch_size=None)

Shapes (x1: (N1, *in_shape), x2: (N2, *in_shape), model output (N, O)):
    kind="entk"        (N1, N2, O, O)  Θ_ab(x, x') = ∇θ f_a(x) · ∇θ f_b(x')
    kind="pntk"        (N1, N2)        NTK of g = Σ_a f_a / √O  (= (1/O) Σ_ab Θ_ab)
    kind="first_logit" (N1, N2)        Θ_00
    kind="trace"       (N1, N2)        (1/O) Σ_a Θ_aa
    layout="flat" gives the eNTK as (N1·O, N2·O), row n·O + a: the layout its contractions produce (no
    transposing copy) and the one linear algebra on it wants (kernel regression, look-ahead).
Methods: "reference" (autograd loop, the oracle), "jacobian" (torch.func vmap+jacrev),
"structured" (layer-wise Grams, see ``structured.py``), "auto" (structured where cheaper).
"""
from __future__ import annotations

import enum
from collections.abc import Callable

import torch
from torch import Tensor, nn

from . import _checks as checks
from . import jacobian, reference, structured
from ._checks import param_dtype
from ._common import evaluation_mode, jacobian_rows, tf32_mode, trainable_parameters

__all__ = ["Kind", "Method", "chosen_method", "empirical_kernel", "flop_count"]


class Kind(str, enum.Enum):
    ENTK = "entk"
    PNTK = "pntk"
    FIRST_LOGIT = "first_logit"
    TRACE = "trace"


class Method(str, enum.Enum):
    """How the kernel is computed; every method gives the same kernel (tested against REFERENCE in float64).

    Cost notation: N1, N2 samples, P trainable parameters, R Jacobian rows (1 for pntk/first_logit, O for
    entk/trace), per layer din/dout its fan-in/fan-out and L its positions (Conv2d: output pixels).

    AUTO
        STRUCTURED when the engine's FLOP model (``flop_count``) says it is cheaper than JACOBIAN, else
        JACOBIAN. The right choice unless you are testing a method.
    REFERENCE
        One forward per sample and one backward per (sample, output) with plain autograd; it always builds
        the full eNTK and reduces it to the kind by definition. The oracle of the tests: slow (N·O backward
        passes, N·O·P Jacobian values per block), for tiny N or to check a surprising value.
    JACOBIAN
        Per-sample Jacobian rows from ``torch.func`` (vmap of jacrev; an autograd loop where the model
        cannot run under vmap), contracted parameter tensor by parameter tensor: 2·N1·N2·R²·P FLOPs and
        batch_size·P values of memory. Right for models whose parameters have no layer rule (custom
        parameters, attention, recurrent layers), for small P, and as a cross-check of STRUCTURED.
    STRUCTURED
        Layer-wise: from each layer's inputs A and output gradients Δ (one forward and R backward passes
        per block), a Linear layer adds (A₁A₂ᵀ + 1)∘(Δ₁Δ₂ᵀ) — two GEMMs, din + R²·dout per pair instead
        of din·dout; a Conv2d the cheaper of explicit per-sample gradients and position pairs; an eval-mode
        BatchNorm its per-channel affine gradients. Parameters of any other module fall back to per-sample
        gradients, so every model works. Right for FCNs, ConvNets and ResNets, above all for the pNTK
        (R = 1), whose cost then does not grow with P.
    """

    AUTO = "auto"
    REFERENCE = "reference"
    JACOBIAN = "jacobian"
    STRUCTURED = "structured"


def _reference(model, x1, x2, kind, num_outputs, batch_size, progress, flat):
    k = reference.kernel(model, x1, x2, kind=kind.value, num_outputs=num_outputs, batch_size=batch_size,
                         progress=progress)
    if flat and k.dim() == 4:  # the oracle builds (N1, N2, O, O) by definition
        k = k.permute(0, 2, 1, 3).reshape(k.shape[0] * k.shape[2], k.shape[1] * k.shape[3])
    return k


def _jacobian(model, x1, x2, kind, num_outputs, batch_size, progress, flat):
    jrows = jacobian_rows(kind.value, num_outputs, param_dtype(model), x1.device)
    return jacobian.kernel(model, x1, x2, jrows=jrows, batch_size=batch_size, progress=progress, flat=flat)


def _structured(model, x1, x2, kind, num_outputs, batch_size, progress, flat):
    jrows = jacobian_rows(kind.value, num_outputs, param_dtype(model), x1.device)
    return structured.kernel(model, x1, x2, jrows=jrows, batch_size=batch_size, progress=progress, flat=flat)


def _auto_plan(model, x1, x2, kind, num_outputs):
    """The structured method's plan, which also says whether AUTO runs it (else JACOBIAN)."""
    return structured.make_plan(model, x1, x2, jacobian_rows(kind.value, num_outputs, param_dtype(model), x1.device))


def _auto(model, x1, x2, kind, num_outputs, batch_size, progress, flat):
    jrows = jacobian_rows(kind.value, num_outputs, param_dtype(model), x1.device)
    plan = _auto_plan(model, x1, x2, kind, num_outputs)
    if plan.cheaper_than_jacobian:
        return structured.kernel(model, x1, x2, jrows=jrows, batch_size=batch_size, plan=plan, progress=progress,
                                 flat=flat)
    return jacobian.kernel(model, x1, x2, jrows=jrows, batch_size=batch_size, progress=progress, flat=flat)


_IMPLEMENTATIONS: dict[Method, Callable[..., Tensor]] = {
    Method.REFERENCE: _reference,
    Method.JACOBIAN: _jacobian,
    Method.STRUCTURED: _structured,
    Method.AUTO: _auto,
}


def _enum(cls: type[enum.Enum], value, what: str):
    try:
        return cls(value.value if isinstance(value, enum.Enum) else value)
    except ValueError:
        allowed = ", ".join(repr(m.value) for m in cls)
        raise ValueError(f"empirical_kernel: unknown {what} {value!r}; expected one of {allowed}") from None


def _prepare(x: Tensor, dtype: torch.dtype, device: torch.device) -> Tensor:
    """Detached input on the parameters' device (floating inputs in their dtype); not an inference tensor."""
    x = x.detach().to(device, dtype if x.is_floating_point() else x.dtype)
    return x.clone() if x.is_inference() else x


def _checked_inputs(model: nn.Module, x1, x2) -> tuple[Tensor, Tensor | None, int]:
    """Validated inputs (prepared as in ``_prepare``) and the number of outputs O; model in eval mode."""
    checks.check_parameters(model)
    checks.check_tensor(x1, "x1")
    if x2 is not None:
        checks.check_tensor(x2, "x2")
        if x2.shape[1:] != x1.shape[1:]:
            raise ValueError(f"empirical_kernel: x2 trailing shape {tuple(x2.shape[1:])} differs from "
                             f"x1 trailing shape {tuple(x1.shape[1:])}; expected the same per-sample shape")
    p0 = next(iter(trainable_parameters(model).values()))
    given = {"x1": x1.dtype, "x2": None if x2 is None else x2.dtype}
    prepared = []
    for label, x in (("x1", x1), ("x2", x2)):
        if x is not None:
            checks.check_finite(x, label)
            x = _prepare(x, p0.dtype, p0.device)
            if x.dtype != given[label]:  # values beyond the parameters' dtype become inf
                checks.check_finite(x, label, f", after conversion from {given[label]} to the parameters' {x.dtype}")
        prepared.append(x)
    x1, x2 = prepared
    if x2 is not None and x2.dtype != x1.dtype:
        raise ValueError(f"empirical_kernel: x2 has dtype {given['x2']} but x1 has {given['x1']}; "
                         "expected inputs of one kind (both floating point, or both integer)")
    return x1, x2, checks.probe_outputs(model, x1)


def empirical_kernel(model: nn.Module, x1: Tensor, x2: Tensor | None = None, *,
                     kind: str | Kind = "pntk", method: str | Method = "auto",
                     batch_size: int | None = None, progress: bool | None = None,
                     allow_tf32: bool = False, layout: str = "pairs") -> Tensor:
    """Empirical NTK of ``model`` between x1 (N1, *in_shape) and x2 (N2, *in_shape).

    Returns (N1, N2, O, O) for kind "entk", else (N1, N2); ``x2=None`` means x2 = x1 (symmetric).
    The result lives on x1's device with the dtype of the model's parameters. The model is evaluated
    in eval mode; its training flags and parameters are unchanged afterwards (also on error). Only
    parameters with requires_grad count. ``batch_size`` bounds memory: at most batch_size x P
    per-sample gradient values are held at once (blocks of batch_size // (2R) samples per side, R = O
    for entk/trace and 1 otherwise); None picks it from a memory budget. Inputs must be finite; a
    forward that fails on them is reported with its cause. ``progress``: log lines with an ETA over the
    blocks of the kernel (logger ``pntk.kernels``) and a bar when stderr is a terminal — None: only for
    calls that last more than a few seconds, True: always, False: never. ``allow_tf32``: let CUDA
    matmuls and cuDNN convolutions use TF32 (off by default, also for cuDNN, whose PyTorch default is on).
    ``layout``: "pairs" (default) or "flat": the eNTK as (N1·O, N2·O) with row n·O + a, as computed (other
    kinds are (N1, N2) either way).
    """
    kind = _enum(Kind, kind, "kind")
    method = _enum(Method, method, "method")
    if layout not in ("pairs", "flat"):
        raise ValueError(f"empirical_kernel: unknown layout {layout!r}; expected 'pairs' or 'flat'")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"empirical_kernel: batch_size must be a positive int or None, got {batch_size!r}")
    if not isinstance(model, nn.Module):
        raise ValueError(f"empirical_kernel: model must be a torch.nn.Module, got {type(model).__name__}")
    out_device = x1.device if isinstance(x1, Tensor) else None
    with evaluation_mode(model), torch.enable_grad(), tf32_mode(allow_tf32):
        x1, x2, num_outputs = _checked_inputs(model, x1, x2)
        k = _IMPLEMENTATIONS[method](model, x1, x2, kind, num_outputs, batch_size, progress, layout == "flat")
    return k.to(out_device)


def chosen_method(model: nn.Module, x1: Tensor, x2: Tensor | None = None, *, kind: str | Kind = "pntk",
                  method: str | Method = "auto") -> Method:
    """The method ``empirical_kernel(model, x1, x2, kind=kind, method=method)`` runs: ``method`` itself, or
    for AUTO the one its FLOP comparison picks for these shapes (STRUCTURED or JACOBIAN). Stores record
    it, so their provenance names what computed them. Costs one probe forward of a single sample."""
    kind, method = _enum(Kind, kind, "kind"), _enum(Method, method, "method")
    if method is not Method.AUTO:
        return method
    with evaluation_mode(model), torch.enable_grad():
        x1, x2, num_outputs = _checked_inputs(model, x1, x2)
        cheaper = _auto_plan(model, x1, x2, kind, num_outputs).cheaper_than_jacobian
    return Method.STRUCTURED if cheaper else Method.JACOBIAN


def flop_count(model: nn.Module, x1: Tensor, x2: Tensor | None = None, *,
               kind: str | Kind = "pntk") -> dict[str, float]:
    """FLOPs of the structured method for ``empirical_kernel(model, x1, x2, kind=kind)``, by stage.

    Keys: "forward" and "backward" (the input-gradient passes; R of them) of the layers with a layer
    rule, "per_sample_gradients" (explicit per-sample gradients, and a rough estimate for parameters
    without a rule), "contraction" (the Grams; n(n+1)/2 sample pairs for a symmetric kernel) and "total".
    Elementwise work (activations, BatchNorm) is not counted, so this is the useful GEMM work — what an
    achieved FLOP rate is measured against. Runs only probe forwards of a single sample, in eval mode.
    """
    kind = _enum(Kind, kind, "kind")
    with evaluation_mode(model), torch.enable_grad():
        x1, x2, num_outputs = _checked_inputs(model, x1, x2)
        jrows = jacobian_rows(kind.value, num_outputs, param_dtype(model), x1.device)
        return dict(structured.make_plan(model, x1, x2, jrows).flops)

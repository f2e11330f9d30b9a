"""Empirical neural tangent kernels of any ``nn.Module`` (eNTK, pNTK, first-logit, trace).

    K = empirical_kernel(model, x1, x2=None, *, kind="pntk", method="auto", batch_size=None)

Shapes (x1: (N1, *in_shape), x2: (N2, *in_shape), model output (N, O)):
    kind="entk"        (N1, N2, O, O)  Θ_ab(x, x') = ∇θ f_a(x) · ∇θ f_b(x')
    kind="pntk"        (N1, N2)        NTK of g = Σ_a f_a / √O  (= (1/O) Σ_ab Θ_ab)
    kind="first_logit" (N1, N2)        Θ_00
    kind="trace"       (N1, N2)        (1/O) Σ_a Θ_aa
Methods: "reference" (autograd loop, the oracle), "jacobian" (torch.func vmap+jacrev),
"structured" (layer-wise Grams, see ``structured.py``), "auto" (structured where cheaper).
"""
from __future__ import annotations

import enum
from collections.abc import Callable

import torch
from torch import Tensor, nn

from . import jacobian, reference, structured
from ._common import evaluation_mode, row_spec, trainable_parameters

__all__ = ["Kind", "Method", "empirical_kernel"]


class Kind(str, enum.Enum):
    ENTK = "entk"
    PNTK = "pntk"
    FIRST_LOGIT = "first_logit"
    TRACE = "trace"


class Method(str, enum.Enum):
    AUTO = "auto"
    REFERENCE = "reference"
    JACOBIAN = "jacobian"
    STRUCTURED = "structured"


def _reference(model, x1, x2, kind, num_outputs, batch_size):
    return reference.kernel(model, x1, x2, kind=kind.value, num_outputs=num_outputs, batch_size=batch_size)


def _jacobian(model, x1, x2, kind, num_outputs, batch_size):
    rows = row_spec(kind.value, num_outputs, _param_dtype(model), x1.device)
    return jacobian.kernel(model, x1, x2, rows=rows, batch_size=batch_size)


def _structured(model, x1, x2, kind, num_outputs, batch_size):
    rows = row_spec(kind.value, num_outputs, _param_dtype(model), x1.device)
    return structured.kernel(model, x1, x2, rows=rows, batch_size=batch_size)


def _auto(model, x1, x2, kind, num_outputs, batch_size):
    rows = row_spec(kind.value, num_outputs, _param_dtype(model), x1.device)
    plan = structured.make_plan(model, x1, x2, rows)
    if plan.cheaper_than_jacobian:
        return structured.kernel(model, x1, x2, rows=rows, batch_size=batch_size, plan=plan)
    return jacobian.kernel(model, x1, x2, rows=rows, batch_size=batch_size)


_IMPLEMENTATIONS: dict[Method, Callable[..., Tensor]] = {
    Method.REFERENCE: _reference,
    Method.JACOBIAN: _jacobian,
    Method.STRUCTURED: _structured,
    Method.AUTO: _auto,
}


def _param_dtype(model: nn.Module) -> torch.dtype:
    return next(iter(trainable_parameters(model).values())).dtype


def _enum(cls: type[enum.Enum], value, what: str):
    try:
        return cls(value.value if isinstance(value, enum.Enum) else value)
    except ValueError:
        allowed = ", ".join(repr(m.value) for m in cls)
        raise ValueError(f"empirical_kernel: unknown {what} {value!r}; expected one of {allowed}") from None


def _input_hint(model: nn.Module) -> str:
    """What the first parameterized layer expects, for error messages."""
    for m in model.modules():
        if isinstance(m, nn.Linear):
            return f" (first layer {type(m).__name__} expects {m.in_features} features per sample after flattening)"
        if isinstance(m, nn.modules.conv._ConvNd):
            return f" (first layer {type(m).__name__} expects {m.in_channels} input channels at dim 1)"
    return ""


def _prepare(x, p0: Tensor):
    """Detached input on the parameters' device (floating inputs in their dtype); not an inference tensor."""
    if not isinstance(x, Tensor):
        return x
    x = x.detach().to(p0.device, p0.dtype if x.is_floating_point() else x.dtype)
    return x.clone() if x.is_inference() else x


def _check_inputs(model: nn.Module, x1: Tensor, x2: Tensor | None) -> int:
    """Validate model and inputs (model already in eval mode); return the number of outputs O."""
    params = trainable_parameters(model)
    if not params:
        raise ValueError("empirical_kernel: the model has no trainable parameters "
                         "(expected at least one parameter with requires_grad=True)")
    for name, p in params.items():  # a finite sum implies finite entries; check exactly only otherwise
        if not torch.isfinite(p.detach().sum()) and not torch.isfinite(p).all():
            raise ValueError(f"empirical_kernel: parameter {name!r} contains NaN or inf values; "
                             "expected finite parameters")
    for label, x in (("x1", x1), ("x2", x2)):
        if x is None:
            continue
        if not isinstance(x, Tensor):
            raise ValueError(f"empirical_kernel: {label} must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() < 2 or x.shape[0] == 0:
            raise ValueError(f"empirical_kernel: {label} must have shape (N, *in_shape) with N >= 1, "
                             f"got {tuple(x.shape)}")
    if x2 is not None and x2.shape[1:] != x1.shape[1:]:
        raise ValueError(f"empirical_kernel: x2 trailing shape {tuple(x2.shape[1:])} differs from "
                         f"x1 trailing shape {tuple(x1.shape[1:])}; expected the same per-sample shape")
    try:
        with torch.no_grad():
            out = model(x1[:1])
    except Exception as err:  # noqa: BLE001 - any forward failure means the input does not fit
        raise ValueError(f"empirical_kernel: the model's forward failed on inputs with per-sample shape "
                         f"{tuple(x1.shape[1:])}; expected the per-sample shape the model was built for"
                         f"{_input_hint(model)}. Forward error: {err}") from err
    if not isinstance(out, Tensor) or out.dim() != 2 or out.shape[0] != 1:
        shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise ValueError(f"empirical_kernel: expected the model to return a tensor of shape (N, O), "
                         f"got {shape} for N = 1")
    return out.shape[1]


def empirical_kernel(model: nn.Module, x1: Tensor, x2: Tensor | None = None, *,
                     kind: str | Kind = "pntk", method: str | Method = "auto",
                     batch_size: int | None = None) -> Tensor:
    """Empirical NTK of ``model`` between x1 (N1, *in_shape) and x2 (N2, *in_shape).

    Returns (N1, N2, O, O) for kind "entk", else (N1, N2); ``x2=None`` means x2 = x1 (symmetric).
    The result lives on x1's device with the dtype of the model's parameters. The model is evaluated
    in eval mode; its training flags and parameters are unchanged afterwards (also on error). Only
    parameters with requires_grad count. ``batch_size`` bounds memory: at most batch_size x P
    per-sample gradient values are held at once (blocks of batch_size // (2R) samples per side, R = O
    for entk/trace and 1 otherwise); None picks it from a memory budget.
    """
    kind = _enum(Kind, kind, "kind")
    method = _enum(Method, method, "method")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"empirical_kernel: batch_size must be a positive int or None, got {batch_size!r}")
    if not isinstance(model, nn.Module):
        raise ValueError(f"empirical_kernel: model must be a torch.nn.Module, got {type(model).__name__}")
    out_device = x1.device if isinstance(x1, Tensor) else None
    with evaluation_mode(model), torch.enable_grad():
        params = trainable_parameters(model)
        if params:
            x1, x2 = (_prepare(x, next(iter(params.values()))) for x in (x1, x2))
        num_outputs = _check_inputs(model, x1, x2)
        k = _IMPLEMENTATIONS[method](model, x1, x2, kind, num_outputs, batch_size)
    return k.to(out_device)

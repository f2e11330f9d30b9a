"""Input checks of empirical_kernel, and forward failures explained by their cause.

A failing probe forward is reported with the model's own error first, then what the input was (per-sample
shape, dtype), a dtype hint when the input's dtype is not the parameters' (integer pixels into a float
model), and what the first layer that really received the input expects — found by running the probe
again with hooks, so a layer nested inside another (the out_proj Linear inside nn.MultiheadAttention,
which the attention module never calls as a module) is not named instead of the attention itself.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ._common import trainable_parameters

_MHA = nn.MultiheadAttention
_RNN = nn.RNNBase
_NORM = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm)
_DESCRIBED = (nn.Linear, nn.modules.conv._ConvNd, _MHA, _RNN, nn.Embedding, nn.EmbeddingBag) + _NORM


def param_dtype(model: nn.Module) -> torch.dtype:
    return next(iter(trainable_parameters(model).values())).dtype


def expects(name: str, m: nn.Module) -> str:
    """What layer ``m`` (called ``name`` in the model) expects of its input."""
    what = f"{'layer ' + repr(name) if name else 'the model'} ({type(m).__name__})"
    if isinstance(m, _MHA):
        return f"{what} expects embed_dim = {m.embed_dim} features in the last dim of query, key and value"
    if isinstance(m, _RNN):
        return f"{what} expects input_size = {m.input_size} features in the last dim"
    if isinstance(m, nn.Linear):
        return f"{what} expects {m.in_features} features in the last dim (after any flattening)"
    if isinstance(m, nn.modules.conv._ConvNd):
        return f"{what} expects {m.in_channels} input channels at dim 1"
    if isinstance(m, (nn.Embedding, nn.EmbeddingBag)):
        return f"{what} expects integer indices in 0..{m.num_embeddings - 1}"
    if isinstance(m, nn.modules.batchnorm._BatchNorm):
        return f"{what} expects {m.num_features} channels at dim 1"
    if isinstance(m, nn.LayerNorm):
        return f"{what} expects trailing dims {tuple(m.normalized_shape)}"
    return f"{what} expects {m.num_channels} channels at dim 1"  # GroupNorm, the last of _DESCRIBED


def _first_layer_statically(model: nn.Module) -> tuple[str, nn.Module] | None:
    """The first described layer in definition order, not descending into a described layer."""
    stack = [("", model)]
    while stack:
        name, m = stack.pop(0)
        if isinstance(m, _DESCRIBED):
            return name, m
        stack[:0] = [(f"{name}.{n}" if name else n, c) for n, c in m.named_children()]
    return None


def _trace_failure(model: nn.Module, x: Tensor) -> tuple[tuple[str, nn.Module] | None, tuple[str, nn.Module] | None]:
    """Run the failing forward again with hooks: (first described layer called, innermost module running
    when it failed). Either is None when no module of that kind was entered."""
    names = {id(m): n for n, m in model.named_modules()}
    called: list[nn.Module] = []
    running: list[nn.Module] = []

    def enter(m, args):
        called.append(m)
        running.append(m)

    def leave(m, args, out):
        if running and running[-1] is m:
            running.pop()

    handles = [m.register_forward_pre_hook(enter) for m in model.modules()]
    handles += [m.register_forward_hook(leave) for m in model.modules()]
    try:
        with torch.no_grad():
            model(x)
    except Exception:  # the failure is what we are tracing
        pass
    finally:
        for h in handles:
            h.remove()
    first = next((m for m in called if isinstance(m, _DESCRIBED)), None)
    inner = running[-1] if running else None
    return ((names.get(id(first), "?"), first) if first is not None else None,
            (names.get(id(inner), "?"), inner) if inner is not None else None)


def forward_failure(model: nn.Module, x: Tensor, label: str, err: Exception) -> ValueError:
    """A ValueError saying why ``model(x)`` failed: its own error, the input, the likely cause."""
    msg = (f"empirical_kernel: the model's forward failed on {label} "
           f"(per-sample shape {tuple(x.shape[1:])}, dtype {x.dtype}): {type(err).__name__}: {err}")
    dtype = param_dtype(model)
    if x.dtype != dtype and not x.is_floating_point() and dtype.is_floating_point:
        msg += (f"\n  cause: {label} has dtype {x.dtype} but the model's parameters are {dtype}; "
                f"pass floating-point inputs (e.g. {label}.to({dtype}))")
    first, inner = _trace_failure(model, x)
    first = first or _first_layer_statically(model)
    if first is not None:
        msg += f"\n  input: {expects(*first)}"
    if inner is not None and inner[1] is not model and (first is None or inner[1] is not first[1]):
        msg += f"\n  failed inside {inner[0]!r} ({type(inner[1]).__name__})"
    return ValueError(msg)


def check_tensor(x, label: str) -> None:
    """x is a tensor (N, *in_shape) with N >= 1."""
    if not isinstance(x, Tensor):
        raise ValueError(f"empirical_kernel: {label} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 2 or x.shape[0] == 0:
        raise ValueError(f"empirical_kernel: {label} must have shape (N, *in_shape) with N >= 1, "
                         f"got {tuple(x.shape)}")


def check_finite(x: Tensor, label: str, note: str = "") -> None:
    """Floating x has no NaN/inf (a finite sum implies finite entries; counted exactly only otherwise)."""
    if not x.is_floating_point() or torch.isfinite(x.sum()):
        return
    bad = ~torch.isfinite(x)
    count = int(bad.sum())
    if count == 0:  # the sum overflowed, the entries are finite
        return
    first = int(bad.reshape(x.shape[0], -1).any(1).nonzero()[0, 0])
    raise ValueError(f"empirical_kernel: {label} has {count} non-finite value(s) (NaN or ±inf) among {x.numel()} "
                     f"entries, the first in sample {first}{note}; expected finite inputs")


def check_parameters(model: nn.Module) -> None:
    params = trainable_parameters(model)
    if not params:
        raise ValueError("empirical_kernel: the model has no trainable parameters "
                         "(expected at least one parameter with requires_grad=True)")
    for name, p in params.items():  # a finite sum implies finite entries; check exactly only otherwise
        if not torch.isfinite(p.detach().sum()) and not torch.isfinite(p).all():
            raise ValueError(f"empirical_kernel: parameter {name!r} contains NaN or inf values; "
                             "expected finite parameters")


def probe_outputs(model: nn.Module, x1: Tensor) -> int:
    """Number of outputs O from a forward of one sample; a failure is explained (see module docstring)."""
    try:
        with torch.no_grad():
            out = model(x1[:1])
    except Exception as err:  # any forward failure is reported with its cause
        raise forward_failure(model, x1[:1], "x1", err) from err
    if not isinstance(out, Tensor) or out.dim() != 2 or out.shape[0] != 1:
        shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise ValueError(f"empirical_kernel: expected the model to return a tensor of shape (N, O), "
                         f"got {shape} for N = 1")
    return out.shape[1]

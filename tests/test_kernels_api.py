"""empirical_kernel's contract beyond exactness: model state, errors, memory bound, dtype/device, enums."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from pntk.kernels import Kind, Method, empirical_kernel, jacobian, structured
from pntk.kernels._common import side_block
from pntk.models import ModelSpec, init_model

METHODS = [m.value for m in Method]


pytestmark = pytest.mark.usefixtures("one_thread")


def small_resnet() -> nn.Module:
    torch.manual_seed(0)
    m = init_model(ModelSpec("resnet18", 2, (3, 6, 6), 3), 0).double()
    m.train()
    with torch.no_grad():
        for _ in range(2):
            m(torch.randn(6, 3, 6, 6, dtype=torch.float64) + 1.0)  # non-trivial running statistics
    m.blocks[1].eval()  # mixed training flags must survive
    m.blocks[2].bn1.eval()
    return m


def snapshot(model: nn.Module):
    return ([(n, mod.training) for n, mod in model.named_modules()],
            {k: v.clone() for k, v in model.state_dict().items()},
            [(n, p.requires_grad, p.grad) for n, p in model.named_parameters()])


def assert_unchanged(model: nn.Module, snap) -> None:
    flags, state, grads = snapshot(model)
    assert flags == snap[0]
    assert state.keys() == snap[1].keys()
    for k in state:
        torch.testing.assert_close(state[k], snap[1][k], rtol=0, atol=0, equal_nan=True, msg=k)
    assert [(n, r) for n, r, _ in grads] == [(n, r) for n, r, _ in snap[2]]
    assert all(g is None for _, _, g in grads)


@pytest.mark.parametrize("method", METHODS)
def test_model_state_is_restored(method):
    model = small_resnet()
    snap = snapshot(model)
    x = torch.randn(3, 3, 6, 6, dtype=torch.float64)
    k = empirical_kernel(model, x, kind="pntk", method=method)
    assert_unchanged(model, snap)
    with torch.no_grad():  # evaluated in eval mode: compare with a kernel of an eval-mode deep copy
        twin = copy.deepcopy(model).eval()
    assert torch.allclose(k, empirical_kernel(twin, x, kind="pntk", method="jacobian"), rtol=1e-10, atol=0)


def test_eval_mode_matters():
    """Train-mode BatchNorm would give a different kernel: check the call really used eval mode."""
    model = small_resnet()
    x = torch.randn(3, 3, 6, 6, dtype=torch.float64)
    k = empirical_kernel(model, x, method="structured")
    train_twin = copy.deepcopy(model).train()
    # batch statistics: kernel of the function x -> f(x) with BatchNorm in train mode (per batch of 3)
    params = [p for p in train_twin.parameters() if p.requires_grad]
    out = train_twin(x).sum(1) / 3 ** 0.5  # (3,)
    jrows = torch.stack([torch.cat([g.reshape(-1) for g in torch.autograd.grad(out[i], params, retain_graph=True)])
                        for i in range(3)])  # (3, P)
    assert not torch.allclose(k, jrows @ jrows.T, rtol=1e-3)


def test_no_grad_context_and_input_requiring_grad():
    model = small_resnet()
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64, requires_grad=True)
    with torch.no_grad():
        k = empirical_kernel(model, x, method="structured")
    assert k.shape == (2, 2) and x.grad is None
    assert torch.allclose(k, empirical_kernel(model, x.detach(), method="reference"), rtol=1e-10, atol=0)


def test_dtype_and_device_follow_parameters_and_x1():
    model = small_resnet()
    x = torch.randn(2, 3, 6, 6)  # float32 inputs, float64 model
    k = empirical_kernel(model, x, kind="entk", method="structured")
    assert k.dtype == torch.float64 and k.device == x.device and k.shape == (2, 2, 3, 3)


@pytest.mark.parametrize("kind", ["pntk", "entk"])
@pytest.mark.parametrize("batch_size", [6, 7, 13, 40])
def test_batch_size_bounds_per_sample_gradients(monkeypatch, kind, batch_size):
    """Never more than batch_size rows of per-sample gradients alive (two blocks of rows)."""
    model = init_model(ModelSpec("convnet", 2, (2, 4, 4), 3, depth=2), 0).double()
    x1, x2 = torch.randn(7, 2, 4, 4, dtype=torch.float64), torch.randn(4, 2, 4, 4, dtype=torch.float64)
    sizes = []
    real = jacobian.per_sample_rows

    def spy(model, xb, jrows, names):
        sizes.append(xb.shape[0] * jrows.num_rows)
        return real(model, xb, jrows, names)

    monkeypatch.setattr(jacobian, "per_sample_rows", spy)
    k = empirical_kernel(model, x1, x2, kind=kind, method="jacobian", batch_size=batch_size)
    r = 3 if kind == "entk" else 1
    assert sizes and 2 * max(sizes) <= max(batch_size, 2 * r)
    assert max(sizes) == min(7, side_block(batch_size, r)) * r
    monkeypatch.undo()
    ref = empirical_kernel(model, x1, x2, kind=kind, method="jacobian")  # default batch size
    assert torch.allclose(k, ref, rtol=1e-10, atol=0)


def test_structured_blocks_use_batch_size(monkeypatch):
    model = small_resnet()
    x = torch.randn(5, 3, 6, 6, dtype=torch.float64)
    sizes = []
    real = structured.featurize
    monkeypatch.setattr(structured, "featurize", lambda m, xb, jrows, plan: sizes.append(xb.shape[0]) or
                        real(m, xb, jrows, plan))
    empirical_kernel(model, x, method="structured", batch_size=4)
    assert sizes == [2, 2, 1, 2, 1, 1]  # blocks (0,0) (0,1) (0,2) (1,1) (1,2) (2,2): j >= i only


# ----------------------------------------------------------------------------------------- errors
def _frozen():
    m = small_resnet()
    for p in m.parameters():
        p.requires_grad_(False)
    return m, torch.randn(2, 3, 6, 6, dtype=torch.float64), {}


def _nan():
    m = small_resnet()
    with torch.no_grad():
        m.blocks[0].conv1.weight[0, 0, 0, 0] = float("nan")
    return m, torch.randn(2, 3, 6, 6, dtype=torch.float64), {}


BAD = {
    "no trainable": (_frozen, "no trainable parameters"),
    "nan": (_nan, "'blocks.0.conv1.weight' contains NaN"),
    "wrong channels": (lambda: (small_resnet(), torch.randn(2, 4, 6, 6, dtype=torch.float64), {}),
                       r"(?s)per-sample shape \(4, 6, 6\).*expects 3 input channels"),
    "fcn wrong size": (lambda: (init_model(ModelSpec("fcn", 4, (1, 4, 4), 3), 0).double(),
                                torch.randn(2, 1, 5, 5, dtype=torch.float64), {}),
                       r"(?s)per-sample shape \(1, 5, 5\).*expects 16 features"),
    "x2 mismatch": (lambda: (small_resnet(), torch.randn(2, 3, 6, 6, dtype=torch.float64),
                             {"x2": torch.randn(2, 3, 5, 5, dtype=torch.float64)}), "x2 trailing shape"),
    "empty": (lambda: (small_resnet(), torch.randn(0, 3, 6, 6, dtype=torch.float64), {}), "N >= 1"),
    "kind": (lambda: (small_resnet(), torch.randn(2, 3, 6, 6, dtype=torch.float64), {"kind": "ntk"}),
             r"unknown kind 'ntk'; expected one of 'entk', 'pntk', 'first_logit', 'trace'"),
    "method": (lambda: (small_resnet(), torch.randn(2, 3, 6, 6, dtype=torch.float64), {"method": "fast"}),
               r"unknown method 'fast'; expected one of 'auto', 'reference'"),
    "batch_size": (lambda: (small_resnet(), torch.randn(2, 3, 6, 6, dtype=torch.float64), {"batch_size": 0}),
                   "batch_size must be a positive int"),
}


@pytest.mark.parametrize("case", list(BAD))
@pytest.mark.parametrize("method", ["reference", "structured", "auto"])
def test_bad_input_raises_and_leaves_model_unchanged(case, method):
    build, message = BAD[case]
    model, x, kwargs = build()
    snap = snapshot(model)
    kwargs.setdefault("method", method)
    with pytest.raises(ValueError, match=message):
        empirical_kernel(model, x, **kwargs)
    assert_unchanged(model, snap)


def test_error_inside_the_method_restores_mode(monkeypatch):
    model = small_resnet()
    snap = snapshot(model)
    monkeypatch.setattr(structured, "featurize", lambda *a: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError, match="boom"):
        empirical_kernel(model, torch.randn(2, 3, 6, 6, dtype=torch.float64), method="structured")
    assert_unchanged(model, snap)


def test_enums_are_accepted_and_are_strings():
    model = small_resnet()
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    a = empirical_kernel(model, x, kind=Kind.TRACE, method=Method.STRUCTURED)
    b = empirical_kernel(model, x, kind="trace", method="structured")
    assert torch.equal(a, b) and Kind.TRACE == "trace" and Method("jacobian") is Method.JACOBIAN


class PerSampleBranch(nn.Module):
    """Data-dependent control flow per sample: cannot run under vmap, handled by the autograd loop."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 2)
        self.s = nn.Parameter(torch.tensor(0.7))

    def forward(self, x):
        h = self.lin(x)  # (n, 2)
        return torch.stack([h[i] * self.s if h[i].sum() > 0 else h[i] - self.s for i in range(h.shape[0])])


@pytest.mark.parametrize("method", ["jacobian", "structured", "auto"])
def test_data_dependent_control_flow_falls_back_to_a_loop(monkeypatch, method):
    torch.manual_seed(0)
    model = PerSampleBranch().double()
    x = torch.randn(6, 3, dtype=torch.float64)
    ref = empirical_kernel(model, x, kind="entk", method="reference")
    calls = []
    real = jacobian._loop_rows
    monkeypatch.setattr(jacobian, "_loop_rows", lambda *a: calls.append(1) or real(*a))
    k = empirical_kernel(model, x, kind="entk", method=method)
    assert calls and torch.allclose(k, ref, rtol=1e-12, atol=0)


def test_inference_mode_inputs():
    model = small_resnet()
    with torch.inference_mode():
        x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    k = empirical_kernel(model, x, method="structured")
    assert torch.allclose(k, empirical_kernel(model, x.clone(), method="reference"), rtol=1e-10, atol=0)


@pytest.mark.parametrize("kind", ["pntk", "entk"])
@pytest.mark.parametrize("method", ["jacobian", "structured"])
def test_large_symmetric_kernel_equals_rectangular(monkeypatch, method, kind):
    """x2 = None contracts the lower triangle in row chunks (8 or 16 here) and mirrors it; x2 = a copy of x1
    contracts every pair."""
    from pntk.kernels import _common

    chunks, real = [], _common.lower_chunks
    monkeypatch.setattr(_common, "lower_chunks", lambda *a: chunks.append(real(*a)) or chunks[-1])
    model = init_model(ModelSpec("fcn", 6, (1, 2, 2), 3), 0).double()
    x = torch.randn(1100, 1, 2, 2, dtype=torch.float64)
    k = empirical_kernel(model, x, kind=kind, method=method)
    assert chunks and len(chunks[0]) >= 8  # the symmetric block was contracted in row chunks
    torch.testing.assert_close(k, empirical_kernel(model, x, x.clone(), kind=kind, method=method),
                               rtol=1e-12, atol=1e-12)


def test_chosen_method_is_what_auto_runs():
    """pntk.kernels.chosen_method names the method `auto` runs for these shapes (stores record it)."""
    from pntk.kernels import chosen_method

    torch.manual_seed(0)
    fcn = nn.Sequential(nn.Flatten(), nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 3)).double()
    x = torch.randn(5, 3, 2, 2, dtype=torch.float64)
    assert chosen_method(fcn, x, kind="pntk") is Method.STRUCTURED
    assert chosen_method(fcn, x, kind="pntk", method="jacobian") is Method.JACOBIAN
    auto = empirical_kernel(fcn, x, kind="pntk", method="auto")
    assert torch.equal(auto, empirical_kernel(fcn, x, kind="pntk", method=chosen_method(fcn, x, kind="pntk")))

"""Exactness of every kernel method against the autograd reference (float64), on several models.

Models: the four pntk.models architectures (small; the FCN also in NTK parameterization), a
torchvision ResNet-18 (tiny input, deep stages frozen to keep P small; in-place ReLU and
`out += identity` included), a model mixing Linear (also on 3-D inputs), Conv2d (stride, padding,
groups, dilation, 'same' + reflect padding), BatchNorm 1d/2d, GroupNorm, LayerNorm, a custom
x * scale parameter, a module called twice, a weight shared by two Linear modules and a frozen
parameter, and Linear layers without a bias / with a frozen one. BatchNorm running statistics are
made non-trivial by train-mode forwards before the kernel calls, and models are left in train mode
so eval mode matters. (nn.MultiheadAttention: tests/test_kernels_inputs.py.)
"""
from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pntk.kernels import Kind, empirical_kernel, structured
from pntk.kernels._common import jacobian_rows
from pntk.models import ModelSpec, init_model

KINDS = [k.value for k in Kind]
FAST = ["jacobian", "structured", "auto"]
N1, N2 = 5, 3  # with blocks of 4 samples per side: x1 in blocks [4, 1]


pytestmark = pytest.mark.usefixtures("one_thread")


class Scale(nn.Module):
    """Custom module using its own nn.Parameter directly."""

    def __init__(self, c: int):
        super().__init__()
        self.scale = nn.Parameter(1.0 + 0.3 * torch.randn(c, 1, 1))

    def forward(self, x):
        return x * self.scale


class VecScale(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.randn(3))

    def forward(self, x):  # (n, 3) -> (n, 3)
        return torch.tanh(x * self.scale) * self.scale


class Mixed(nn.Module):
    def __init__(self, num_classes: int = 3):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=4, bias=False)
        self.gn = nn.GroupNorm(2, 8)
        self.conv3 = nn.Conv2d(8, 6, 4, padding="same", padding_mode="reflect")
        self.scale = Scale(6)
        self.conv4 = nn.Conv2d(6, 6, 2, stride=2)
        self.pos = nn.Linear(6, 5)             # applied at 4 positions (3-D input)
        self.fc = nn.Linear(20, 10)
        self.bn1d = nn.BatchNorm1d(10)
        self.ln = nn.LayerNorm(10)
        self.twice = nn.Linear(10, 10)         # called twice
        self.src = nn.Linear(10, 10)
        self.twin = nn.Linear(10, 10)
        self.twin.weight = self.src.weight     # one weight, two modules
        self.head = nn.Linear(10, num_classes)
        self.conv1.bias.requires_grad_(False)  # frozen: must not count

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))                # (n, 8, 4, 4)
        h = F.relu(self.gn(self.conv2(h)))                 # (n, 8, 4, 4)
        h = torch.tanh(self.scale(self.conv3(h)))          # (n, 6, 4, 4)
        h = self.conv4(h).flatten(2).transpose(1, 2)       # (n, 6, 2, 2) -> (n, 4, 6)
        h = torch.tanh(self.pos(h)).flatten(1)             # (n, 4, 5) -> (n, 20)
        h = self.ln(F.relu(self.bn1d(self.fc(h))))         # (n, 10)
        h = torch.tanh(self.twice(torch.tanh(self.twice(h))))
        h = torch.tanh(self.src(h)) + torch.tanh(self.twin(h))
        return self.head(h)


def _torchvision_resnet() -> nn.Module:
    import torchvision

    m = torchvision.models.resnet18(num_classes=3)
    for name, p in m.named_parameters():  # keep P small: train stem, layer1, layer4 BN, layer2 shortcut, fc
        keep = name.startswith(("conv1", "bn1", "layer1", "fc", "layer2.0.downsample")) or \
            (name.startswith("layer4") and ".bn" in name)
        p.requires_grad_(keep)
    return m


def _linear_bias_variants() -> nn.Module:
    """Linear layers in the gram mode without a bias, with a frozen bias and with a trainable one."""
    m = nn.Sequential(nn.Flatten(), nn.Linear(32, 8, bias=False), nn.ReLU(), nn.Linear(8, 8), nn.Tanh(),
                      nn.Linear(8, 3))
    m[3].bias.requires_grad_(False)
    return m


BUILDERS = {
    "fcn": lambda: init_model(ModelSpec("fcn", 8, (2, 4, 4), 3), 0),
    "fcn_ntk": lambda: init_model(ModelSpec("fcn", 8, (2, 4, 4), 3, parameterization="ntk"), 0),
    "convnet": lambda: init_model(ModelSpec("convnet", 4, (3, 6, 6), 3, depth=3), 0),
    "resnet18": lambda: init_model(ModelSpec("resnet18", 2, (3, 8, 8), 3), 0),
    "wrn16": lambda: init_model(ModelSpec("wrn16", 1, (3, 8, 8), 3), 0),
    "tv_resnet18": _torchvision_resnet,
    "mixed": Mixed,
    "linear_bias_variants": _linear_bias_variants,
}
IN_SHAPES = {"fcn": (2, 4, 4), "fcn_ntk": (2, 4, 4), "linear_bias_variants": (2, 4, 4), "convnet": (3, 6, 6),
             "resnet18": (3, 6, 6), "wrn16": (3, 6, 6)}


@functools.lru_cache(maxsize=None)
def model_and_data(name: str, dtype: torch.dtype = torch.float64):
    """Model in train mode with non-trivial BatchNorm statistics, plus inputs x1 (N1, ...), x2 (N2, ...)."""
    torch.manual_seed(1)
    model = BUILDERS[name]().to(dtype)
    shape = IN_SHAPES.get(name, (3, 8, 8))
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(2.0 * torch.randn(8, *shape, dtype=dtype) + 0.5)
    g = torch.Generator().manual_seed(2)
    x1 = torch.randn(N1, *shape, generator=g, dtype=dtype)
    x2 = torch.randn(N2, *shape, generator=g, dtype=dtype)
    return model, x1, x2


@functools.lru_cache(maxsize=None)
def reference_entk(name: str, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Reference eNTK on cat(x1, x2): (N1 + N2, N1 + N2, O, O), computed once per model."""
    model, x1, x2 = model_and_data(name, dtype)
    return empirical_kernel(model, torch.cat([x1, x2]), kind="entk", method="reference")


def reference(name: str, kind: str, rect: bool, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The reference kernel of ``kind``, derived here from the eNTK by the kinds' definitions."""
    e = reference_entk(name, dtype)
    e = e[:N1, N1:] if rect else e[:N1, :N1]  # (N1, N2 or N1, O, O)
    o = e.shape[-1]
    return {"entk": e, "pntk": e.sum((2, 3)) / o, "first_logit": e[:, :, 0, 0],
            "trace": torch.diagonal(e, dim1=2, dim2=3).sum(-1) / o}[kind]


def batch_for(kind: str, num_outputs: int = 3) -> int:
    """batch_size giving blocks of 4 samples per side (rows R = O for entk/trace): x1 in [4, 1]."""
    return 8 * (num_outputs if kind in ("entk", "trace") else 1)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


@pytest.mark.parametrize("rect", [False, True], ids=["sym", "rect"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", ["jacobian", "structured"])
@pytest.mark.parametrize("name", list(BUILDERS))
def test_matches_reference(name, method, kind, rect):
    model, x1, x2 = model_and_data(name)
    k = empirical_kernel(model, x1, x2 if rect else None, kind=kind, method=method, batch_size=batch_for(kind))
    ref = reference(name, kind, rect)
    n2 = N2 if rect else N1
    assert k.shape == ((N1, n2, 3, 3) if kind == "entk" else (N1, n2))
    assert k.dtype == torch.float64
    assert ref.norm() > 0
    assert rel_err(k, ref) <= 1e-10


@pytest.mark.parametrize("kind", ["entk", "pntk"])
@pytest.mark.parametrize("name", list(BUILDERS))
def test_auto_matches_reference(name, kind):
    model, x1, x2 = model_and_data(name)
    k = empirical_kernel(model, x1, x2, kind=kind, batch_size=batch_for(kind))  # method="auto"
    assert rel_err(k, reference(name, kind, True)) <= 1e-10


def test_auto_picks_jacobian_when_nothing_is_structured():
    model = VecScale().double()  # a custom parameter only: everything falls back
    x = torch.randn(4, 3, dtype=torch.float64)
    plan = structured.make_plan(model, x, None, jacobian_rows("pntk", 3, torch.float64, x.device))
    assert plan.layers == [] and plan.fallback == ["scale"] and not plan.cheaper_than_jacobian
    ref = empirical_kernel(model, x, method="reference")
    assert rel_err(empirical_kernel(model, x), ref) <= 1e-12
    assert rel_err(empirical_kernel(model, x, method="structured"), ref) <= 1e-12


@pytest.mark.parametrize("mode", ["gram", "explicit", "pairs"])
@pytest.mark.parametrize("kind", ["entk", "trace"])
@pytest.mark.parametrize("name", ["mixed", "resnet18", "fcn_ntk"])
def test_structured_modes(name, kind, mode):
    """Every Linear/Conv2d forced into one mode (gram: where L = 1 and g = 1) still matches."""
    model, x1, x2 = model_and_data(name)
    jrows = jacobian_rows(kind, 3, torch.float64, x1.device)
    model.eval()
    try:
        plan = structured.make_plan(model, x1, x2, jrows)
        modes = {layer.mode for layer in plan.layers}
        for layer in plan.layers:
            g, length = layer.shape[:2]
            if layer.rule != "bn" and layer.weight and (mode != "gram" or (g == 1 and length == 1)):
                layer.mode = mode
        k = structured.kernel(model, x1, x2, jrows=jrows, batch_size=batch_for(kind), plan=plan)
    finally:
        model.train()
    assert rel_err(k, reference(name, kind, True)) <= 1e-10
    if name == "fcn_ntk":  # NTKLinear (scaled weights) has a layer rule: nothing falls back
        assert plan.fallback == [] and len(plan.layers) == 3 and plan.layers[0].scale_w != 1.0
    if name == "mixed":  # the plan really exercises several rules and a fallback
        assert "gram" in modes and "bn" in modes
        assert {"twice.weight", "twice.bias", "src.weight", "scale.scale", "gn.weight", "ln.bias"} <= set(plan.fallback)
        assert "conv1.bias" not in plan.fallback and "twin.bias" not in plan.fallback


def test_plan_of_resnet_uses_both_conv_modes():
    model, x1, _ = model_and_data("resnet18")
    model.eval()
    try:
        plan = structured.make_plan(model, x1, None, jacobian_rows("entk", 3, torch.float64, x1.device))
    finally:
        model.train()
    assert {"explicit", "pairs", "gram", "bn"} <= {layer.mode for layer in plan.layers}
    assert plan.fallback == [] and plan.cheaper_than_jacobian


@pytest.mark.parametrize("method", ["reference", "jacobian", "structured"])
def test_kinds_follow_their_definitions(method):
    model, x1, x2 = model_and_data("mixed")
    e = empirical_kernel(model, x1, x2, kind="entk", method=method)  # (N1, N2, O, O)
    o = e.shape[-1]
    kinds = {k: empirical_kernel(model, x1, x2, kind=k, method=method) for k in ("pntk", "first_logit", "trace")}
    assert rel_err(kinds["pntk"], e.sum((2, 3)) / o) <= 1e-10
    assert rel_err(kinds["first_logit"], e[:, :, 0, 0]) <= 1e-10
    assert rel_err(kinds["trace"], torch.diagonal(e, dim1=2, dim2=3).mean(-1)) <= 1e-10


@pytest.mark.parametrize("method", ["reference", "jacobian", "structured"])
def test_affine_model_has_closed_form(method):
    """f(x) = W x + b: Θ_ab(x, x') = δ_ab (x·x' + 1), independently of the reference."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 4)).double()
    x1, x2 = torch.randn(5, 2, 3, dtype=torch.float64), torch.randn(3, 2, 3, dtype=torch.float64)
    gram = x1.flatten(1) @ x2.flatten(1).T + 1.0  # (N1, N2)
    e = empirical_kernel(model, x1, x2, kind="entk", method=method)
    assert rel_err(e, gram[:, :, None, None] * torch.eye(4, dtype=torch.float64)) <= 1e-12
    assert rel_err(empirical_kernel(model, x1, x2, kind="pntk", method=method), gram) <= 1e-12


@pytest.mark.parametrize("kind", ["entk", "pntk"])
@pytest.mark.parametrize("method", ["jacobian", "structured"])
def test_float32(method, kind):
    model, x1, x2 = model_and_data("mixed", torch.float32)
    k = empirical_kernel(model, x1, x2, kind=kind, method=method, batch_size=batch_for(kind))
    assert k.dtype == torch.float32
    assert rel_err(k, reference("mixed", kind, True, torch.float32)) <= 1e-4


@pytest.mark.parametrize("kind", ["entk", "trace"])
@pytest.mark.parametrize("method", ["reference", "jacobian", "structured"])
def test_symmetric_result_is_exactly_symmetric(method, kind):
    model, x1, _ = model_and_data("convnet")
    k = empirical_kernel(model, x1, kind=kind, method=method, batch_size=batch_for(kind))
    kt = k.transpose(0, 1)
    kt = kt.transpose(2, 3) if kind == "entk" else kt
    assert torch.equal(k, kt)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("method", FAST)
def test_cuda_matches_cpu(method):
    model, x1, x2 = model_and_data("resnet18")
    ref = reference("resnet18", "pntk", True)
    k = empirical_kernel(model.cuda(), x1.cuda(), x2.cuda(), kind="pntk", method=method)
    model.cpu()
    assert k.device.type == "cuda"
    assert rel_err(k.cpu(), ref) <= 1e-10

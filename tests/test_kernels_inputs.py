"""empirical_kernel on bad inputs (non-finite, integer, wrong shape, attention), its progress lines, and
the engine's FLOP model (flop_count) against counts by hand."""
from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

from pntk.kernels import _progress, empirical_kernel, flop_count

pytestmark = pytest.mark.usefixtures("one_thread")


def mlp(din: int = 64, width: int = 8, out: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(din, width), nn.ReLU(), nn.Linear(width, out)).double()


class Attention(nn.Module):
    """Self-attention over a sequence (n, L, E) and a Linear readout of the mean token."""

    def __init__(self, embed: int = 4, out: int = 3):
        super().__init__()
        self.attn = nn.MultiheadAttention(embed, 2, batch_first=True)
        self.head = nn.Linear(embed, out)

    def forward(self, x):  # (n, L, E) -> (n, O)
        h, _ = self.attn(x, x, x, need_weights=False)
        return self.head(h.mean(1))


# ----------------------------------------------------------------------------- non-finite inputs
@pytest.mark.parametrize("method", ["reference", "jacobian", "structured", "auto"])
@pytest.mark.parametrize("which", ["x1", "x2"])
def test_non_finite_inputs_are_named(method, which):
    x1, x2 = torch.randn(4, 64, dtype=torch.float64), torch.randn(3, 64, dtype=torch.float64)
    bad = x1 if which == "x1" else x2
    bad[2, 5], bad[2, 7], bad[1, 0] = float("nan"), float("inf"), -float("inf")
    with pytest.raises(ValueError, match=rf"{which} has 3 non-finite value\(s\).*first in sample 1"):
        empirical_kernel(mlp(), x1, x2, method=method)


def test_values_that_overflow_the_parameters_dtype_are_named():
    x = torch.full((2, 64), 1e300, dtype=torch.float64)  # finite in float64, inf in float32
    msg = r"x1 has 128 non-finite .*, after conversion from torch.float64 to the parameters' torch.float32"
    with pytest.raises(ValueError, match=msg):
        empirical_kernel(mlp().float(), x)


def test_finite_inputs_whose_sum_overflows_are_accepted():
    class Shrink(nn.Module):
        def forward(self, x):
            return x * 1e-30

    x = torch.full((2, 64), 3e38, dtype=torch.float32)  # the sum is inf, every entry finite
    model = nn.Sequential(Shrink(), nn.Linear(64, 2)).float()
    assert empirical_kernel(model, x).isfinite().all()


# ----------------------------------------------------------------------------- forward failures
def test_integer_input_names_the_dtypes_after_the_models_own_error():
    x = torch.randint(0, 16, (3, 64))  # right shape, Long instead of Float
    with pytest.raises(ValueError) as info:
        empirical_kernel(mlp(), x)
    msg = str(info.value)
    assert "x1 has dtype torch.int64 but the model's parameters are torch.float64" in msg
    own = msg.index("RuntimeError:")  # the model's own error comes first, then the cause
    assert own < msg.index("cause:") < msg.index("layer '0' (Linear) expects 64 features")


@pytest.mark.parametrize("method", ["jacobian", "structured"])
def test_integer_inputs_are_fine_where_the_model_takes_them(method):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(10, 4), nn.Flatten(), nn.Linear(12, 3)).double()
    x1, x2 = torch.randint(0, 10, (4, 3)), torch.randint(0, 10, (2, 3))
    ref = empirical_kernel(model, x1, x2, kind="entk", method="reference")
    k = empirical_kernel(model, x1, x2, kind="entk", method=method)
    assert ((k - ref).norm() / ref.norm()).item() <= 1e-12


def test_float_input_into_an_embedding_names_the_embedding():
    model = nn.Sequential(nn.Embedding(10, 4), nn.Flatten(), nn.Linear(12, 3)).double()
    with pytest.raises(ValueError, match=r"layer '0' \(Embedding\) expects integer indices in 0..9"):
        empirical_kernel(model, torch.rand(2, 3))


def test_integer_x2_with_floating_x1_is_named():
    with pytest.raises(ValueError, match="x2 has dtype torch.int64 but x1 has torch.float32"):
        empirical_kernel(mlp(), torch.randn(2, 64), torch.randint(0, 3, (2, 64)))


def test_wrong_shape_shows_the_models_error_then_the_first_layer():
    with pytest.raises(ValueError) as info:
        empirical_kernel(mlp(), torch.randn(3, 63, dtype=torch.float64))
    msg = str(info.value)
    assert "per-sample shape (63,)" in msg and "dtype" in msg and "cause:" not in msg
    assert msg.index("RuntimeError:") < msg.index("layer '0' (Linear) expects 64 features in the last dim")


def test_attention_hint_names_the_attention_not_its_inner_linear():
    x = torch.randn(2, 5, 6, dtype=torch.float64)  # embed 6, the attention expects 4
    with pytest.raises(ValueError) as info:
        empirical_kernel(Attention().double(), x)
    msg = str(info.value)
    assert "layer 'attn' (MultiheadAttention) expects embed_dim = 4" in msg
    assert "NonDynamicallyQuantizableLinear" not in msg and "out_proj" not in msg


def test_failure_deeper_in_the_model_names_where_it_failed():
    class Deep(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(4, 5), nn.Sequential(nn.ReLU(), nn.Linear(6, 2))

        def forward(self, x):
            return self.b(self.a(x))

    with pytest.raises(ValueError) as info:
        empirical_kernel(Deep().double(), torch.randn(2, 4, dtype=torch.float64))
    msg = str(info.value)
    assert "layer 'a' (Linear) expects 4 features" in msg and "failed inside 'b.1' (Linear)" in msg


@pytest.mark.parametrize("method", ["jacobian", "structured", "auto"])
def test_attention_model_matches_reference(method):
    """nn.MultiheadAttention has no layer rule: its parameters fall back to per-sample gradients."""
    model = Attention().double()
    x1, x2 = torch.randn(3, 5, 4, dtype=torch.float64), torch.randn(2, 5, 4, dtype=torch.float64)
    ref = empirical_kernel(model, x1, x2, kind="entk", method="reference")
    k = empirical_kernel(model, x1, x2, kind="entk", method=method)
    assert ((k - ref).norm() / ref.norm()).item() <= 1e-10


# ----------------------------------------------------------------------------- progress
def _kernel_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "pntk.kernels"]


def test_progress_lines_with_an_eta_when_asked(caplog):
    caplog.set_level(logging.INFO, logger="pntk.kernels")
    x = torch.randn(40, 64, dtype=torch.float64)
    k = empirical_kernel(mlp(), x, method="jacobian", batch_size=8, progress=True)  # 10 blocks: 55 pairs
    lines = _kernel_lines(caplog)
    assert lines and all("ETA" in line and "elapsed" in line for line in lines)
    assert lines[-1].startswith("kernel 40×40 in 55 block pairs: 100 %")
    assert len(lines) <= 21  # one per 5 % at most
    assert torch.allclose(k, empirical_kernel(mlp(), x, method="jacobian", progress=False), rtol=1e-12)


@pytest.mark.parametrize("progress, quiet_for", [(False, 0.0), (None, 1e9)])
def test_no_progress_lines_when_off_or_short(caplog, monkeypatch, progress, quiet_for):
    monkeypatch.setattr(_progress, "QUIET_FOR_S", quiet_for)  # None: a call shorter than this says nothing
    monkeypatch.setattr(_progress, "MIN_GAP_S", 0.0)
    caplog.set_level(logging.INFO, logger="pntk.kernels")
    empirical_kernel(mlp(), torch.randn(40, 64, dtype=torch.float64), method="jacobian", batch_size=8,
                     progress=progress)
    assert _kernel_lines(caplog) == []


def test_default_progress_speaks_once_a_call_lasts(caplog, monkeypatch):
    monkeypatch.setattr(_progress, "QUIET_FOR_S", 0.0)
    monkeypatch.setattr(_progress, "MIN_GAP_S", 0.0)
    caplog.set_level(logging.INFO, logger="pntk.kernels")
    empirical_kernel(mlp(), torch.randn(40, 64, dtype=torch.float64), method="jacobian", batch_size=8)
    assert _kernel_lines(caplog) and "ETA" in _kernel_lines(caplog)[-1]


# ----------------------------------------------------------------------------- FLOP model
def _fcn(dims=(12, 7, 5, 3), bias=(True, False, True)) -> nn.Module:
    layers: list[nn.Module] = [nn.Flatten()]
    for k, (i, o) in enumerate(zip(dims[:-1], dims[1:])):
        layers += [nn.Linear(i, o, bias=bias[k]), nn.ReLU()]
    return nn.Sequential(*layers[:-1]).double()


@pytest.mark.parametrize("kind,r", [("pntk", 1), ("entk", 3)])
@pytest.mark.parametrize("sym", [False, True])
def test_flop_model_of_linear_layers_is_two_gemms_per_pair(kind, r, sym):
    """pNTK of a Linear layer: (A₁A₂ᵀ + 1)∘(Δ₁Δ₂ᵀ) — 2·din + 2·R²·dout FLOPs per pair for the GEMMs,
    R² multiply-adds for the Hadamard product, one add for the bias; no per-sample gradients."""
    dims, bias = (12, 7, 5, 3), (True, False, True)
    n1, n2 = 6, (6 if sym else 4)
    x1, x2 = torch.randn(n1, 3, 4, dtype=torch.float64), torch.randn(n2, 3, 4, dtype=torch.float64)
    f = flop_count(_fcn(dims, bias), x1, None if sym else x2, kind=kind)
    layers = list(zip(dims[:-1], dims[1:]))
    n_feat = n1 if sym else n1 + n2
    pairs = n1 * (n1 + 1) / 2 if sym else n1 * n2
    assert f["forward"] == sum(2.0 * n_feat * i * o for i, o in layers)
    assert f["backward"] == sum(2.0 * r * n_feat * i * o for i, o in layers[1:])  # not into the input
    assert f["per_sample_gradients"] == 0.0
    gemms = sum(2.0 * pairs * (i + r * r * o) for i, o in layers)
    assert f["contraction"] == gemms + 2.0 * pairs * r * r * len(layers) + pairs * sum(bias)
    assert f["total"] == f["forward"] + f["backward"] + f["contraction"]


def test_flop_model_counts_fallback_and_explicit_work():
    f = flop_count(Attention().double(), torch.randn(3, 5, 4, dtype=torch.float64))
    p_attn = sum(p.numel() for p in Attention().attn.parameters())
    assert f["contraction"] >= 2.0 * 6 * p_attn  # the attention's parameters: 6 sample pairs
    assert f["per_sample_gradients"] > 0

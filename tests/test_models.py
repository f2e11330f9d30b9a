"""pntk.models: every arch builds for small and CIFAR-sized inputs; seeded init; readout width; errors."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pntk.models import ARCHS, ModelSpec, NTKLinear, build_model, init_model, readout_width

# Small widths keep the CIFAR-sized forward passes cheap (wrn16 width = widening factor k).
SMALL_WIDTH = {"fcn": 8, "convnet": 4, "resnet18": 2, "wrn16": 1}


def spec(arch="fcn", width=None, in_shape=(1, 8, 8), num_classes=10, **kw) -> ModelSpec:
    return ModelSpec(arch=arch, width=SMALL_WIDTH[arch] if width is None else width, in_shape=in_shape,
                     num_classes=num_classes, **kw)


@pytest.mark.parametrize("in_shape", [(1, 8, 8), (3, 32, 32)], ids=["8x8", "32x32"])
@pytest.mark.parametrize("arch", ARCHS)
def test_every_arch_builds_and_outputs_n_by_classes(arch, in_shape):
    model = init_model(spec(arch, in_shape=in_shape, num_classes=7), seed=0)
    x = torch.randn(3, *in_shape)
    for mode in (model.train, model.eval):
        mode()
        out = model(x)
        assert out.shape == (3, 7)
        assert torch.isfinite(out).all()
    assert isinstance(model.readout, nn.Linear) and model.readout.out_features == 7


@pytest.mark.parametrize("arch", ARCHS)
def test_float64_forward_and_backward(arch):
    model = init_model(spec(arch), seed=1).double().eval()
    out = model(torch.randn(2, 1, 8, 8, dtype=torch.float64))
    assert out.dtype == torch.float64
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("arch", ARCHS)
def test_init_model_is_deterministic_by_seed(arch):
    a, b, c = (init_model(spec(arch), s) for s in (3, 3, 4))
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa if sa[k].is_floating_point())


def test_init_model_leaves_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(5)
    torch.manual_seed(123)
    init_model(spec("fcn"), seed=7)
    assert torch.equal(torch.rand(5), expected)


@pytest.mark.parametrize("arch, width, expected", [("fcn", 12, 12), ("convnet", 6, 6), ("resnet18", 2, 16),
                                                   ("wrn16", 2, 128)])
def test_readout_width(arch, width, expected):
    model = init_model(spec(arch, width=width), 0)
    assert readout_width(model) == expected
    assert model.readout.in_features == expected


def test_readout_width_of_ntk_fcn_and_depth_one_fcn():
    assert readout_width(init_model(spec("fcn", width=20, parameterization="ntk"), 0)) == 20
    assert readout_width(init_model(spec("fcn", width=20, depth=1), 0)) == 64  # no hidden layer: 1*8*8 inputs


@pytest.mark.parametrize("depth", [1, 2, 3, 5])
def test_fcn_depth_counts_linear_layers(depth):
    model = init_model(spec("fcn", depth=depth), 0)
    assert sum(isinstance(m, nn.Linear) for m in model.modules()) == depth


@pytest.mark.parametrize("depth", [1, 2, 3, 8])
def test_convnet_depths(depth):
    model = init_model(spec("convnet", depth=depth), 0)
    assert sum(isinstance(m, nn.Conv2d) for m in model.modules()) == depth
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_wrn16_depth_10_has_one_block_per_stage():
    model = init_model(spec("wrn16", depth=10), 0)
    assert len(model.blocks) == 3
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_ntk_parameterization_fcn_forward():
    sp = spec("fcn", width=32, parameterization="ntk", depth=3)
    model = init_model(sp, 0)
    layers = list(model.hidden) + [model.readout]
    assert all(isinstance(m, NTKLinear) for m in layers)
    # weights and biases are N(0, 1); the scale sits in the forward pass
    w = torch.cat([m.weight.flatten() for m in layers])
    assert abs(w.mean().item()) < 0.1 and abs(w.std().item() - 1) < 0.1
    x = torch.randn(4, 1, 8, 8)
    h = x.flatten(1)
    for m in layers[:-1]:
        h = F.relu(h @ (m.weight.T * math.sqrt(2.0) / math.sqrt(m.weight.shape[1])) + 0.1 * m.bias)
    expected = h @ (layers[-1].weight.T * math.sqrt(2.0) / math.sqrt(32)) + 0.1 * layers[-1].bias
    torch.testing.assert_close(model(x), expected)
    assert model(x).shape == (4, 10)


def test_ntk_parameterization_output_scale_does_not_grow_with_width():
    x = torch.randn(64, 1, 8, 8)
    scales = [init_model(spec("fcn", width=w, parameterization="ntk"), 0)(x).std().item() for w in (16, 1024)]
    assert 0.25 < scales[1] / scales[0] < 4


@pytest.mark.parametrize("kw, key", [
    (dict(arch="mlp", width=8), "models.arch"),
    (dict(arch="fcn", width=0), "models.widths"),
    (dict(arch="fcn", width=-4), "models.widths"),
    (dict(arch="fcn", width=8, parameterization="mup"), "models.parameterization"),
    (dict(arch="convnet", width=8, parameterization="ntk"), "models.parameterization"),
    (dict(arch="resnet18", width=8, parameterization="ntk"), "models.parameterization"),
    (dict(arch="fcn", width=8, depth=0), "models.depth"),
    (dict(arch="wrn16", width=1, depth=15), "models.depth"),
], ids=["unknown-arch", "width-0", "width-negative", "unknown-param", "ntk-convnet", "ntk-resnet", "depth-0",
        "wrn-depth"])
def test_bad_specs_raise_naming_the_key(kw, key):
    sp = ModelSpec(in_shape=(1, 8, 8), num_classes=10, **kw)
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        build_model(sp)
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        init_model(sp, 0)


# ------------------------------------------------------------------------------------------------
# Initialisation (issue 13: ConvNet-8 under PyTorch's default init never learned)


@pytest.mark.parametrize("in_shape", [(1, 8, 8), (3, 32, 32)], ids=["8x8", "32x32"])
@pytest.mark.parametrize("seed", [0, 1])
def test_convnet8_keeps_the_input_signal_to_its_last_layer(in_shape, seed):
    """How much the last hidden layer varies across inputs, relative to the inputs' variation.

    Under PyTorch's default init (weight variance 1/(3 fan_in)) this ratio is ~1.5e-4 at depth 8: every input
    gives the same features and SGD cannot start. He init keeps it at 0.08-0.3 (ReLU correlation and zero
    padding still shrink it somewhat)."""
    model = init_model(spec("convnet", width=32, in_shape=in_shape, depth=8), seed)
    x = torch.randn(64, *in_shape, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        h = model.features(x)  # (64, 32, h, w) last hidden layer, after its ReLU
    signal_ratio = (h.std(dim=0).mean() / x.std(dim=0).mean()).item()
    assert signal_ratio > 0.03


def _weight_variance(layer: nn.Module) -> float:
    return layer.weight.detach().double().var().item()


def _fans(layer: nn.Module) -> tuple[int, int]:
    w = layer.weight
    receptive = w[0, 0].numel() if w.dim() > 2 else 1
    return w.shape[1] * receptive, w.shape[0] * receptive  # fan_in, fan_out


@pytest.mark.parametrize("arch, width, mode", [("fcn", 256, "fan_in"), ("convnet", 64, "fan_in"),
                                               ("resnet18", 8, "fan_out"), ("wrn16", 2, "fan_out")])
def test_relu_layers_have_he_variance_and_zero_bias(arch, width, mode):
    """He et al. 2015: Var W = 2 / fan (fan_in for FCN and ConvNet; fan_out for torchvision's ResNet and WRN)."""
    model = init_model(spec(arch, width=width, in_shape=(3, 32, 32)), 0)
    layers = [m for name, m in model.named_modules()
              if isinstance(m, (nn.Linear, nn.Conv2d)) and not name.startswith("readout")]
    assert layers
    for layer in layers:
        fan_in, fan_out = _fans(layer)
        expected = 2.0 / (fan_in if mode == "fan_in" else fan_out)
        # sampling error of a variance estimate from n draws is ~sqrt(2/n) relative; every layer here has n >= 432
        assert _weight_variance(layer) == pytest.approx(expected, rel=0.25), layer
        if layer.bias is not None:
            assert not layer.bias.any()


@pytest.mark.parametrize("arch", ["fcn", "convnet"])
def test_readout_is_lecun_with_zero_bias(arch):
    model = init_model(spec(arch, width=512, in_shape=(1, 8, 8), num_classes=10), 0)
    assert _weight_variance(model.readout) == pytest.approx(1 / 512, rel=0.1)
    assert not model.readout.bias.any()


@pytest.mark.parametrize("arch", ["resnet18", "wrn16"])
def test_batchnorm_starts_as_identity(arch):
    model = init_model(spec(arch, in_shape=(3, 32, 32)), 0)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(torch.equal(b.weight, torch.ones_like(b.weight)) for b in bns)
    assert all(not b.bias.any() for b in bns)


def test_wrn16_readout_bias_is_zero():
    assert not init_model(spec("wrn16", in_shape=(3, 32, 32)), 0).readout.bias.any()


@pytest.mark.parametrize("depth", [3, 8])
def test_fcn_keeps_the_scale_of_its_input(depth):
    """He init: each ReLU layer keeps the second moment of its input, so the readout sees O(1) features."""
    model = init_model(spec("fcn", width=1024, depth=depth), 0)
    x = torch.randn(256, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    h = x.flatten(1)  # (256, 64)
    with torch.no_grad():
        for layer in model.hidden:
            h = F.relu(layer(h))  # (256, 1024)
    ratio = (h.pow(2).mean() / x.pow(2).mean()).item()
    assert 0.5 < ratio < 2.0


# ------------------------------------------------------------------------------------------------
# ModelSpec as checkpoints store it; the readout width read from the model


def test_spec_round_trips_through_plain_containers():
    sp = ModelSpec("my_models:small_cnn", 8, (1, 8, 8), 10, name="cnn", kwargs={"depth": 2, "act": [1, 2]},
                   python_path=("/a/b",))
    d = sp.to_dict()
    assert d["in_shape"] == [1, 8, 8] and d["python_path"] == ["/a/b"] and d["kwargs"] == {"depth": 2, "act": [1, 2]}
    assert ModelSpec.from_dict(d) == sp
    old = {"arch": "fcn", "width": 8, "in_shape": (1, 8, 8), "num_classes": 10, "depth": None,
           "parameterization": "standard"}  # a checkpoint written before name/kwargs existed
    assert ModelSpec.from_dict(old).run_name == "fcn" and not ModelSpec.from_dict(old).imported


@pytest.mark.parametrize("arch, kw", [("fcn", {}), ("fcn", {"depth": 1}), ("fcn", {"parameterization": "ntk"}),
                                      ("convnet", {}), ("resnet18", {}), ("wrn16", {})])
def test_readout_width_of_spec_equals_the_built_model(arch, kw):
    from pntk.models import readout_width_of

    sp = spec(arch, **kw)
    assert readout_width_of(sp) == readout_width(init_model(sp, 0))


def test_readout_width_is_the_last_linear_layer():
    model = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3))
    assert readout_width(model) == 7
    assert readout_width(nn.Sequential(nn.Conv2d(1, 2, 3))) is None

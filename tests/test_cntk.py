"""The ConvNet's analytic infinite-width NTK (pntk.analysis.cntk): the pruned, separable recursion against the
plain one over every position pair, and finite NTK-parameterised ConvNets against it as they widen."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pntk.analysis.cntk import cpu_seconds, entries_per_pair, relu_cnn_gap_kernels
from pntk.analysis.cntk_reference import reference_kernels
from pntk.analysis.infinite import analytic_ntk, infinite_regression
from pntk.kernels import empirical_kernel
from pntk.models import ConvNet, convnet_strides


def images(n, shape, seed, zero_rows=0):
    x = torch.randn(n, *shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    x[:, :, :zero_rows] = 0  # patches of zeros: positions of variance 0 in the first layer
    return x


@pytest.mark.parametrize("shape,depth", [((1, 8, 8), 8), ((2, 6, 6), 3), ((3, 7, 5), 4), ((1, 9, 9), 6),
                                         ((2, 5, 5), 1)])
def test_the_pruned_recursion_equals_the_one_over_every_position_pair(shape, depth):
    x1, x2 = images(5, shape, 0, zero_rows=2), images(3, shape, 1)
    x2[0] = x1[1]  # one image on both sides
    for got, want in ((relu_cnn_gap_kernels(x1, x2, depth=depth, block=2), reference_kernels(x1, x2, depth)),
                      (relu_cnn_gap_kernels(x1, depth=depth, block=2), reference_kernels(x1, x1, depth))):
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14 * np.abs(w).max())


def test_symmetric_blocks_and_working_precision():
    x = images(7, (1, 8, 8), 2, zero_rows=1)
    nngp, ntk = relu_cnn_gap_kernels(x, depth=8, block=3)
    assert np.array_equal(ntk, ntk.T) and np.array_equal(nngp, nngp.T)
    np.testing.assert_allclose(relu_cnn_gap_kernels(x, x, depth=8, block=7)[1], ntk, rtol=1e-13)
    threads = torch.get_num_threads()
    assert np.array_equal(relu_cnn_gap_kernels(x, depth=8, block=3, workers=2)[1], ntk)  # blocks on two threads
    assert torch.get_num_threads() == threads
    assert np.linalg.eigvalsh(ntk).min() > 0
    f32 = relu_cnn_gap_kernels(x, depth=8, dtype=torch.float32)[1]
    np.testing.assert_allclose(f32, ntk, rtol=1e-4)


@pytest.mark.parametrize("height,depth", [(8, 8), (9, 8), (16, 8), (28, 8), (32, 6), (8, 2), (5, 9)])
def test_the_kernel_walks_the_convnets_own_strides(height, depth):
    model = ConvNet((1, height, height), 4, 10, depth)
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    assert [m.stride[0] for m in convs] == convnet_strides(height, depth)
    out = model.features(torch.zeros(1, 1, height, height))
    # the last layer's positions are the pairs the pooled output averages
    assert entries_per_pair((1, height, height), depth) >= out.shape[2] ** 2 * out.shape[3] ** 2


class NTKConvNet(nn.Module):
    """The zoo's ConvNet geometry in NTK parameterization: weights N(0, 1), each conv scaled by σ_w/√(9·C_in)
    (σ_w² = 2), the readout by 1/√width, no biases: the network whose infinite-width limit the CNTK is."""

    def __init__(self, in_shape, width: int, depth: int, num_classes: int = 1):
        super().__init__()
        c, h, _ = in_shape
        self.strides = convnet_strides(h, depth)
        self.weights = nn.ParameterList(nn.Parameter(torch.randn(width, c if i == 0 else width, 3, 3))
                                        for i in range(depth))
        self.readout = nn.Parameter(torch.randn(num_classes, width))

    def forward(self, x):
        for w, s in zip(self.weights, self.strides):
            x = F.relu(F.conv2d(x, w, stride=s, padding=1) * math.sqrt(2.0 / (9 * w.shape[1])))
        return x.mean(dim=(2, 3)) @ self.readout.T / math.sqrt(self.readout.shape[1])  # (N, O)


@pytest.mark.slow
@pytest.mark.parametrize("shape,depth,widths,largest", [((1, 6, 6), 3, (32, 128, 512), 0.1),
                                                        ((1, 8, 8), 8, (32, 128, 512), 0.25)])
def test_finite_ntk_parameterised_convnets_approach_the_analytic_kernel(shape, depth, widths, largest):
    """A wrong recursion plateaus; the right one is approached at O(w^-½) (slower to start at depth 8: the
    finite-width correction grows with depth / width; measured 0.44, 0.37, 0.19 at widths 32, 128, 512)."""
    x = images(6, shape, 3, zero_rows=2)
    _, ntk = relu_cnn_gap_kernels(x, depth=depth)
    err = []
    for w in widths:
        errs = []
        for seed in range(6):
            torch.manual_seed(seed)
            model = NTKConvNet(shape, w, depth).double()
            emp = empirical_kernel(model, x, kind="pntk").numpy()  # one output: the pNTK is its NTK
            errs.append(np.linalg.norm(emp - ntk) / np.linalg.norm(ntk))
        err.append(float(np.mean(errs)))
    print(dict(zip(widths, err)))
    assert err == sorted(err, reverse=True) and err[-1] < largest, err
    slope = math.log(err[-1] / err[-2]) / math.log(widths[-1] / widths[-2])
    assert -0.8 < slope < -0.3, (slope, err)  # O(w^-½)


def test_the_analytic_regression_of_the_convnet_is_a_dense_solve_on_its_kernel():
    x = images(30, (1, 8, 8), 4)
    y = torch.randint(0, 3, (30,), generator=torch.Generator().manual_seed(0)).numpy()
    res = infinite_regression(x[:20], y[:20], x[20:], y[20:], arch="convnet", depth=4, num_classes=3,
                              memory_cap_bytes=2**30)
    k_dd, k_xd = analytic_ntk("convnet", 4, x[:20]), analytic_ntk("convnet", 4, x[20:], x[:20])
    pred = k_xd @ np.linalg.solve(k_dd, np.eye(3)[y[:20]])
    assert res["test_acc"] == float((pred.argmax(1) == y[20:]).mean())
    assert res["arch"] == "convnet" and res["depth"] == 4


def test_a_convnet_regression_beyond_its_budget_is_refused_with_the_estimate():
    x = images(30, (1, 8, 8), 4)
    y = np.zeros(30, dtype=int)
    with pytest.raises(ValueError, match=r"CPU-hours, above infinite.max_cntk_cpu_hours \(1e-06\)"):
        infinite_regression(x[:20], y[:20], x[20:], y[20:], arch="convnet", depth=8, num_classes=2,
                            memory_cap_bytes=2**30, max_cpu_hours=1e-6)
    assert cpu_seconds(1347, None, (1, 8, 8), 8) > cpu_seconds(450, 1347, (1, 8, 8), 8) > 0
    with pytest.raises(ValueError, match="no analytic infinite-width NTK of 'resnet18'"):
        analytic_ntk("resnet18", 18, x, x)

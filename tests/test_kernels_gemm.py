"""The GEMM forms of the structured method: position pairs (_pairs.py), lower-triangle contractions of
K(x, x), explicit conv gradients from patches — each against the reference in float64, in chunks as small as
they go (every chunk boundary, ragged last chunks), on models with padding, stride, groups, bias, GAP,
BatchNorm in eval mode and residuals (the builders of test_kernels.py)."""
from __future__ import annotations

import pytest
import torch
from test_kernels import model_and_data, reference, rel_err
from torch import nn

from pntk.kernels import _common, _layers, _pairs, empirical_kernel, structured
from pntk.kernels._common import contract_rows, jacobian_rows, mirror_lower


@pytest.fixture
def tiny_chunks(monkeypatch):
    """One sample per lower-triangle chunk, per side-2 chunk of position pairs and per patch chunk."""
    monkeypatch.setattr(_common, "TRI_ROWS", 1)
    monkeypatch.setattr(_pairs, "CHUNK_ELEMENTS", 1)
    monkeypatch.setattr(_layers, "PATCH_ELEMENTS", 1)


def forced(model, x1, x2, kind, mode, batch_size=None):
    jrows = jacobian_rows(kind, 3, torch.float64, x1.device)
    model.eval()
    try:
        plan = structured.make_plan(model, x1, x2, jrows)
        for layer in plan.layers:
            g, length = layer.shape[:2]
            if layer.rule != "bn" and layer.weight and (mode != "gram" or (g == 1 and length == 1)):
                layer.mode = mode
        return structured.kernel(model, x1, x2, jrows=jrows, batch_size=batch_size, plan=plan)
    finally:
        model.train()


@pytest.mark.parametrize("chunks", ["tiny", "default"])
@pytest.mark.parametrize("mode", ["explicit", "pairs"])
@pytest.mark.parametrize("kind", ["entk", "trace", "pntk"])
@pytest.mark.parametrize("name", ["mixed", "convnet", "resnet18", "wrn16"])
def test_symmetric_kernel_from_its_lower_triangle(request, name, kind, mode, chunks):
    """x2 = None: every term contracts only pairs n ≥ m (in one block: the whole of x1) and is mirrored."""
    if chunks == "tiny":
        request.getfixturevalue("tiny_chunks")
    model, x1, _ = model_and_data(name)
    k = forced(model, x1, None, kind, mode)
    assert rel_err(k, reference(name, kind, False)) <= 1e-10
    assert torch.equal(k, k.transpose(0, 1).transpose(2, 3) if k.dim() == 4 else k.T)  # exactly symmetric


@pytest.mark.parametrize("mode", ["gram", "explicit", "pairs"])
@pytest.mark.parametrize("kind", ["entk", "trace", "pntk", "first_logit"])
@pytest.mark.parametrize("name", ["mixed", "resnet18", "fcn_ntk"])
def test_rectangular_kernel_in_tiny_chunks(tiny_chunks, name, kind, mode):
    model, x1, x2 = model_and_data(name)
    assert rel_err(forced(model, x1, x2, kind, mode), reference(name, kind, True)) <= 1e-10


@pytest.mark.parametrize("method", ["reference", "jacobian", "structured"])
def test_lower_triangle_across_blocks(tiny_chunks, method):
    """Blocks of 2 samples (ragged last block) with chunked diagonal blocks: the same kernel."""
    model, x1, _ = model_and_data("convnet")
    k = empirical_kernel(model, x1, kind="entk", method=method, batch_size=12)
    assert rel_err(k, reference("convnet", "entk", False)) <= 1e-10


@pytest.mark.parametrize("rows", [1, 3])
def test_mirror_lower_is_exactly_symmetric(tiny_chunks, rows):
    j = torch.randn(7, rows, 11, dtype=torch.float64)
    full = contract_rows(j, j, diagonal=False)  # (7, 7, R, R), every pair
    low = contract_rows(j, j, diagonal=False, lower=True)
    torch.testing.assert_close(low, full, rtol=1e-13, atol=1e-13)
    assert torch.equal(low, low.transpose(0, 1).transpose(2, 3))
    garbage = full.clone()
    garbage[torch.triu_indices(7, 7, 1).unbind()] = float("nan")  # the strict upper triangle is never read
    assert torch.equal(mirror_lower(garbage), mirror_lower(full))


@pytest.mark.parametrize("conv", [
    dict(in_channels=4, out_channels=6, kernel_size=3, padding=1),
    dict(in_channels=4, out_channels=6, kernel_size=3, stride=2, padding="valid", groups=2, bias=False),
    dict(in_channels=4, out_channels=4, kernel_size=(2, 3), dilation=(1, 2), padding="same", padding_mode="reflect"),
], ids=["same", "strided-groups", "dilated-reflect"])
@pytest.mark.parametrize("patches", [True, False], ids=["patches", "grouped-conv"])
def test_conv_weight_grad_paths(monkeypatch, conv, patches):
    """Both paths (patches + batched GEMM in chunks of 2 samples; a convolution with n·g groups) against
    per-sample autograd."""
    monkeypatch.setattr(_layers, "_from_patches", lambda *a: patches)
    torch.manual_seed(0)
    m = nn.Conv2d(**conv).double()
    x = torch.randn(5, 4, 7, 6, dtype=torch.float64)
    y = m(x)
    dy = torch.randn(5, 2, *y.shape[1:], dtype=torch.float64)  # (n, R, Cout, Ho, Wo)
    monkeypatch.setattr(_layers, "PATCH_ELEMENTS", 2 * y.shape[-1] * y.shape[-2] * m.weight[0].numel() * m.groups)
    got = _layers.conv_weight_grad(m, x, dy)  # (n, R, P_w)
    for n in range(5):
        for r in range(2):
            (gw,) = torch.autograd.grad(m(x[n:n + 1]), m.weight, dy[n:n + 1, r])
            torch.testing.assert_close(got[n, r], gw.reshape(-1), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("batch_size", [None, 12], ids=["one-block", "blocks"])
@pytest.mark.parametrize("rect", [False, True], ids=["sym", "rect"])
@pytest.mark.parametrize("method", ["reference", "jacobian", "structured", "auto"])
def test_flat_layout_is_the_entk_flattened(method, rect, batch_size):
    """layout="flat": (N1·O, N2·O) with row n·O + a, the same values; a single block comes back without a copy."""
    model, x1, x2 = model_and_data("convnet")
    pairs = empirical_kernel(model, x1, x2 if rect else None, kind="entk", method=method, batch_size=batch_size)
    flat = empirical_kernel(model, x1, x2 if rect else None, kind="entk", method=method, batch_size=batch_size,
                            layout="flat")
    n1, n2, o, _ = pairs.shape
    assert flat.shape == (n1 * o, n2 * o) and flat.is_contiguous()
    assert torch.equal(flat, pairs.permute(0, 2, 1, 3).reshape(n1 * o, n2 * o))
    if not rect:
        assert torch.equal(flat, flat.T)  # K(x, x) exactly symmetric in this layout too
    assert torch.equal(empirical_kernel(model, x1, kind="pntk", method=method, layout="flat"),
                       empirical_kernel(model, x1, kind="pntk", method=method))

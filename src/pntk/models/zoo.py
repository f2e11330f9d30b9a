"""Model zoo of the pNTK paper: FCN, ConvNet, ResNet-18 and WideResNet-16-k.

Every model takes images (N, C, H, W) of any size from 8×8 up to 32×32 and ends in a
dense readout ``nn.Linear(w_readout, num_classes)`` named ``readout``. Standard
parameterization, initialised the way each architecture's reference network is (each class's
docstring names its source), unless ``parameterization="ntk"`` (FCN only), where weights are
N(0, 1) and each layer's output is scaled by sigma_w / sqrt(fan_in).

Why not PyTorch's default init: it draws weights with variance 1/(3 fan_in), so each ReLU layer
multiplies the signal's second moment by about 1/6. Nets with BatchNorm renormalise, but in the
8-layer ConvNet without normalisation the input-dependent part of the last layer is ~1e-4 of the
input's (the biases' constant dominates): every image gets the same features and it never learned
(issue 13). He init keeps each layer's second moment, and that ratio at 0.1-0.3.

Width conventions (what "width w" means per architecture):
    fcn       hidden width w; depth = number of Linear layers (depth 3: in→w→w→O)
    convnet   channel width w of every conv layer; depth = number of conv layers
    resnet18  base channels w; stages (w, 2w, 4w, 8w); readout input 8w (paper default 64)
    wrn16     widening factor k; stages (16k, 32k, 64k); readout input 64k
An entry may instead name its own model by import path (`pntk.models.imported`); the width it receives is
whatever that callable makes of it, and the readout width is read from the built model.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import NTKLinear


def he_relu_(layer: nn.Linear | nn.Conv2d, mode: str = "fan_in") -> None:
    """He et al. 2015 ("Delving deep into rectifiers"): W ~ N(0, 2/fan), bias 0, for a layer followed
    by a ReLU; fan = fan_in keeps the forward signal's scale, fan_out the backward one's."""
    nn.init.kaiming_normal_(layer.weight, mode=mode, nonlinearity="relu")
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


def lecun_readout_(layer: nn.Linear) -> None:
    """LeCun et al. 1998 ("Efficient BackProp"): W ~ N(0, 1/fan_in), bias 0, for the linear readout (no
    ReLU after it, hence gain 1): logits start at the scale of the features."""
    nn.init.normal_(layer.weight, std=1.0 / math.sqrt(layer.in_features))
    nn.init.zeros_(layer.bias)


def init_residual_net_(model: nn.Module) -> None:
    """torchvision's ResNet init: He et al. 2015 with fan_out (N(0, 2/(k²·c_out))) for every conv,
    BatchNorm γ = 1, β = 0 (the identity at init); the readout keeps PyTorch's default."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            he_relu_(m, mode="fan_out")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class FCN(nn.Module):
    """ReLU MLP. Standard parameterization: He et al. 2015 (fan_in) for the hidden layers and LeCun
    (fan_in, gain 1) for the readout, biases 0 — σ_w² = 2 for ReLU, the scaling of the infinite-width
    analyses (Arora et al. 2019's c_σ = 2). NTK parameterization: `NTKLinear`, unchanged."""

    def __init__(self, in_features: int, width: int, num_classes: int, depth: int = 3,
                 parameterization: str = "standard"):
        super().__init__()
        make = (lambda i, o: NTKLinear(i, o)) if parameterization == "ntk" else nn.Linear
        dims = [in_features] + [width] * (depth - 1)
        self.hidden = nn.ModuleList(make(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.readout = make(dims[-1], num_classes)
        if parameterization == "standard":
            for layer in self.hidden:
                he_relu_(layer)
            lecun_readout_(self.readout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.flatten(1)  # (N, C*H*W)
        for layer in self.hidden:
            h = F.relu(layer(h))
        return self.readout(h)


def convnet_strides(height: int, depth: int) -> list[int]:
    """Strides of the ConvNet's `depth` convs on images of `height`: 2 at the layers depth//3 and 2*depth//3
    while the height is above 4, else 1 (the analytic CNTK, pntk.analysis.cntk, walks the same geometry)."""
    down_at = {depth // 3, 2 * depth // 3} if depth >= 3 else set()
    strides = []
    for i in range(depth):
        strides.append(2 if (i in down_at and height > 4) else 1)
        height = (height - 1) // strides[-1] + 1  # 3×3, padding 1
    return strides


class ConvNet(nn.Module):
    """Fully convolutional: `depth` 3×3 convs of `width` channels, global average pool, readout.

    Spatial size halves (stride 2) at the layers depth//3 and 2*depth//3 while it is above 4.
    Init: He et al. 2015 (fan_in, biases 0) for every conv, LeCun for the readout — the σ_w² = 2
    scaling of the ReLU CNN-GAP of Arora et al. 2019 (c_σ = 2) and Lee et al. 2020, under which the
    signal keeps its scale through all `depth` layers without normalisation.
    """

    def __init__(self, in_shape: tuple[int, int, int], width: int, num_classes: int, depth: int = 8):
        super().__init__()
        c, h, _ = in_shape
        layers: list[nn.Module] = []
        for i, stride in enumerate(convnet_strides(h, depth)):
            layers += [nn.Conv2d(c if i == 0 else width, width, 3, stride=stride, padding=1), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.readout = nn.Linear(width, num_classes)
        for m in self.features:
            if isinstance(m, nn.Conv2d):
                he_relu_(m)
        lecun_readout_(self.readout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x).mean(dim=(2, 3))  # (N, width)
        return self.readout(h)


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    """CIFAR-style ResNet-18 (3×3 stem, no max-pool) with base width w.

    Init as torchvision's ResNet (`init_residual_net_`).
    """

    def __init__(self, in_channels: int, width: int, num_classes: int):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU())
        blocks, c = [], width
        for stage, mult in enumerate((1, 2, 4, 8)):
            for b in range(2):
                stride = 2 if (stage > 0 and b == 0) else 1
                blocks.append(BasicBlock(c, width * mult, stride))
                c = width * mult
        self.blocks = nn.Sequential(*blocks)
        self.readout = nn.Linear(c, num_classes)
        init_residual_net_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.stem(x)).mean(dim=(2, 3))  # (N, 8w)
        return self.readout(h)


class WideBlock(nn.Module):
    """Pre-activation wide residual block (BN-ReLU-conv ×2), no dropout."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.shortcut = None
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o = F.relu(self.bn1(x))
        skip = x if self.shortcut is None else self.shortcut(o)
        out = self.conv1(o)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + skip


class WideResNet16(nn.Module):
    """WRN-16-k (Zagoruyko & Komodakis 2016): 2 blocks per stage, stage widths 16k, 32k, 64k.

    Init as the authors' code (wide-residual-networks, models/utils.lua MSRinit and FCinit): every
    conv N(0, 2/(k²·c_out)) — He et al. 2015 with fan_out, as `init_residual_net_` — and the readout's
    bias 0 (its weight keeps the framework default, U(±1/√fan_in) in both torch7 and PyTorch).
    BatchNorm γ = 1, β = 0 (PyTorch's default; the Lua code's U(0, 1) γ was torch7's default).
    """

    def __init__(self, in_channels: int, k: int, num_classes: int, depth: int = 16):
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"models.depth: WideResNet depth must be 6n+4, got {depth}")
        n = (depth - 4) // 6
        self.stem = nn.Conv2d(in_channels, 16, 3, padding=1, bias=False)
        blocks, c = [], 16
        for stage, mult in enumerate((16, 32, 64)):
            for b in range(n):
                stride = 2 if (stage > 0 and b == 0) else 1
                blocks.append(WideBlock(c, mult * k, stride))
                c = mult * k
        self.blocks = nn.Sequential(*blocks)
        self.bn = nn.BatchNorm2d(c)
        self.readout = nn.Linear(c, num_classes)
        init_residual_net_(self)
        nn.init.zeros_(self.readout.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn(self.blocks(self.stem(x)))).mean(dim=(2, 3))  # (N, 64k)
        return self.readout(h)

"""Your own models for the pntk workflow: name them in a config as `arch: "my_models:small_cnn"`.

pntk calls each function as ``f(in_shape=(C, H, W), num_classes=O, width=w, **kwargs)`` (kwargs from the
config entry's `kwargs:`) after seeding torch's RNG with the run's seed, and expects an ``nn.Module``
mapping images (N, C, H, W) to logits (N, O). The folder holding this file goes under the config's
top-level `python_path:` (see examples/my-models.yaml). Any layer works with the kernel engine
(layers it has no fast path for, like LayerNorm here, use exact per-sample gradients); the width of
the last nn.Linear's inputs is the readout width of the pNTK width rate (pntk.models.readout_width).
"""
from __future__ import annotations

import math

import torch
from torch import nn


def small_cnn(in_shape: tuple[int, int, int], num_classes: int, width: int, depth: int = 2) -> nn.Module:
    """`depth` 3×3 conv + ReLU layers of `width` channels (padding keeps H × W), then a linear readout of
    the flattened features: its input width, the readout width, is width·H·W (8·8·w on 8×8 digits).

    (A global-average-pooled readout of width w barely learns 8×8 digits from 120 examples in 10 epochs.)"""
    channels, height, wide = in_shape
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Conv2d(channels if i == 0 else width, width, 3, padding=1), nn.ReLU()]
    # (N, width, H, W) → (N, width·H·W) → (N, num_classes)
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(width * height * wide, num_classes))


def layernorm_mlp(in_shape: tuple[int, int, int], num_classes: int, width: int, depth: int = 2) -> nn.Module:
    """MLP with `depth` hidden layers Linear → LayerNorm → ReLU of `width` units, linear readout."""
    fan_in = math.prod(in_shape)
    layers: list[nn.Module] = [nn.Flatten()]  # (N, C, H, W) → (N, C·H·W)
    for i in range(depth):
        layers += [nn.Linear(fan_in if i == 0 else width, width), nn.LayerNorm(width), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(width, num_classes))


class _GNBlock(nn.Module):
    """x + GN(conv(ReLU(GN(conv(x))))): a residual block whose normalisation does not depend on the batch."""

    def __init__(self, width: int, groups: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.GroupNorm(groups, width), nn.ReLU(),
                                  nn.Conv2d(width, width, 3, padding=1), nn.GroupNorm(groups, width))

    def forward(self, x):  # (N, width, H, W) → (N, width, H, W)
        return (x + self.body(x)).relu()


def resgn(in_shape: tuple[int, int, int], num_classes: int, width: int, blocks: int = 2,
          groups: int = 4) -> nn.Module:
    """Residual CNN with GroupNorm: a 3×3 stem to `width` channels, `blocks` residual blocks, global average
    pooling, linear readout (readout width = width). `width` must be a multiple of `groups`."""
    layers: list[nn.Module] = [nn.Conv2d(in_shape[0], width, 3, padding=1), nn.ReLU()]
    layers += [_GNBlock(width, groups) for _ in range(blocks)]
    # (N, width, H, W) → (N, width) → (N, num_classes)
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes))


class _PatchAttention(nn.Module):
    def __init__(self, in_shape, num_classes: int, width: int, patch: int, heads: int):
        super().__init__()
        self.embed = nn.Conv2d(in_shape[0], width, patch, stride=patch)  # one token per patch
        n_tokens = (in_shape[1] // patch) * (in_shape[2] // patch)
        self.position = nn.Parameter(0.02 * torch.randn(1, n_tokens, width))
        self.attention = nn.MultiheadAttention(width, heads, batch_first=True)
        self.norm = nn.LayerNorm(width)
        self.readout = nn.Linear(width, num_classes)

    def forward(self, x):
        t = self.embed(x).flatten(2).transpose(1, 2) + self.position  # (N, width, h, w) → (N, h·w, width)
        t = self.norm(t + self.attention(t, t, t, need_weights=False)[0])  # (N, h·w, width)
        return self.readout(t.mean(1))  # mean over patches: (N, width) → (N, num_classes)


def patch_attention(in_shape: tuple[int, int, int], num_classes: int, width: int, patch: int = 4,
                    heads: int = 2) -> nn.Module:
    """One self-attention layer (nn.MultiheadAttention, `heads` heads) over `patch`×`patch` patches embedded
    in `width` dimensions, with a learned position embedding, a residual and LayerNorm; the mean token is
    read out linearly (readout width = width)."""
    return _PatchAttention(in_shape, num_classes, width, patch, heads)

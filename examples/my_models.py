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

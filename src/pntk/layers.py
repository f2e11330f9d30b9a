"""Layers that both the model zoo and the kernel engine know by type, so neither imports the other.

    NTKLinear   a Linear layer in NTK parameterization; pntk.kernels' layer-wise method has a rule for it
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["NTKLinear"]


class NTKLinear(nn.Module):
    """Linear layer in NTK parameterization: y = sigma_w/sqrt(fan_in) W x + sigma_b b, W,b ~ N(0,1)."""

    def __init__(self, fan_in: int, fan_out: int, sigma_w: float = math.sqrt(2.0), sigma_b: float = 0.1):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(fan_out, fan_in))
        self.bias = nn.Parameter(torch.randn(fan_out))
        self.w_scale = sigma_w / math.sqrt(fan_in)
        self.b_scale = sigma_b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.w_scale, self.bias * self.b_scale)

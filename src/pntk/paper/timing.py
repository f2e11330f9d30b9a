"""Kernel timing on torchvision ResNets (paper Fig 1), as tidy rows (diagnostics.TIDY_COLUMNS)."""
from __future__ import annotations

import logging
import statistics
import time

import numpy as np

from .diagnostics import tidy_rows

log = logging.getLogger(__name__)


def torchvision_resnet(depth: int, in_channels: int, num_classes: int):
    """torchvision ResNet-{depth} (ImageNet layout) with its stem adapted to `in_channels`."""
    import torch
    import torchvision

    model = getattr(torchvision.models, f"resnet{depth}")(weights=None, num_classes=num_classes)
    if in_channels != 3:
        old = model.conv1
        model.conv1 = torch.nn.Conv2d(in_channels, old.out_channels, old.kernel_size, old.stride, old.padding,
                                      bias=False)
    return model.eval()


def time_kernels(x: np.ndarray, num_classes: int, depths: list[int], *, dataset: str, method: str = "auto",
                 repeats: int = 3, device: str = "cpu", kinds=("entk", "pntk")) -> list[dict]:
    """Median wall-clock seconds to compute each kind for one pair of inputs (x[0], x[1]), per depth."""
    import torch

    from ..kernels import empirical_kernel

    x1 = torch.as_tensor(x[0:1], device=device)  # (1, C, H, W)
    x2 = torch.as_tensor(x[1:2], device=device)
    rows = []
    for depth in depths:
        torch.manual_seed(0)
        model = torchvision_resnet(depth, x.shape[1], num_classes).to(device)
        stats = {}
        for kind in kinds:
            empirical_kernel(model, x1, x2, kind=kind, method=method)  # warm-up (allocations, caches)
            secs = []
            for _ in range(repeats):
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                empirical_kernel(model, x1, x2, kind=kind, method=method)
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
                secs.append(time.perf_counter() - t0)
            stats[f"seconds_per_pair_{kind}"] = statistics.median(secs)
        n_params = sum(p.numel() for p in model.parameters())
        log.info("resnet%d (%d params): %s", depth, n_params, stats)
        rows += tidy_rows({"dataset": dataset, "arch": f"resnet{depth}", "width": 64, "seed": 0, "epoch": 0,
                           "n_params": n_params, "device": device, "method": method}, stats)
    return rows

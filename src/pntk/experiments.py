"""Stand-alone experiments of the paper: kernel timing on torchvision ResNets (Fig 1) and the
infinite-width reference for NTK-parameterised FCNs. Each returns tidy rows (diagnostics.TIDY_COLUMNS)."""
from __future__ import annotations

import logging
import statistics
import time

import numpy as np

from .diagnostics import tidy_rows
from .infinite import infinite_distances, relu_fcn_kernels

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

    from .kernels import empirical_kernel

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


def infinite_width_rows(x: np.ndarray, num_classes: int, widths: list[int], seeds: list[int], *, depth: int,
                        dataset: str) -> list[dict]:
    """Distance of finite-width eNTK / pNTK (NTK parameterisation, at init) from the analytic NTK."""
    import torch

    from .kernels import empirical_kernel
    from .models import ModelSpec, init_model

    xt = torch.as_tensor(x, dtype=torch.float64)  # (N, C, H, W)
    _, ntk_inf = relu_fcn_kernels(x.reshape(len(x), -1), None, depth=depth)  # (N, N)
    rows = []
    for width in widths:
        for seed in seeds:
            spec = ModelSpec("fcn", width, tuple(x.shape[1:]), num_classes, depth=depth, parameterization="ntk")
            model = init_model(spec, seed).double()
            entk = empirical_kernel(model, xt, kind="entk").numpy()  # (N, N, O, O)
            pntk = empirical_kernel(model, xt, kind="pntk").numpy()  # (N, N)
            stats = infinite_distances(ntk_inf, entk=entk, pntk=pntk)
            rows += tidy_rows({"dataset": dataset, "arch": "fcn-ntk", "width": width, "seed": seed, "epoch": 0},
                              stats)
            log.info("width %d seed %d: %s", width, seed, stats)
    return rows

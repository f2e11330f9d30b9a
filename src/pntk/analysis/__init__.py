"""Per-checkpoint computation of the paper's analyses (what the per-run jobs compute; no tables, no plots):

    diagnostics   eNTK vs pNTK statistics of one kernel pair (Figs 2–8), tidy rows
    checkpoint    the diagnostics job of one checkpoint (diagnostics_job, write_diagnostics)
    at_init       the same statistics on D of networks at initialisation only (diagnostics.at_init)
    infinite      analytic NTK of a ReLU FCN vs finite-width kernels (Fig 14)
    timing        seconds per input pair of eNTK and pNTK (Fig 1): every repeat, summary, warnings

diagnostics and timing are light (numpy, pandas) and imported with the face; the rest on first use.
"""
from .._lazy import lazy_members
from .diagnostics import TIDY_COLUMNS, tidy_rows
from .timing import STATISTIC, summarize, timing_paths, timing_warnings, torchvision_resnet

__getattr__ = lazy_members(__name__, {
    "diagnostics_job": "checkpoint", "write_diagnostics": "checkpoint", "epoch_diagnostics": "checkpoint",
    "load_manifest_block": "checkpoint", "infinite_regression": "infinite", "infinite_width_rows": "infinite",
    "time_kernels": "timing", "at_init_job": "at_init"})

__all__ = ["STATISTIC", "TIDY_COLUMNS", "at_init_job", "diagnostics_job", "epoch_diagnostics", "infinite_regression",
           "infinite_width_rows", "load_manifest_block", "summarize", "tidy_rows", "time_kernels", "timing_paths",
           "timing_warnings", "torchvision_resnet", "write_diagnostics"]

"""Shared plumbing of the thin scripts/ entries: logging into the rule's log file, torch threads."""
from __future__ import annotations

import atexit
import logging
import os
import resource
import sys
import time
from pathlib import Path


def setup(snakemake) -> logging.Logger:
    """Send logging (and warnings, and uncaught tracebacks) of this job to snakemake.log[0]."""
    log_path = Path(snakemake.log[0])
    log_path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_path, mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    python_path = (getattr(snakemake, "config", None) or {}).get("python_path")
    if python_path:  # import-path models (checkpoints are rebuilt from their module in every job)
        from .user_models import add_python_path

        add_python_path(python_path)
    stream = open(log_path, "a", buffering=1)
    sys.stderr = stream  # tracebacks and tqdm progress land in the rule's log
    threads = int(getattr(snakemake, "threads", 1) or 1)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        pass
    log = logging.getLogger(f"pntk.{snakemake.rule}")
    atexit.register(_log_usage, log, time.perf_counter())
    return log


def _log_usage(log: logging.Logger, t0: float) -> None:
    """Last line of every job log: wall seconds, CPU seconds and peak RSS of the job's process (Linux
    ru_maxrss is in KiB), so per-rule cost is on record without a benchmark directive (cached rules
    may not have one)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    log.info("job usage: wall %.1f s, cpu %.1f s, peak RSS %.2f GB", time.perf_counter() - t0,
             usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024 / 1e9)

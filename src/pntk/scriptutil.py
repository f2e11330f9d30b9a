"""Shared plumbing of the thin scripts/ entries: logging into the rule's log file, torch threads."""
from __future__ import annotations

import logging
import os
import sys
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
    return logging.getLogger(f"pntk.{snakemake.rule}")

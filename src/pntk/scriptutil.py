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
    log_to(log_path)
    logging.getLogger().setLevel(logging.INFO)
    logging.captureWarnings(True)
    python_path = (getattr(snakemake, "config", None) or {}).get("python_path")
    if python_path:  # import-path models (checkpoints are rebuilt from their module in every job)
        from .models import add_python_path

        add_python_path(python_path)
    threads = int(getattr(snakemake, "threads", 1) or 1)
    # torch takes its intra-op thread count from OMP_NUM_THREADS when it is first imported. Importing it
    # here just to set the count cost every torch-free job (tables, claims, figures, report) ≈ 4 s of CPU.
    os.environ["OMP_NUM_THREADS"] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    log = logging.getLogger(f"pntk.{snakemake.rule}")
    atexit.register(_log_usage, log, time.perf_counter())
    return log


def log_to(path: str | Path) -> None:
    """From now on, logging and stderr (tracebacks, tqdm progress) of this job go to `path` (truncated):
    a job that does the work of two rules (diagnostics_regression) writes each rule's log."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # One line-buffered stream for both: two handles on one file (a handler's and stderr's) would write
    # at their own offsets, and a log line could overwrite a progress line or a traceback.
    stream = open(path, "w", buffering=1)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().handlers[:] = [handler]
    sys.stderr = stream
    if _OPENED:  # the previous log of this job (not the stderr it started with)
        _OPENED.pop().close()
    _OPENED.append(stream)


_OPENED: list = []  # the stream log_to opened last


def _log_usage(log: logging.Logger, t0: float) -> None:
    """Last line of every job log: wall seconds, CPU seconds and peak RSS of the job's process (Linux
    ru_maxrss is in KiB), so per-rule cost is on record without a benchmark directive (cached rules
    may not have one)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    log.info("job usage: wall %.1f s, cpu %.1f s, peak RSS %.2f GB", time.perf_counter() - t0,
             usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024 / 1e9)

"""Progress of a long loop with an ETA: log lines for job logs, a tqdm bar when stderr is a terminal.

    progress=None   (default) quiet for short loops: nothing before ``QUIET_FOR_S`` seconds, then a log
                    line every ``STEP`` of the work (at most one per ``MIN_GAP_S``) and a bar on a terminal
    progress=True   a log line every ``STEP`` of the work from the start (what tests ask for)
    progress=False  nothing
Work is counted in weights (e.g. sample pairs of a block), so ragged last blocks do not skew the ETA.
The cost is one perf_counter call per step.
"""
from __future__ import annotations

import logging
import sys
import time

QUIET_FOR_S = 5.0  # a loop shorter than this says nothing in the default mode
STEP = 0.05        # a log line every 5 % of the work ...
MIN_GAP_S = 10.0   # ... but not more often than this in the default mode


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


class Progress:
    """Call :meth:`advance` after each step of a loop whose steps weigh ``total`` in all."""

    def __init__(self, total: float, what: str, logger: logging.Logger, enabled: bool | None = None):
        self.total, self.what, self.log, self.enabled = float(total), what, logger, enabled
        self.done = 0.0
        self.start = self.last_line = time.perf_counter()
        self.next_step = STEP
        self.lines = 0
        self.bar = None
        if enabled is not False and sys.stderr is not None and sys.stderr.isatty():
            from tqdm import tqdm

            # delay: a bar appears only for loops that last; leave=False: it vanishes when done
            self.bar = tqdm(total=self.total, desc=what, delay=0.0 if enabled else QUIET_FOR_S, leave=False,
                            unit="pair", unit_scale=True)

    def advance(self, weight: float) -> None:
        self.done += weight
        if self.bar is not None:
            self.bar.update(weight)
        if self.enabled is False or self.done < self.next_step * self.total:
            return
        self.next_step = (int(self.done / self.total / STEP) + 1) * STEP
        now = time.perf_counter()
        if self.enabled is None:
            finished = self.done >= self.total
            if now - self.start < QUIET_FOR_S:
                return  # a short loop (so far) says nothing
            if now - self.last_line < MIN_GAP_S and not (finished and self.lines):
                return
        if not self.log.isEnabledFor(logging.INFO):
            return
        self.lines += 1
        self.last_line = now
        elapsed = now - self.start
        eta = elapsed * (self.total - self.done) / self.done
        self.log.info("%s: %.0f %% done, elapsed %s, ETA %s", self.what, 100 * self.done / self.total,
                      _duration(elapsed), _duration(eta))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

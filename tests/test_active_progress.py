"""Active-learning cycles report progress: one log line per cycle with elapsed time and ETA; tqdm on a terminal."""
from __future__ import annotations

import io
import logging
import re
import sys

import numpy as np

from pntk.active import loop as L


def test_every_cycle_logs_elapsed_and_eta(caplog, one_thread):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 1, 4, 4)).astype(np.float32)  # (N, C, H, W)
    y = rng.integers(0, 3, size=40)
    cfg = L.ALConfig(initial=6, per_cycle=2, cycles=2, pool_subset=10, arch="fcn", width=8, depth=2, epochs=1)
    with caplog.at_level(logging.INFO, logger="pntk.active.loop"):
        rows, _ = L.run_active_learning(x[:30], y[:30], x[30:], y[30:], "random", 0, cfg, num_classes=3)
    lines = [r.getMessage() for r in caplog.records if "cycle" in r.getMessage()]
    assert [re.search(r"cycle (\d+)/2", m)[1] for m in lines] == ["0", "1", "2"], lines
    assert "ETA unknown" in lines[0]  # no cycle finished yet
    assert re.search(r"elapsed \d+\.\ds, ETA \d+\.\ds$", lines[1]) and lines[-1].endswith("ETA 0.0s"), lines
    assert len(rows) == 3


def test_cycle_bar_only_on_a_terminal(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    assert isinstance(L._cycles(3, "random seed 0"), range)  # pytest's captured stderr is no terminal
    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    assert list(L._cycles(3, "random seed 0")) == [0, 1, 2]
    assert "random seed 0" in term.getvalue()

"""Active-learning figures draw what was measured: bands never leave the range accuracy can take."""
from __future__ import annotations

import numpy as np
import pandas as pd

from pntk.active.settings import COLUMNS
from pntk.report import figures_active as af
from pntk.report.figure_table import ACTIVE_CAPTIONS


def _table() -> pd.DataFrame:
    """3 seeds near accuracy 1 with a spread whose 95% t-interval (t = 4.3) reaches past 1."""
    rows = []
    for strategy, kernel, base in (("random", "none", 0.0), ("mlmoc", "pntk", 0.01)):
        for seed, acc in enumerate((0.90, 0.97, 1.0)):
            for cycle in range(3):
                rows.append({"strategy": strategy, "kernel": kernel, "seed": seed, "cycle": cycle,
                             "n_labels": 50 + 10 * cycle, "test_acc": min(1.0, acc + base),
                             "acquisition_seconds": 0.1 * (cycle > 0), "candidates": 100, "train_seconds": 1.0})
    return pd.DataFrame(rows, columns=COLUMNS)


def test_accuracy_bands_are_clipped_to_the_range_of_accuracy(tmp_path):
    path = tmp_path / "a.csv"
    _table().to_csv(path, index=False)
    df = af.load_tables([path])
    s = af.summary(df, "test_acc", "n_labels")
    assert (s["mean"] + s["ci95"] > 1).any()  # unclipped, the band would rise above accuracy 1
    acc_ax, gain_ax = af.accuracy_figure(df).axes
    for ax, (lo, hi) in ((acc_ax, (0, 1)), (gain_ax, (-1, 1))):
        ys = np.concatenate([c.get_paths()[0].vertices[:, 1] for c in ax.collections])
        assert lo <= ys.min() and ys.max() <= hi
    assert "clipped" in ACTIVE_CAPTIONS["accuracy"]
    assert af.plot_accuracy(df, tmp_path / "active-accuracy", formats=("png",))[0].stat().st_size > 1000

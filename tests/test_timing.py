"""Fig 1 timing: every repeat kept, interleaved after a warm-up, threads recorded; summary and warnings."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pntk.analysis import timing as tm


def _rows(times: dict[tuple[int, str], list[float]], *, threads: int = 1, cpu_factor: float = 1.0) -> pd.DataFrame:
    """Per-repeat rows as time_kernels writes them, from {(depth, kind): [seconds per repeat]}."""
    rows = []
    for (depth, kind), secs in times.items():
        for r, s in enumerate(secs):
            rows.append({"dataset": "digits", "arch": f"resnet{depth}", "depth": depth, "kind": kind, "repeat": r,
                         "seconds": s, "cpu_seconds": s / cpu_factor, "threads": threads, "device": "cpu",
                         "device_name": "test CPU", "torch_version": "2.x", "n_params": depth * 1000,
                         "method": "auto", "input_shape": "1×8×8"})
    return pd.DataFrame(rows, columns=tm.COLUMNS)


def _consistent() -> dict:
    """eNTK 3× the pNTK, both rising with depth, 10% noise above each minimum."""
    base = {18: 0.1, 34: 0.2, 50: 0.3}
    return {(d, k): [t * f * m for m in (1.0, 1.05, 1.1, 1.02, 1.08)]
            for d, t in base.items() for k, f in (("pntk", 1.0), ("entk", 3.0))}


def test_summary_keeps_min_median_max_and_ratio():
    s = tm.summarize(_rows(_consistent()))
    assert list(s.columns) == tm.SUMMARY_COLUMNS
    r = s[(s.arch == "resnet34") & (s.kind == "entk")].iloc[0]
    assert r.n_repeats == 5 and r.threads == 1 and r.measure == "cpu"
    assert r["min"] == pytest.approx(0.6) and r["max"] == pytest.approx(0.66)
    assert r["median"] == pytest.approx(0.6 * 1.05) and r.spread == pytest.approx(0.05)
    assert r.ratio_entk_pntk == pytest.approx(3.0)
    assert list(s.depth) == [18, 18, 34, 34, 50, 50]


def test_consistent_timings_give_no_warning():
    assert tm.timing_warnings(tm.summarize(_rows(_consistent()))) == []


def test_time_that_does_not_rise_with_depth_is_named():
    times = _consistent()
    times[50, "pntk"] = [0.19] * 5  # ResNet-50 pNTK faster than ResNet-34's 0.2
    (msg,) = tm.timing_warnings(tm.summarize(_rows(times)))
    assert "pntk" in msg and "resnet50" in msg and "resnet34" in msg and "rise with depth" in msg


def test_wide_spread_entk_not_slower_and_busy_machine_are_named():
    times = _consistent()
    times[18, "entk"] = [0.3, 0.5, 0.6, 0.7, 0.8]  # median 0.6 is 100% above the minimum
    assert any("resnet18 entk" in m and "noisy" in m for m in tm.timing_warnings(tm.summarize(_rows(times))))
    times = _consistent()
    times[18, "entk"] = [0.09] * 5
    assert any("resnet18: eNTK" in m for m in tm.timing_warnings(tm.summarize(_rows(times))))
    busy = tm.timing_warnings(tm.summarize(_rows(_consistent(), cpu_factor=3.0)))
    assert any("cores were shared" in m and "3.0×" in m for m in busy)
    # several threads: CPU time adds up over threads, so it says nothing about a busy machine
    assert tm.timing_warnings(tm.summarize(_rows(_consistent(), threads=2, cpu_factor=3.0))) == []


def test_bars_are_cpu_time_for_one_cpu_thread_else_wall_clock():
    rows = _rows(_consistent(), cpu_factor=2.0)
    s = tm.summarize(rows)
    np.testing.assert_allclose(s["min"], s["cpu_min"])
    np.testing.assert_allclose(s["min"], rows.groupby(["depth", "kind"])["cpu_seconds"].min().to_numpy())
    for threads, device in ((2, "cpu"), (1, "cuda:0")):
        other = rows.assign(threads=threads, device=device)
        s = tm.summarize(other)
        assert set(s["measure"]) == {"wall"}
        np.testing.assert_allclose(s["min"], other.groupby(["depth", "kind"])["seconds"].min().to_numpy())


def test_load_on_shared_cores_does_not_reorder_the_bars():
    """Other processes delayed every ResNet-34 call (wall-clock 4×); the CPU time they cost did not change:
    the bars keep rising with depth, and the run says that the cores were shared."""
    times = _consistent()
    rows = _rows(times)
    slow = rows["depth"] == 34
    rows.loc[slow, "seconds"] *= 4
    warnings = tm.timing_warnings(tm.summarize(rows))
    assert not [w for w in warnings if "rise with depth" in w]
    assert [w for w in warnings if "cores were shared" in w and "4.0×" in w]


def test_summary_names_missing_columns():
    with pytest.raises(ValueError, match="cpu_seconds"):
        tm.summarize(_rows(_consistent()).drop(columns="cpu_seconds"))


def test_calls_are_warmed_up_then_interleaved_in_rotating_order(monkeypatch):
    """One untimed call per (depth, kind) first, then every round times each once, starting elsewhere."""
    import torch

    import pntk.kernels

    calls = []
    monkeypatch.setattr(tm, "torchvision_resnet", lambda depth, c, o: torch.nn.Linear(depth, 1))
    monkeypatch.setattr(pntk.kernels, "empirical_kernel",
                        lambda model, x1, x2, kind, method: calls.append((model.in_features, kind)))
    x = np.zeros((2, 1, 8, 8), dtype=np.float32)
    rows = tm.time_kernels(x, 10, [18, 34], dataset="digits", repeats=5, kinds=("entk", "pntk"))
    pairs = [(18, "entk"), (18, "pntk"), (34, "entk"), (34, "pntk")]
    assert calls[:4] == pairs  # warm-up
    rounds = [calls[4 + 4 * r: 8 + 4 * r] for r in range(5)]
    assert all(sorted(r) == sorted(pairs) for r in rounds)
    assert len({r[0] for r in rounds}) == 4  # each (depth, kind) leads a round: no fixed position
    assert len(rows) == 20 and list(rows.columns) == tm.COLUMNS
    assert set(rows["threads"]) == {torch.get_num_threads()} and set(rows["repeat"]) == set(range(5))
    assert (rows["seconds"] > 0).all() and rows["torch_version"].iloc[0] == torch.__version__


def test_real_resnet_timing_rows(one_thread, small_digits_store):
    """The real thing on ResNet-18 and digits: every repeat a row, one thread recorded, parameters counted."""
    from pntk.data import open_prepared

    data = open_prepared(small_digits_store)
    rows = tm.time_kernels(data.x[data.train_indices[:2]], data.num_classes, [18], dataset="digits", repeats=5)
    assert len(rows) == 10 and set(rows["threads"]) == {1}
    assert rows["n_params"].iloc[0] == sum(p.numel() for p in tm.torchvision_resnet(18, 1, 10).parameters())
    s = tm.summarize(rows)
    assert (s["min"] <= s["median"]).all() and (s["median"] <= s["max"]).all()
    assert s.loc[s.kind == "entk", "ratio_entk_pntk"].iloc[0] > 1  # O = 10 outputs cost more than one

"""Figures write non-empty PNG + PDF for small synthetic tidy tables."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pntk.paper import figures as fg
from pntk.paper.diagnostics import TIDY_COLUMNS, fit_rate


@pytest.fixture(scope="module")
def tidy() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for ds in ("digits", "cifar10"):
        for arch, mult in (("fcn", 1), ("resnet18", 8)):
            for w in (16, 32, 64, 128):
                for seed in range(3):
                    for ep in (0, 5, 10):
                        for stat in ("frobenius_distance", "offdiag_ratio", "acc_diff"):
                            v = (1 + ep / 10) * w**-0.5 * np.exp(rng.normal(scale=0.1))
                            rows.append(dict(dataset=ds, arch=arch, width=w, seed=seed, epoch=ep,
                                             statistic=stat, value=v, readout_width=w * mult))
    return pd.DataFrame(rows)


def _assert_written(paths, stem):
    assert [p.name for p in paths] == [stem.name + ".png", stem.name + ".pdf"]
    png, pdf = (p.read_bytes() for p in paths)
    assert png.startswith(b"\x89PNG") and len(png) > 1000
    assert pdf.startswith(b"%PDF") and len(pdf) > 1000
    assert not list(stem.parent.glob(".*.tmp"))


def test_columns_match_diagnostics_schema():
    assert fg.TIDY == TIDY_COLUMNS


@pytest.mark.parametrize("logy", [False, True])
def test_stat_vs_width(tidy, tmp_path, logy):
    stem = tmp_path / "sub" / "fig03-frobenius-distance"
    paths = fg.plot_stat_vs_width(tidy, "frobenius_distance", stem, None, "Fig 3", logy=logy)
    _assert_written(paths, stem)
    one_epoch = tidy[(tidy["epoch"] == 0) & (tidy["dataset"] == "digits")].drop(columns="readout_width")
    _assert_written(fg.plot_stat_vs_width(one_epoch, "acc_diff", tmp_path / "a", "acc", ""), tmp_path / "a")


def test_unknown_statistic_and_missing_columns(tidy, tmp_path):
    with pytest.raises(ValueError, match="no rows with statistic 'nope'"):
        fg.plot_stat_vs_width(tidy, "nope", tmp_path / "x", "y", "t")
    with pytest.raises(ValueError, match="missing column"):
        fg.plot_over_epochs(tidy.drop(columns="seed"), "acc_diff", tmp_path / "x")
    assert not list(tmp_path.iterdir())


def test_rate(tidy, tmp_path):
    pts = tidy[(tidy["epoch"] == 0) & (tidy["statistic"] == "frobenius_distance")]
    fits = []
    for (ds, arch), g in pts.groupby(["dataset", "arch"]):
        fits.append({"dataset": ds, "arch": arch,
                     **fit_rate(g["readout_width"], g["value"], g["seed"], n_boot=100)})
    fit_table = pd.DataFrame(fits)
    assert np.allclose(fit_table["exponent"], -0.5, atol=0.1)
    stem = tmp_path / "rate"
    _assert_written(fg.plot_rate(pts, fit_table, stem), stem)
    _assert_written(fg.plot_rate(pts, fit_table.iloc[:1], tmp_path / "r2"), tmp_path / "r2")


def test_rate_reference_slope_spans_a_fitted_group(tidy, tmp_path, monkeypatch):
    """A one-width architecture sorted first (no fit) must not collapse the −½ reference to a point."""
    pts = tidy[(tidy["epoch"] == 0) & (tidy["statistic"] == "frobenius_distance")]
    one_width = pts[pts["readout_width"] == pts["readout_width"].min()].assign(arch="aaa-convnet")
    pts = pd.concat([one_width, pts])
    fits = [{"dataset": ds, "arch": arch, **fit_rate(g["readout_width"], g["value"], g["seed"], n_boot=50)}
            for (ds, arch), g in pts.groupby(["dataset", "arch"]) if g["readout_width"].nunique() > 1]
    figs = []
    monkeypatch.setattr(fg, "save_figure", lambda fig, *a, **k: figs.append(fig) or [])
    fg.plot_rate(pts, pd.DataFrame(fits), tmp_path / "rate")
    (ax,) = figs[0].axes
    (ref,) = [line for line in ax.get_lines() if line.get_label() == "reference slope −½"]
    xs = ref.get_xdata()
    ranges = {(g["readout_width"].min(), g["readout_width"].max()) for _, g in pts.groupby(["dataset", "arch"])
              if g["readout_width"].nunique() > 1}
    assert xs.max() > xs.min() and (xs.min(), xs.max()) in ranges


def test_over_epochs(tidy, tmp_path):
    stem = tmp_path / "fig09"
    _assert_written(fg.plot_over_epochs(tidy, "offdiag_ratio", stem, title="Fig 9", logy=True), stem)


def test_timing(tmp_path):
    rows = [dict(dataset=ds, arch=f"resnet{d}", width=64, seed=s, epoch=0,
                 statistic=f"seconds_per_pair_{k}", value=t * d / 18 * (1 + 0.05 * s))
            for ds in ("cifar10", "mnist") for d in (18, 34, 50) for s in range(2)
            for k, t in (("entk", 2e-2), ("pntk", 2e-3))]
    stem = tmp_path / "fig01-timing"
    _assert_written(fg.plot_timing(pd.DataFrame(rows), stem), stem)
    with pytest.raises(ValueError, match="seconds_per_pair_"):
        fg.plot_timing(pd.DataFrame(rows).assign(statistic="x"), tmp_path / "y")


def test_infinite(tmp_path):
    rows = [dict(dataset="synthetic", arch="fcn", width=w, seed=s, epoch=0,
                 statistic=f"infinite_rel_dist_{k}", value=c / np.sqrt(w) * (1 + 0.1 * s))
            for w in (64, 256, 1024) for s in range(3) for k, c in (("entk", 3.0), ("pntk", 2.0))]
    stem = tmp_path / "infinite"
    _assert_written(fg.plot_infinite(pd.DataFrame(rows), stem), stem)


def test_captions_cover_figures():
    for slug in ("timing", "diagonal-ratio", "frobenius-distance", "lambda-max", "lambda-min",
                 "condition-number", "prediction-gap", "accuracy-gap", "over-epochs", "rate",
                 "infinite-width"):
        assert len(fg.CAPTIONS[slug]) > 40

"""Figures write non-empty PNG + PDF for small synthetic tidy tables, draw what they say (means, runs that
did not learn apart), and Fig 1 shows the timing statistic it names."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pntk.analysis.diagnostics import TIDY_COLUMNS
from pntk.report import figures as fg
from pntk.report import figures_fits, figures_paper, figures_timing
from pntk.report.claim_tests import slope_fit
from pntk.report.run_verdicts import run_verdicts


def fit_rate(w, v, s) -> dict:
    f = slope_fit(w, v, s)
    return {"exponent": f.slope, "ci_low": f.ci_low, "ci_high": f.ci_high, "intercept": f.intercept}


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


def _assert_written(drawn, stem):
    paths = drawn.paths
    assert [p.name for p in paths] == [stem.name + ".png", stem.name + ".pdf"]
    png, pdf = (p.read_bytes() for p in paths)
    assert png.startswith(b"\x89PNG") and len(png) > 1000
    assert pdf.startswith(b"%PDF") and len(pdf) > 1000
    assert not list(stem.parent.glob(".*.tmp"))


def test_columns_match_diagnostics_schema():
    assert fg.TIDY == TIDY_COLUMNS


def test_paper_layout_panels_per_arch_then_width(tidy, tmp_path):
    """As the paper draws Figs 2–8: a panel per architecture (epoch on x, a line per width), and a last panel
    with width on x at the first and the last checkpoint."""
    digits = tidy[tidy.dataset == "digits"]
    stem = tmp_path / "sub" / "fig03b-frobenius-distance"
    drawn = figures_paper.plot_paper_layout(digits, "frobenius_distance", stem)
    _assert_written(drawn, stem)
    axes = drawn.figure.axes
    assert [ax.get_title() for ax in axes] == ["fcn", "resnet18", "against width"]
    lines = _errorbar_lines(axes[0])
    assert sorted(lines) == ["w = 128", "w = 16", "w = 32", "w = 64"]
    x, y = lines["w = 32"]
    sel = digits[(digits.statistic == "frobenius_distance") & (digits.arch == "fcn") & (digits.width == 32)]
    np.testing.assert_allclose(x, [0, 5, 10])
    np.testing.assert_allclose(y, sel.groupby("epoch").value.mean().to_numpy())
    assert sorted(_errorbar_lines(axes[2])) == ["fcn, epoch 0 (n=3)", "fcn, epoch 10 (n=3)", "resnet18, epoch 0 (n=3)",
                                                "resnet18, epoch 10 (n=3)"]
    assert axes[0].get_yscale() == "linear"  # 0.08–0.45: no need for a log axis
    wide = digits.assign(value=digits.value * np.where(digits.width == 128, 100.0, 1.0))
    drawn = figures_paper.plot_paper_layout(wide, "frobenius_distance", tmp_path / "w")
    assert drawn.figure.axes[0].get_yscale() == "log" and "log y axis" in drawn.notes[-1]  # one width 100× the rest


def test_unknown_statistic_and_missing_columns(tidy, tmp_path):
    with pytest.raises(ValueError, match="no rows with statistic 'nope'"):
        figures_paper.plot_paper_layout(tidy, "nope", tmp_path / "x", "y")
    with pytest.raises(ValueError, match="missing column"):
        fg.plot_over_epochs(tidy.drop(columns="seed"), "acc_diff", tmp_path / "x")
    assert not list(tmp_path.iterdir())


def test_rate(tidy, tmp_path):
    pts = tidy[(tidy["epoch"] == 0) & (tidy["statistic"] == "frobenius_distance")]
    fits = []
    for (ds, arch), g in pts.groupby(["dataset", "arch"]):
        fits.append({"dataset": ds, "arch": arch,
                     **fit_rate(g["readout_width"], g["value"], g["seed"])})
    fit_table = pd.DataFrame(fits)
    assert np.allclose(fit_table["exponent"], -0.5, atol=0.1)
    stem = tmp_path / "rate"
    _assert_written(figures_fits.plot_rate(pts, fit_table, stem), stem)
    _assert_written(figures_fits.plot_rate(pts, fit_table.iloc[:1], tmp_path / "r2"), tmp_path / "r2")


def test_rate_reference_slope_spans_a_fitted_group(tidy, tmp_path):
    """A one-width architecture sorted first (no fit) must not collapse the −½ reference to a point."""
    pts = tidy[(tidy["epoch"] == 0) & (tidy["statistic"] == "frobenius_distance")]
    one_width = pts[pts["readout_width"] == pts["readout_width"].min()].assign(arch="aaa-convnet")
    pts = pd.concat([one_width, pts])
    fits = [{"dataset": ds, "arch": arch, **fit_rate(g["readout_width"], g["value"], g["seed"])}
            for (ds, arch), g in pts.groupby(["dataset", "arch"]) if g["readout_width"].nunique() > 1]
    (ax,) = figures_fits.plot_rate(pts, pd.DataFrame(fits), tmp_path / "rate").figure.axes
    (ref,) = [line for line in ax.get_lines() if line.get_label() == "reference slope −½"]
    xs = ref.get_xdata()
    ranges = {(g["readout_width"].min(), g["readout_width"].max()) for _, g in pts.groupby(["dataset", "arch"])
              if g["readout_width"].nunique() > 1}
    assert xs.max() > xs.min() and (xs.min(), xs.max()) in ranges


def test_over_epochs(tidy, tmp_path):
    stem = tmp_path / "fig09"
    _assert_written(fg.plot_over_epochs(tidy, "offdiag_ratio", stem, title="Fig 9", logy=True), stem)


def test_infinite(tmp_path):
    rows = [dict(dataset="synthetic", arch="fcn", width=w, seed=s, epoch=0,
                 statistic=f"infinite_rel_dist_{k}", value=c / np.sqrt(w) * (1 + 0.1 * s))
            for w in (64, 256, 1024) for s in range(3) for k, c in (("entk", 3.0), ("pntk", 2.0))]
    stem = tmp_path / "infinite"
    _assert_written(figures_fits.plot_infinite(pd.DataFrame(rows), stem), stem)




# ----------------------------------------------------------------------------- runs that did not learn
BAD = ("digits", "fcn", 16, 2)  # the run marked as not learned below


def _with_verdicts(tidy: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(tidy rows of digits/fcn with a learned column, training rows with each run's test accuracy)."""
    df = tidy[(tidy.dataset == "digits") & (tidy.arch == "fcn")].copy()
    df["learned"] = [(d, a, w, s) != BAD for d, a, w, s in zip(df.dataset, df.arch, df.width, df.seed, strict=True)]
    runs = df[["dataset", "arch", "width", "seed", "learned"]].drop_duplicates()
    training = runs.assign(epoch=10, statistic="test_acc", value=np.where(runs.learned, 0.9, 0.1))
    return df, training


def test_paper_layout_draws_networks_at_init_in_the_width_panel_only(tidy, tmp_path):
    """Networks at initialisation only (trained_on "init") are points of the width panel at epoch 0, with their
    seeds counted in its legend, never of the epoch panels; the notes say so."""
    digits = tidy[(tidy.dataset == "digits") & (tidy.statistic == "frobenius_distance")].assign(trained_on="D")
    extra = digits[(digits.epoch == 0) & (digits.arch == "fcn")].assign(trained_on="init", seed=lambda d: d.seed + 3,
                                                                          value=lambda d: d.value + 10.0)
    drawn = figures_paper.plot_paper_layout(pd.concat([digits, extra]), "frobenius_distance", tmp_path / "f")
    axes = drawn.figure.axes
    epochs = _errorbar_lines(axes[0])
    sel = digits[(digits.arch == "fcn") & (digits.width == 32)]
    np.testing.assert_allclose(epochs["w = 32"][1], sel.groupby("epoch").value.mean().to_numpy())  # init left out
    width = _errorbar_lines(axes[2])
    assert "fcn, epoch 0 (n=6)" in width and "fcn, epoch 10 (n=3)" in width
    assert width["fcn, epoch 0 (n=6)"][1].min() > 5  # the init networks' +10 is in the epoch-0 means
    assert any("12 networks at initialisation only" in n for n in drawn.notes), drawn.notes


def _errorbar_lines(ax) -> dict:
    """{legend label: (x, y)} of the errorbar data lines of an axes."""
    return {c.get_label(): (np.asarray(c.lines[0].get_xdata(), dtype=float),
                            np.asarray(c.lines[0].get_ydata(), dtype=float)) for c in ax.containers}


def test_paper_layout_leaves_runs_that_did_not_learn_out_of_the_mean(tidy, tmp_path):
    df, training = _with_verdicts(tidy)
    drawn = figures_paper.plot_paper_layout(df, "frobenius_distance", tmp_path / "w",
                                            verdicts=run_verdicts(df, training))
    assert drawn.not_learned == ["fcn-w16-s2 (test acc 0.10)"] and drawn.statistic == "frobenius_distance"
    ax = drawn.figure.axes[0]
    _, y = _errorbar_lines(ax)["w = 16"]
    sel = df[(df.statistic == "frobenius_distance") & (df.width == 16)]
    np.testing.assert_allclose(y, sel[sel.learned].groupby("epoch")["value"].mean().to_numpy())
    (grey,) = [ln for ln in ax.lines if ln.get_linestyle() == "--" and len(ln.get_xdata())]
    bad = sel[~sel.learned].sort_values("epoch")
    assert list(grey.get_ydata()) == list(bad.value) and grey.get_color() == "0.45"
    assert "n=2–3" in drawn.points  # width 16 has two learned seeds left, the others three


def test_without_a_learned_column_every_run_is_in_the_mean_and_the_figure_says_so(tidy, tmp_path):
    df, training = _with_verdicts(tidy)
    df = df.drop(columns="learned")
    drawn = figures_paper.plot_paper_layout(df, "offdiag_ratio", tmp_path / "w",
                                            verdicts=run_verdicts(df, training.drop(columns="learned")))
    assert drawn.not_learned is None  # no verdict: a caption must not claim that every run learned
    _, y = _errorbar_lines(drawn.figure.axes[0])["w = 16"]
    sel = df[(df.statistic == "offdiag_ratio") & (df.width == 16)]
    np.testing.assert_allclose(y, sel.groupby("epoch")["value"].mean().to_numpy())


def test_epochs_figure_draws_a_run_that_did_not_learn_as_its_own_dashed_line(tidy, tmp_path):
    df, training = _with_verdicts(tidy)
    drawn = fg.plot_over_epochs(df, "acc_diff", tmp_path / "e", verdicts=run_verdicts(df, training))
    (ax,) = drawn.figure.axes
    (line,) = [ln for ln in ax.lines if ln.get_linestyle() == "--" and ln.get_markerfacecolor() == "none"]
    assert line.get_label() == "did not learn: fcn-w16-s2 (test acc 0.10)" and line.get_markeredgecolor() == "0.45"
    bad = df[(df.statistic == "acc_diff") & ~df.learned].sort_values("epoch")
    y = np.asarray(line.get_ydata(), dtype=float)
    assert list(y[np.isfinite(y)]) == list(bad.value)
    # checkpoints 0, 5, 10: nothing was measured in between, so no line joins them (NaN breaks)
    assert np.isnan(y).sum() == 2
    x, y = _errorbar_lines(ax)["w = 16 (readout 16)"]
    ok = df[(df.statistic == "acc_diff") & df.learned & (df.width == 16)]
    np.testing.assert_allclose(y, ok.groupby("epoch")["value"].mean().to_numpy())
    # four widths side by side (equal means stay visible), the dodge said in the caption
    assert np.all(np.abs(x - [0, 5, 10]) < 1) and not np.allclose(x, [0, 5, 10])
    assert any("side by side" in n for n in drawn.notes) and any("checkpoint epochs" in n for n in drawn.notes)


# ----------------------------------------------------------------------------- Fig 1
def _timing_rows() -> pd.DataFrame:
    from pntk.analysis.timing import COLUMNS

    rng = np.random.default_rng(1)
    rows = [{"dataset": "digits", "arch": f"resnet{d}", "depth": d, "kind": k, "repeat": r,
             "seconds": t * d / 18 * (1 + rng.uniform(0, 0.1)), "cpu_seconds": t * d / 18, "threads": 1,
             "device": "cpu", "device_name": "test CPU", "torch_version": "2.x", "n_params": d * 10**6,
             "method": "auto", "input_shape": "1×8×8"}
            for d in (50, 18, 34) for k, t in (("entk", 2e-2), ("pntk", 4e-3)) for r in range(5)]
    return pd.DataFrame(rows, columns=COLUMNS)


def test_timing_bars_are_the_minimum_with_min_max_whiskers_and_the_ratio(tmp_path):
    rows = _timing_rows()
    stem = tmp_path / "fig01-timing"
    drawn = figures_timing.plot_timing(rows, stem)
    _assert_written(drawn, stem)
    (ax,) = [a for a in drawn.figure.axes if a.patches]
    mins = rows.groupby(["kind", "depth"])["cpu_seconds"].min()  # one thread on a CPU: bars are CPU time
    heights = [p.get_height() for p in ax.patches]
    np.testing.assert_allclose(heights, list(mins["entk"]) + list(mins["pntk"]))
    assert [t.get_text() for t in ax.get_xticklabels()] == [  # by depth, with the eNTK/pNTK ratio of the minima
        f"resnet{d}\neNTK/pNTK ×{mins['entk'][d] / mins['pntk'][d]:.1f}" for d in (18, 34, 50)]
    assert drawn.points == ("minimum CPU time of the one-thread call (its wall-clock on an idle core) over n=5 "
                            "repeats; whiskers min–max")
    assert ax.get_ylabel() == "CPU seconds per pair of inputs"
    dots = [ln for ln in ax.lines if ln.get_marker() == "o"]  # wall-clock minima beside the CPU-time bars
    np.testing.assert_allclose(np.concatenate([ln.get_ydata() for ln in dots]),
                               [rows[(rows.kind == k) & (rows.depth == d)].seconds.min()
                                for k in ("entk", "pntk") for d in (18, 34, 50)])
    assert "1 torch thread(s) on cpu (test CPU)" in drawn.notes[0] and "resnet50 50.0M" in drawn.notes[0]
    assert drawn.warnings == []


def test_non_finite_values_are_not_drawn_and_named(tidy, tmp_path):
    """κ of a kernel with λmin ≤ 0 is NaN: the point is said to be missing instead of silently absent."""
    df = tidy[(tidy.dataset == "digits") & (tidy.arch == "fcn") & (tidy.statistic == "offdiag_ratio")].copy()
    df.loc[(df.width == 16) & (df.seed == 0) & (df.epoch == 5), "value"] = np.nan
    drawn = figures_paper.plot_paper_layout(df, "offdiag_ratio", tmp_path / "k")
    assert drawn.notes == [f"1 of {len(df)} values not finite, not drawn: fcn-w16-s0 epoch 5"]
    for _, y in _errorbar_lines(drawn.figure.axes[0]).values():
        assert np.isfinite(y).all()

"""The figure table owns which figures exist and what they read; every caption is written from what its figure
read and drew (files, statistic, rows), so a caption cannot name another store or statistic than the figure."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pntk.report import figure_set, figure_table
from pntk.report.claim_tests import slope_fit

REPO = Path(__file__).resolve().parents[1]
REPORT = REPO / "workflow" / "report"
SUBSETS = {"subset_train": 20, "subset_test": 10, "seed": 0}
WIDTH_STATS = [s.statistic for s in figure_table.FIGURES.values() if s.plot == "paper"]


# ----------------------------------------------------------------------------- the table
@pytest.fixture(scope="module")
def tiny_config():
    from pntk.config import load_config

    return load_config(REPO / "tests" / "configs" / "tiny.yaml")


PAPER = ["01", "02", "02b", "03", "03b", "04", "05", "06", "07", "08", "09", "10", "11", "12"]


def test_every_figure_is_complete_in_the_table():
    for n, spec in figure_table.FIGURES.items():
        assert spec.label == n and spec.name == f"fig{n}-{spec.slug}"
        assert spec.section in figure_table.SECTIONS and spec.needs in figure_table.REQUIREMENTS
        assert spec.reads and set(spec.reads) <= set(figure_table.INPUTS), n
        assert len(spec.about) > 40, n
        assert (spec.statistic is None) == (spec.plot not in ("paper", "epochs")), n
    # the paper's figures keep its numbers; the project's own are numbered apart and say so
    assert [n for n in figure_table.FIGURES if not n.startswith("P")] == PAPER
    assert all("pntk's own figure" in s.about for n, s in figure_table.FIGURES.items() if n.startswith("P"))
    assert figure_table.FIGURES["02b"].title == "Fig 2b" and figure_table.FIGURES["P1"].title == "Fig P1"


def test_config_decides_the_figures_and_their_inputs(tiny_config):
    assert figure_table.labels_for(tiny_config) == list(figure_table.FIGURES)
    inputs = figure_table.input_paths(tiny_config, "results/data/digits.zarr")
    assert set(inputs) == set(figure_table.INPUTS)
    assert inputs["timing"] == "results/timing/digits.csv" and inputs["rate"] == "results/tables/rate.csv"
    # the heatmap shows D in a network trained on D (diagnostics.train_on: D)
    assert inputs["kernel_manifest"].endswith("fcn-w16-s0-onD/epoch010/kernels/pntk-sub-train-sub-train.manifest.json")

    cfg = copy.deepcopy(tiny_config)
    cfg["timing"]["enabled"] = cfg["diagnostics"]["enabled"] = cfg["infinite"]["enabled"] = False
    cfg["kernels"]["index_sets"]["pntk"] = [["sub-train", "sub-train"], ["sub-test", "sub-train"]]
    assert figure_table.labels_for(cfg) == ["10", "P3", "P4"]  # no full-data pNTK: no Figs 9, 11, 12
    assert set(figure_table.input_paths(cfg, "d.zarr")) == {"training", "data", "kernel_manifest"}
    assert figure_table.heatmap_manifest(cfg).endswith("fcn-w16-s0/epoch002/kernels/pntk-sub-train-sub-train"
                                                       ".manifest.json")
    cfg["kernels"]["kinds"] = ["entk"]
    assert figure_table.labels_for(cfg) == ["10", "P3"]


def test_report_order_follows_the_papers_sections():
    order = figure_table.in_report_order(figure_table.FIGURES)
    sections = [figure_table.FIGURES[n].section for n in order]
    assert sections == sorted(sections, key=list(figure_table.SECTIONS).index)
    assert order[:3] == ["01", "02", "02b"] and order.index("09") < order.index("P1")  # the paper's before ours


# ----------------------------------------------------------------------------- inputs of every figure
def _tidy(statistics, epochs=(0, 2)) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [dict(dataset="digits", arch="fcn", width=w, seed=s, epoch=e, statistic=st,
                 value=(1 + k) * w ** -0.5 * np.exp(rng.normal(scale=0.05)), readout_width=w, learned=(w, s) != (16, 1),
                 trained_on="train")
            for k, st in enumerate(statistics) for w in (16, 32, 64) for s in (0, 1) for e in epochs]
    return pd.DataFrame(rows)


def _kernel_store(root: Path, data_path: Path) -> Path:
    """A finalized pNTK train × train store with K[a, b] = 1000·a + b (global ids): every value is traceable."""
    from pntk.data import open_prepared
    from pntk.store import tiles
    from pntk.store.paths import StorePaths

    data = open_prepared(data_path)
    ids = data.train_indices.astype(np.int64)
    paths = StorePaths.in_epoch(root / "runs/digits/fcn-w16-s0/epoch002", "pntk", "train", "train")
    tiles.init_store(paths.sentinel, kind="pntk", row_ids=ids, col_ids=ids, row_labels=data.y[ids],
                     col_labels=data.y[ids], tile=len(ids), dtype="float64", out_dim=None,
                     attrs={"rows": "train", "cols": "train", "dataset": "digits", "arch": "fcn", "width": 16,
                            "seed": 0, "epoch": 2})
    tiles.write_tile_and_flag(paths.flag(0, 0), 1000.0 * ids[:, None] + ids[None, :], 0, 0, 0.01)
    tiles.finalize(paths.manifest, [paths.flag(0, 0)])
    return paths.manifest


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, small_digits_store) -> dict[str, str]:
    from pntk.analysis.timing import COLUMNS

    root = tmp_path_factory.mktemp("inputs")
    diag = _tidy(WIDTH_STATS)
    training = _tidy(["test_acc", "train_acc"])
    training.loc[training.learned == False, "value"] = 0.1  # noqa: E712
    regression = _tidy(["flin_test_acc", "flin_minus_current", "flin_minus_final"])
    pts = diag[(diag.statistic == "frobenius_distance") & (diag.epoch == 0)]
    fit = slope_fit(pts.readout_width, pts.value, pts.seed)
    rate = pd.DataFrame([{"dataset": "digits", "arch": "fcn", "epoch": 0, "statistic": "frobenius_distance",
                          "exponent": fit.slope, "ci_low": fit.ci_low, "ci_high": fit.ci_high,
                          "intercept": fit.intercept}])
    infinite = pd.DataFrame([dict(dataset="synthetic", arch="fcn", width=w, seed=s, epoch=0,
                                  statistic=f"infinite_rel_dist_{k}", value=w ** -0.5 * (1 + s / 10))
                             for w in (32, 128) for s in (0, 1) for k in ("entk", "pntk")])
    timing = pd.DataFrame([{"dataset": "digits", "arch": f"resnet{d}", "depth": d, "kind": k, "repeat": r,
                            "seconds": t * d * (1 + r / 50), "cpu_seconds": t * d, "threads": 1, "device": "cpu",
                            "device_name": "test CPU", "torch_version": "2.x", "n_params": d, "method": "auto",
                            "input_shape": "1×8×8"}
                           for d in (18, 34) for k, t in (("entk", 0.01), ("pntk", 0.002)) for r in range(5)],
                          columns=COLUMNS)
    out = {}
    for name, df in (("diagnostics", diag), ("training", training), ("regression", regression), ("rate", rate),
                     ("infinite", infinite), ("timing", timing)):
        out[name] = str(root / f"{name}.csv")
        df.to_csv(out[name], index=False)
    out["data"] = str(small_digits_store)
    out["kernel_manifest"] = str(_kernel_store(root, small_digits_store))
    return out


@pytest.fixture(scope="module")
def records(inputs, tmp_path_factory) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("figures")
    numbers = list(figure_table.FIGURES)  # drawn by two forked workers, as the figures job does on 2 cores
    recs = dict(zip(numbers, figure_set.render_many(numbers, out, inputs, subsets=SUBSETS, formats=("png",), dpi=60,
                                                    workers=2), strict=True))
    figure_set.write_captions(list(recs.values()), out)
    return recs


def test_workers_draw_what_one_process_draws(records, inputs, tmp_path):
    """render_many's forked workers return the records (in figure order) and files of a plain loop."""
    numbers = ["03", "09", "01"]
    alone = figure_set.render_many(numbers, tmp_path, inputs, subsets=SUBSETS, formats=("png",), dpi=60, workers=1)
    assert [r["label"] for r in alone] == numbers
    for rec in alone:
        ours = records[rec["label"]]
        assert {k: v for k, v in rec.items() if k != "caption"} == {k: v for k, v in ours.items() if k != "caption"}
        assert rec["caption"] == ours["caption"]


@pytest.mark.parametrize("n", list(figure_table.FIGURES))
def test_caption_names_the_files_and_statistic_the_figure_read(n, records, inputs):
    spec, rec = figure_table.FIGURES[n], records[n]
    for name in spec.reads:
        assert f"{name}: {inputs[name]}" in rec["caption"], (n, name)
    assert rec["files"] == [f"{spec.name}.png"]
    if spec.statistic:
        assert rec["statistic"] == spec.statistic and f"statistic {spec.statistic}." in rec["caption"]
        others = [s for s in WIDTH_STATS + ["flin_test_acc", "flin_minus_final", "test_acc"] if s != spec.statistic]
        assert not [s for s in others if f" {s}" in rec["caption"]], n


def test_width_figure_draws_the_statistic_its_caption_names(inputs, tmp_path):
    """The plotted means are those of the caption's statistic, learned runs only, and the caption says which
    run was left out; with another table the caption changes with it."""
    rec = figure_set.render("03b", tmp_path, inputs, formats=("png",), dpi=60)
    diag = pd.read_csv(inputs["diagnostics"])
    assert "Runs that did not learn (drawn hollow or grey dashed, left out of the means): fcn-w16-s1 (test acc 0.10)" \
        in rec["caption"]
    assert "Points: mean ± s.d. over seeds (n=1–2)." in rec["caption"] and "epochs 0, 2" in rec["caption"]
    moved = tmp_path / "other.csv"
    diag.drop(columns="learned").to_csv(moved, index=False)
    rec2 = figure_set.render("03b", tmp_path, {**inputs, "diagnostics": str(moved)}, formats=("png",), dpi=60)
    assert f"diagnostics: {moved}" in rec2["caption"] and inputs["diagnostics"] not in rec2["caption"]


def test_kernel_heatmap_shows_D_sorted_by_label_as_its_caption_says(inputs, tmp_path):
    from pntk.data import index_set, open_prepared
    from pntk.report import figures_data

    drawn = figures_data.plot_kernel_heatmap(inputs["kernel_manifest"], inputs["data"], tmp_path / "k",
                                             subsets=SUBSETS, formats=("png",), dpi=60)
    data = open_prepared(inputs["data"])
    d = index_set(data, "sub-train", **SUBSETS)
    d = d[np.argsort(data.y[d], kind="stable")]
    ax = drawn.figure.axes[0]
    image = ax.images[0].get_array()
    np.testing.assert_array_equal(image, 1000.0 * d[:, None] + d[None, :])  # D itself, by label, not train[:n]
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(c) for c in np.unique(data.y[d])]
    assert drawn.figure.axes[1].get_ylabel() == "pNTK Θ̂(x, x′)"
    assert ax.get_title() == "pNTK Θ̂(D, D) of fcn-w16 seed 0, epoch 2"
    store = str(Path(inputs["kernel_manifest"]).with_name("pntk-train-train.zarr"))
    assert f"store {store} (pntk, train × train, shape 80 × 80)" in drawn.notes[0]
    assert "shown: 20 × 20 values, all of D" in drawn.notes[0]


def test_heatmap_of_a_run_that_did_not_learn_says_so(inputs, tmp_path):
    from pntk.report import figures_data
    from pntk.report.run_verdicts import run_verdicts

    training = pd.read_csv(inputs["training"])
    training["learned"] = False
    drawn = figures_data.plot_kernel_heatmap(inputs["kernel_manifest"], inputs["data"], tmp_path / "k",
                                             subsets=SUBSETS, verdicts=run_verdicts(training), formats=("png",))
    last = training[(training.statistic == "test_acc") & (training.width == 16) & (training.seed == 0)]
    label = f"fcn-w16-s0 (test acc {last.sort_values('epoch').value.iloc[-1]:.2f})"
    assert drawn.figure.axes[0].get_title().endswith(f"DID NOT LEARN: {label}") and drawn.not_learned == [label]


def test_timing_caption_says_the_statistic_and_setup(records):
    cap = records["01"]["caption"]
    assert "Points: minimum CPU time of the one-thread call (its wall-clock on an idle core) over n=5 repeats; " \
           "whiskers min–max." in cap
    assert "1 torch thread(s) on cpu (test CPU)" in cap and "WARNING" not in cap


def test_caption_files_and_index(records, tmp_path):
    figure_set.write_captions(list(records.values()), tmp_path)
    index = json.loads((tmp_path / figure_table.INDEX).read_text())["figures"]
    assert [r["label"] for r in index] == list(records)
    rst = figure_table.caption_file(tmp_path, "03").read_text()
    assert rst == figure_set.as_rst(f"Fig 3. {records['03']['caption']}")
    assert figure_set.as_rst("a|b *c* `d` f_lin x_ y_.") == "a\\|b \\*c\\* \\`d\\` f_lin x\\_ y\\_.\n"


@pytest.mark.parametrize("name", ["accuracy", "time"])
def test_active_caption_file_is_current(name):
    assert (REPORT / f"active-{name}.rst").read_text() == figure_set.active_caption_rst(name), \
        "run: python -m pntk.report.figure_set workflow/report"


def test_regularised_regressions_are_said_in_the_caption():
    """Figs 9, 11, 12 name the ridge each solve reported; a ridgeless run says nothing about it."""
    def table(lam, rel=None):
        rows = [{"statistic": "flin_test_acc", "value": 0.9}, {"statistic": "ridge", "value": lam}]
        rows += [{"statistic": "ridge_relative", "value": rel}] if rel is not None else []
        return pd.DataFrame(rows)

    assert figure_set.ridge_notes(table(0.0)) == []
    assert figure_set.ridge_notes(pd.DataFrame({"statistic": ["flin_test_acc"], "value": [0.9]})) == []
    (note,) = figure_set.ridge_notes(table(29.94, 0.01))
    assert "λ = 29.94–29.94 (0.01 × the mean diagonal of Θ(D,D))" in note and "not at" in note

"""pntk.layout.Layout: the one owner of the paths under results/ (the rules, scripts and library ask it)."""
import re
from pathlib import Path

import pytest

from pntk import layout as lay
from pntk.analysis.timing import timing_paths
from pntk.layout import Layout
from pntk.report import figure_table as ftab
from pntk.runs import Run
from pntk.store.paths import StorePaths

REPO = Path(__file__).resolve().parents[1]
RULES = sorted((REPO / "workflow" / "rules").glob("*.smk")) + [REPO / "Snakefile"]


@pytest.mark.parametrize("root", ["results", "out/run-1", "results/"])
def test_layout_paths_are_the_literal_ones(root):
    L, R = Layout(root), root
    assert L.table("claims") == f"{R}/tables/claims.csv"
    assert [L.table(t) for t in lay.TIDY_TABLES] == [f"{R}/tables/{t}.csv"
                                                      for t in ("diagnostics", "regression", "training", "rate")]
    assert L.table(lay.INFINITE_REGRESSION, "json") == f"{R}/tables/infinite_regression.json"
    assert {L.table(n) for n in (lay.CLAIMS, lay.WARNINGS, lay.ACTIVE, lay.INFINITE)} == {
        f"{R}/tables/{n}.csv" for n in ("claims", "warnings", "active", "infinite")}
    assert L.timing("digits") == {"csv": f"{R}/timing/digits.csv", "summary": f"{R}/timing/digits.summary.csv"}
    assert L.active_file("digits", "mlmoc-pntk", 3, "json") == f"{R}/active/digits/mlmoc-pntk-s3.json"
    assert L.figures == f"{R}/figures" and L.figures_index == f"{R}/figures/figures.json"
    assert L.active_figure("time", "pdf") == f"{R}/figures/active-time.pdf"
    assert L.report == f"{R}/report.html"
    assert L.log("tables") == f"{R}/logs/tables.log"
    assert L.log("prepare_data", "{dataset}") == f"{R}/logs/prepare_data/{{dataset}}.log"
    assert L.benchmark("regression", "d/a-w1-s0/epoch{epoch}") == \
        f"{R}/benchmarks/regression/d/a-w1-s0/epoch{{epoch}}.tsv"
    # the rules' run and checkpoint patterns (Snakemake wildcards)
    run_dir = f"{R}/runs/{{dataset}}/{{arch}}-w{{width}}-s{{seed}}{{on}}"
    assert L.run_pattern == run_dir and L.epoch_pattern == f"{run_dir}/epoch{{epoch}}"
    assert L.checkpoint_in(run_dir, 7) == f"{run_dir}/checkpoints/epoch007.pt"
    assert L.train_log_in(run_dir) == f"{run_dir}/train_log.csv"
    epoch_dir = L.epoch_pattern
    assert [L.epoch_file(epoch_dir, w) for w in ("diagnostics", "regression", "predictions")] == [
        f"{epoch_dir}/diagnostics.json", f"{epoch_dir}/regression.json", f"{epoch_dir}/predictions.nc"]
    assert L.epoch_log(epoch_dir, "regression") == f"{epoch_dir}/regression.log"
    assert L.kernels_log(epoch_dir, "kernel_checkpoint") == f"{epoch_dir}/kernels/kernel_checkpoint.log"


def test_layout_asks_run_store_and_data_owners():
    L, run = Layout("results"), Run("digits", "fcn", 64, 1, "D")
    assert L.run_dir(run) == run.dir("results") == Path("results/runs/digits/fcn-w64-s1-onD")
    assert L.checkpoint(run, 10) == run.checkpoint("results", 10) == Path(f"{L.run_dir(run)}/checkpoints/epoch010.pt")
    assert str(L.checkpoint(run, 10)) == L.checkpoint_in(str(L.run_dir(run)), 10)
    assert str(L.train_log(run)) == L.train_log_in(str(L.run_dir(run))) == f"{L.run_dir(run)}/train_log.csv"
    assert L.epoch_dir(run, 0) == run.epoch_dir("results", 0)
    assert L.store(L.epoch_dir(run, 0), "pntk", "sub-train", "sub-train") == StorePaths.in_epoch(
        run.epoch_dir("results", 0), "pntk", "sub-train", "sub-train")
    assert L.data_folder("digits") == "results/data/digits"
    # the library's older entry points give the same paths
    assert timing_paths("results", "digits") == L.timing("digits")
    assert all(ftab.table_path("results", t) == L.table(t) for t in lay.TABLE_NAMES)
    assert ftab.INDEX == lay.FIGURES_INDEX


def _code(path: Path) -> str:
    """A rule file without its comments and docstrings (what it types, not what it says)."""
    text = re.sub(r'"""(.|\n)*?"""', "", path.read_text())
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())


@pytest.mark.parametrize("literal", [r"tables/[^\"']*\.(csv|json)", r"train_log\.csv", r"epoch\{[^}]*\}\.pt",
                                     r"/logs/", r"/benchmarks/", r"report\.html", r"/figures/", r"/timing/",
                                     r"/active/", r"/runs/", r"\{R\}/"])
def test_no_rule_file_types_a_results_path(literal):
    typed = [f"{p.name}:{i}" for p in RULES for i, line in enumerate(_code(p).splitlines(), 1)
             if re.search(literal, line)]
    assert not typed, f"{literal!r} typed in {typed}: ask pntk.layout.Layout (L in common.smk)"


def test_layout_lists_data_stores_and_run_folders(tmp_path):
    """`pntk ls` walks results/ through Layout: data stores two levels under data/, folders two under runs/."""
    from pntk.layout import Layout

    for d in ("data/digits/digits.zarr", "data/digits/notes", "runs/digits/fcn-w8-s0", "runs/digits/fcn-w8-s0-onD"):
        (tmp_path / d).mkdir(parents=True)
    (tmp_path / "runs" / "digits" / "README").write_text("a file, not a run folder")
    lay = Layout(tmp_path)
    assert lay.data_stores() == [tmp_path / "data" / "digits" / "digits.zarr"]
    runs = tmp_path / "runs" / "digits"
    assert lay.run_folders() == [runs / "fcn-w8-s0", runs / "fcn-w8-s0-onD"]
    assert lay.runs_folder == tmp_path / "runs"

"""The figures job: draw each figure of the table (:mod:`.figure_table`) from its inputs and write its caption
from what the figure read and drew (files, statistic, rows, n per point, seeds, runs that did not learn).

Next to the PNG/PDF of every figure it writes ``{name}.caption.rst`` (the caption of Snakemake's report)
and one ``figures.json`` index (number, slug, section, caption, labels, files read, warnings) that the HTML
report (:mod:`.report`) reads: the report can only show the captions of the figures this run produced.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from ..provenance import atomic_write_text
from .figure_table import ACTIVE_CAPTIONS, FIGURES, INDEX, INPUTS, SECTIONS, FigureSpec, caption_file, ylabel_of
from .figures import Drawn, new_figure, plot_over_epochs, save_figure
from .run_verdicts import run_verdicts

PER_RUN_PLOTS = ("paper", "epochs", "rate", "kernel")  # plots of trained runs: the learned verdict applies


def _read_table(inputs: dict, name: str, n: str) -> pd.DataFrame:
    if name not in inputs:
        raise ValueError(f"figure {n}: input {name!r} missing; expected one of {sorted(inputs)}")
    return pd.read_csv(inputs[name])


def _placeholder(stem: Path, text: str, formats, dpi) -> Drawn:
    fig, (ax,) = new_figure(1, (5, 2))
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True)
    ax.axis("off")
    return Drawn(save_figure(fig, stem, formats, dpi), fig, None, "nothing drawn", notes=[text])


def _draw(spec: FigureSpec, stem: Path, inputs: dict, subsets: dict | None, formats, dpi) -> Drawn:
    from . import figures_data, figures_fits, figures_timing

    n, kw = spec.label, {"formats": formats, "dpi": dpi}
    if spec.plot == "data":
        return figures_data.plot_data_samples(inputs["data"], stem, **kw)
    training = _read_table(inputs, "training", n) if "training" in spec.reads else None
    if spec.plot == "kernel":
        if subsets is None:
            raise ValueError(f"figure {n}: needs `subsets` (config data: subset_train, subset_test, seed)")
        return figures_data.plot_kernel_heatmap(inputs["kernel_manifest"], inputs["data"], stem, subsets=subsets,
                                                verdicts=run_verdicts(training), **kw)
    df = _read_table(inputs, spec.reads[0], n)
    if spec.plot == "timing":
        return figures_timing.plot_timing(df, stem, **kw)
    if spec.plot == "infinite":
        return figures_fits.plot_infinite(df, stem, **kw)
    if spec.plot == "rate":
        if df.empty:  # one width per architecture: the tables job fitted nothing
            return _placeholder(stem, "Width-rate fit needs at least two widths of one architecture "
                                      "(rate.csv is empty)", formats, dpi)
        diag = _read_table(inputs, "diagnostics", n)
        fitted = df[["statistic", "epoch"]].drop_duplicates()  # what rate.csv fitted: one statistic, one epoch
        if len(fitted) != 1:
            raise ValueError(f"figure {n}: {inputs['rate']} fits {fitted.to_dict('records')}; expected one "
                             "statistic at one epoch")
        statistic, epoch = fitted.iloc[0]
        points = diag[(diag["statistic"] == statistic) & (diag["epoch"] == epoch)]
        return figures_fits.plot_rate(points, df, stem, statistic, verdicts=run_verdicts(diag, training),
                                      ylabel=f"{ylabel_of(statistic)} at epoch {epoch}", **kw)
    if spec.plot == "paper":
        from .figures_paper import plot_paper_layout

        return plot_paper_layout(df, spec.statistic, stem, spec.ylabel, verdicts=run_verdicts(df, training), **kw)
    if spec.label == "10" and "trained_on" in df.columns:  # the SGD accuracy of the networks of Figs 9–12
        df = df[df["trained_on"] == "train"]
    drawn = plot_over_epochs(df, spec.statistic, stem, spec.ylabel, verdicts=run_verdicts(df, training), **kw)
    if spec.reads[0] == "regression":
        drawn.notes.extend(ridge_notes(df))
    return drawn


def ridge_notes(regression: pd.DataFrame) -> list[str]:
    """A sentence when the regressions were regularised (not the ridgeless t = ∞ limit), from the λ each
    solve reported (statistic `ridge` of regression.csv)."""
    lam = regression.loc[regression["statistic"] == "ridge", "value"]
    if lam.empty or not (lam > 0).any():
        return []
    rel = regression.loc[regression["statistic"] == "ridge_relative", "value"].unique()
    how = f" ({_values(sorted(rel))} × the mean diagonal of Θ(D,D))" if len(rel) else ""
    return [f"the regressions are ridge-regularised, λ = {lam.min():.4g}–{lam.max():.4g}{how}: near, "
            "not at, the ridgeless t = ∞ limit"]


def _values(xs) -> str:
    return ", ".join(str(x) for x in xs)


def _verdict_sentence(not_learned: list[str] | None, one_run: bool) -> str:
    if not_learned is None:
        return "No learning verdict in the tables (no learned column): every run is drawn alike."
    if not_learned and one_run:
        return f"This run did not learn (said in red in the title): {_values(not_learned)}."
    if not_learned:
        return (f"Runs that did not learn (drawn hollow or grey dashed, left out of the means): "
                f"{_values(not_learned)}.")
    return "This run learned (learned column of the tables)." if one_run else \
        "Every trained run drawn here learned (learned column of the tables)."


def compose_caption(spec: FigureSpec, drawn: Drawn, reads: dict[str, str]) -> str:
    """`about` (what the quantity is) + what this figure read and drew, in sentences."""
    parts = [spec.about]
    read = "; ".join(f"{name}: {path}" for name, path in reads.items())
    parts.append(f"Read {read}" + (f"; statistic {drawn.statistic}." if drawn.statistic else "."))
    shown = [f"{'archs' if k == 'arch' else k + 's'} {_values(v)}" for k, v in drawn.labels.items() if v]
    if shown:
        parts.append("Drawn: " + "; ".join(shown) + ".")
    if drawn.points:
        parts.append(f"Points: {drawn.points}.")
    if spec.plot in PER_RUN_PLOTS and drawn.labels:  # a placeholder draws no run
        parts.append(_verdict_sentence(drawn.not_learned, one_run=spec.plot == "kernel"))
    parts += [note[0].upper() + note[1:] + "." for note in drawn.notes]
    parts += [f"WARNING: {w}." for w in drawn.warnings]
    return " ".join(parts)


def render(n: str, out_dir: str | Path, inputs: dict[str, str], *, subsets: dict | None = None,
           formats=("png", "pdf"), dpi: int = 150) -> dict:
    """Draw figure ``n`` (a label of the figure table) from ``inputs`` ({input name: path}); its index record."""
    spec = FIGURES[n]
    drawn = _draw(spec, Path(out_dir) / spec.name, inputs, subsets, formats, dpi)
    reads = {name: str(inputs[name]) for name in spec.reads if name in inputs}
    return {"label": n, "title": spec.title, "slug": spec.slug, "name": spec.name, "section": spec.section,
            "section_title": SECTIONS[spec.section], "caption": compose_caption(spec, drawn, reads),
            "statistic": drawn.statistic, "labels": drawn.labels, "reads": reads,
            "not_learned": drawn.not_learned, "warnings": drawn.warnings,
            "files": [p.name for p in drawn.paths]}


def render_many(labels, out_dir: str | Path, inputs: dict[str, str], *, subsets: dict | None = None,
                formats=("png", "pdf"), dpi: int = 150, workers: int = 1) -> list[dict]:
    """``render`` for every figure label, in order; ``workers`` > 1 draws them in forked processes (each
    figure is independent: it reads its tables and writes its own files)."""
    inputs = {k: v for k, v in inputs.items() if k in INPUTS}
    labels = list(labels)
    kw = dict(subsets=subsets, formats=tuple(formats), dpi=dpi)
    workers = max(1, min(int(workers), len(labels)))
    if workers == 1:
        return [render(n, out_dir, inputs, **kw) for n in labels]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from functools import partial

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        return list(pool.map(partial(render, out_dir=out_dir, inputs=inputs, **kw), labels))


def as_rst(text: str) -> str:
    """Plain text as reStructuredText: markup characters escaped, newline-terminated."""
    text = re.sub(r"([|*`\\])", r"\\\1", text)
    return re.sub(r"(\w)_(?=\W|$)", r"\1\\_", text) + "\n"


def write_captions(records: list[dict], out_dir: str | Path) -> Path:
    """``{name}.caption.rst`` per figure and the ``figures.json`` index; returns the index path."""
    for rec in records:
        atomic_write_text(caption_file(out_dir, rec["label"]), as_rst(f"{rec['title']}. {rec['caption']}"))
    index = Path(out_dir) / INDEX
    atomic_write_text(index, json.dumps({"figures": records}, indent=1, default=str))
    return index


def active_caption_rst(name: str) -> str:
    return as_rst(ACTIVE_CAPTIONS[name])


if __name__ == "__main__":  # regenerate the static captions of the active-learning figures
    import sys

    for name in ("accuracy", "time"):
        (Path(sys.argv[1]) / f"active-{name}.rst").write_text(active_caption_rst(name))

"""The one table of figures: label, slug, section, plot, inputs, statistic, y-label and what it shows.

Labels: the paper's figures keep the paper's numbers ("01"–"12"; "02b", "03b" are the second statistic the
sources give for the same figure: the thesis' per-block ratio of Fig 3.2, the theorem's distance beside the Fig 3
caption's norm difference); the project's own figures (not in the paper) are numbered apart: "P1"–"P4".

Everything else asks this table: the rules (which figures a config produces and which tables/stores the
figures job reads: :func:`numbers_for`, :func:`input_paths`), the figures job (:mod:`.figure_set`) and the
report (sections, order). `about` says what the plotted quantity is; the rest of a caption (which file,
which rows, n per point, seeds, runs that did not learn) is written from what the figure actually read.
No plotting here: the workflow imports this module while it parses the rules.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import config as pcfg
from ..layout import FIGURES_INDEX, Layout

# The sections in report order: key → heading (the paper's, then pntk's own; thesis for active). The figures a
# section holds are added from those a run drew (`section_title`): a config without Fig P2 names none.
SECTIONS = {
    "cost": "Cost of the kernels",
    "approximation": "How close the pNTK is to the eNTK",
    "regression": "Kernel regression with the eNTK and the pNTK",
    "full-data": "Full-data pNTK regression through training",
    "width": "pntk's own: rates in the width",
    "data": "pntk's own: data and kernel",
    "active": "Look-ahead active learning (thesis, MLMOC)",
}


def section_title(key: str, labels=()) -> str:
    """A section's heading with the figures it holds, e.g. "… (Fig P1)" or "… (Figs 2, 2b, 3, 3b, 4–6)"."""
    shown = [FIGURES[n].title.removeprefix("Fig ") for n in in_report_order(set(labels))]
    spans: list[list[str]] = []
    for t in shown:  # runs of consecutive plain numbers become a–b
        if spans and t.isdigit() and spans[-1][-1].isdigit() and int(t) == int(spans[-1][-1]) + 1:
            spans[-1][1:] = [t]
        else:
            spans.append([t])
    text = ", ".join(s[0] if len(s) == 1 else f"{s[0]}–{s[-1]}" for s in spans)
    return f"{SECTIONS[key]} (Fig{'s' * (len(shown) > 1)} {text})" if shown else SECTIONS[key]


# Input names a figure may read (keys of the figures rule's named input) → what they are.
TABLES = ("diagnostics", "regression", "training", "rate", "infinite")
INPUTS = TABLES + ("timing", "data", "kernel_manifest")


@dataclass(frozen=True)
class FigureSpec:
    label: str  # "01"–"12", "02b", "03b" (the paper's), "P1"–"P4" (the project's own)
    slug: str
    section: str  # key of SECTIONS
    plot: str  # paper | epochs | rate | timing | infinite | data | kernel (figure_set.render dispatches)
    needs: str  # key of REQUIREMENTS: what the config must compute for this figure to exist
    reads: tuple[str, ...]  # input names (INPUTS); the first one holds the plotted values
    about: str  # what the plotted quantity is (the data-dependent part of the caption is generated)
    statistic: str | None = None
    ylabel: str | None = None

    @property
    def name(self) -> str:
        return f"fig{self.label}-{self.slug}"

    @property
    def title(self) -> str:
        """'Fig 2b', 'Fig P1' (leading zeros dropped)."""
        return f"Fig {self.label.lstrip('0')}"


_DIAG = ("diagnostics", "training")  # training.csv: each run's accuracies for the learned note and the regime
_REGR = ("regression", "training")
_D = "on the eNTK subset D"
_LAYOUT = ("Panels as in the paper: one per architecture, epoch on x, a line per width; the last panel puts width "
           "on x at the first and the last checkpoint (the width claims).")
FIGURES: dict[str, FigureSpec] = {s.label: s for s in (
    FigureSpec("01", "timing", "cost", "timing", "timing", ("timing",),
               "Seconds to compute the eNTK (O×O block) and the pNTK (one value) for one pair of inputs with "
               "torchvision ResNets of several depths at initialisation (log scale)."),
    FigureSpec("02", "diagonal-ratio", "approximation", "paper", "diagnostics", _DIAG,
               f"Off- versus on-diagonal mass of the O×O eNTK blocks {_D}: sqrt(Σ_nm Σ_a≠b Θ_ab² / Σ_nm Σ_a Θ_aa²). "
               + _LAYOUT,
               "offdiag_ratio", r"$\|\mathrm{offdiag}\|_F \,/\, \|\mathrm{diag}\|_F$ of eNTK blocks"),
    FigureSpec("02b", "diagonal-block-ratio", "approximation", "paper", "diagnostics", _DIAG,
               f"The thesis' Fig 3.2 statistic {_D}: the magnitude of the sum of the off-diagonal entries of each O×O "
               "eNTK block, over that of its diagonal entries, each averaged over the N×N blocks. " + _LAYOUT,
               "offdiag_block_ratio", r"$\langle|\Sigma_{a\neq b}\Theta_{ab}|\rangle \,/\, "
                                      r"\langle|\Sigma_a\Theta_{aa}|\rangle$"),
    FigureSpec("03", "frobenius-norm-difference", "approximation", "paper", "diagnostics", _DIAG,
               f"The Fig 3 caption's statistic {_D}: the relative difference |‖Θ‖_F − ‖Θ̂⊗I_O‖_F| / ‖Θ‖_F of the "
               "Frobenius norms of the eNTK and the pNTK ⊗ I_O (log scale). " + _LAYOUT,
               "frobenius_norm_rel_diff", r"$|\|\Theta\|_F - \|\hat\Theta\otimes I_O\|_F| \,/\, "
                                          r"\|\Theta\|_F$"),
    FigureSpec("03b", "frobenius-distance", "approximation", "paper", "diagnostics", _DIAG,
               f"Theorem 1's quantity {_D}: the relative Frobenius distance ‖Θ − Θ̂⊗I_O‖_F / ‖Θ‖_F between the "
               "eNTK and the pNTK ⊗ I_O. " + _LAYOUT,
               "frobenius_distance", r"$\|\Theta - \hat\Theta \otimes I_O\|_F \,/\, \|\Theta\|_F$"),
    FigureSpec("04", "lambda-max", "approximation", "paper", "diagnostics", _DIAG,
               f"Relative difference |λmax(Θ) − λmax(Θ̂)| / λmax(Θ) of the largest eigenvalues of the eNTK "
               f"(NO×NO) and the pNTK (N×N) {_D}. " + _LAYOUT,
               "lambda_max_rel_diff",
               r"$|\lambda_{\max}(\Theta) - \lambda_{\max}(\hat\Theta)| \,/\, \lambda_{\max}(\Theta)$"),
    FigureSpec("05", "lambda-min", "approximation", "paper", "diagnostics", _DIAG,
               f"Relative difference |λmin(Θ) − λmin(Θ̂)| / λmin(Θ) of the smallest eigenvalues of the eNTK "
               f"and the pNTK {_D} (log scale). " + _LAYOUT,
               "lambda_min_rel_diff",
               r"$|\lambda_{\min}(\Theta) - \lambda_{\min}(\hat\Theta)| \,/\, \lambda_{\min}(\Theta)$"),
    FigureSpec("06", "condition-number", "approximation", "paper", "diagnostics", _DIAG,
               f"Relative difference |κ(Θ) − κ(Θ̂)| / κ(Θ) of the condition numbers κ = λmax/λmin of the "
               f"eNTK and the pNTK {_D}. " + _LAYOUT,
               "cond_rel_diff", r"$|\kappa(\Theta) - \kappa(\hat\Theta)| \,/\, \kappa(\Theta)$"),
    FigureSpec("07", "prediction-gap", "regression", "paper", "diagnostics", _DIAG,
               "Relative difference ‖f_lin − f̂_lin‖_F / ‖f_lin‖_F of the predictions on the test subset X of "
               "kernel regression on D (linearised network, Eqs. 5–6) with the eNTK and with the pNTK. " + _LAYOUT,
               "pred_rel_diff", r"$\|f_{\mathrm{lin}} - \hat f_{\mathrm{lin}}\|_F \,/\, \|f_{\mathrm{lin}}\|_F$"),
    FigureSpec("08", "accuracy-gap", "regression", "paper", "diagnostics", _DIAG,
               "Test accuracy on X of kernel regression on D with the eNTK minus that with the pNTK "
               "(fraction of X; below 0: the pNTK is more accurate). " + _LAYOUT,
               "acc_diff", "acc(eNTK) − acc(pNTK) on X"),
    FigureSpec("09", "flin-accuracy", "full-data", "epochs", "full_pntk", _REGR,
               "Test accuracy of kernel regression with the full-data pNTK (one-vs-rest, prior mean f₀; the "
               "linearised network f̂_lin at t = ∞) of the checkpoint at each training epoch.",
               "flin_test_acc", r"test accuracy of $\hat f_{\mathrm{lin}}$ (pNTK regression)"),
    FigureSpec("10", "sgd-accuracy", "full-data", "epochs", "always", ("training",),
               "Test accuracy of the SGD-trained network through training (train_log.csv of each run trained on "
               "the train split).",
               "test_acc", "test accuracy of the network"),
    FigureSpec("11", "flin-minus-current", "full-data", "epochs", "full_pntk", _REGR,
               "Test accuracy of full-data pNTK regression at each checkpoint minus that of the network at "
               "the same checkpoint.",
               "flin_minus_current", r"acc($\hat f_{\mathrm{lin}}$) − acc(network at this epoch)"),
    FigureSpec("12", "flin-minus-final", "full-data", "epochs", "full_pntk", _REGR,
               "Test accuracy of full-data pNTK regression at each checkpoint minus that of the fully trained "
               "network (last epoch).",
               "flin_minus_final", r"acc($\hat f_{\mathrm{lin}}$) − acc(network at the last epoch)"),
    FigureSpec("P1", "width-rate", "width", "rate", "diagnostics", ("rate", "diagnostics", "training"),
               "pntk's own figure (not in the paper): the eNTK–pNTK distance of Theorem 1 against readout width on "
               "log-log axes with the least-squares fit log(value) = a_seed + b·log(width) per architecture "
               "(rate.csv: exponent b and its 95% t-interval, seed as a block); dashed: reference slope −½."),
    FigureSpec("P2", "infinite-width", "width", "infinite", "infinite", ("infinite",),
               "pntk's own figure (not in the paper): relative Frobenius distance of the finite-width kernels of an "
               "NTK-parameterised ReLU FCN at initialisation from the analytic infinite-width NTK Θ_∞ (eNTK vs "
               "Θ_∞⊗I_O, pNTK vs Θ_∞); dashed: reference slope −½."),
    FigureSpec("P3", "data-samples", "data", "data", "always", ("data",),
               "pntk's own figure: training images of the prepared data set as the networks see them (normalised), "
               "with labels."),
    FigureSpec("P4", "kernel-heatmap", "data", "kernel", "heatmap", ("kernel_manifest", "data", "training"),
               "pntk's own figure: pNTK Θ̂(x, x′) on the training subset D, rows and columns sorted by label: block "
               "structure along the diagonal means the kernel groups examples by class."),
)}


def ylabel_of(statistic: str) -> str:
    """The y-label of the figure that plots ``statistic`` (the statistic's own name if none does)."""
    return next((s.ylabel for s in FIGURES.values() if s.statistic == statistic and s.ylabel), statistic)


def heatmap_manifest(config: dict) -> str | None:
    """Fig P4 reads the pNTK store covering D × D of the first run at its last checkpoint — a network trained on D
    when the diagnostics train there, else one of the train split (None: no such store)."""
    from ..store.paths import StorePaths  # pntk.store imports zarr: only the heatmap's input needs it

    where = pcfg.heatmap_store(config)
    if where is None:
        return None
    run, last, found = where
    return str(StorePaths.in_epoch(run.epoch_dir(config["results"], last), "pntk", *found).manifest)


REQUIREMENTS = {
    "always": lambda c: True,
    "timing": lambda c: c["timing"]["enabled"],
    "diagnostics": lambda c: c["diagnostics"]["enabled"],
    "full_pntk": pcfg.has_full_pntk,
    "infinite": lambda c: c["infinite"]["enabled"],
    "heatmap": lambda c: heatmap_manifest(c) is not None,
}


def labels_for(config: dict) -> list[str]:
    """The figures a (validated) config produces, in table order."""
    return [n for n, spec in FIGURES.items() if REQUIREMENTS[spec.needs](config)]


def table_path(results: str | Path, name: str) -> str:
    """results/tables/{name}.csv (the tables job writes them; pntk.layout.Layout.table)."""
    return Layout(results).table(name)


def input_paths(config: dict, data_store: str) -> dict[str, str]:
    """{input name: path} of everything the config's figures read (the figures rule's named input)."""
    results = config["results"]
    where = {name: table_path(results, name) for name in TABLES}
    where.update(timing=Layout(results).timing(config["data"]["name"])["csv"], data=data_store,
                 kernel_manifest=heatmap_manifest(config))
    needed = {name for n in labels_for(config) for name in FIGURES[n].reads}
    return {name: where[name] for name in INPUTS if name in needed}


INDEX = FIGURES_INDEX  # the figures job's index of what it drew (figure_set.write_captions)


def figure_files(out_dir: str | Path, n: str, formats) -> list[Path]:
    """{out_dir}/fig{label}-{slug}.{ext} for each format."""
    return [Path(out_dir) / f"{FIGURES[n].name}.{ext}" for ext in formats]


def caption_file(out_dir: str | Path, n: str) -> Path:
    """The caption the figures job writes next to figure n (Snakemake's report shows it)."""
    return Path(out_dir) / f"{FIGURES[n].name}.caption.rst"


def in_report_order(labels) -> list[str]:
    """Figure labels grouped by section (SECTIONS order), in table order within a section."""
    order, table = list(SECTIONS), list(FIGURES)
    return sorted(labels, key=lambda n: (order.index(FIGURES[n].section), table.index(n)))


# The active-learning figures (pntk.report.figures_active): not drawn from the tidy tables, so not rows of
# FIGURES, but their captions are kept here with every other figure's.
ACTIVE_CAPTIONS = {
    "accuracy": "Pool-based active learning: test accuracy of the network retrained after each cycle, "
                "against the number of labels; lines are means over seeds, bands 95% t-intervals (clipped to "
                "the possible range: accuracy in [0, 1], its difference to random's in [−1, 1]). "
                "MLMOC = look-ahead by the linearised network (pNTK one-vs-rest, eNTK, or first-logit "
                "kernel); -seq = sequential block updates within a cycle.",
    "time": "Left: wall time of one acquisition per cycle (kernel + scoring; for the naive look-ahead SGD "
            "retraining per candidate on its fewer candidates). Right: the same divided by the candidates scored; "
            "the dotted line is 1/100 of the naive look-ahead's time per candidate (MLMOC below it: more than 100 "
            "times faster). Geometric mean and 95% t-interval over seeds, log scale; block-check solves are not "
            "timed.",
}

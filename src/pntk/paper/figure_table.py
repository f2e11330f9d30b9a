"""The one table of figures: number, slug, section, plot, inputs, statistic, y-label and what it shows.

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
from .timing import timing_paths

# The paper's sections in report order: key → heading (Mohamadi & Sutherland 2023; thesis for active). The
# figures a section holds are added from those a run drew (`section_title`): a config without Fig 14 has none.
SECTIONS = {
    "cost": "Cost of the kernels",
    "approximation": "How close the pNTK is to the eNTK",
    "regression": "Kernel regression with the eNTK and the pNTK",
    "width": "Convergence with width: Theorem 1",
    "full-data": "Full-data pNTK regression through training",
    "data": "Data and kernel",
    "active": "Look-ahead active learning (thesis, MLMOC)",
}


def section_title(key: str, numbers=()) -> str:
    """A section's heading with the figures it holds, e.g. "… (Fig 13)" or "… (Figs 2–6)"."""
    spans, nums = [], sorted(set(numbers))
    for n in nums:
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    text = ", ".join(f"{a}" if a == b else f"{a}–{b}" for a, b in spans)
    return f"{SECTIONS[key]} (Fig{'s' * (len(nums) > 1)} {text})" if nums else SECTIONS[key]


# Input names a figure may read (keys of the figures rule's named input) → what they are.
TABLES = ("diagnostics", "regression", "training", "rate", "infinite")
INPUTS = TABLES + ("timing", "data", "kernel_manifest")


@dataclass(frozen=True)
class FigureSpec:
    number: int
    slug: str
    section: str  # key of SECTIONS
    plot: str  # width | epochs | rate | timing | infinite | data | kernel (figure_set.render dispatches)
    needs: str  # key of REQUIREMENTS: what the config must compute for this figure to exist
    reads: tuple[str, ...]  # input names (INPUTS); the first one holds the plotted values
    about: str  # what the plotted quantity is (the data-dependent part of the caption is generated)
    statistic: str | None = None
    ylabel: str | None = None

    @property
    def name(self) -> str:
        return f"fig{self.number:02d}-{self.slug}"


_DIAG = ("diagnostics", "training")  # training.csv: each run's final test accuracy for the learned note
_REGR = ("regression", "training")
_D = "on the eNTK subset D of the training set"
FIGURES: dict[int, FigureSpec] = {s.number: s for s in (
    FigureSpec(1, "timing", "cost", "timing", "timing", ("timing",),
               "Seconds to compute the eNTK (O×O block) and the pNTK (one value) for one pair of inputs with "
               "torchvision ResNets of several depths at initialisation (log scale)."),
    FigureSpec(2, "diagonal-ratio", "approximation", "width", "diagnostics", _DIAG,
               f"Off- versus on-diagonal mass of the O×O eNTK blocks {_D}: "
               "sqrt(Σ_nm Σ_a≠b Θ_ab² / Σ_nm Σ_a Θ_aa²), against width.",
               "offdiag_ratio", r"$\|\mathrm{offdiag}\|_F \,/\, \|\mathrm{diag}\|_F$ of eNTK blocks"),
    FigureSpec(3, "frobenius-distance", "approximation", "width", "diagnostics", _DIAG,
               f"Relative Frobenius distance ‖Θ − Θ̂⊗I_O‖_F / ‖Θ‖_F between the eNTK and the pNTK {_D}.",
               "frobenius_distance", r"$\|\Theta - \hat\Theta \otimes I_O\|_F \,/\, \|\Theta\|_F$"),
    FigureSpec(4, "lambda-max", "approximation", "width", "diagnostics", _DIAG,
               f"Relative difference |λmax(Θ) − λmax(Θ̂)| / λmax(Θ) of the largest eigenvalues of the eNTK "
               f"(NO×NO) and the pNTK (N×N) {_D}.",
               "lambda_max_rel_diff",
               r"$|\lambda_{\max}(\Theta) - \lambda_{\max}(\hat\Theta)| \,/\, \lambda_{\max}(\Theta)$"),
    FigureSpec(5, "lambda-min", "approximation", "width", "diagnostics", _DIAG,
               f"Relative difference |λmin(Θ) − λmin(Θ̂)| / λmin(Θ) of the smallest eigenvalues of the eNTK "
               f"and the pNTK {_D}.",
               "lambda_min_rel_diff",
               r"$|\lambda_{\min}(\Theta) - \lambda_{\min}(\hat\Theta)| \,/\, \lambda_{\min}(\Theta)$"),
    FigureSpec(6, "condition-number", "approximation", "width", "diagnostics", _DIAG,
               f"Relative difference |κ(Θ) − κ(Θ̂)| / κ(Θ) of the condition numbers κ = λmax/λmin of the "
               f"eNTK and the pNTK {_D}.",
               "cond_rel_diff", r"$|\kappa(\Theta) - \kappa(\hat\Theta)| \,/\, \kappa(\Theta)$"),
    FigureSpec(7, "prediction-gap", "regression", "width", "diagnostics", _DIAG,
               "Relative difference ‖f_lin − f̂_lin‖_F / ‖f_lin‖_F of the predictions on the test subset X of "
               "kernel regression on D (linearised network, Eqs. 5–6) with the eNTK and with the pNTK.",
               "pred_rel_diff", r"$\|f_{\mathrm{lin}} - \hat f_{\mathrm{lin}}\|_F \,/\, \|f_{\mathrm{lin}}\|_F$"),
    FigureSpec(8, "accuracy-gap", "regression", "width", "diagnostics", _DIAG,
               "Test accuracy on X of kernel regression on D with the eNTK minus that with the pNTK "
               "(fraction of X).",
               "acc_diff", "test accuracy (eNTK) − test accuracy (pNTK)"),
    FigureSpec(9, "flin-accuracy", "full-data", "epochs", "full_pntk", _REGR,
               "Test accuracy of kernel regression with the full-data pNTK (one-vs-rest, prior mean f₀; the "
               "linearised network f̂_lin at t = ∞) of the checkpoint at each training epoch.",
               "flin_test_acc", r"test accuracy of $\hat f_{\mathrm{lin}}$ (pNTK regression)"),
    FigureSpec(10, "sgd-accuracy", "full-data", "epochs", "always", ("training",),
               "Test accuracy of the SGD-trained network through training (train_log.csv of each run).",
               "test_acc", "test accuracy of the network"),
    FigureSpec(11, "flin-minus-current", "full-data", "epochs", "full_pntk", _REGR,
               "Test accuracy of full-data pNTK regression at each checkpoint minus that of the network at "
               "the same checkpoint.",
               "flin_minus_current", r"acc($\hat f_{\mathrm{lin}}$) − acc(network at this epoch)"),
    FigureSpec(12, "flin-minus-final", "full-data", "epochs", "full_pntk", _REGR,
               "Test accuracy of full-data pNTK regression at each checkpoint minus that of the fully trained "
               "network (last epoch).",
               "flin_minus_final", r"acc($\hat f_{\mathrm{lin}}$) − acc(network at the last epoch)"),
    FigureSpec(13, "width-rate", "width", "rate", "diagnostics", ("rate", "diagnostics", "training"),
               "Theorem 1: the eNTK–pNTK distance against readout width on log-log axes with the "
               "least-squares fit log(value) = a + b·log(width) per architecture (rate.csv: exponent b and "
               "its 95% seed-bootstrap interval); dashed: reference slope −½."),
    FigureSpec(14, "infinite-width", "width", "infinite", "infinite", ("infinite",),
               "Relative Frobenius distance of the finite-width kernels of an NTK-parameterised ReLU FCN at "
               "initialisation from the analytic infinite-width NTK Θ_∞ (eNTK vs Θ_∞⊗I_O, pNTK vs Θ_∞); "
               "dashed: reference slope −½."),
    FigureSpec(15, "data-samples", "data", "data", "always", ("data",),
               "Training images of the prepared data set as the networks see them (normalised), with labels."),
    FigureSpec(16, "kernel-heatmap", "data", "kernel", "heatmap", ("kernel_manifest", "data", "training"),
               "pNTK Θ̂(x, x′) on the training subset D, rows and columns sorted by label: block structure "
               "along the diagonal means the kernel groups examples by class."),
)}


def ylabel_of(statistic: str) -> str:
    """The y-label of the figure that plots ``statistic`` (the statistic's own name if none does)."""
    return next((s.ylabel for s in FIGURES.values() if s.statistic == statistic and s.ylabel), statistic)


def heatmap_manifest(config: dict) -> str | None:
    """Fig 16 reads the pNTK store covering D × D of the first run at its last checkpoint (None: no such store)."""
    from ..store.paths import StorePaths

    found = pcfg.find_store(config, "pntk", "sub-train", "sub-train")
    runs = pcfg.runs(config)
    if found is None or not runs:
        return None
    last = max(config["train"]["checkpoint_epochs"])
    return str(StorePaths.in_epoch(runs[0].epoch_dir(config["results"], last), "pntk", *found).manifest)


REQUIREMENTS = {
    "always": lambda c: True,
    "timing": lambda c: c["timing"]["enabled"],
    "diagnostics": lambda c: c["diagnostics"]["enabled"],
    "full_pntk": pcfg.has_full_pntk,
    "infinite": lambda c: c["infinite"]["enabled"],
    "heatmap": lambda c: heatmap_manifest(c) is not None,
}


def numbers_for(config: dict) -> list[int]:
    """The figures a (validated) config produces, ascending."""
    return [n for n, spec in sorted(FIGURES.items()) if REQUIREMENTS[spec.needs](config)]


def table_path(results: str | Path, name: str) -> str:
    """results/tables/{name}.csv (the tables job writes them)."""
    return f"{results}/tables/{name}.csv"


def input_paths(config: dict, data_store: str) -> dict[str, str]:
    """{input name: path} of everything the config's figures read (the figures rule's named input)."""
    results = config["results"]
    where = {name: table_path(results, name) for name in TABLES}
    where.update(timing=timing_paths(results, config["data"]["name"])["csv"], data=data_store,
                 kernel_manifest=heatmap_manifest(config))
    needed = {name for n in numbers_for(config) for name in FIGURES[n].reads}
    return {name: where[name] for name in INPUTS if name in needed}


INDEX = "figures.json"  # the figures job's index of what it drew (figure_set.write_captions)


def figure_files(out_dir: str | Path, n: int, formats) -> list[Path]:
    """{out_dir}/fig{NN}-{slug}.{ext} for each format."""
    return [Path(out_dir) / f"{FIGURES[n].name}.{ext}" for ext in formats]


def caption_file(out_dir: str | Path, n: int) -> Path:
    """The caption the figures job writes next to figure n (Snakemake's report shows it)."""
    return Path(out_dir) / f"{FIGURES[n].name}.caption.rst"


def in_report_order(numbers) -> list[int]:
    """Figure numbers grouped by section (SECTIONS order), ascending within a section."""
    order = list(SECTIONS)
    return sorted(numbers, key=lambda n: (order.index(FIGURES[n].section), n))

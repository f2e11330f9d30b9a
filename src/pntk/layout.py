"""Where every output lives under `results/`: the one owner of the results folder's layout.

    {results}/data/{dataset}/{dataset}.zarr              prepared data (pntk.data.prepared)
    {results}/runs/{dataset}/{run}/checkpoints/…, train_log.csv, epoch{E:03d}/…   a run (pntk.runs.Run)
    {results}/runs/…/epoch{E:03d}/kernels/{kind}-{rows}-{cols}.*   a kernel store (pntk.store.paths.StorePaths)
    {results}/runs/…/epoch{E:03d}/diagnostics.json, regression.json, predictions.nc (+ {step}.log)
    {results}/tables/{name}.csv                          tidy tables, claims, warnings (TABLE_NAMES)
    {results}/timing/{dataset}.csv, .summary.csv         Fig 1
    {results}/active/{dataset}/{strategy}-s{seed}.csv, .json   active learning
    {results}/figures/                                   figures, their captions, figures.json
    {results}/report.html                                the HTML report
    {results}/logs/{rule}[/{job}].log, {results}/benchmarks/{rule}/{job}.tsv

Paths are strings joined with "/" onto `root` as given (the rules' paths, byte for byte), so a Layout of
Snakemake wildcards (`"{dataset}"`, …) gives the rules' patterns; run and store paths are asked of Run and
StorePaths, whose Paths it returns.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .runs import CHECKPOINTS, RUN_PATTERN, TRAIN_LOG, Run, checkpoint_name

# The tables under {results}/tables/ (csv unless said): the tidy tables the tables job writes, the verdicts of
# the claims job, and what the infinite-width and active-learning jobs write there.
DIAGNOSTICS, REGRESSION, TRAINING, RATE = "diagnostics", "regression", "training", "rate"
CLAIMS, WARNINGS = "claims", "warnings"
INFINITE, INFINITE_REGRESSION, ACTIVE = "infinite", "infinite_regression", "active"  # infinite_regression: json
TIDY_TABLES = (DIAGNOSTICS, REGRESSION, TRAINING, RATE)
TABLE_NAMES = TIDY_TABLES + (CLAIMS, WARNINGS, INFINITE, INFINITE_REGRESSION, ACTIVE)
# The files of one checkpoint folder (epoch{E:03d}/) that the analysis jobs write.
# The figures job's index of what it drew, in the figures folder (pntk.report.figure_set.write_captions).
FIGURES_INDEX = "figures.json"
EPOCH_FILES = {"diagnostics": "diagnostics.json", "regression": "regression.json", "predictions": "predictions.nc"}


@dataclass(frozen=True)
class Layout:
    root: str  # the results folder (config `results`), kept as given

    def __post_init__(self):
        object.__setattr__(self, "root", str(self.root))

    # --- data, runs, stores: their own owners
    def data_folder(self, dataset: str) -> str:
        """`{root}/data/{dataset}`: the prepare_data output folder (pntk.data.prepared_folder)."""
        from .data.prepared import prepared_folder

        return str(prepared_folder(self.root, dataset))

    @property
    def runs_folder(self) -> Path:
        """`{root}/runs`: every run folder, `{dataset}/{arch}-w{width}-s{seed}[-onD]`, below it."""
        return Path(self.root, "runs")

    def data_stores(self) -> list[Path]:
        """Every prepared data store on disk, `{root}/data/{dataset}/*.zarr` (what `pntk ls` lists)."""
        return sorted(Path(self.root, "data").glob("*/*.zarr"))

    def run_folders(self) -> list[Path]:
        """Every folder two levels below runs/ (callers keep those `Run.of_path` parses: run folders)."""
        return sorted(p for p in self.runs_folder.glob("*/*") if p.is_dir())

    def run_dir(self, run: Run) -> Path:
        return run.dir(self.root)

    def checkpoint(self, run: Run, epoch: int) -> Path:
        return run.checkpoint(self.root, epoch)

    def train_log(self, run: Run) -> Path:
        return run.train_log(self.root)

    def epoch_dir(self, run: Run, epoch: int) -> Path:
        return run.epoch_dir(self.root, epoch)

    @staticmethod
    def store(epoch_dir: str | Path, kind: str, rows: str, cols: str):
        """The StorePaths of store `{kind}-{rows}-{cols}` of a checkpoint folder (or pattern)."""
        from .store.paths import StorePaths

        return StorePaths.in_epoch(epoch_dir, kind, rows, cols)

    # --- Snakemake patterns of a run (wildcards of pntk.runs.RUN_PATTERN, {epoch})
    @property
    def run_pattern(self) -> str:
        """`{root}/runs/{dataset}/{arch}-w{width}-s{seed}{on}`."""
        return f"{self.root}/runs/{RUN_PATTERN}"

    @property
    def epoch_pattern(self) -> str:
        return f"{self.run_pattern}/epoch{{epoch}}"

    @staticmethod
    def checkpoint_in(run_dir: str, epoch: int) -> str:
        """`{run_dir}/checkpoints/epoch{E:03d}.pt` (run_dir: a folder or a pattern)."""
        return f"{run_dir}/{CHECKPOINTS}/{checkpoint_name(epoch)}"

    @staticmethod
    def train_log_in(run_dir: str) -> str:
        return f"{run_dir}/{TRAIN_LOG}"

    @staticmethod
    def epoch_file(epoch_dir: str | Path, what: str) -> str:
        """`{epoch_dir}/diagnostics.json` etc. (what: a key of EPOCH_FILES)."""
        return f"{epoch_dir}/{EPOCH_FILES[what]}"

    @staticmethod
    def epoch_log(epoch_dir: str | Path, step: str) -> str:
        """Log of an analysis job of a checkpoint: `{epoch_dir}/{step}.log`."""
        return f"{epoch_dir}/{step}.log"

    @staticmethod
    def kernels_log(epoch_dir: str | Path, step: str) -> str:
        """Log of a job on every store of a checkpoint: `{epoch_dir}/kernels/{step}.log` (a store's own logs:
        StorePaths.log)."""
        return f"{epoch_dir}/kernels/{step}.log"

    def at_init(self, dataset: str, arch: str, width: int | str) -> str:
        """`{root}/at_init/{dataset}/{arch}-w{width}.json`: the statistics on D of one model and width's networks
        at initialisation only (diagnostics.at_init; rule diagnose_at_init)."""
        return f"{self.root}/at_init/{dataset}/{arch}-w{width}.json"

    # --- tables, timing, active learning, figures, report
    def table(self, name: str, ext: str = "csv") -> str:
        """`{root}/tables/{name}.csv` (infinite_regression: ext="json")."""
        return f"{self.root}/tables/{name}.{ext}"

    def timing(self, dataset: str) -> dict[str, str]:
        """Per-repeat rows and their summary (the timing rule's outputs)."""
        return {"csv": f"{self.root}/timing/{dataset}.csv", "summary": f"{self.root}/timing/{dataset}.summary.csv"}

    def active_file(self, dataset: str, strategy: str, seed: int | str, ext: str) -> str:
        """`{root}/active/{dataset}/{strategy}-s{seed}.{ext}`: `csv` (one row per cycle) or `json` (meta)."""
        return f"{self.root}/active/{dataset}/{strategy}-s{seed}.{ext}"

    @property
    def figures(self) -> str:
        """`{root}/figures`: every figure, its caption and the figures job's index."""
        return f"{self.root}/figures"

    @property
    def figures_index(self) -> str:
        return f"{self.figures}/{FIGURES_INDEX}"

    def active_figure(self, name: str, ext: str) -> str:
        return f"{self.figures}/active-{name}.{ext}"

    @property
    def report(self) -> str:
        return f"{self.root}/report.html"

    # --- job logs and benchmarks
    def log(self, rule: str, job: str | None = None) -> str:
        """`{root}/logs/{rule}.log`, or `{root}/logs/{rule}/{job}.log` for a rule with one job per wildcard set."""
        return f"{self.root}/logs/{rule}.log" if job is None else f"{self.root}/logs/{rule}/{job}.log"

    def benchmark(self, rule: str, job: str) -> str:
        return f"{self.root}/benchmarks/{rule}/{job}.tsv"

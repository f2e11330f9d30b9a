"""Where a run lives under `results/`: the one owner of the run name `{dataset}/{arch}-w{width}-s{seed}[-onD]`.

    results/runs/{dataset}/{arch}-w{width}-s{seed}/checkpoints/epoch{E:03d}.pt   (+ train_log.csv)
    results/runs/{dataset}/{arch}-w{width}-s{seed}/epoch{E:03d}/                 kernels/, diagnostics.json, …

A run is trained on the train split (`trained_on == "train"`: the networks of Figs 9–12 and everything else),
or, for the paper's Figs 2–8 (`diagnostics.train_on: D`), on the eNTK subset D itself — "The same subset has
then been used to train the NN using SGD" (paper, Fig 2 caption) — with the suffix `-onD`. Both kinds of one
(arch, width, seed) start from the same initialisation.

Everything that builds or parses these paths (rules, jobs, tables, archives, CLI) asks `Run`. `Run.arch` (the
`{arch}` wildcard, the tables' `arch` column) is the model's *name*: a models entry's `name:`, else its
built-in arch or its callable's name. It identifies the model everywhere; what network it stands for is
the entry's (`pntk.models.spec.entry_identity`), which stores record as `arch`, `model_kwargs`, `model_spec`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# What a run was trained on → the suffix of its name. "init": a network at initialisation only, never trained
# (`diagnostics.at_init`): it has table rows at epoch 0 but no run folder, checkpoints or train log.
TRAINED_ON = {"train": "", "D": "-onD", "init": "-init"}
# The run folder's name; `arch` may contain '-' (user model names), so width and seed are parsed from the end.
_SUFFIXES = "|".join(re.escape(v) for v in TRAINED_ON.values() if v)  # "-onD|-init"
_LEAF = re.compile(rf"^(?P<arch>.+)-w(?P<width>\d+)-s(?P<seed>\d+)(?P<on>{_SUFFIXES})?$")
_EPOCH = re.compile(r"^epoch(?P<epoch>\d{3,})(\.pt)?$")
# Snakemake wildcards of a run folder: {on} is "" (trained on the train split) or "-onD" (see ON_CONSTRAINT)
RUN_PATTERN = "{dataset}/{arch}-w{width}-s{seed}{on}"
ON_CONSTRAINT = "|".join(sorted((TRAINED_ON["train"], TRAINED_ON["D"]), reverse=True))  # "-onD|": run folders
CHECKPOINTS, TRAIN_LOG = "checkpoints", "train_log.csv"  # in a run folder: the checkpoints' folder, the log


def checkpoint_name(epoch: int) -> str:
    """`epoch{E:03d}.pt`: the file name of a checkpoint (in `checkpoints/`, and in the train job's resume state)."""
    return f"epoch{epoch:03d}.pt"


@dataclass(frozen=True)
class Run:
    dataset: str
    arch: str
    width: int
    seed: int
    trained_on: str = "train"  # a key of TRAINED_ON

    def __post_init__(self):
        if self.trained_on not in TRAINED_ON:
            raise ValueError(f"Run.trained_on: {self.trained_on!r}, expected one of {list(TRAINED_ON)}")

    @property
    def leaf(self) -> str:
        """`{arch}-w{width}-s{seed}[-onD]`: the run folder's own name."""
        return f"{self.arch}-w{self.width}-s{self.seed}{TRAINED_ON[self.trained_on]}"

    @property
    def wildcards(self) -> dict:
        """The values of RUN_PATTERN's wildcards."""
        return {"dataset": self.dataset, "arch": self.arch, "width": self.width, "seed": self.seed,
                "on": TRAINED_ON[self.trained_on]}

    @property
    def name(self) -> str:
        """`{dataset}/{arch}-w{width}-s{seed}`: unique within a results folder."""
        return f"{self.dataset}/{self.leaf}"

    def dir(self, results: str | Path) -> Path:
        return Path(results) / "runs" / self.dataset / self.leaf

    def checkpoint(self, results: str | Path, epoch: int) -> Path:
        return self.dir(results) / CHECKPOINTS / checkpoint_name(epoch)

    def epoch_dir(self, results: str | Path, epoch: int) -> Path:
        return self.dir(results) / f"epoch{epoch:03d}"

    def train_log(self, results: str | Path) -> Path:
        return self.dir(results) / TRAIN_LOG

    def meta(self) -> dict:
        """{dataset, arch, width, seed, trained_on}: the columns every tidy table carries."""
        return {"dataset": self.dataset, "arch": self.arch, "width": self.width, "seed": self.seed,
                "trained_on": self.trained_on}

    @classmethod
    def of_row(cls, row) -> Run:
        """The run of a table row (a namedtuple or Series with dataset, arch, width, seed[, trained_on])."""
        get = row.get if hasattr(row, "get") else lambda k, d=None: getattr(row, k, d)
        on = get("trained_on", "train")
        return cls(get("dataset"), get("arch"), int(get("width")), int(get("seed")),
                   on if isinstance(on, str) and on else "train")

    @classmethod
    def of_wildcards(cls, wc) -> Run:
        """The run of a Snakemake job's wildcards (RUN_PATTERN)."""
        on = next(k for k, v in TRAINED_ON.items() if v == getattr(wc, "on", ""))
        return cls(wc.dataset, wc.arch, int(wc.width), int(wc.seed), on)

    @classmethod
    def parse(cls, name: str) -> Run:
        """`{dataset}/{arch}-w{width}-s{seed}` → Run; ValueError naming the expected form otherwise."""
        dataset, _, leaf = str(name).partition("/")
        m = _LEAF.match(leaf)
        if not dataset or not m or "/" in leaf:
            raise ValueError(f"{name!r} is not a run name of the form {{dataset}}/{{arch}}-w{{width}}-s{{seed}}[-onD]")
        on = next(k for k, v in TRAINED_ON.items() if v == (m["on"] or ""))
        return cls(dataset, m["arch"], int(m["width"]), int(m["seed"]), on)

    @classmethod
    def of_path(cls, path: str | Path) -> Run:
        """The run a path inside a run folder belongs to (…/{dataset}/{arch}-w{W}-s{S}/…)."""
        parts = Path(path).parts
        for k in range(len(parts) - 1, 0, -1):
            if _LEAF.match(parts[k]):
                return cls.parse(f"{parts[k - 1]}/{parts[k]}")
        raise ValueError(f"{path}: not inside a run folder {{dataset}}/{{arch}}-w{{width}}-s{{seed}}[-onD]")


def epoch_of(path: str | Path) -> int:
    """Checkpoint epoch of `…/checkpoints/epoch{E}.pt` or of an epoch folder `…/epoch{E}/…`."""
    for part in reversed(Path(path).parts):
        m = _EPOCH.match(part)
        if m:
            return int(m["epoch"])
    raise ValueError(f"{path}: no epoch{{E:03d}} component")


def checkpoint_meta(checkpoint: str | Path) -> dict:
    """{dataset, arch, width, seed, trained_on, epoch} of a checkpoint path (what stores and JSONs record)."""
    return {**Run.of_path(checkpoint).meta(), "epoch": epoch_of(checkpoint)}

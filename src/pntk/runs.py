"""Where a run lives under `results/`: the one owner of the run name `{dataset}/{arch}-w{width}-s{seed}`.

    results/runs/{dataset}/{arch}-w{width}-s{seed}/checkpoints/epoch{E:03d}.pt   (+ train_log.csv)
    results/runs/{dataset}/{arch}-w{width}-s{seed}/epoch{E:03d}/                 kernels/, diagnostics.json, …

Everything that builds or parses these paths (rules, jobs, tables, archives, CLI) asks `Run`. `Run.arch` (the
`{arch}` wildcard, the tables' `arch` column) is the model's *name*: a models entry's `name:`, else its
built-in arch or its callable's name. It identifies the model everywhere; what network it stands for is
the entry's (`pntk.model_spec.entry_identity`), which stores record as `arch`, `model_kwargs`, `model_spec`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# The run folder's name; `arch` may contain '-' (user model names), so width and seed are parsed from the end.
_LEAF = re.compile(r"^(?P<arch>.+)-w(?P<width>\d+)-s(?P<seed>\d+)$")
_EPOCH = re.compile(r"^epoch(?P<epoch>\d{3,})(\.pt)?$")
RUN_PATTERN = "{dataset}/{arch}-w{width}-s{seed}"  # Snakemake wildcards of a run folder


@dataclass(frozen=True)
class Run:
    dataset: str
    arch: str
    width: int
    seed: int

    @property
    def leaf(self) -> str:
        """`{arch}-w{width}-s{seed}`: the run folder's own name."""
        return f"{self.arch}-w{self.width}-s{self.seed}"

    @property
    def name(self) -> str:
        """`{dataset}/{arch}-w{width}-s{seed}`: unique within a results folder."""
        return f"{self.dataset}/{self.leaf}"

    def dir(self, results: str | Path) -> Path:
        return Path(results) / "runs" / self.dataset / self.leaf

    def checkpoint(self, results: str | Path, epoch: int) -> Path:
        return self.dir(results) / "checkpoints" / f"epoch{epoch:03d}.pt"

    def epoch_dir(self, results: str | Path, epoch: int) -> Path:
        return self.dir(results) / f"epoch{epoch:03d}"

    def train_log(self, results: str | Path) -> Path:
        return self.dir(results) / "train_log.csv"

    def meta(self) -> dict:
        """{dataset, arch, width, seed}: the columns every tidy table carries."""
        return {"dataset": self.dataset, "arch": self.arch, "width": self.width, "seed": self.seed}

    @classmethod
    def parse(cls, name: str) -> Run:
        """`{dataset}/{arch}-w{width}-s{seed}` → Run; ValueError naming the expected form otherwise."""
        dataset, _, leaf = str(name).partition("/")
        m = _LEAF.match(leaf)
        if not dataset or not m or "/" in leaf:
            raise ValueError(f"{name!r} is not a run name of the form {RUN_PATTERN}")
        return cls(dataset, m["arch"], int(m["width"]), int(m["seed"]))

    @classmethod
    def of_path(cls, path: str | Path) -> Run:
        """The run a path inside a run folder belongs to (…/{dataset}/{arch}-w{W}-s{S}/…)."""
        parts = Path(path).parts
        for k in range(len(parts) - 1, 0, -1):
            if _LEAF.match(parts[k]):
                return cls.parse(f"{parts[k - 1]}/{parts[k]}")
        raise ValueError(f"{path}: not inside a run folder {RUN_PATTERN}")


def epoch_of(path: str | Path) -> int:
    """Checkpoint epoch of `…/checkpoints/epoch{E}.pt` or of an epoch folder `…/epoch{E}/…`."""
    for part in reversed(Path(path).parts):
        m = _EPOCH.match(part)
        if m:
            return int(m["epoch"])
    raise ValueError(f"{path}: no epoch{{E:03d}} component")


def checkpoint_meta(checkpoint: str | Path) -> dict:
    """{dataset, arch, width, seed, epoch} of a checkpoint path (what stores and JSONs record)."""
    return {**Run.of_path(checkpoint).meta(), "epoch": epoch_of(checkpoint)}

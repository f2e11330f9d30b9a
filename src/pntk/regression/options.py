"""How `linearized_predict` solves Θ(D,D) α = Y − f0(D): one frozen object, read once from a config's `regression:`.

The defaults are the schema's (`pntk/schemas/config.schema.yaml`, regression); a validated config has every key,
so `from_config` reads them without fallbacks. Callers that build options by hand (tests, benchmarks) start from
`SolverOptions()` and change what they need.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..config_runs import memory_cap_bytes


@dataclass(frozen=True)
class SolverOptions:
    solver: str = "auto"             # cholesky | eigh | nystrom | cg | auto (linearized_predict's docstring)
    ridge: float = 0.0               # λ on the diagonal of Θ(D,D)
    ridge_scale: str = "absolute"    # or "mean_diagonal": λ as a fraction of the mean diagonal
    tol: float = 1e-8                # CG relative residual per right-hand side
    maxiter: int | None = None       # CG iterations (None: its default)
    rank: int | None = None          # Nyström landmarks (None: NYSTROM_RANK, cut to fit the cap)
    landmarks: str = "rpcholesky"    # or "uniform"
    memory_cap_bytes: int | None = None  # None: half the available RAM, or 80 % of free GPU memory
    device: str = "cpu"              # torch device of every product
    threads: int | None = None       # tile-reading workers (None: torch.get_num_threads())

    @classmethod
    def from_config(cls, regression: dict) -> SolverOptions:
        """The options of a validated config's `regression:` section (memory_cap_gb in bytes)."""
        return cls(solver=regression["solver"], ridge=float(regression["ridge"]),
                   ridge_scale=regression["ridge_scale"], tol=float(regression["tol"]),
                   rank=regression["nystrom_rank"], landmarks=regression["nystrom_landmarks"],
                   memory_cap_bytes=int(memory_cap_bytes(regression)), device=regression["device"])

    def replace(self, **changes) -> SolverOptions:
        """A copy with `changes`; a key that is not an option raises TypeError naming it and the options."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise TypeError(f"linearized_predict: unknown solver option(s) {unknown}; expected keyword arguments "
                            f"among {[f.name for f in dataclasses.fields(self)]}")
        return dataclasses.replace(self, **changes)

"""What a validated config computes: its runs (trained on the train split, and on D for the diagnostics), their
checkpoints, the kernel stores of each, index-set sizes and tile grids. `pntk.config` re-exports these; the
workflow (common.smk), `pntk plan`, archives and the inventory all ask them, so they agree by construction.
"""
from __future__ import annotations

from .data.datasets import DataSpec, dataset_spec
from .models import ModelSpec, is_import_path, source_digest
from .runs import Run
from .tiling import TileGrid, is_symmetric

# The stores a network trained on D needs for the diagnostics (Figs 2–8): eNTK and pNTK on D × D and X × D.
DIAGNOSTIC_STORES = [("entk", "sub-train", "sub-train"), ("entk", "sub-test", "sub-train"),
                     ("pntk", "sub-train", "sub-train"), ("pntk", "sub-test", "sub-train")]


class ConfigError(ValueError):
    """A configuration value is invalid; the message starts with the offending key."""


def split_sizes(config: dict) -> tuple[int, int]:
    """(n_train, n_test) after the optional seeded subsampling."""
    data = config["data"]
    spec = data_spec(config)
    full_train, full_test = spec.n_train, spec.n_test
    n_train = data["train_size"] or full_train
    n_test = data["test_size"] or full_test
    if n_train > full_train:
        raise ConfigError(f"data.train_size: {n_train} exceeds the {full_train} train examples of {data['name']}")
    if n_test > full_test:
        raise ConfigError(f"data.test_size: {n_test} exceeds the {full_test} test examples of {data['name']}")
    return n_train, n_test


def data_spec(config: dict) -> DataSpec:
    """Full split sizes, number of classes and input shape of the configured data set (user data: read
    from the files' headers, cached while they are unchanged); ConfigError names data.path on bad files."""
    data = config["data"]
    try:
        return dataset_spec(data["name"], data.get("path"), data.get("resize"))
    except (OSError, ValueError) as err:
        msg = str(err)
        raise ConfigError(msg if msg.startswith("data.") else f"data.path: {msg}") from None


def num_classes(config: dict) -> int:
    return data_spec(config).num_classes


def index_set_size(config: dict, name: str) -> int:
    n_train, n_test = split_sizes(config)
    return {"train": n_train, "test": n_test, "sub-train": config["data"]["subset_train"],
            "sub-test": config["data"]["subset_test"]}[name]


# Index sets that contain another one: a store over `train` can serve a request for `sub-train`.
SUPERSETS = {"train": ("train",), "test": ("test",), "sub-train": ("sub-train", "train"),
             "sub-test": ("sub-test", "test")}


def find_store(config: dict, kind: str, rows: str, cols: str, trained_on: str = "train") -> tuple[str, str] | None:
    """The (rows, cols) store of `kind` computed for runs `trained_on` that covers the requested index sets,
    smallest first."""
    pairs = [(r, c) for k, r, c in store_specs(config, trained_on) if k == kind]
    for r in SUPERSETS[rows]:
        for c in SUPERSETS[cols]:
            if (r, c) in pairs:
                return r, c
    return None


def heatmap_store(config: dict) -> tuple[Run, int, tuple[str, str]] | None:
    """Fig P4's store: the pNTK store covering D × D of the first run at its last checkpoint — a network trained on
    D when the diagnostics train there, else one of the train split — as (run, epoch, (rows, cols)); None: none."""
    for candidates in (runs(config, "D"), runs(config)):
        found = find_store(config, "pntk", "sub-train", "sub-train", candidates[0].trained_on) if candidates else None
        if found is not None:
            return candidates[0], checkpoint_epochs(config, candidates[0].trained_on)[-1], found
    return None


def has_full_pntk(config: dict) -> bool:
    """Full-data pNTK stores (train × train and test × train) exist: the regression rule runs."""
    return (find_store(config, "pntk", "train", "train") == ("train", "train")
            and find_store(config, "pntk", "test", "train") == ("test", "train"))


def diagnostics_on_d(config: dict) -> bool:
    """The diagnostics read networks trained on D (`diagnostics.train_on: D`, the paper's protocol)."""
    return config["diagnostics"]["enabled"] and config["diagnostics"]["train_on"] == "D"


def d_runs_in_one_job(config: dict) -> bool:
    """`diagnostics.jobs: per_run` for networks trained on D: one diagnose_on_D job per network. `auto` picks
    it where the kernels are one job per checkpoint anyway; with per-tile kernel jobs (clusters) the networks
    on D get the separate rules, their tiles spread over jobs like every other store's."""
    jobs = config["diagnostics"]["jobs"]
    if jobs == "auto":
        jobs = "per_run" if config["kernels"]["jobs"] == "per_checkpoint" else "separate"
    return diagnostics_on_d(config) and jobs == "per_run"


def analysis_in_one_job(config: dict) -> bool:
    """`regression.jobs: with_diagnostics` and both rules run on the same runs: one diagnostics_regression job
    per checkpoint (never when the diagnostics read networks trained on D: those are other runs)."""
    return (config["regression"]["jobs"] == "with_diagnostics" and config["diagnostics"]["enabled"]
            and not diagnostics_on_d(config) and has_full_pntk(config))


def active_runs(config: dict) -> list[tuple[str, int]]:
    """(strategy, seed) of every active-learning job; none unless `active.enabled`."""
    a = config["active"]
    return [(s, seed) for s in a["strategies"] for seed in a["seeds"]] if a["enabled"] else []


def runs(config: dict, trained_on: str = "train") -> list[Run]:
    """The runs trained on `trained_on` ("train": every arch × width × seed; "D": the same networks trained on D,
    when the diagnostics read them, else none); `Run.arch` is the entry's name (the arch for built-ins)."""
    if trained_on == "D" and not diagnostics_on_d(config):
        return []
    return [Run(config["data"]["name"], m["name"], w, s, trained_on)
            for m in config["models"] for w in m["widths"] for s in config["seeds"]]


def all_runs(config: dict) -> list[Run]:
    """Every run the workflow trains: on the train split, then on D."""
    return runs(config) + runs(config, "D")


def diagnostic_runs(config: dict) -> list[Run]:
    """The runs whose checkpoints the diagnostics (Figs 2–8) read; none when they are disabled."""
    if not config["diagnostics"]["enabled"]:
        return []
    return runs(config, "D") if diagnostics_on_d(config) else runs(config)


def networks_at_init(config: dict) -> dict[tuple[str, int], list[Run]]:
    """`diagnostics.at_init`: {(model name, width): its networks at initialisation only, as runs with
    trained_on "init"}, less the networks whose epoch 0 the diagnostics runs already have (a checkpoint at
    epoch 0: the same seed builds the same initial network); cells left without a network are left out."""
    diag = config["diagnostics"]
    if not diag["enabled"]:
        return {}
    at = diag.get("at_init") or {}
    have = {(r.arch, r.width, r.seed) for r in diagnostic_runs(config) if 0 in checkpoint_epochs(config, r.trained_on)}
    cells: dict[tuple[str, int], list[Run]] = {}
    for name, widths in (at.get("widths") or {}).items():
        for w in widths:
            nets = [Run(config["data"]["name"], name, w, s, "init") for s in at.get("seeds", [])
                    if (name, w, s) not in have]
            if nets:
                cells[(name, w)] = nets
    return cells


def checkpoint_epochs(config: dict, trained_on: str = "train") -> list[int]:
    """Sorted checkpoint epochs of the runs trained on `trained_on`."""
    return sorted(config["diagnostics" if trained_on == "D" else "train"]["checkpoint_epochs"])


def epochs_of(config: dict, trained_on: str = "train") -> int:
    """SGD epochs of the runs trained on `trained_on`."""
    return int(config["diagnostics" if trained_on == "D" else "train"]["epochs"])


def model_names(config: dict) -> list[str]:
    """The `{arch}` of run names: one per models entry."""
    return [m["name"] for m in config["models"]]


def model_entry(config: dict, name: str) -> dict:
    """The models entry whose run name is `name` (the `{arch}` wildcard)."""
    for m in config["models"]:
        if m["name"] == name:
            return m
    raise ConfigError(f"models: no entry named {name!r} (names: {model_names(config)})")


def model_spec(config: dict, name: str, width: int):
    """ModelSpec of one run's model, with the data's input shape and number of classes."""
    spec = data_spec(config)
    return ModelSpec.from_entry(model_entry(config, name), width, spec.in_shape, spec.num_classes,
                                config["python_path"])


def model_source(config: dict, name: str) -> str | None:
    """sha256 of an import-path model's module file (torchvision: its version); None for built-ins."""
    arch = model_entry(config, name)["arch"]
    return source_digest(arch, config["python_path"]) if is_import_path(arch) else None


def readout_widths(config: dict) -> dict[str, dict[int, int | None]]:
    """{name: {width: readout width}} read from each model (the w of the pNTK width rate), for the widths of
    its runs and of its networks at initialisation only (diagnostics.at_init)."""
    from .models import readout_width_of  # torch: imported on use (config validation needs no torch)

    at_init = (config["diagnostics"].get("at_init") or {}).get("widths") or {}
    return {m["name"]: {int(w): readout_width_of(model_spec(config, m["name"], w))
                        for w in sorted({*m["widths"], *at_init.get(m["name"], [])})}
            for m in config["models"]}


def store_specs(config: dict, trained_on: str = "train") -> list[tuple[str, str, str]]:
    """(kind, rows, cols) of every kernel store computed at each checkpoint of a run trained on `trained_on`:
    `kernels.index_sets` for the train split's runs, DIAGNOSTIC_STORES for the networks trained on D."""
    if trained_on == "D":
        return list(DIAGNOSTIC_STORES)
    kern = config["kernels"]
    return [(k, r, c) for k in kern["kinds"] for r, c in kern["index_sets"][k]]


def store_grid(config: dict, rows: str, cols: str) -> TileGrid:
    """The tile grid of a rows × cols store (symmetric when rows and cols are one index set)."""
    return TileGrid(index_set_size(config, rows), index_set_size(config, cols), config["kernels"]["tile_size"],
                    symmetric=is_symmetric(rows, cols))


def tile_grid(config: dict, rows: str, cols: str) -> list[tuple[int, int]]:
    """Tile indices (i, j) computed by jobs; for symmetric stores only i <= j."""
    return store_grid(config, rows, cols).tiles()


def memory_cap_bytes(regression_cfg: dict) -> float:
    """`regression.memory_cap_gb` in bytes (GiB: 2**30)."""
    return regression_cfg["memory_cap_gb"] * 2**30



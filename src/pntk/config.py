"""Workflow configuration: schema validation with defaults, semantic checks, derived run lists.

The schema is package data (`pntk/schemas/config.schema.yaml`, read with importlib.resources), so an
installed pntk validates a config exactly as the workflow does.

`workflow/rules/common.smk` calls `validate_config` before any job is scheduled; the same function
serves tests and the CLI, so a bad config fails identically everywhere, naming the offending key.
"""
from __future__ import annotations

import copy
import functools
import json
import re
from importlib import resources
from pathlib import Path

import jsonschema
import yaml

# What a validated config computes (pntk.config_runs: its runs, stores, split sizes), here for `pcfg.runs(config)`
# & co.; ConfigError lives there too, so that both raise it and config_runs need not import this module.
from .config_runs import (  # noqa: F401 (re-exported: pcfg.runs(config) & co.)
    DIAGNOSTIC_STORES,
    SUPERSETS,
    ConfigError,
    active_runs,
    all_runs,
    analysis_in_one_job,
    checkpoint_epochs,
    d_runs_in_one_job,
    data_spec,
    diagnostic_runs,
    diagnostics_on_d,
    epochs_of,
    find_store,
    has_full_pntk,
    heatmap_store,
    index_set_size,
    memory_cap_bytes,
    model_entry,
    model_names,
    model_source,
    model_spec,
    networks_at_init,
    num_classes,
    readout_widths,
    runs,
    split_sizes,
    store_grid,
    store_specs,
    tile_grid,
)
from .data.datasets import SPLIT_SIZES, USER_DATASETS  # noqa: F401 (SPLIT_SIZES: API)
from .models import ARCHS, TORCHVISION, ModelImportError, ModelSpec, default_name, is_import_path

REPO_ROOT = Path(__file__).resolve().parents[2]
# Package data (pyproject [tool.setuptools.package-data]): a wheel or non-editable install validates configs too.
SCHEMA_RESOURCE = ("schemas", "config.schema.yaml")  # under the package pntk


# |D| and |X| when data.subset_train/subset_test are null, capped at the split sizes (the paper: 1000 and 500,
# set in configs/paper-cifar10.yaml).
SUBSET_DEFAULTS = (200, 100)


def _with_defaults(validator_cls):
    """jsonschema validator that fills in `default` values while validating (as Snakemake does)."""
    validate_props = validator_cls.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_props(validator, properties, instance, schema)

    extended = jsonschema.validators.extend(validator_cls, {"properties": set_defaults})
    # JSON Schema's `integer` accepts 32.0 (a float with zero fraction); a width 32.0 would name run
    # `fcn-w32.0-s0`. Accept only true integers (and never booleans).
    strict = extended.TYPE_CHECKER.redefine(
        "integer", lambda _checker, v: isinstance(v, int) and not isinstance(v, bool))
    return jsonschema.validators.extend(extended, type_checker=strict)


class _StrictLoader(yaml.SafeLoader):
    """safe_load that refuses a key given twice in one mapping (plain YAML keeps the last value)."""


def _no_duplicate_keys(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in seen:
            raise ConfigError(f"{loader.source}: duplicate key {key!r} at line {line} (first given at line "
                              f"{seen[key]}); YAML would silently keep only the last value")
        seen[key] = line
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicate_keys)


def load_yaml_strict(path: str | Path) -> dict:
    """A YAML config file as a dict; ConfigError naming the file and the key when a key is duplicated."""
    with open(path) as fh:
        loader = _StrictLoader(fh)
        loader.source = str(path)
        try:
            cfg = loader.get_single_data()
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML: {err}") from None
        finally:
            loader.dispose()
    if cfg is not None and not isinstance(cfg, dict):
        raise ConfigError(f"{path}: a config file must be a mapping of keys, got {type(cfg).__name__}")
    return cfg or {}


def config_warnings(config: dict) -> list[str]:
    """Settings of a validated config that run, but likely not as meant (the workflow logs them once; pntk
    plan and pntk check print them)."""
    out, reg = [], config["regression"]
    copies = {"cholesky": 2, "eigh": 3}.get(reg["solver"])  # dense float64 n × n copies (pntk.regression)
    if copies:
        n_train = split_sizes(config)[0]
        systems = ([n_train] if has_full_pntk(config) else []) + (
            [config["data"]["subset_train"] * num_classes(config)] if config["diagnostics"]["enabled"] else [])
        need = copies * 8 * max(systems, default=0) ** 2
        if need > memory_cap_bytes(reg):
            out.append(f"regression.solver: {reg['solver']} needs ~{need / 2**30:.3g} GiB of dense float64 copies "
                       f"({copies} × 8·n², n = {max(systems)}), above regression.memory_cap_gb = "
                       f"{reg['memory_cap_gb']:g}; it runs anyway, as asked (solver: auto would stay under the cap "
                       "with the out-of-core Nyström-PCG)")
    return out


def schema_file():
    """The config schema shipped in the package (importlib.resources: a path or a file inside a wheel/zip)."""
    folder, name = SCHEMA_RESOURCE
    return resources.files("pntk") / folder / name


def load_schema() -> dict:
    return yaml.safe_load(schema_file().read_text(encoding="utf-8"))


# Keys an earlier pntk accepted → what to do now.
REMOVED_KEYS = {"diagnostics.rate_bootstrap": "rate intervals are t-intervals with seed as a block now (a seed "
                                              "bootstrap of 2–3 seeds gave intervals that were too narrow); delete "
                                              "the key"}


def _key_of(error: jsonschema.ValidationError) -> str:
    path = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        gone = [f"{path}.{k}" for k in extra if f"{path}.{k}" in REMOVED_KEYS]
        if gone:
            return f"{gone[0]}: removed: {REMOVED_KEYS[gone[0]]}"
        path = ".".join(filter(None, [path, ",".join(extra)]))
        return f"{path}: unknown key (allowed: {', '.join(sorted(error.schema.get('properties', {})))})"
    if error.validator == "required":
        return f"{path or '<top>'}: {error.message}"
    return f"{path or '<top>'}: {error.message}"


# A float as YAML 1.2 writes it. PyYAML (and so Snakemake's --configfile) speaks YAML 1.1, whose floats need a
# dot: `lr: 1e-3` arrives as the string "1e-3".
_FLOAT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def _yaml12_numbers(schema: dict, value):
    """`value` with strings such as "1e-3" read as floats wherever the schema expects a number."""
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for k, v in value.items():
            if k in props:
                value[k] = _yaml12_numbers(props[k], v)
        return value
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_yaml12_numbers(schema["items"], v) for v in value]
    types = schema.get("type", [])
    if isinstance(value, str) and "number" in (types if isinstance(types, list) else [types]) and _FLOAT.match(value):
        return float(value)
    return value


def validate_config(config: dict, *, check_files: bool = True) -> dict:
    """Validate `config` in place (defaults filled in) and return it; raise ConfigError naming the key.

    check_files=False skips checks of local files (a dry run planning a cluster job needs no data)."""
    schema = load_schema()
    _yaml12_numbers(schema, config)
    cls = _with_defaults(jsonschema.Draft202012Validator)
    # Defaults are filled while descending, so nested objects defaulted to {} get their own defaults.
    errors = sorted(cls(schema).iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        raise ConfigError("invalid config: " + "; ".join(_key_of(e) for e in errors[:5]))
    check_semantics(config, check_files=check_files)
    _sort_keys_in_place(config)
    return config


def _sort_keys_in_place(obj) -> None:
    """Canonical key order, so rule params do not look changed when a config file is reordered."""
    if isinstance(obj, dict):
        items = sorted(obj.items())
        obj.clear()
        obj.update(items)
        for v in obj.values():
            _sort_keys_in_place(v)
    elif isinstance(obj, list):
        for v in obj:
            _sort_keys_in_place(v)


def check_semantics(config: dict, *, check_files: bool = True) -> None:
    """Checks JSON Schema cannot express: cross-key constraints and files that must exist."""
    data, train, kern = config["data"], config["train"], config["kernels"]
    for e in train["checkpoint_epochs"]:
        if e > train["epochs"]:
            raise ConfigError(f"train.checkpoint_epochs: epoch {e} is after the last epoch "
                              f"(train.epochs = {train['epochs']})")
    check_data_source(data, check_files=check_files)
    n_train, n_test = split_sizes(config)
    data["subset_train"] = data["subset_train"] or min(SUBSET_DEFAULTS[0], n_train)
    data["subset_test"] = data["subset_test"] or min(SUBSET_DEFAULTS[1], n_test)
    if data["subset_train"] > n_train:
        raise ConfigError(f"data.subset_train: {data['subset_train']} exceeds the {n_train} train examples")
    if data["subset_test"] > n_test:
        raise ConfigError(f"data.subset_test: {data['subset_test']} exceeds the {n_test} test examples")
    check_models(config)
    check_active(config)
    for kind in kern["kinds"]:
        if not kern["index_sets"][kind]:
            raise ConfigError(f"kernels.index_sets.{kind}: no (rows, cols) pair given for a requested kind")
    diag = config["diagnostics"]
    for e in diag["checkpoint_epochs"]:
        if diag["train_on"] == "D" and e > diag["epochs"]:
            raise ConfigError(f"diagnostics.checkpoint_epochs: epoch {e} is after the last epoch on D "
                              f"(diagnostics.epochs = {diag['epochs']})")
    names = {m["name"] for m in config["models"]}
    for name in (diag.get("at_init") or {}).get("widths", {}):
        if name not in names:
            raise ConfigError(f"diagnostics.at_init.widths: {name!r} is not a model's name (models: {sorted(names)})")
    if diag["jobs"] == "per_run" and kern["jobs"] != "per_checkpoint":  # said outright: not silently split
        raise ConfigError("diagnostics.jobs: per_run computes each checkpoint's stores in its job; it needs "
                          f"kernels.jobs: per_checkpoint (got {kern['jobs']!r})")
    if diag["enabled"] and diag["train_on"] == "train":
        missing = [k for k in ("pntk", "entk") if k not in kern["kinds"]]
        if missing:
            raise ConfigError(f"kernels.kinds: diagnostics on the train runs (diagnostics.train_on: train) need "
                              f"{missing} (or set diagnostics.train_on: D, or diagnostics.enabled: false)")
        for kind in ("pntk", "entk"):
            for pair in (("sub-train", "sub-train"), ("sub-test", "sub-train")):
                if find_store(config, kind, *pair) is None:
                    raise ConfigError(f"kernels.index_sets.{kind}: diagnostics need a store covering {list(pair)}")


def check_models(config: dict) -> None:
    """Every `models:` entry: built-in options, its run name (filled in), and an import-path model built
    and run on one sample of the data's shape for every width, before any job."""
    names: dict[str, int] = {}
    for i, m in enumerate(config["models"]):
        key, arch = f"models.{i}", m["arch"]
        if is_import_path(arch):
            for k, unused in (("depth", m["depth"] is not None),
                              ("parameterization", m["parameterization"] != "standard"),
                              ("width_arg", m["width_arg"] and not arch.startswith(TORCHVISION + ":"))):
                if unused:
                    raise ConfigError(f"{key}.{k}: not used by {arch!r} (built-in archs: depth, parameterization; "
                                      f"torchvision: width_arg); pass options of your callable in {key}.kwargs")
        elif arch not in ARCHS:
            raise ConfigError(f"{key}.arch: {arch!r} is neither a built-in architecture ({', '.join(ARCHS)}) nor "
                              "an import path 'package.module:callable' or 'torchvision:name'")
        else:
            check_builtin_entry(key, m)
        m["name"] = m["name"] or (default_name(arch) if is_import_path(arch) else arch)
        if m["name"] in ARCHS and m["name"] != arch:
            raise ConfigError(f"{key}.name: {m['name']!r} is a built-in architecture's name; give {arch!r} "
                              "another name: (it names the runs)")
        if m["name"] in names:
            raise ConfigError(f"{key}.name: models.{names[m['name']]} already uses the name {m['name']!r} in run "
                              "names; give one of them another name: (or list several widths in one entry)")
        names[m["name"]] = i
    for folder in config["python_path"]:
        if not Path(folder).is_dir():
            raise ConfigError(f"python_path: folder {folder!r} does not exist (relative paths are taken from the "
                              f"working directory {Path.cwd()})")
    spec = data_spec(config)
    for i, m in enumerate(config["models"]):
        if not is_import_path(m["arch"]):
            continue
        for w in m["widths"]:
            model = ModelSpec.from_entry(m, w, spec.in_shape, spec.num_classes, config["python_path"])
            try:
                _check_once(json.dumps(model.to_dict(), sort_keys=True))
            except ModelImportError as err:
                raise ConfigError(f"models.{i}.arch: {err} (data {config['data']['name']!r}: inputs "
                                  f"{tuple(spec.in_shape)} (C, H, W), {spec.num_classes} classes)") from None


def check_builtin_entry(key: str, m: dict) -> None:
    """Options of a built-in arch that JSON Schema cannot check."""
    for k in ("kwargs", "width_arg"):
        if m[k]:
            raise ConfigError(f"{key}.{k}: only for import-path models, not the built-in {m['arch']!r}")
    if m["parameterization"] == "ntk" and m["arch"] != "fcn":
        raise ConfigError(f"{key}.parameterization: 'ntk' is implemented for fcn only, not {m['arch']!r}")
    if m["arch"] == "wrn16" and m["depth"] is not None and (m["depth"] < 10 or (m["depth"] - 4) % 6):
        raise ConfigError(f"{key}.depth: WideResNet depth must be 6n+4 with n >= 1, got {m['depth']}")
    if m["arch"] == "resnet18" and m["depth"] not in (None, 18):
        raise ConfigError(f"{key}.depth: resnet18 has a fixed depth; leave depth unset")


@functools.lru_cache(maxsize=256)
def _check_once(spec_json: str) -> int | None:
    """`check_model` once per process and spec (a module is imported once per process anyway)."""
    from .models.build import check_model  # torch: imported only when a config names an import-path model

    return check_model(ModelSpec.from_dict(json.loads(spec_json)))


def check_active(config: dict) -> None:
    """Active-learning sizes against the pool (the train split), when active learning is enabled."""
    a = config["active"]
    if not a["enabled"]:
        return
    pool = split_sizes(config)[0]
    need = a["initial"] + a["cycles"] * a["per_cycle"]
    for key, value, limit, what in (
            ("initial", a["initial"], pool, f"the pool of {pool} train examples"),
            ("cycles", need, pool, f"the pool of {pool} train examples (initial + cycles × per_cycle = {need})"),
            ("pool_subset", a["pool_subset"], pool - a["initial"],
             f"the {pool - a['initial']} unlabelled examples left after active.initial"),
            ("per_cycle", a["per_cycle"], a["pool_subset"], f"active.pool_subset = {a['pool_subset']} candidates")):
        if value > limit:
            raise ConfigError(f"active.{key}: {value} exceeds {what}")
    if "naive" in a["strategies"] and not a["per_cycle"] < a["naive_pool"] <= a["pool_subset"]:
        raise ConfigError(f"active.naive_pool: {a['naive_pool']}, expected more than active.per_cycle = "
                          f"{a['per_cycle']} (scoring no more candidates than it labels, naive look-ahead takes every "
                          f"candidate: random acquisition) and at most active.pool_subset = {a['pool_subset']} (its "
                          "candidates are drawn from S)")
    for key in ("block_check", "block_check_entk"):
        if 0 < a[key] < a["per_cycle"]:
            raise ConfigError(f"active.{key}: {a[key]} candidates cannot contain the active.per_cycle = "
                              f"{a['per_cycle']} chosen; use 0 (no check) or at least {a['per_cycle']}")


def check_data_source(data: dict, *, check_files: bool = True) -> None:
    """Where the data come from: data.root for the built-in sets, data.path (+ resize) for user data."""
    name = data["name"]
    if name in USER_DATASETS:
        for key, unused in (("root", data["root"] is not None), ("download", data["download"])):
            if unused:
                raise ConfigError(f"data.{key}: not used with data.name {name!r}, which reads data.path; remove it")
        data_spec(config={"data": data})  # the user's files are read (cheaply) even in a dry run: sizes plan jobs
        return
    for key in ("path", "resize"):
        if data[key] is not None:
            raise ConfigError(f"data.{key}: only used with data.name npz or folder, not {name!r}")
    if name != "digits":
        if not data["root"]:
            raise ConfigError(f"data.root: data set {name!r} is read from a local folder; "
                              "set data.root to the folder holding the torchvision-format files")
        if check_files and not data["download"] and not Path(data["root"]).is_dir():
            raise ConfigError(f"data.root: folder {data['root']!r} does not exist "
                              "(set data.download: true to let torchvision fetch the files)")


# Train points from which a CPU regression (out-of-core CG streaming its store) takes every core; below it
# one core (a dense solve of seconds). The workflow's regression_threads() and pntk plan both read it.
REGRESSION_ALL_CORES_FROM = 10000


def load_config(path: str | Path, *, check_files: bool = True) -> dict:
    """Read (refusing duplicate keys) and validate a config file."""
    return validate_config(load_yaml_strict(path), check_files=check_files)

"""pntk.config: bad configs fail early naming the key; good ones validate with defaults filled in."""
from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pntk import config as C
from pntk.config import ConfigError, validate_config

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")


def base() -> dict:
    """A small valid config (digits)."""
    return {
        "models": [{"arch": "fcn", "widths": [8, 16], "depth": 3}, {"arch": "convnet", "widths": [4]}],
        "seeds": [0],
        "data": {"subset_train": 20, "subset_test": 10},
        "train": {"epochs": 2, "checkpoint_epochs": [0, 2]},
        "kernels": {"tile_size": 16},
    }


def _set(cfg: dict, dotted: str, value) -> dict:
    *parents, last = dotted.split(".")
    node = cfg
    for p in parents:
        node = node[int(p)] if isinstance(node, list) else node.setdefault(p, {})
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return cfg


def _del(cfg: dict, dotted: str) -> dict:
    *parents, last = dotted.split(".")
    node = cfg
    for p in parents:
        node = node[int(p)] if isinstance(node, list) else node[p]
    del node[last]
    return cfg


def _active(cfg: dict, **active) -> dict:
    """`cfg` with a train split of 60 (the active-learning pool) and active learning enabled with `active`."""
    return _set(_set(cfg, "data.train_size", 60), "active", {"enabled": True, **active})


# (id, mutation of base(), text that the error message must contain: the offending key)
BAD = [
    ("unknown-arch", lambda c: _set(c, "models.0.arch", "mlp"), "models.0.arch"),
    ("width-zero", lambda c: _set(c, "models.0.widths", [0]), "widths"),
    ("width-negative", lambda c: _set(c, "models.1.widths", [4, -2]), "widths"),
    ("width-not-int", lambda c: _set(c, "models.0.widths", [8.5]), "widths"),
    ("checkpoint-after-last-epoch", lambda c: _set(c, "train.checkpoint_epochs", [0, 3]), "train.checkpoint_epochs"),
    ("unknown-dataset", lambda c: _set(c, "data.name", "imagenet"), "data.name"),
    ("cifar10-without-root", lambda c: _set(c, "data.name", "cifar10"), "data.root"),
    ("cifar10-root-missing", lambda c: _set(_set(c, "data.name", "cifar10"), "data.root", "/nonexistent/pntk/cifar"),
     "data.root"),
    ("unknown-top-level-key", lambda c: _set(c, "epochs", 3), "epochs"),
    ("unknown-nested-key", lambda c: _set(c, "train.epoch", 3), "train.epoch"),
    ("unknown-model-key", lambda c: _set(c, "models.0.width", 8), "models.0.width"),
    ("wrong-type-lr", lambda c: _set(c, "train.lr", "fast"), "train.lr"),
    ("lr-zero", lambda c: _set(c, "train.lr", 0), "train.lr"),
    ("wrong-type-epochs", lambda c: _set(c, "train.epochs", "2"), "train.epochs"),
    ("bad-device", lambda c: _set(c, "train.device", "gpu"), "train.device"),
    ("subset-train-too-large", lambda c: _set(c, "data.subset_train", 1348), "data.subset_train"),
    ("subset-test-too-large", lambda c: _set(c, "data.subset_test", 451), "data.subset_test"),
    ("subset-larger-than-train-size",
     lambda c: _set(_set(c, "data.train_size", 100), "data.subset_train", 101), "data.subset_train"),
    ("train-size-too-large", lambda c: _set(c, "data.train_size", 5000), "data.train_size"),
    ("unknown-kernel-kind", lambda c: _set(c, "kernels.kinds", ["pntk", "entk", "ntk"]), "kernels.kinds"),
    ("bad-index-set-name", lambda c: _set(c, "kernels.index_sets", {"pntk": [["train", "validation"]]}),
     "kernels.index_sets.pntk"),
    ("index-set-pair-too-long", lambda c: _set(c, "kernels.index_sets", {"pntk": [["train", "train", "test"]]}),
     "kernels.index_sets.pntk"),
    ("kind-without-index-sets",
     lambda c: _set(_set(c, "kernels.kinds", ["pntk", "entk", "trace"]), "kernels.index_sets", {"trace": []}),
     "kernels.index_sets.trace"),
    ("ntk-parameterization-on-convnet", lambda c: _set(c, "models.1.parameterization", "ntk"), "parameterization"),
    ("unknown-parameterization", lambda c: _set(c, "models.0.parameterization", "mup"),
     "models.0.parameterization"),
    ("wrn16-depth-not-6n+4", lambda c: _set(c, "models.1", {"arch": "wrn16", "widths": [1], "depth": 15}), "depth"),
    ("duplicate-arch", lambda c: c["models"].append({"arch": "fcn", "widths": [32]}) or c, "models"),
    ("no-models", lambda c: _del(c, "models"), "models"),
    ("empty-models", lambda c: _set(c, "models", []), "models"),
    ("diagnostics-on-train-runs-without-entk",
     lambda c: _set(_set(c, "diagnostics.train_on", "train"), "kernels.kinds", ["pntk"]), "kernels.kinds"),
    ("diagnostics-on-train-runs-without-sub-test-store",
     lambda c: _set(_set(_set(c, "diagnostics.train_on", "train"), "kernels.kinds", ["pntk", "entk"]),
                    "kernels.index_sets", {"entk": [["sub-train", "sub-train"]]}), "kernels.index_sets.entk"),
    ("diagnostics-checkpoint-after-last-epoch-on-D",
     lambda c: _set(c, "diagnostics.checkpoint_epochs", [0, 500]), "diagnostics.checkpoint_epochs"),
    ("diagnostics-per-run-with-per-tile-kernels",
     lambda c: _set(_set(c, "diagnostics.jobs", "per_run"), "kernels.jobs", "per_tile"), "diagnostics.jobs"),
    ("removed-rate-bootstrap", lambda c: _set(c, "diagnostics.rate_bootstrap", 100), "diagnostics.rate_bootstrap"),
    ("negative-seed", lambda c: _set(c, "seeds", [-1]), "seeds"),
    # JSON Schema's `integer` accepts 32.0: it named a run fcn-w32.0-s0 and failed only in `tables`
    ("width-float-with-zero-fraction", lambda c: _set(c, "models.0.widths", [16, 32.0]), "models.0.widths.1"),
    ("tile-size-float", lambda c: _set(c, "kernels.tile_size", 64.0), "kernels.tile_size"),
    ("epochs-float", lambda c: _set(c, "train.epochs", 2.0), "train.epochs"),
    ("checkpoint-epoch-float", lambda c: _set(c, "train.checkpoint_epochs", [0, 2.0]), "train.checkpoint_epochs.1"),
    ("seed-bool", lambda c: _set(c, "seeds", [True]), "seeds.0"),
    ("data-seed-float", lambda c: _set(c, "data.seed", 1.0), "data.seed"),
    ("active-initial-float", lambda c: _set(c, "active", {"initial": 5.0}), "active.initial"),
    # active learning sizes against the pool (the train split of 60), before any job
    ("active-initial-exceeds-pool", lambda c: _active(c, initial=100), "active.initial"),
    ("active-labels-exceed-pool", lambda c: _active(c, initial=20, per_cycle=10, cycles=5, pool_subset=30),
     "active.cycles"),
    ("active-pool-subset-exceeds-unlabelled", lambda c: _active(c, initial=20, per_cycle=5, cycles=2, pool_subset=50),
     "active.pool_subset"),
    ("active-per-cycle-exceeds-pool-subset", lambda c: _active(c, initial=10, per_cycle=8, cycles=2, pool_subset=5),
     "active.per_cycle"),
    ("active-naive-pool-exceeds-unlabelled",
     lambda c: _active(c, initial=10, per_cycle=2, cycles=2, pool_subset=20, naive_pool=55), "active.naive_pool"),
    # naive look-ahead drawing no more candidates than it labels takes them all: random acquisition
    ("active-naive-pool-not-above-per-cycle",
     lambda c: _active(c, initial=10, per_cycle=10, cycles=2, pool_subset=20, naive_pool=10), "active.naive_pool"),
    ("active-naive-pool-exceeds-pool-subset",
     lambda c: _active(c, initial=10, per_cycle=5, cycles=2, pool_subset=20, naive_pool=25), "active.naive_pool"),
    ("active-block-check-below-per-cycle",
     lambda c: _active(c, initial=10, per_cycle=5, cycles=2, pool_subset=20, naive_pool=10, block_check=3),
     "active.block_check"),
    ("active-block-check-entk-below-per-cycle",
     lambda c: _active(c, initial=10, per_cycle=5, cycles=2, pool_subset=20, naive_pool=10, block_check_entk=4),
     "active.block_check_entk"),
    ("active-retrain-unknown", lambda c: _active(c, retrain="hot"), "active.retrain"),
    ("unknown-python-path-folder", lambda c: _set(c, "python_path", ["/nonexistent/pntk/models"]), "python_path"),
]


def test_base_config_is_valid():
    validate_config(base())


@pytest.mark.parametrize("mutate, key", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_config_is_rejected_naming_the_key(mutate, key):
    cfg = mutate(base())
    with pytest.raises(ConfigError) as err:
        validate_config(cfg)
    assert key in str(err.value), f"message does not name {key!r}: {err.value}"


def test_wrong_type_message_says_what_was_expected():
    with pytest.raises(ConfigError, match=r"train\.lr: 'fast' is not of type 'number'"):
        validate_config(_set(base(), "train.lr", "fast"))


def test_unknown_key_message_lists_allowed_keys():
    with pytest.raises(ConfigError) as err:
        validate_config(_set(base(), "train.epoch", 3))
    assert "unknown key" in str(err.value) and "epochs" in str(err.value)


def test_active_sizes_are_checked_only_when_enabled():
    cfg = _set(_set(base(), "data.train_size", 60), "active", {"initial": 100})
    assert validate_config(cfg)["active"]["enabled"] is False  # the defaults need not fit a tiny config
    validate_config(_active(base(), initial=20, per_cycle=10, cycles=4, pool_subset=40, naive_pool=11))  # 60: all
    # without the naive strategy its pool is not checked; a block check of 0 is off
    validate_config(_active(base(), initial=20, per_cycle=10, cycles=4, pool_subset=40, naive_pool=5, block_check=0,
                            strategies=["random", "mlmoc-pntk"]))


def test_integers_stay_integers():
    cfg = validate_config(_set(base(), "models.0.widths", [16, 32]))
    assert all(type(w) is int for w in cfg["models"][0]["widths"])
    assert validate_config(_set(base(), "train.lr", 1))["train"]["lr"] == 1  # numbers accept ints


DUPLICATED = """\
models:
  - arch: fcn
    widths: [8]
    widths: [16]
seeds: [0]
"""


def test_duplicate_key_in_a_config_file_names_file_and_key(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text(DUPLICATED)
    with pytest.raises(ConfigError, match=r"dup\.yaml: duplicate key 'widths' at line 4 \(first given at line 3\)"):
        C.load_config(path)
    path.write_text("seeds: [0]\nmodels: []\nseeds: [1]\n")
    with pytest.raises(ConfigError, match=r"duplicate key 'seeds' at line 3"):
        C.load_yaml_strict(path)
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        C.load_yaml_strict(path)


def test_existing_data_root_is_accepted(tmp_path):
    cfg = _set(_set(base(), "data.name", "cifar10"), "data.root", str(tmp_path))
    assert validate_config(cfg)["data"]["root"] == str(tmp_path)


def test_check_files_false_skips_only_the_folder_check():
    cfg = _set(_set(base(), "data.name", "cifar10"), "data.root", "/nonexistent/pntk/cifar")
    validate_config(copy.deepcopy(cfg), check_files=False)
    with pytest.raises(ConfigError, match="data.root"):  # a root is still required
        validate_config(_set(copy.deepcopy(cfg), "data.root", None), check_files=False)


def test_defaults_are_filled_in():
    cfg = validate_config({"models": [{"arch": "fcn", "widths": [8]}], "data": {"subset_test": 100}})
    assert cfg["results"] == "results"
    assert cfg["seeds"] == [0]
    assert cfg["data"]["name"] == "digits" and cfg["data"]["root"] is None and cfg["data"]["subset_train"] == 200
    assert cfg["models"][0]["parameterization"] == "standard" and cfg["models"][0]["depth"] is None
    assert cfg["train"]["epochs"] == 10 and cfg["train"]["checkpoint_epochs"] == [0, 3, 10]
    assert cfg["train"]["lr_fallback"] == 0.001 and cfg["train"]["loss"] == "cross_entropy"
    assert cfg["kernels"]["kinds"] == ["pntk"]  # the eNTK on D comes with the networks trained on D
    assert cfg["diagnostics"]["train_on"] == "D" and cfg["diagnostics"]["checkpoint_epochs"] == [0, 50, 100]
    assert cfg["kernels"]["index_sets"]["pntk"] == [["train", "train"], ["test", "train"]]
    assert cfg["kernels"]["index_sets"]["entk"] == [["sub-train", "sub-train"], ["sub-test", "sub-train"]]
    assert cfg["diagnostics"]["enabled"] is True and cfg["regression"]["solver"] == "auto"
    assert cfg["resources"]["tile_runtime_min"] == 60


def test_defaults_are_not_shared_between_configs():
    a = validate_config(base())
    b = validate_config(base())
    a["kernels"]["index_sets"]["pntk"].append(["test", "test"])
    a["train"]["checkpoint_epochs"].append(1)
    assert b["kernels"]["index_sets"]["pntk"] == [["train", "train"], ["test", "train"]]
    assert C.load_schema()["properties"]["kernels"]["properties"]["index_sets"]["properties"]["pntk"]["default"] == \
        [["train", "train"], ["test", "train"]]


def test_validation_is_idempotent():
    once = validate_config(base())
    twice = validate_config(copy.deepcopy(once))
    assert once == twice


def test_default_config_yaml_validates():
    cfg = C.load_config(REPO / "config.yaml")
    assert cfg["data"]["name"] == "digits"
    runs = C.runs(cfg)
    n_widths = sum(len(m["widths"]) for m in cfg["models"])
    assert len(runs) == n_widths * len(cfg["seeds"])
    assert len({r.name for r in runs}) == len(runs)
    assert all(e <= cfg["train"]["epochs"] for e in cfg["train"]["checkpoint_epochs"])


SHIPPED_CONFIGS = sorted((REPO / "configs").glob("*.yaml")) + sorted((REPO / "tests" / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED_CONFIGS,
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shipped_configs_validate(path, tmp_path):
    cfg = yaml.safe_load(path.read_text()) or {}
    data = cfg.get("data", {})
    if data.get("name", "digits") != "digits" and not data.get("download") and \
            not (data.get("root") and Path(data["root"]).is_dir()):
        data["root"] = str(tmp_path)  # the raw files live on the cluster; check everything else here
    validate_config(cfg)


# ------------------------------------------------------------------------------------------------
# derived quantities


def test_tile_grid_symmetric_and_rectangular():
    cfg = validate_config(_set(_set(base(), "data.train_size", 50), "data.test_size", 21))
    cfg["kernels"]["tile_size"] = 16
    assert C.tile_grid(cfg, "train", "train") == [(0, 0), (0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3),
                                                  (2, 2), (2, 3), (3, 3)]  # ceil(50/16) = 4, i <= j
    assert C.tile_grid(cfg, "test", "train") == [(i, j) for i in range(2) for j in range(4)]
    assert C.tile_grid(cfg, "sub-test", "sub-train") == [(0, 0), (0, 1)]  # 10 × 20


def test_find_store_uses_supersets():
    cfg = validate_config(_set(base(), "kernels.kinds", ["pntk", "entk"]))
    assert C.find_store(cfg, "pntk", "sub-train", "sub-train") == ("train", "train")
    assert C.find_store(cfg, "entk", "sub-train", "sub-train") == ("sub-train", "sub-train")
    assert C.find_store(cfg, "entk", "test", "train") is None
    assert C.find_store(cfg, "trace", "train", "train") is None  # kind not requested


def test_index_set_sizes():
    cfg = validate_config(_set(base(), "data.train_size", 300))
    assert [C.index_set_size(cfg, n) for n in ("train", "test", "sub-train", "sub-test")] == [300, 450, 20, 10]


# ------------------------------------------------------------------------------------------------
# the workflow itself refuses a bad config before any job


SMK_BAD = [
    ("unknown-arch", lambda c: _set(c, "models.0.arch", "mlp"), "models.0.arch"),
    ("unknown-nested-key", lambda c: _set(c, "train.epoch", 3), "train.epoch"),
    ("checkpoint-after-last-epoch", lambda c: _set(c, "train.checkpoint_epochs", [0, 5]), "train.checkpoint_epochs"),
]


def dry_run(tmp_path: Path, cfg_text: str, *targets: str) -> tuple[int, str]:
    cfg_path = tmp_path / "config.yaml"
    cfg_path.write_text(cfg_text)
    proc = subprocess.run([str(SNAKEMAKE), "-n", "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path),
                           "--configfile", str(cfg_path), "--cores", "1", *targets],
                          capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.skipif(not SNAKEMAKE.exists(), reason="snakemake not installed next to the interpreter")
@pytest.mark.parametrize("mutate, key", [b[1:] for b in SMK_BAD], ids=[b[0] for b in SMK_BAD])
def test_snakemake_rejects_bad_config_before_any_job(mutate, key, tmp_path):
    cfg = mutate(base())
    cfg["results"] = str(tmp_path / "results")
    rc, out = dry_run(tmp_path, yaml.safe_dump(cfg))
    assert rc != 0, out
    assert key in out, out
    assert not (tmp_path / "results").exists()


@pytest.mark.skipif(not SNAKEMAKE.exists(), reason="snakemake not installed next to the interpreter")
def test_snakemake_rejects_a_duplicate_key_in_its_configfile(tmp_path):
    rc, out = dry_run(tmp_path, DUPLICATED)
    assert rc != 0 and "config.yaml: duplicate key 'widths' at line 4" in out, out


@pytest.mark.skipif(not SNAKEMAKE.exists(), reason="snakemake not installed next to the interpreter")
def test_arch_wildcard_accepts_configured_names_only(tmp_path):
    cfg = _set(base(), "models.1", {"arch": "fcn", "widths": [4], "depth": 2, "name": "fcn-shallow"})
    text = yaml.safe_dump(cfg)
    rc, out = dry_run(tmp_path, text, "results/runs/digits/fcn-shallow-w4-s0/train_log.csv")
    assert rc == 0 and re.search(r"^train\s+1$", out, re.M), out
    rc, out = dry_run(tmp_path, text, "results/runs/digits/convnet-w4-s0/train_log.csv")  # built-in, not configured
    assert rc != 0 and "MissingRuleException" in out, out


# ----------------------------------------------------------------------------- a config of one's own
def _flat(d: dict, pre: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v and k not in ("index_sets", "kwargs"):
            out.update(_flat(v, f"{pre}{k}."))
        else:
            out[f"{pre}{k}"] = v
    return out


def test_a_minimal_config_gets_the_embedded_defaults_settings():
    """README: config.yaml differs from the schema's defaults only in models, seeds, active.enabled and
    diagnostics.at_init (it names a model), so a config of one's own that leaves a key out plans what the
    embedded default does for it."""
    shipped = C.load_config(REPO / "config.yaml")
    own = validate_config({"models": copy.deepcopy(shipped["models"])})
    differ = {k for k, v in _flat(shipped).items() if _flat(own).get(k) != v}
    assert differ == {"seeds", "active.enabled", "diagnostics.at_init.seeds",
                      "diagnostics.at_init.widths.convnet", "diagnostics.at_init.widths.fcn"}, differ


def test_learning_rates_in_any_float_notation():
    """YAML 1.1 (PyYAML, Snakemake's --configfile) reads `lr: 1e-3` as the string "1e-3"."""
    cfg = yaml.safe_load("train: {lr: 1e-3, weight_decay: 5E-4, lr_fallback: 1e-4}\nregression: {times: [1e2]}\n")
    assert cfg["train"]["lr"] == "1e-3"  # what the YAML loader hands over
    cfg = validate_config({"models": [{"arch": "fcn", "widths": [8]}], **cfg})
    assert (cfg["train"]["lr"], cfg["train"]["weight_decay"], cfg["train"]["lr_fallback"]) == (1e-3, 5e-4, 1e-4)
    assert cfg["regression"]["times"] == [100.0]
    with pytest.raises(ConfigError, match="train.lr: 'fast' is not of type 'number'"):
        validate_config({"models": [{"arch": "fcn", "widths": [8]}], "train": {"lr": "fast"}})
    with pytest.raises(ConfigError, match="models.0.widths.0: '8' is not of type 'integer'"):
        validate_config({"models": [{"arch": "fcn", "widths": ["8"]}]})  # integers stay strict


def test_explicit_dense_solver_above_the_cap_is_warned_about():
    cfg = validate_config({"models": [{"arch": "fcn", "widths": [8]}],
                           "regression": {"solver": "cholesky", "memory_cap_gb": 0.001}})
    (warning,) = C.config_warnings(cfg)
    assert warning.startswith("regression.solver: cholesky needs") and "memory_cap_gb = 0.001" in warning
    assert not C.config_warnings(validate_config({"models": [{"arch": "fcn", "widths": [8]}],
                                                  "regression": {"memory_cap_gb": 0.001}}))  # auto: no warning


@pytest.mark.skipif(not SNAKEMAKE.exists(), reason="snakemake not installed next to the interpreter")
def test_snakemake_takes_1e_3_and_warns_of_the_dense_solver_once(tmp_path):
    text = ("models: [{arch: fcn, widths: [8]}]\ntrain: {lr: 1e-3}\n"
            "regression: {solver: cholesky, memory_cap_gb: 1.0e-6}\n")
    rc, out = dry_run(tmp_path, text)
    assert rc == 0, out
    assert out.count("WARNING: regression.solver: cholesky needs") == 1, out


def test_pntk_check_names_file_and_line_of_a_yaml_error(tmp_path, capsys):
    from pntk.cli import main

    path = tmp_path / "mine.yaml"
    path.write_text("models:\n  - arch: fcn\n    widths: [8\nseeds: [0]\n")
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: not valid YAML" in err and "line 3, column 13" in err
    path.write_text("models: [{arch: fcn, widths: [8, 16], name: fcn-a}]\n")
    assert main(["check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "valid" in out and "fcn-a (fcn): fcn-a-w8-s0, fcn-a-w16-s0" in out
    assert main(["check", "--results", str(path)]) == 0 and capsys.readouterr().out == "results\n"


def test_schema_is_package_data():
    """The schema is read from the installed package (importlib.resources), not from a git checkout; one copy."""
    from importlib import resources

    shipped = resources.files("pntk") / "schemas" / "config.schema.yaml"
    assert shipped.is_file()
    assert C.schema_file() == shipped
    assert C.load_schema() == yaml.safe_load(shipped.read_text(encoding="utf-8"))
    copies = [p.relative_to(REPO) for p in REPO.rglob("config.schema.yaml")
              if not {".venv", ".snakemake", "build", "results"} & set(p.relative_to(REPO).parts)]
    assert copies == [Path("src/pntk/schemas/config.schema.yaml")]


@pytest.mark.slow
def test_wheel_ships_the_schema(tmp_path):
    """`pip wheel` of the project holds the schema, byte for byte, where schema_file looks for it."""
    import shutil
    import zipfile

    tree = tmp_path / "tree"
    tree.mkdir()
    for f in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / f, tree / f)
    shutil.copytree(REPO / "src", tree / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    out = tmp_path / "wheel"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(tree)], check=True, capture_output=True, timeout=300)
    (wheel,) = out.glob("pntk-*.whl")
    with zipfile.ZipFile(wheel) as z:
        assert z.read("pntk/schemas/config.schema.yaml") == C.schema_file().read_bytes()

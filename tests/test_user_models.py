"""Models named by import path (pntk.models.imported): build, validation messages, checkpoints, readout width."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from pntk import config as C
from pntk.config import ConfigError, validate_config
from pntk.models import (
    ModelImportError,
    ModelSpec,
    check_model,
    default_name,
    init_model,
    is_import_path,
    readout_width,
    readout_width_of,
    source_digest,
)

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"

BROKEN = '''
import numpy as np
import torch
from torch import nn

def not_a_module(in_shape, num_classes, width):
    return "a string"

def wrong_outputs(in_shape, num_classes, width):
    return nn.Sequential(nn.Flatten(), nn.Linear(in_shape[0] * in_shape[1] * in_shape[2], num_classes + 1))

def raises_in_forward(in_shape, num_classes, width):
    return nn.Sequential(nn.Linear(3, num_classes))   # expects (N, 3), gets (N, C, H, W)

def numpy_init(in_shape, num_classes, width):
    m = nn.Sequential(nn.Flatten(), nn.Linear(in_shape[0] * in_shape[1] * in_shape[2], num_classes))
    with torch.no_grad():
        m[1].weight.copy_(torch.from_numpy(np.random.standard_normal(m[1].weight.shape)))
    return m

def tuple_in_train_mode(in_shape, num_classes, width):
    class Aux(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(in_shape[0] * in_shape[1] * in_shape[2], num_classes)
        def forward(self, x):
            out = self.fc(x.flatten(1))
            return (out, out) if self.training else out
    return Aux()

def needs_kwarg(in_shape, num_classes, width, *, hidden):
    return nn.Sequential(nn.Flatten(), nn.Linear(in_shape[0] * in_shape[1] * in_shape[2], hidden),
                         nn.ReLU(), nn.Linear(hidden, num_classes))

NOT_CALLABLE = 3
'''


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A folder outside the repository with the example models and a module of broken ones."""
    d = tmp_path_factory.mktemp("mymodels")
    (d / "my_models.py").write_text((EXAMPLES / "my_models.py").read_text())
    (d / "broken_models.py").write_text(textwrap.dedent(BROKEN))
    return d


def spec(arch, width=8, in_shape=(1, 8, 8), num_classes=10, python_path=(), **kw) -> ModelSpec:
    return ModelSpec(arch=arch, width=width, in_shape=in_shape, num_classes=num_classes,
                     python_path=tuple(str(p) for p in python_path), **kw)


def config_with(model_dir: Path, *entries: dict, **top) -> dict:
    return {"models": list(entries), "python_path": [str(model_dir)], "seeds": [0],
            "data": {"subset_train": 20, "subset_test": 10}, "train": {"epochs": 1, "checkpoint_epochs": [0, 1]},
            **top}


def test_import_paths_and_default_names():
    assert is_import_path("my_models:small_cnn") and is_import_path("pkg.sub:Factory.build")
    assert is_import_path("torchvision:resnet18")
    assert not any(is_import_path(a) for a in ("fcn", "my_models", "my_models:", ":f", "a b:c", "a:b-c"))
    assert default_name("my_models:small_cnn") == "small_cnn"
    assert default_name("pkg.sub:Factory.build") == "build"
    assert default_name("torchvision:resnet18") == "tv-resnet18"  # never the built-in resnet18


@pytest.mark.parametrize("fn, width, expected_readout", [("small_cnn", 6, 6 * 8 * 8), ("layernorm_mlp", 12, 12)])
def test_example_models_build_check_and_report_readout_width(model_dir, fn, width, expected_readout):
    sp = spec(f"my_models:{fn}", width, python_path=[model_dir])
    assert check_model(sp) == expected_readout
    model = init_model(sp, seed=3)
    assert model(torch.randn(4, 1, 8, 8)).shape == (4, 10)
    assert readout_width(model) == readout_width_of(sp) == expected_readout
    a, b = init_model(sp, 3).state_dict(), init_model(sp, 4).state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a)  # the seed reaches the user's init


def test_kwargs_reach_the_callable(model_dir):
    sp = spec("broken_models:needs_kwarg", python_path=[model_dir], kwargs={"hidden": 5})
    assert readout_width(init_model(sp, 0)) == 5
    with pytest.raises(ModelImportError, match=r"hidden"):
        init_model(spec("broken_models:needs_kwarg", python_path=[model_dir]), 0)


@pytest.mark.parametrize("arch, message", [
    ("no_such_module:f", r"cannot import module 'no_such_module'.*python_path"),
    ("broken_models:missing", r"has no attribute 'missing'"),
    ("broken_models:NOT_CALLABLE", r"is a int, not a callable"),
    ("broken_models:not_a_module", r"returned a str, not a torch.nn.Module"),
    ("broken_models:wrong_outputs", r"maps input \(1, 1, 8, 8\) to \(1, 11\) in eval mode; expected .*\(1, 10\)"),
    ("broken_models:raises_in_forward", r"failed in eval mode on input of shape \(1, 1, 8, 8\)"),
    ("broken_models:numpy_init", r"two builds with the same seed differ"),
    ("broken_models:tuple_in_train_mode", r"maps input \(2, 1, 8, 8\) to tuple in train mode"),
    ("torchvision:no_such_net", r"torchvision has no classification model 'no_such_net'"),
    ("torchvision:resnet18", r"expected .*3 channels.*3-channel"),  # digits have one channel
], ids=lambda v: v if ":" in str(v) else None)
def test_bad_models_fail_with_a_message_saying_what(model_dir, arch, message):
    with pytest.raises(ModelImportError, match=message):
        check_model(spec(arch, python_path=[model_dir]))


def test_torchvision_resnet_on_three_channels_and_width_arg():
    sp = spec("torchvision:resnet18", in_shape=(3, 16, 16), num_classes=4)
    assert check_model(sp) == 512
    wide = spec("torchvision:resnet50", width=16, in_shape=(3, 16, 16), num_classes=4,
                width_arg="width_per_group")
    model = init_model(wide, 0)
    assert model.layer1[0].conv1.out_channels == 16  # 64 planes × width_per_group 16 / 64: the width got there
    assert readout_width(model) == 2048


# ------------------------------------------------------------------------------------------------
# config: validated before any job, errors name the key


def test_config_accepts_import_path_models_and_names_runs(model_dir):
    cfg = validate_config(config_with(model_dir, {"arch": "my_models:small_cnn", "widths": [4, 8], "name": "cnn",
                                                  "kwargs": {"depth": 1}},
                                      {"arch": "my_models:layernorm_mlp", "widths": [16]},
                                      {"arch": "fcn", "widths": [8]}))
    assert [m["name"] for m in cfg["models"]] == ["cnn", "layernorm_mlp", "fcn"]
    assert [r.leaf for r in C.runs(cfg)] == ["cnn-w4-s0", "cnn-w8-s0", "layernorm_mlp-w16-s0", "fcn-w8-s0"]
    assert C.readout_widths(cfg) == {"cnn": {4: 4 * 64, 8: 8 * 64}, "layernorm_mlp": {16: 16}, "fcn": {8: 8}}
    sp = C.model_spec(cfg, "cnn", 8)
    assert (sp.arch, sp.kwargs, sp.name, sp.in_shape) == ("my_models:small_cnn", {"depth": 1}, "cnn", (1, 8, 8))
    assert C.model_source(cfg, "cnn") == source_digest("my_models:small_cnn", [model_dir])
    assert C.model_source(cfg, "fcn") is None


def test_readout_width_is_read_from_the_model_not_the_name():
    cfg = validate_config({"models": [{"arch": "fcn", "widths": [20], "depth": 1}, {"arch": "resnet18", "widths": [2]}],
                           "data": {"subset_train": 20, "subset_test": 10}})
    assert C.readout_widths(cfg) == {"fcn": {20: 64}, "resnet18": {2: 16}}  # depth-1 FCN: the 8×8 inputs


BAD_MODELS = [
    ("module-not-found", {"arch": "nowhere_module:f", "widths": [8]}, "models.0.arch"),
    ("forward-fails", {"arch": "broken_models:raises_in_forward", "widths": [8]}, "models.0.arch"),
    ("torchvision-one-channel", {"arch": "torchvision:resnet18", "widths": [8]}, "models.0.arch"),
    ("depth-on-import-path", {"arch": "my_models:small_cnn", "widths": [8], "depth": 3}, "models.0.depth"),
    ("width-arg-on-user-callable", {"arch": "my_models:small_cnn", "widths": [8], "width_arg": "w"},
     "models.0.width_arg"),
    ("kwargs-on-builtin", {"arch": "fcn", "widths": [8], "kwargs": {"depth": 2}}, "models.0.kwargs"),
    ("bad-name", {"arch": "fcn", "widths": [8], "name": "my fcn"}, "models.0.name"),
    ("name-of-another-builtin", {"arch": "my_models:small_cnn", "widths": [8], "name": "convnet"}, "models.0.name"),
]


@pytest.mark.parametrize("entry, key", [b[1:] for b in BAD_MODELS], ids=[b[0] for b in BAD_MODELS])
def test_bad_model_entries_are_rejected_naming_the_key(model_dir, entry, key):
    with pytest.raises(ConfigError) as err:
        validate_config(config_with(model_dir, entry))
    assert key in str(err.value), err.value


def test_torchvision_failure_says_what_the_data_are(model_dir):
    with pytest.raises(ConfigError) as err:
        validate_config(config_with(model_dir, {"arch": "torchvision:resnet18", "widths": [8]}))
    msg = str(err.value)
    assert "3 channels" in msg and "(1, 8, 8) (C, H, W)" in msg and "10 classes" in msg, msg


def test_duplicate_names_and_missing_python_path_are_rejected(model_dir):
    two = config_with(model_dir, {"arch": "my_models:small_cnn", "widths": [8]},
                      {"arch": "my_models:layernorm_mlp", "widths": [8], "name": "small_cnn"})
    with pytest.raises(ConfigError, match=r"models\.1\.name: models\.0 already uses the name 'small_cnn'"):
        validate_config(two)
    missing = config_with(model_dir, {"arch": "my_models:small_cnn", "widths": [8]})
    missing["python_path"] = [str(model_dir / "nope")]
    with pytest.raises(ConfigError, match=r"python_path: folder .*nope.* does not exist"):
        validate_config(missing)


def test_two_builtin_entries_of_one_arch_need_names():
    two = {"models": [{"arch": "fcn", "widths": [8], "depth": 2}, {"arch": "fcn", "widths": [8], "depth": 4}],
           "data": {"subset_train": 20, "subset_test": 10}}
    with pytest.raises(ConfigError, match=r"models\.1\.name"):
        validate_config(two)
    two["models"][1]["name"] = "fcn4"
    assert [r.leaf for r in C.runs(validate_config(two))] == ["fcn-w8-s0", "fcn4-w8-s0"]


# ------------------------------------------------------------------------------------------------
# checkpoints record the import path and rebuild the model


def test_checkpoint_records_import_path_and_rebuilds_elsewhere(model_dir, small_digits_store, tmp_path):
    from pntk.data import open_prepared
    from pntk.train import TrainConfig, load_checkpoint, train_run

    d = open_prepared(small_digits_store)
    sp = ModelSpec.from_entry({"arch": "my_models:small_cnn", "name": "cnn", "kwargs": {"depth": 1}}, 4,
                              d.in_shape, d.num_classes, python_path=[model_dir])
    tr, te = d.train_indices, d.test_indices
    (ck,) = train_run(sp, 0, d.x[tr], d.y[tr], d.x[te], d.y[te], TrainConfig(epochs=1, checkpoint_epochs=(1,)),
                      tmp_path / "runs" / "digits" / "cnn-w4-s0", extra_meta={"data_fingerprint": d.fingerprint})
    meta = torch.load(ck, weights_only=True)["spec"]
    assert (meta["arch"], meta["kwargs"], meta["name"]) == ("my_models:small_cnn", {"depth": 1}, "cnn")
    model, info = load_checkpoint(ck)
    x = torch.as_tensor(d.x[te[:5]])
    # A fresh interpreter (module not imported, folder not on sys.path) rebuilds the same function.
    code = ("import sys, torch; from pntk.train import load_checkpoint; m, _ = load_checkpoint(sys.argv[1]); "
            "x = torch.load(sys.argv[2]); torch.save(m(x).detach(), sys.argv[3])")
    torch.save(x, tmp_path / "x.pt")
    subprocess.run([sys.executable, "-c", code, str(ck), str(tmp_path / "x.pt"), str(tmp_path / "y.pt")],
                   check=True, cwd=tmp_path, timeout=300)
    torch.testing.assert_close(torch.load(tmp_path / "y.pt"), model(x).detach(), rtol=0, atol=0)
    assert isinstance(model[0], nn.Conv2d) and info["seed"] == 0

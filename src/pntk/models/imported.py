"""Models named by an import path in the config: `arch: "package.module:callable"` or `"torchvision:name"`.

    models:
      - arch: my_models:small_cnn          # a module on sys.path or in a folder of `python_path:`
        kwargs: {dropout: 0.0}             # extra keyword arguments of the callable
        name: cnn                          # used in run names (default: the callable's name)
        widths: [16, 32]

A user callable is called as ``f(in_shape=(C, H, W), num_classes=O, width=w, **kwargs)`` and must return
an ``nn.Module`` mapping (N, C, H, W) to (N, O) logits, drawing its initial parameters from torch's RNG
(the run's seed is set before the call). ``torchvision:NAME`` builds ``torchvision.models.get_model(NAME,
weights=None, num_classes=O, **kwargs)``: torchvision's own architecture and initialisation. `width` is
passed to a torchvision model only through ``width_arg`` (e.g. ``width_arg: width_per_group`` for a
(wide) ResNet); without it `width` is only a label of the run. torchvision's classifiers are ImageNet
networks: most expect 3-channel images, and some (Inception, GoogLeNet) a minimum input size.

`pntk.models.build.check_model` is what config validation runs for every width before any job: the module imports, the
callable is callable, the module maps one sample to (1, O) in eval mode and two to (2, O) in train mode,
and two builds with the same seed are equal (otherwise checkpoints could not be rebuilt or resumed).
"""
from __future__ import annotations

import hashlib
import importlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .spec import IMPORT_PATH, ModelSpec

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

TORCHVISION = "torchvision"
TORCHVISION_HINT = ("torchvision's classifiers are ImageNet networks: most expect 3-channel images (a ResNet's "
                    "first conv has 3 input channels) and some a minimum size (Inception v3: 75×75); use a "
                    "3-channel data set (e.g. cifar10) or your own callable that adapts the first layer")


class ModelImportError(ValueError):
    """An import-path model cannot be imported, built or run; the message names what failed."""


def split_import_path(arch: str) -> tuple[str, str]:
    """`package.module:callable` → (module, attribute)."""
    m = IMPORT_PATH.match(arch)
    if not m:
        raise ModelImportError(f"{arch!r} is not an import path 'package.module:callable' or 'torchvision:name'")
    return m["module"], m["attr"]


def default_name(arch: str) -> str:
    """Run-name default of an entry: the callable's name (`tv-NAME` for torchvision:NAME, which would
    otherwise clash with the built-in `resnet18`)."""
    module, attr = split_import_path(arch)
    leaf = attr.split(".")[-1]
    return f"tv-{leaf}" if module == TORCHVISION else leaf


def add_python_path(folders) -> None:
    """Put the configured folders first on sys.path (idempotent), so their modules import."""
    for folder in reversed([str(Path(f).resolve()) for f in folders]):
        if folder not in sys.path:
            sys.path.insert(0, folder)


def resolve_callable(arch: str, python_path=()):
    """The callable an import path names (torchvision: the model builder)."""
    module, attr = split_import_path(arch)
    if module == TORCHVISION:
        from torchvision import models as tvm

        names = tvm.list_models(module=tvm)  # classification models only
        if attr not in names:
            raise ModelImportError(f"torchvision has no classification model {attr!r}; "
                                   f"choose one of {', '.join(names)}")
        return tvm.get_model_builder(attr)
    add_python_path(python_path)
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as err:
        where = f"python_path {[str(p) for p in python_path]}" if python_path else "no python_path given"
        raise ModelImportError(f"cannot import module {module!r} of {arch!r} ({err}; {where}): put the folder "
                               "holding it under the config's top-level python_path:") from None
    except Exception as err:  # the user's module raised while importing
        raise ModelImportError(f"importing module {module!r} of {arch!r} raised {type(err).__name__}: {err}") from None
    obj = mod
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ModelImportError(f"module {module!r} ({getattr(mod, '__file__', '?')}) has no attribute "
                                   f"{attr!r}") from None
        obj = getattr(obj, part)
    if not callable(obj):
        raise ModelImportError(f"{arch!r} is a {type(obj).__name__}, not a callable returning an nn.Module")
    return obj


def build_imported(spec: ModelSpec) -> nn.Module:
    """Call the import path of `spec` (parameters drawn from torch's current RNG)."""
    from torch import nn

    fn = resolve_callable(spec.arch, spec.python_path)
    kwargs = dict(spec.kwargs or {})
    if split_import_path(spec.arch)[0] == TORCHVISION:
        if spec.width_arg:
            kwargs[spec.width_arg] = spec.width
        call = dict(weights=None, num_classes=spec.num_classes, **kwargs)
    else:
        call = dict(in_shape=tuple(spec.in_shape), num_classes=spec.num_classes, width=spec.width, **kwargs)
    try:
        model = fn(**call)
    except Exception as err:  # whatever the user's constructor raises
        shown = ", ".join(f"{k}={v!r}" for k, v in call.items())
        raise ModelImportError(f"{spec.arch}({shown}) raised {type(err).__name__}: {err}") from None
    if not isinstance(model, nn.Module):
        raise ModelImportError(f"{spec.arch} returned a {type(model).__name__}, not a torch.nn.Module")
    return model


def source_digest(arch: str, python_path=()) -> str:
    """sha256 of the module file an import path names (torchvision: its version), so that editing the
    user's model file re-runs the training that used it."""
    module, _ = split_import_path(arch)
    if module == TORCHVISION:
        import torchvision

        return f"torchvision {torchvision.__version__}"
    resolve_callable(arch, python_path)  # imports the module, or names what is missing
    origin = getattr(sys.modules[module], "__file__", None)
    if not origin or not Path(origin).is_file():
        raise ModelImportError(f"module {module!r} of {arch!r} has no source file to fingerprint")
    return hashlib.sha256(Path(origin).read_bytes()).hexdigest()

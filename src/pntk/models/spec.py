"""What a run's model is, without building it (no torch import): `ModelSpec`, the built-in `ARCHS`.

`pntk.models.build` builds a spec (`build_model`, `init_model`); checkpoints store `ModelSpec.to_dict()` and
`pntk.train.load_checkpoint` rebuilds the model from it, import-path models included.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

ARCHS = ("fcn", "convnet", "resnet18", "wrn16")
# What an import-path arch looks like ("package.module:callable"): here, beside ARCHS, so that a spec knows
# which kind it is without importing the module that builds it (pntk.models.imported).
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
IMPORT_PATH = re.compile(rf"^(?P<module>{_IDENT}(\.{_IDENT})*):(?P<attr>{_IDENT}(\.{_IDENT})*)$")
# A run's model is identified by its *name* (the `{arch}` part of run names {arch}-w{width}-s{seed}: an
# entry's `name:`, else the built-in arch or the callable's name); these keys of its `models:` entry say
# which network that name stands for. Archives compare them between two configs; stores record them.
ENTRY_KEYS = ("arch", "depth", "parameterization", "kwargs", "width_arg")
DEFAULT_DEPTH = {"fcn": 3, "convnet": 8, "wrn16": 16}  # `depth:` left out (resnet18 has one depth)


def is_import_path(arch: str) -> bool:
    return bool(IMPORT_PATH.match(str(arch)))


def entry_identity(entry: dict) -> dict:
    """What network a (validated or archived) `models:` entry builds, widths and name aside."""
    d = {k: entry.get(k) for k in ENTRY_KEYS}
    d["kwargs"] = dict(d["kwargs"] or {})  # {} and null mean the same
    d["parameterization"] = d["parameterization"] or "standard"
    return d


def entry_label(entry: dict) -> str:
    """A models entry as people read it: its name, then what builds it (arch or import path, options)
    when that says more, e.g. `cnn (my_models:small_cnn, depth=2)` or `fcn (depth 3)`."""
    ident, name = entry_identity(entry), entry.get("name") or entry["arch"]
    opts = [f"{k}={v!r}" for k, v in ident["kwargs"].items()]
    opts += [f"{k} {ident[k]}" for k in ("depth", "width_arg") if ident[k] is not None]
    opts += [f"{ident['parameterization']} parameterization"] if ident["parameterization"] != "standard" else []
    what = ([ident["arch"]] if ident["arch"] != name else []) + opts
    return f"{name} ({', '.join(what)})" if what else name


@dataclass(frozen=True)
class ModelSpec:
    arch: str  # a built-in of ARCHS, or an import path "package.module:callable" / "torchvision:name"
    width: int
    in_shape: tuple[int, int, int]  # (C, H, W)
    num_classes: int
    depth: int | None = None
    parameterization: str = "standard"  # "standard" | "ntk" (fcn only)
    name: str | None = None  # the model's name in run names (None: arch); checkpoints record it
    kwargs: dict | None = None  # import-path models: extra keyword arguments of the callable
    width_arg: str | None = None  # torchvision models: the constructor argument that receives `width`
    python_path: tuple[str, ...] = ()  # import-path models: folders searched for the module (absolute)

    def __hash__(self) -> int:
        # kwargs is a dict (unhashable): hash the canonical JSON, so specs key caches (pntk plan's lru_caches)
        return hash(json.dumps(self.to_dict(), sort_keys=True, default=str))

    @property
    def run_name(self) -> str:
        """The `{arch}` part of run names: `name`, or the built-in arch."""
        return self.name or self.arch

    @property
    def imported(self) -> bool:
        """Named by an import path (`pntk.models.imported`) rather than a built-in arch."""
        return is_import_path(self.arch)

    def provenance(self) -> dict:
        """What a kernel store records of its model: `model` (the name in run names), `arch` (the built-in
        or import path that rebuilds it) and the whole spec (`ModelSpec.from_dict(attrs["model_spec"])`)."""
        return {"model": self.run_name, "arch": self.arch, "model_kwargs": dict(self.kwargs or {}),
                "model_spec": self.to_dict()}

    def to_dict(self) -> dict:
        """Plain containers only (what a checkpoint stores; torch.load(weights_only=True) reads it back)."""
        d = asdict(self)
        d["in_shape"], d["python_path"] = list(self.in_shape), list(self.python_path)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelSpec:
        """Inverse of `to_dict` (also reads checkpoints written before name/kwargs existed)."""
        d = dict(d)
        d["in_shape"] = tuple(d["in_shape"])
        d["python_path"] = tuple(d.get("python_path") or ())
        return cls(**d)

    @classmethod
    def from_entry(cls, entry: dict, width: int, in_shape, num_classes: int, python_path=()) -> ModelSpec:
        """The spec of one width of a validated `models:` entry; python_path folders made absolute."""
        return cls(arch=entry["arch"], width=int(width), in_shape=tuple(int(s) for s in in_shape),
                   num_classes=int(num_classes), depth=entry.get("depth"),
                   parameterization=entry.get("parameterization", "standard"), name=entry.get("name"),
                   kwargs=dict(entry.get("kwargs") or {}) or None, width_arg=entry.get("width_arg"),
                   python_path=tuple(str(Path(p).resolve()) for p in python_path))

    def validate(self) -> None:
        if self.arch not in ARCHS and not self.imported:
            raise ValueError(f"models.arch: unknown architecture {self.arch!r}; expected one of {ARCHS} or "
                             "an import path 'package.module:callable' / 'torchvision:name'")
        if self.width <= 0:
            raise ValueError(f"models.widths: width must be a positive integer, got {self.width}")
        if self.imported:
            if self.depth is not None or self.parameterization != "standard":
                raise ValueError(f"models.depth/parameterization: only for the built-in archs {ARCHS}, not "
                                 f"{self.arch!r} (pass its options in kwargs)")
            return
        if self.parameterization not in ("standard", "ntk"):
            raise ValueError(f"models.parameterization: expected 'standard' or 'ntk', got {self.parameterization!r}")
        if self.parameterization == "ntk" and self.arch != "fcn":
            raise ValueError("models.parameterization: 'ntk' is implemented for arch 'fcn' only")
        if self.depth is not None and self.depth < 1:
            raise ValueError(f"models.depth: must be >= 1, got {self.depth}")

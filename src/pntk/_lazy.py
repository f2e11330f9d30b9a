"""Package faces that name members living in modules too heavy to import with the face (torch, matplotlib).

A light job (tables, claims, figures, report; `pntk check`) imports a package for one torch-free module;
an eager face would import torch with it (≈ 4 s per job). `lazy_members` gives the face a module
`__getattr__` that imports a member's module on first use. Pass the members as a literal dict: the cache
keys' import closure (pntk.code_closure) reads it from the source and counts those modules.
"""
from __future__ import annotations

import importlib


def lazy_members(package: str, members: dict[str, str]):
    """`__getattr__` for `package`: `members` maps a name to the submodule (relative to `package`) defining it."""

    def __getattr__(name: str):
        module = members.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    return __getattr__

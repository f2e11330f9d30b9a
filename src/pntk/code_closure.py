"""The library code a job runs: the import closure of its script, read from the source, and its digest.

Snakemake's output cache hashes a rule's script and params, not the library the script imports, so cached
rules (prepare_data, train) pass ``closure_digest(script)`` as a param. A list of module names typed in the
rule goes stale the day a module gains an import (train's once missed sgd, learned and user_models); the
closure cannot. Static: every ``import`` statement counts, function-local ones too, so the key may cover a
module a given run never imports, never the reverse. Two kinds never run when a job imports a module and are
skipped: ``if TYPE_CHECKING:`` blocks and a module's ``__getattr__`` (PEP 562 lazy attributes, reached only by
name, as ``pntk.open_kernel``). A package face built with ``pntk._lazy.lazy_members`` is the exception: the
modules of its lazy members count (a job that imports the face may use any of them), so the face names them
in a literal dict. Stdlib only: the workflow calls it while parsing.
"""
from __future__ import annotations

import ast
import hashlib
from pathlib import Path

PACKAGE = "pntk"


def _module_file(src: Path, dotted: str) -> Path | None:
    """The file of ``pntk.a.b`` under ``src`` (the folder holding ``pntk/``): a module or a package's __init__."""
    base = src.joinpath(*dotted.split("."))
    for f in (base.with_suffix(".py"), base / "__init__.py"):
        if f.is_file():
            return f
    return None


def _dotted_of(src: Path, file: Path) -> tuple[str, bool]:
    """(dotted name, is a package) of a file under ``src``."""
    rel = file.relative_to(src).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts), rel.name == "__init__"


def _never_run(node: ast.AST) -> bool:
    """``if TYPE_CHECKING:`` (typing-only imports) or a lazy module ``__getattr__``."""
    if isinstance(node, ast.If):
        t = node.test
        return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
            isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")
    return isinstance(node, ast.FunctionDef) and node.name == "__getattr__"


def _statements(tree: ast.AST):
    """Every node of ``tree`` except those under a `_never_run` block (an ``else:`` of TYPE_CHECKING runs)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if _never_run(node):
            todo.extend(getattr(node, "orelse", []))
            continue
        todo.extend(ast.iter_child_nodes(node))


def _lazy_modules(tree: ast.Module, node: ast.AST) -> list[str]:
    """The submodules named by ``__getattr__ = lazy_members(__name__, {member: submodule, ...})`` (the dict
    inline or bound to a module-level name); [] for any other statement."""
    if not (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__getattr__"
                                                  for t in node.targets)):
        return []
    call = node.value
    func = getattr(call, "func", None)
    if not (isinstance(call, ast.Call) and getattr(func, "id", getattr(func, "attr", None)) == "lazy_members"):
        return []
    members = call.args[1] if len(call.args) > 1 else None
    if isinstance(members, ast.Name):
        bound = [n.value for n in tree.body if isinstance(n, ast.Assign)
                 and any(isinstance(t, ast.Name) and t.id == members.id for t in n.targets)]
        members = bound[-1] if bound else None
    if not isinstance(members, ast.Dict) or not all(isinstance(v, ast.Constant) and isinstance(v.value, str)
                                                    for v in members.values):
        raise ValueError("lazy_members: give the members as a literal dict of strings, so that the import "
                         "closure (pntk.code_closure) can read which modules they live in")
    return sorted({v.value for v in members.values})


def _imported_names(tree: ast.AST, here: str | None, is_package: bool) -> set[str]:
    """Dotted names of ``pntk`` modules (or of names inside them) that a parsed file imports."""
    names: set[str] = set()
    for node in _statements(tree):
        if here is not None and is_package:
            names.update(f"{here}.{m}" for m in _lazy_modules(tree, node))
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved against the importing module's package
                if here is None:
                    continue
                parts = here.split(".") if is_package else here.split(".")[:-1]
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names)  # `from pkg import submodule`
    return {n for n in names if n == PACKAGE or n.startswith(PACKAGE + ".")}


def import_closure(entry: str | Path, src: str | Path) -> list[Path]:
    """Every file of the ``pntk`` package under ``src`` that ``entry`` (a script or module) imports, transitively,
    with the ``__init__`` of every package on the way (importing ``pntk.a.b`` runs ``pntk/__init__`` and
    ``pntk/a/__init__``). Sorted; ``entry`` itself is not included."""
    src = Path(src).resolve()
    entry = Path(entry).resolve()
    seen: set[Path] = set()
    todo = [entry]
    while todo:
        file = todo.pop()
        inside = file.is_relative_to(src)
        here, is_package = _dotted_of(src, file) if inside else (None, False)
        for dotted in _imported_names(ast.parse(file.read_bytes(), filename=str(file)), here, is_package):
            parts = dotted.split(".")
            for k in range(1, len(parts) + 1):  # the package inits on the way, then the module itself
                f = _module_file(src, ".".join(parts[:k]))
                if f is not None and f not in seen:
                    seen.add(f)
                    todo.append(f)
    seen.discard(entry)
    return sorted(seen)


def closure_digest(entry: str | Path, src: str | Path) -> str:
    """sha256 over the import closure of ``entry``: each file's path under ``src`` and its bytes."""
    src = Path(src).resolve()
    h = hashlib.sha256()
    for f in import_closure(entry, src):
        h.update(f.relative_to(src).as_posix().encode() + b"\0")
        h.update(f.read_bytes() + b"\0")
    return h.hexdigest()

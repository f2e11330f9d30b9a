"""The cache keys of cached rules follow the code their jobs import (pntk.code_closure)."""
import shutil
from pathlib import Path

import pytest

from pntk.code_closure import closure_digest, import_closure

REPO = Path(__file__).resolve().parents[1]


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        f = root / name
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)


@pytest.fixture
def tree(tmp_path):
    """A toy `pntk` with every kind of import edge, and a script using it."""
    _write(tmp_path, {
        "src/pntk/__init__.py": "def __getattr__(name):\n    from .lazy import thing\n    return thing\n",
        "src/pntk/lazy.py": "thing = 1\n",
        "src/pntk/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .typing_only import T\n"
                         "else:\n    from . import runtime\n\ndef f():\n    from .sub import deep\n    return deep\n",
        "src/pntk/typing_only.py": "T = int\n",
        "src/pntk/runtime.py": "",
        "src/pntk/sub/__init__.py": "",
        "src/pntk/sub/deep.py": "from ..leaf import x\n",
        "src/pntk/leaf.py": "x = 1\n",
        "src/pntk/unrelated.py": "import pntk.a\n",
        "scripts/job.py": "import os\nfrom pntk.a import f\n",
    })
    return tmp_path


def test_closure_follows_local_relative_and_package_imports(tree):
    got = {p.relative_to(tree / "src").as_posix() for p in import_closure(tree / "scripts/job.py", tree / "src")}
    assert got == {"pntk/__init__.py", "pntk/a.py", "pntk/runtime.py", "pntk/sub/__init__.py", "pntk/sub/deep.py",
                   "pntk/leaf.py"}


@pytest.mark.parametrize("edited, changes", [
    ("pntk/leaf.py", True),  # two hops away, through a function-local import
    ("pntk/runtime.py", True),  # the else of TYPE_CHECKING runs
    ("pntk/sub/__init__.py", True),  # a package's __init__ runs on the way to its module
    ("pntk/unrelated.py", False),
    ("pntk/typing_only.py", False),  # typing-only import
    ("pntk/lazy.py", False),  # reached only through the package's lazy __getattr__
])
def test_digest_changes_exactly_with_the_closure(tree, edited, changes):
    before = closure_digest(tree / "scripts/job.py", tree / "src")
    (tree / "src" / edited).write_text((tree / "src" / edited).read_text() + "# edited\n")
    assert (closure_digest(tree / "scripts/job.py", tree / "src") != before) is changes


@pytest.mark.parametrize("script, must_cover", [
    # train's key once listed modules by hand and missed the optimizer's (sgd, learned, model_spec, user_models)
    ("scripts/train.py", ["train/sgd", "train/learned", "train/loop", "train/job", "models/spec", "models/imported",
                          "models/build", "models/zoo", "layers", "data/prepared"]),
    ("scripts/prepare_data.py", ["data/prepared", "data/datasets", "data/user", "data/spec"]),
])
def test_cached_rules_cover_the_modules_they_run(tmp_path, script, must_cover):
    src = tmp_path / "src"
    shutil.copytree(REPO / "src" / "pntk", src / "pntk", ignore=shutil.ignore_patterns("__pycache__"))
    closure = {p.relative_to(src).as_posix() for p in import_closure(REPO / script, src)}
    for stem in must_cover:
        # the module may have become a package (pntk/train.py → pntk/train/…) in a later layout
        hits = [f for f in closure if f == f"pntk/{stem}.py" or f.startswith(f"pntk/{stem}/")]
        assert hits, f"{script}'s closure lacks pntk/{stem}"
        before = closure_digest(REPO / script, src)
        (src / hits[0]).write_text((src / hits[0]).read_text() + "\n# edited\n")
        assert closure_digest(REPO / script, src) != before, f"editing {hits[0]} left {script}'s key unchanged"


def test_a_lazy_face_counts_the_modules_of_its_members(tmp_path):
    """pntk._lazy.lazy_members: `from pntk.pkg import heavy` runs pntk/pkg/mod.py, though no import says so."""
    _write(tmp_path, {
        "src/pntk/__init__.py": "",
        "src/pntk/_lazy.py": "def lazy_members(package, members):\n    pass\n",
        "src/pntk/pkg/__init__.py": "from .._lazy import lazy_members\n\n_MEMBERS = {'heavy': 'mod'}\n"
                                    "__getattr__ = lazy_members(__name__, _MEMBERS)\n",
        "src/pntk/pkg/mod.py": "heavy = 1\n",
        "src/pntk/pkg/other.py": "",
        "scripts/job.py": "from pntk.pkg import heavy\n",
    })
    got = {p.relative_to(tmp_path / "src").as_posix() for p in import_closure(tmp_path / "scripts/job.py",
                                                                              tmp_path / "src")}
    assert got == {"pntk/__init__.py", "pntk/_lazy.py", "pntk/pkg/__init__.py", "pntk/pkg/mod.py"}
    comprehension = "__getattr__ = lazy_members(__name__, {n: 'mod' for n in 'ab'})\n"
    (tmp_path / "src/pntk/pkg/__init__.py").write_text("from .._lazy import lazy_members\n\n" + comprehension)
    with pytest.raises(ValueError, match="literal dict"):
        import_closure(tmp_path / "scripts/job.py", tmp_path / "src")


def test_the_rules_use_the_closure_not_module_lists():
    rules = "".join(p.read_text() for p in (REPO / "workflow/rules").glob("*.smk"))
    assert "closure_digest(" in rules and "code_digest(" not in rules

"""The house's shape from its imports (grimp): packages, arrows that run up the layers, circles.

    python tests/house.py            print the numbers and every arrow up / circle
    python tests/house.py --check    the same, exit 1 on any circle (between modules or between packages)

A "package" is a top-level unit of pntk (a subpackage or a flat module). An arrow runs up when a
package imports one of a higher layer in LAYERS, or of its own line (the layers contract of
pyproject.toml, bottom last).
Function-local imports count: they are edges all the same, only hidden.
"""
from __future__ import annotations

import sys

import grimp

# Top to bottom; packages on one line are independent of each other. Keep in step with the
# [tool.importlinter] layers contract in pyproject.toml.
LAYERS = [
    "cli",
    "inventory | scriptutil",
    "plan",
    "report",
    "active | analysis",
    "regression",
    "archive | kernel_jobs",
    "config | train",
    "layout",
    "config_runs | store",
    "kernels | models",
    "data | runs | provenance | layers",
    "_lazy | _version | code_closure | tiling",
]
# Where each module of the house before issue 25 sits in LAYERS, to count its arrows up the same way.
OLD_HOMES = {
    "plan_costs": "plan", "plan_devices": "plan", "plan_check": "plan",
    "model_spec": "models", "user_models": "models",
    "sgd": "train", "learned": "train", "train_job": "train",
    "config_runs": "config", "paper": "report",
}


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "(pntk)"


def _home(module: str) -> str:
    """The unit of LAYERS a module belongs to (old modules mapped through OLD_HOMES)."""
    rest = module.split(".", 1)[1] if "." in module else ""
    for old in sorted(OLD_HOMES, key=len, reverse=True):
        if rest == old or rest.startswith(old + "."):
            return OLD_HOMES[old]
    return _top(module)


def _rank() -> dict[str, int]:
    return {name.strip(): len(LAYERS) - i for i, line in enumerate(LAYERS) for name in line.split("|")}


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan, iterative)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            node, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter[0]
                    counter[0] += 1
                    stack.append(nxt)
                    on.add(nxt)
                    work.append((nxt, iter(sorted(edges.get(nxt, ())))))
                elif nxt in on:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    m = stack.pop()
                    on.discard(m)
                    comp.append(m)
                    if m == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def house(package: str = "pntk") -> dict:
    graph = grimp.build_graph(package)
    mods = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules if m.startswith(package)}
    # A package's __init__ importing its own modules is how a face works, not a circle between modules.
    module_edges = {m: {t for t in ts if not t.startswith(m + ".")} for m, ts in mods.items()}
    pkg_edges: dict[str, set[str]] = {}
    up: set[tuple[str, str]] = set()
    rank = _rank()
    for m, targets in mods.items():
        for t in targets:
            a, b = _top(m), _top(t)
            if a != b and "(pntk)" not in (a, b):
                pkg_edges.setdefault(a, set()).add(b)
            ha, hb = _home(m), _home(t)
            # Up a layer, or sideways: packages on one line do not import each other.
            if ha != hb and rank.get(ha, 0) <= rank.get(hb, 0) and "(pntk)" not in (ha, hb):
                up.add((m, t))
    units = {_top(m) for m in mods} - {"(pntk)"}
    return dict(packages=sorted(units), up=sorted(up), package_cycles=_cycles(pkg_edges),
                module_cycles=_cycles(module_edges))


def main(argv: list[str]) -> int:
    h = house()
    print(f"packages: {len(h['packages'])} ({', '.join(h['packages'])})")
    print(f"arrows up (module → module): {len(h['up'])}")
    for a, b in h["up"]:
        print(f"    {a} → {b}")
    print(f"circles between packages: {len(h['package_cycles'])}")
    for c in h["package_cycles"]:
        print("    " + " ↔ ".join(c))
    print(f"circles between modules: {len(h['module_cycles'])}")
    for c in h["module_cycles"]:
        print("    " + " ↔ ".join(c))
    return 1 if "--check" in argv and (h["package_cycles"] or h["module_cycles"]) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""What a results folder holds: data stores, runs, checkpoints and kernel stores with their status.

    store_summary(path)     one kernel store: layout, tiles written (from the flags), finalized, provenance
    store_status(path)      + size on disk and "verified": manifest present and every flag agrees with it
                            (cheap: no chunk is read); verify=True recomputes every chunk checksum instead
    inventory(results)      one row per data store, train log, checkpoint and kernel store (`pntk ls`)
"""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from .layout import Layout
from .runs import Run, epoch_of
from .store.paths import StorePaths, local_files
from .tiling import TileGrid

# model: the name in run names; arch: the built-in or import path that builds it (with model_kwargs);
# method: what computed the tiles (method_requested: the config's, e.g. auto)
PROVENANCE_KEYS = ("model", "arch", "model_kwargs", "width", "seed", "epoch", "dataset", "rows", "cols", "method",
                   "method_requested", "checkpoint", "checkpoint_sha256", "data_fingerprint")
BUILD_KEYS = ("pntk_version", "git_describe", "torch_version", "host")
COLUMNS = ("run", "epoch", "item", "kind", "rows × cols", "shape", "tiles", "size", "status")


def store_summary(path: str | Path) -> dict:
    """What `pntk info` shows: layout, completeness (from the tile flags: cheap) and provenance."""
    from .store import zarr_store as kstore

    paths = StorePaths.of(path)
    zpath = paths.store
    if not (zpath / "zarr.json").is_file():
        raise FileNotFoundError(f"{zpath}: no kernel store there (expected a Zarr group with zarr.json)")
    info = kstore.store_info(zpath)
    tile = int(info.get("tile_size") or max(info["chunks"][:2]))
    grid = list(TileGrid(*info["shape"][:2], tile).shape)  # tiles along the rows and the cols
    flags, bad_flags = read_flags(paths)
    written = {k for sums in flags.values() if sums for k in sums}
    build = {k: info[k] for k in BUILD_KEYS if k in info}  # the store's own attrs (from init)
    for src in (paths.sentinel, paths.manifest):  # the manifest (written last) wins
        if src.is_file():
            rec = json.loads(src.read_text())
            build.update({k: rec[k] for k in BUILD_KEYS if k in rec})
    return {"store": str(zpath), "kind": info.get("kind"), "shape": info["shape"], "dtype": info["dtype"],
            "tile_size": tile, "symmetric": bool(info.get("symmetric")), "tile_grid": grid,
            "tiles_total": grid[0] * grid[1], "tiles_written": len(written), "unreadable_flags": bad_flags,
            "finalized": paths.manifest.is_file(),
            "manifest": str(paths.manifest) if paths.manifest.is_file() else None,
            "provenance": {k: info[k] for k in PROVENANCE_KEYS if k in info}, "build": build}


def format_summary(s: dict) -> str:
    """`pntk info`'s text for one store_summary: a key–value block, provenance and build last."""
    complete = s["tiles_written"] == s["tiles_total"]
    lines = [("store", s["store"]),
             ("kind", f"{s['kind']}{' (symmetric)' if s['symmetric'] else ''}"),
             ("shape", " × ".join(map(str, s["shape"]))),
             ("dtype", s["dtype"]),
             ("tile size", f"{s['tile_size']} ({s['tile_grid'][0]} × {s['tile_grid'][1]} tiles)"),
             ("completeness", f"{s['tiles_written']}/{s['tiles_total']} tiles written"
                              f"{' (complete)' if complete else ''}"
                              + (f", unreadable flags {s['unreadable_flags']}" if s["unreadable_flags"] else "")),
             ("finalized", f"yes ({s['manifest']})" if s["finalized"] else "no (no manifest)")]
    lines += [(k.replace("_", " "), v) for k, v in s["provenance"].items()]
    lines += [(k.replace("_", " "), v) for k, v in s["build"].items()]
    width = max(len(k) for k, _ in lines)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in lines)


def read_flags(paths: StorePaths) -> tuple[dict[str, dict | None], list[str]]:
    """({flag file name: its chunk checksums, None if unreadable}, [unreadable flag names])."""
    flags: dict[str, dict | None] = {}
    for f in paths.flag_files():
        try:
            flags[f.name] = dict(json.loads(f.read_text())["chunks"])
        except (ValueError, KeyError, TypeError):
            flags[f.name] = None
    return flags, [name for name, sums in flags.items() if sums is None]


def store_status(path: str | Path, *, verify: bool = False) -> dict:
    """`store_summary` + size on disk + status: "verified" when the manifest exists and the flags agree
    with it (cheap), "unfinished" without a manifest, else what disagrees. verify=True: recompute every
    chunk checksum (`pntk.store.tiles.verify`), status "checksums OK" or the failing tiles."""
    from .store import tiles

    paths = StorePaths.of(path)
    s = store_summary(paths.store)
    s["size_bytes"] = sum(f.stat().st_size for f in paths.files())
    if verify:
        res = tiles.verify(paths.store)
        s["ok"] = bool(res["ok"])
        s["status"] = "checksums OK" if res["ok"] else "FAILED: " + "; ".join(problems(res))
        return s
    if not s["finalized"]:
        s["ok"], s["status"] = False, f"unfinished ({s['tiles_written']}/{s['tiles_total']} tiles, no manifest)"
        return s
    expected = json.loads(paths.manifest.read_text())["tiles"]
    flags, _ = read_flags(paths)
    c = tiles.compare_checksums(expected, expected, flags)  # manifest vs flags only: no chunk is read
    s["ok"] = not (c["bad_flags"] or c["unflagged"])
    s["status"] = "verified" if s["ok"] else "NOT verified: " + "; ".join(problems(c))
    return s


def problems(res: dict) -> list[str]:
    """Every missing, mismatching, unflagged tile and bad flag of a verification record, named."""
    out = [res["error"]] if res.get("error") else []
    if res.get("manifest_missing"):
        out.append(f"not finalized (no manifest {res['manifest']})")
    for key, label in (("missing", "missing tiles"),  # never written, or absent from the manifest
                       ("mismatch", "tiles whose chunk differs from the manifest"),
                       ("unflagged", "tiles without a flag file"),
                       ("bad_flags", "bad flags")):  # unreadable, or disagreeing with the manifest
        if res.get(key):
            out.append(f"{label}: {', '.join(res[key])}")
    return out or ["verification failed without a named tile (see --json)"]


def kernel_stores_under(folder) -> list:
    """Every kernel store (`….zarr` beside its `….init.json`) below `folder` (a path or an s3:// prefix), sorted."""
    from .store.remote import is_url

    if is_url(folder):
        return _remote_stores_under(folder)
    return sorted(p for p in Path(folder).rglob("*.zarr")
                  if p.is_dir() and StorePaths.of(p).sentinel.is_file())


def _remote_stores_under(url) -> list:
    """The kernel stores (`….zarr/zarr.json` beside its `….init.json`) below an s3:// prefix, from one listing."""
    from .store.paths import MANIFEST, SENTINEL, STORE
    from .store.remote import RemotePath, as_path

    root = as_path(url)
    if not isinstance(root, RemotePath):
        raise ValueError(f"{url}: not a URL")
    if (index := published_index(root)) is not None:  # a published archive: its index, no listing
        return [root / f"{s['stem']}{STORE}" for s in index.get("stores", [])]
    keys = {str(p) for p in root.rglob("*")}
    stems = [k.removesuffix(SENTINEL) for k in keys if k.endswith(SENTINEL)]
    stems += [k.removesuffix(MANIFEST) for k in keys if k.endswith(MANIFEST)]
    return sorted(RemotePath(s + STORE) for s in set(stems) if f"{s}{STORE}/zarr.json" in keys)


def published_index(root) -> dict | None:
    """The manifest of a published archive at `root` (`pntk archive publish`), or None where there is none."""
    from .archive import MANIFEST

    try:
        return json.loads((root / MANIFEST).read_text())
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return None


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in local_files(path))


def _learned(train_log: Path) -> str:
    """'learned (test acc 0.93)' / 'did NOT learn (…)' from the last row of a train_log.csv."""
    try:
        with open(train_log, newline="") as fh:
            last = list(csv.DictReader(fh))[-1]
        acc = float(last["test_acc"])
    except (OSError, IndexError, KeyError, ValueError):
        return "unreadable train log"
    if "learned" not in last:
        return f"test acc {acc:.3f}"
    verdict = "learned" if last["learned"] == "True" else "did NOT learn"
    return f"{verdict} (epoch {last['epoch']}, test acc {acc:.3f})"


def inventory(results: str | Path, *, verify: bool = False) -> list[dict]:
    """One row (COLUMNS, plus `path` and `ok`) per data store, train log, checkpoint and kernel store."""
    results, layout = Path(results), Layout(results)
    rows = []
    for store in layout.data_stores():
        attrs = json.loads((store / "zarr.json").read_text()).get("attributes", {}) \
            if (store / "zarr.json").is_file() else {}
        n = int(attrs.get("n_train", 0)) + int(attrs.get("n_test", 0))
        shape = " × ".join(map(str, [n, *attrs.get("in_shape", [])]))
        rows.append(_row(run="-", epoch="-", item=f"data {store.parent.name}", kind="data", shape=shape,
                         size=_size(store), status=f"fingerprint {str(attrs.get('fingerprint', '?'))[:12]}",
                         path=store, ok=bool(attrs.get("fingerprint"))))
    for run_dir in layout.run_folders():
        try:
            run = Run.of_path(run_dir)
        except ValueError:
            continue
        log = run.train_log(results)
        if log.is_file():
            rows.append(_row(run=run.name, epoch="-", item=log.name, size=_size(log), status=_learned(log), path=log))
        for ck in sorted((run_dir / "checkpoints").glob("epoch*.pt")):
            rows.append(_row(run=run.name, epoch=f"{epoch_of(ck):03d}", item="checkpoint", size=_size(ck), path=ck))
        for store in kernel_stores_under(run_dir):
            rows.append(_store_row(run, store, verify))
    return rows


def _store_row(run: Run, store: Path, verify: bool) -> dict:
    paths = StorePaths.of(store)
    try:
        s = store_status(store, verify=verify)
    except (OSError, ValueError, KeyError) as err:  # an unreadable store is listed, not skipped
        return _row(run=run.name, epoch=f"{epoch_of(store):03d}", item=paths.name, path=store, ok=False,
                    status=f"unreadable: {err}")
    try:
        kind, rows_set, cols_set = paths.index_sets()
        sets = f"{rows_set} × {cols_set}"
    except ValueError:
        kind, sets = s["kind"], "-"
    return _row(run=run.name, epoch=f"{epoch_of(store):03d}", item=paths.name, kind=kind, sets=sets,
                shape=" × ".join(map(str, s["shape"])), tiles=f"{s['tiles_written']}/{s['tiles_total']}",
                size=s["size_bytes"], status=s["status"], path=store, ok=s["ok"])


def _row(*, run, epoch, item, kind="-", sets="-", shape="-", tiles="-", size=None, status="-", path,
         ok=True) -> dict:
    return {"run": run, "epoch": epoch, "item": item, "kind": kind, "rows × cols": sets, "shape": shape,
            "tiles": tiles, "size": size, "status": status, "path": str(path), "ok": ok}


def human_size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def format_inventory(rows: list[dict], results: str | Path) -> str:
    """A fixed-width table of `inventory` rows and a one-line total."""
    if not rows:
        return f"{results}: nothing here (no data/ or runs/ with pntk outputs)"
    cells = [[str(r[c]) if c != "size" else human_size(r[c]) for c in COLUMNS] for r in rows]
    widths = [max(len(c), *(len(row[k]) for row in cells)) for k, c in enumerate(COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    stores = [r for r in rows if r["tiles"] != "-"]
    runs = {r["run"] for r in rows if r["run"] != "-"}
    n_ck = sum(r["item"] == "checkpoint" for r in rows)
    total = sum(r["size"] or 0 for r in rows)
    lines.append(f"{len(runs)} runs, {n_ck} checkpoints, {len(stores)} kernel stores "
                 f"({sum(r['ok'] for r in stores)} verified, {sum(not r['ok'] for r in stores)} not), "
                 f"{human_size(total)} in {os.fspath(results)}")
    return "\n".join(lines)


def remote_inventory(url, *, verify: bool = False) -> list[dict]:
    """`pntk ls` of an s3:// prefix: one row per kernel store (as `pntk.inventory.inventory` gives for a
    local results folder; data stores and checkpoints stay local)."""
    from .store.remote import as_path

    root = as_path(url)
    rows = []
    for store in kernel_stores_under(root):
        rel = store.relative_to(root).split("/")
        run, epoch = "-", "-"
        if len(rel) >= 4 and rel[-2] == "kernels" and rel[-3].startswith("epoch"):
            run, epoch = rel[-4], rel[-3].removeprefix("epoch")
        name = store.name.removesuffix(".zarr")
        try:
            s = store_status(store, verify=verify)
        except (OSError, ValueError, KeyError) as err:
            rows.append(_row(run=run, epoch=epoch, item=name, path=store, ok=False, status=f"unreadable: {err}"))
            continue
        rows.append(_row(run=run, epoch=epoch, item=name, kind=s["kind"], sets=f"{s['provenance'].get('rows', '-')}"
                         f" × {s['provenance'].get('cols', '-')}", shape=" × ".join(map(str, s["shape"])),
                         tiles=f"{s['tiles_written']}/{s['tiles_total']}", size=s["size_bytes"],
                         status=s["status"], path=store, ok=s["ok"]))
    return rows

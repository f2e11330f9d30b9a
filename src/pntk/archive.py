"""Archives of finished kernel stores, to move results between checkouts without recomputing them.

    pack      results/ → FILE.zip: the chosen finalized kernel stores, every checkpoint and the train log
              of their runs (all outputs of the train job), and the prepared data store (default) or only
              its fingerprint (--no-data). `pntk-archive.json` at the root records format, pntk version,
              the config subset that determines results (data, models, seeds, train, kernels) and the
              sha256 of every file. Files sit under their paths relative to the results folder.
    import    FILE.zip → results/ of another checkout. Archives are untrusted: everything is checked
              BEFORE a single file is written — entry names (no absolute paths, no `..`, no symlinks,
              only data/ and runs/), sha256 of every entry, the config (what differs is named),
              checkpoints (torch.load(weights_only=True) only), store attrs against the checkpoints,
              every tile checksum against the store manifest and flags (read from the zip via
              zarr's ZipStore) and the data fingerprint (recomputed from the arrays).
              Files are then written in dependency order, each atomically, and modification times
              are set so that data < checkpoints, train log < init.json < chunks < tile flags <
              manifest: `snakemake -n` with the same config schedules none of the imported jobs.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pickle
import re
import shutil
import stat
import time
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np

from . import __version__
from . import config as pcfg
from . import store as kstore
from . import tiles
from .provenance import git_describe, sha256_file

FORMAT, FORMAT_VERSION, MANIFEST = "pntk-archive", 1, "pntk-archive.json"
CONFIG_KEYS = ("data", "models", "seeds", "train", "kernels")
DATA_KEYS = ("name", "train_size", "test_size", "subset_train", "subset_test", "seed")
MODEL_KEYS = ("depth", "parameterization")
KERNEL_KEYS = ("tile_size", "dtype", "method")
RUN_FIELDS = ("arch", "width", "seed", "epoch")
# Snakemake reruns a job whose output is older than an input: each level is newer than the ones before.
LEVELS = ("data", "run", "init", "store", "flag", "manifest")
STEM_RE = re.compile(r"^runs/(?P<dataset>[a-z_0-9]+)/(?P<arch>[a-z0-9]+)-w(?P<width>\d+)-s(?P<seed>\d+)/"
                     r"epoch(?P<epoch>\d{3})/kernels/(?P<kind>[a-z_]+)-(?P<rows>(?:sub-)?(?:train|test))-"
                     r"(?P<cols>(?:sub-)?(?:train|test))$")
CHUNK = 1 << 20


class ArchiveError(RuntimeError):
    """The archive cannot be packed or is refused; the message says what and where."""


def configured_stores(config: dict) -> list[tuple[str, str, str, int]]:
    """(key, stem relative to results, run name, epoch) of every store the config computes."""
    out = []
    for r in pcfg.runs(config):
        for e in sorted(config["train"]["checkpoint_epochs"]):
            for k, rows, cols in pcfg.store_specs(config):
                key = f"{r.name}/epoch{e:03d}/{k}-{rows}-{cols}"
                out.append((key, f"runs/{r.name}/epoch{e:03d}/kernels/{k}-{rows}-{cols}", r.name, e))
    return out


def matches(key: str, selector: str) -> bool:
    """`--run` selectors: globs on `{dataset}/{arch}-w{W}-s{S}/epoch{EEE}/{kind}-{rows}-{cols}`, matching
    whole path components anywhere (`fcn-w16-s0`, `epoch001`, `*/pntk-*`, `digits/fcn-w16-s0/epoch000`)."""
    from fnmatch import fnmatchcase

    s = selector.strip("/")
    return any(fnmatchcase(key, p) for p in (s, f"{s}/*", f"*/{s}", f"*/{s}/*"))


def level_of(rel: str) -> str:
    """Dependency level of a file (see LEVELS), from its path relative to the results folder."""
    tests = (("data", rel.startswith("data/")), ("manifest", rel.endswith(".manifest.json")),
             ("flag", ".tiles/" in rel), ("init", rel.endswith(".init.json")), ("store", ".zarr/" in rel))
    return next((level for level, hit in tests if hit), "run")


def store_files(results: Path, stem: str) -> list[str]:
    base = results / stem
    flags = sorted(base.with_name(base.name + ".tiles").glob("*.json"))
    return ([f"{stem}.init.json"] + _walk(results, f"{stem}.zarr")
            + [f"{stem}.tiles/{f.name}" for f in flags] + [f"{stem}.manifest.json"])


def _walk(results: Path, rel_dir: str) -> list[str]:
    """Regular files below results/rel_dir (following symlinks, e.g. into a Snakemake output cache)."""
    out = []
    for dirpath, _, names in os.walk(results / rel_dir, followlinks=True):
        out += [Path(dirpath, n).relative_to(results).as_posix() for n in names if ".tmp" not in n]
    return sorted(out)


def _attrs(zarr_dir: Path | str, text: str | bytes | None = None) -> dict:
    """Group attributes straight from `zarr.json` (no zarr needed)."""
    raw = json.loads(text if text is not None else (Path(zarr_dir) / "zarr.json").read_text())
    return raw.get("attributes", {})


def pack(config: dict, results: str | Path, out: str | Path, selectors: list[str] | None = None,
         with_data: bool = True) -> dict:
    """Write the archive `out`; refuse if any chosen store is unfinished or fails verification."""
    results, selectors = Path(results), list(selectors or [])
    cands = configured_stores(config)
    for sel in selectors:
        if not any(matches(c[0], sel) for c in cands):
            raise ArchiveError(f"--run {sel!r} matches no store of this config (stores look like {cands[0][0]})")
    data_rel = f"data/{config['data']['name']}.zarr"
    if not (results / data_rel / "zarr.json").is_file():
        raise ArchiveError(f"{results / data_rel}: prepared data store not found; nothing here to pack")
    data_attrs = _attrs(results / data_rel)
    problems, stores, runs, absent = [], [], {}, []
    files = _walk(results, data_rel) if with_data else []
    for key, stem, run, epoch in cands:
        if selectors and not any(matches(key, sel) for sel in selectors):
            continue
        if (why := _unfinished(results, stem, run, epoch, data_attrs.get("fingerprint"))) is not None:
            problems += [f"{key}: {why}"] if why else []
            absent += [] if why else [key]
            continue
        stores.append({"key": key, "stem": stem})
        if run not in runs:
            cks = [f"runs/{run}/checkpoints/epoch{e:03d}.pt" for e in sorted(config["train"]["checkpoint_epochs"])]
            runs[run] = {"checkpoints": cks, "train_log": f"runs/{run}/train_log.csv"}
            missing = [p for p in cks + [runs[run]["train_log"]] if not (results / p).is_file()]
            problems += [f"{key}: outputs of its train job are missing: {missing}"] if missing else []
            files += cks + [runs[run]["train_log"]]
        files += store_files(results, stem)
    if problems:
        raise ArchiveError("refusing to pack unfinished or damaged kernel stores (finish them with snakemake "
                           "or leave them out with --run):\n  " + "\n  ".join(problems))
    if not stores:
        raise ArchiveError(f"nothing to pack: none of the {len(absent)} selected kernel stores is computed under "
                           f"{results / 'runs'} (e.g. {absent[0] if absent else '-'})")
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "pntk_version": __version__,
                "git_describe": git_describe(), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "config": {k: config[k] for k in CONFIG_KEYS},
                "data": {"dataset": config["data"]["name"], "path": data_rel, "included": with_data,
                         "fingerprint": data_attrs.get("fingerprint"), "attrs": data_attrs},
                "runs": runs, "stores": stores, "files": {}}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        with zipfile.ZipFile(tmp, "w", allowZip64=True) as zf:
            for rel in files:
                manifest["files"][rel] = _add_file(zf, results / rel, rel)
            zf.writestr(_zinfo(MANIFEST, time.time()), json.dumps(manifest, indent=2, sort_keys=True) + "\n",
                        compress_type=zipfile.ZIP_DEFLATED)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return {**manifest, "not_computed": absent}


def _unfinished(results: Path, stem: str, run: str, epoch: int, data_fp: str) -> str | None:
    """None for a finalized, verified, current store; else why not ("" = not computed at all: skipped)."""
    base = results / stem
    zpath, init = tiles.store_path(base), base.with_name(base.name + ".init.json")
    if not any(p.exists() for p in (zpath, init, base.with_name(base.name + ".manifest.json"))):
        return ""
    if not (zpath / "zarr.json").is_file() or not init.is_file():
        return "incomplete (store or init.json missing)"
    res = tiles.verify(zpath)
    if res["manifest_missing"]:
        return f"not finalized (no manifest; {res['n_tiles'] - len(res['missing'])}/{res['n_tiles']} tiles written)"
    if not res["ok"]:
        return f"fails verify (missing {res['missing']}, mismatch {res['mismatch']}, bad flags {res['bad_flags']})"
    flags = base.with_name(base.name + ".tiles").glob("*.json")
    flagged = {k for f in flags for k in json.loads(f.read_text())["chunks"]}
    if set(json.loads(base.with_name(base.name + ".manifest.json").read_text())["tiles"]) - flagged:
        return "tile flags missing (Snakemake would recompute those tiles)"
    attrs, ck = _attrs(zpath), results / f"runs/{run}/checkpoints/epoch{epoch:03d}.pt"
    if not ck.is_file() or attrs.get("checkpoint_sha256") != sha256_file(ck):
        return f"stale (computed from another {ck.name} than the one in {ck.parent})"
    if attrs.get("data_fingerprint") != data_fp:
        return "stale (computed from other data than the prepared data store)"
    return None


def _zinfo(name: str, mtime: float) -> zipfile.ZipInfo:
    zi = zipfile.ZipInfo(name, date_time=time.localtime(max(mtime, 315532800))[:6])
    zi.external_attr = (stat.S_IFREG | 0o644) << 16
    return zi


def _add_file(zf: zipfile.ZipFile, path: Path, rel: str) -> dict:
    zi = _zinfo(rel, path.stat().st_mtime)
    # chunks and checkpoints are compressed already; deflate only the text files
    zi.compress_type = zipfile.ZIP_DEFLATED if rel.endswith((".json", ".csv")) else zipfile.ZIP_STORED
    with open(path, "rb") as src, zf.open(zi, "w", force_zip64=True) as dst:
        return dict(zip(("sha256", "size"), _copy(src, dst)))


def _copy(src, dst=None) -> tuple[str, int]:
    """Stream `src` into `dst` (or nowhere); return (sha256, size)."""
    h, size = hashlib.sha256(), 0
    while block := src.read(CHUNK):
        h.update(block)
        size += len(block)
        if dst is not None:
            dst.write(block)
    return h.hexdigest(), size


# ---------------------------------------------------------------------------------------------- import


def unsafe_name(info: zipfile.ZipInfo) -> str | None:
    """Why entry `info` may not be extracted under the results folder (None when it may)."""
    name, mode = info.filename, info.external_attr >> 16
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return "absolute path"
    if "\\" in name or any(p in ("", ".", "..") for p in name.rstrip("/").split("/")):
        return "path leaves the target folder ('..', '.', '\\' or empty component)"
    if stat.S_ISLNK(mode):
        return "symbolic link"
    if info.is_dir() or stat.S_IFMT(mode) not in (0, stat.S_IFREG):  # 0: no type recorded (Windows, writestr)
        return "not a regular file"
    if name != MANIFEST and name.split("/")[0] not in ("data", "runs"):
        return "outside data/ and runs/"
    return None


def _read_manifest(zf: zipfile.ZipFile) -> dict:
    try:
        man = json.loads(zf.read(MANIFEST))
    except KeyError:
        raise ArchiveError(f"not a pntk archive: no {MANIFEST} at its root") from None
    except ValueError as err:
        raise ArchiveError(f"{MANIFEST} is not valid JSON: {err}") from None
    if man.get("format") != FORMAT or man.get("format_version") != FORMAT_VERSION:
        raise ArchiveError(f"{MANIFEST}: format {man.get('format')!r} version {man.get('format_version')!r}, "
                           f"this pntk reads {FORMAT!r} version {FORMAT_VERSION}")
    return man


def check_entries(zf: zipfile.ZipFile, man: dict, results: Path) -> None:
    """Names (safety), the set of entries against the manifest, and the sha256 of every entry."""
    bad = [f"{i.filename!r}: {why}" for i in zf.infolist() if (why := unsafe_name(i))]
    names = [i.filename for i in zf.infolist()]
    if bad:
        raise ArchiveError("refused: unsafe entries in the archive:\n  " + "\n  ".join(bad))
    dup = sorted(n for n, c in Counter(names).items() if c > 1)
    extra = sorted(set(names) - set(man["files"]) - {MANIFEST})
    absent = sorted(set(man["files"]) - set(names))
    if dup or extra or absent:
        raise ArchiveError(f"refused: entries do not match {MANIFEST} (duplicated {dup}, not listed {extra}, "
                           f"listed but absent {absent})")
    for rel, meta in man["files"].items():
        with zf.open(rel) as fh:
            ok = _copy(fh)[0] == meta["sha256"]
        if not ok:
            raise ArchiveError(f"refused: sha256 of {rel} differs from {MANIFEST} (archive damaged or edited)")


def config_differences(man: dict, config: dict) -> list[str]:
    """What in the archive's code-relevant config differs from `config` (empty when they agree)."""
    a, diffs = man["config"], []
    train_keys = sorted((set(a["train"]) | set(config["train"])) - {"device"})
    for sec, keys in (("data", DATA_KEYS), ("train", train_keys), ("kernels", KERNEL_KEYS)):
        diffs += [f"{sec}.{k}: archive {a[sec].get(k)}, config {config[sec].get(k)}"
                  for k in keys if a[sec].get(k) != config[sec].get(k)]
    models = {m["arch"]: m for m in config["models"]}
    one_of = lambda v: str(v[0]) if len(v) == 1 else f"one of {v}"  # noqa: E731
    for name in man["runs"]:
        _, arch, width, seed = _parse_run(name)
        if arch not in models:
            diffs.append(f"models: archive run {name} has arch {arch}, config has no {arch} model")
            continue
        old = next((m for m in a["models"] if m["arch"] == arch), {})
        diffs += [f"models[{arch}].{k}: archive {old.get(k)}, config {models[arch].get(k)}"
                  for k in MODEL_KEYS if old.get(k) != models[arch].get(k)]
        if width not in models[arch]["widths"]:
            diffs.append(f"width: archive {width}, config {one_of(models[arch]['widths'])} (run {name})")
        if seed not in config["seeds"]:
            diffs.append(f"seed: archive {seed}, config {one_of(config['seeds'])} (run {name})")
    specs = set(pcfg.store_specs(config))
    for s in man["stores"]:
        m = _parse_stem(s["stem"])
        if (m["kind"], m["rows"], m["cols"]) not in specs:
            diffs.append(f"kernels: archive store {m['kind']}-{m['rows']}-{m['cols']}, config kinds "
                         f"{config['kernels']['kinds']} index_sets {config['kernels']['index_sets'].get(m['kind'])}")
    return list(dict.fromkeys(diffs))


def _parse_run(name: str) -> tuple[str, str, int, int]:
    m = _parse_stem(f"runs/{name}/epoch000/kernels/pntk-train-train")
    return m["dataset"], m["arch"], m["width"], m["seed"]


def _parse_stem(stem: str) -> dict:
    m = STEM_RE.match(stem)
    if not m:
        raise ArchiveError(f"refused: {stem!r} is not runs/{{dataset}}/{{arch}}-w{{W}}-s{{S}}/epoch{{E}}/kernels/…")
    return {k: int(v) if k in ("width", "seed", "epoch") else v for k, v in m.groupdict().items()}


def load_checkpoint_bytes(rel: str, raw: bytes) -> dict:
    """torch.load with weights_only=True: tensors and plain containers only, never arbitrary objects."""
    import torch

    try:
        ck = torch.load(io.BytesIO(raw), weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as err:
        what = re.search(r"Unsupported global: GLOBAL [\w.]+|Unsupported operand \d+", str(err))
        raise ArchiveError(f"refused: checkpoint {rel} holds a pickled Python object, which "
                           f"torch.load(weights_only=True) does not load ({what[0] if what else 'unsafe pickle'}); "
                           "archives may only carry tensors and plain containers") from None
    except Exception as err:  # noqa: BLE001 - any other failure: the file is not a checkpoint
        raise ArchiveError(f"refused: checkpoint {rel} cannot be read: {err}") from None
    missing = [k for k in ("model", "epoch", "spec", "seed", "data_fingerprint", "dataset")
               if not isinstance(ck, dict) or k not in ck]
    if missing:
        raise ArchiveError(f"refused: checkpoint {rel} lacks {missing}")
    return ck


def check_contents(zf: zipfile.ZipFile, man: dict, zip_path: Path) -> None:
    """Checkpoints, store attrs and tile checksums, data fingerprint: all consistent with one another."""
    fp, ds, files = man["data"]["fingerprint"], man["data"]["dataset"], man["files"]
    epochs = sorted(man["config"]["train"]["checkpoint_epochs"])
    data_rel = f"data/{man['config']['data']['name']}.zarr"
    if man["data"]["path"] != data_rel or ds != man["config"]["data"]["name"] or any(
            level_of(r) == "data" and not r.startswith(data_rel + "/") for r in files):
        raise ArchiveError(f"refused: the data entries of the archive are not all under {data_rel}/")
    for name, run in man["runs"].items():
        dataset, arch, width, seed = _parse_run(name)
        want = [f"runs/{name}/checkpoints/epoch{e:03d}.pt" for e in epochs]
        if run["checkpoints"] != want or run["train_log"] != f"runs/{name}/train_log.csv" or dataset != ds:
            raise ArchiveError(f"refused: run {name} does not carry exactly the train outputs {want} + train_log.csv")
        for e, rel in zip(epochs, want):
            ck = load_checkpoint_bytes(rel, zf.read(rel))
            got = {"arch": ck["spec"].get("arch"), "width": ck["spec"].get("width"), "seed": ck["seed"],
                   "epoch": ck["epoch"], "dataset": ck["dataset"], "data_fingerprint": ck["data_fingerprint"]}
            exp = {"arch": arch, "width": width, "seed": seed, "epoch": e, "dataset": ds, "data_fingerprint": fp}
            bad = [f"{k} {got[k]} (expected {exp[k]})" for k in exp if got[k] != exp[k]]
            if bad:
                raise ArchiveError(f"refused: checkpoint {rel} does not belong to its path/data: {', '.join(bad)}")
    kern = man["config"]["kernels"]
    for s in man["stores"]:
        stem, m = s["stem"], _parse_stem(s["stem"])
        run = f"{m['dataset']}/{m['arch']}-w{m['width']}-s{m['seed']}"
        ck_rel = f"runs/{run}/checkpoints/epoch{m['epoch']:03d}.pt"
        parts = [f"{stem}.init.json", f"{stem}.zarr/zarr.json", f"{stem}.manifest.json", ck_rel]
        if run not in man["runs"] or any(p not in files for p in parts):
            raise ArchiveError(f"refused: store {stem} comes without its parts or checkpoint ({parts})")
        exp = {**{k: m[k] for k in RUN_FIELDS + ("kind", "rows", "cols", "dataset")},
               "checkpoint": Path(ck_rel).name, "checkpoint_sha256": files[ck_rel]["sha256"],
               "data_fingerprint": fp, **{k: kern[k] for k in KERNEL_KEYS}}
        smf = json.loads(zf.read(f"{stem}.manifest.json"))
        for source, attrs in (("store attrs", _attrs("", zf.read(f"{stem}.zarr/zarr.json"))),
                              ("manifest attrs", {**smf.get("attrs", {}), "dtype": smf.get("dtype")})):
            bad = [f"{k} {attrs.get(k)} (its path/checkpoint/config say {v})"
                   for k, v in exp.items() if attrs.get(k) != v]
            if bad:
                raise ArchiveError(f"refused: {stem}: {source} do not match: {'; '.join(bad)}")
        if smf.get("inputs", {}).get("checkpoint") != files[ck_rel]["sha256"]:
            raise ArchiveError(f"refused: {stem}.manifest.json was finalized from another checkpoint than {ck_rel}")
        _verify_tiles_in_zip(zf, zip_path, stem, smf.get("tiles", {}))
    if man["data"]["included"]:
        _verify_data_in_zip(man, zip_path)


@contextlib.contextmanager
def _zip_group(zip_path: Path, path: str):
    """A zarr group read straight from the zip (nothing extracted)."""
    import zarr
    from zarr.storage import ZipStore

    zs = ZipStore(zip_path, mode="r")
    try:
        yield zarr.open_group(store=zs, path=path, mode="r")
    finally:
        zs.close()


def _verify_tiles_in_zip(zf: zipfile.ZipFile, zip_path: Path, stem: str, expected: dict) -> None:
    flags = {}
    for rel in (n for n in zf.namelist() if n.startswith(f"{stem}.tiles/") and n.endswith(".json")):
        try:
            flags[Path(rel).name] = dict(json.loads(zf.read(rel))["chunks"])
        except (ValueError, KeyError, TypeError):
            flags[Path(rel).name] = None
    actual = {}
    with _zip_group(zip_path, f"{stem}.zarr") as g:
        for i, j in kstore.all_tiles(g["kernel"]):
            block = kstore.read_tile(g["kernel"], i, j)
            actual[f"{i}_{j}"] = None if np.isnan(block).all() else kstore.tile_sha256(block)
    missing = sorted(k for k, v in actual.items() if v is None or k not in expected)
    mismatch = sorted(k for k, v in expected.items() if actual.get(k) != v)
    bad_flags = sorted(n for n, sums in flags.items()
                       if sums is None or any(expected.get(k) != v for k, v in sums.items()))
    unflagged = sorted(set(expected) - {k for sums in flags.values() if sums for k in sums})
    if missing or mismatch or bad_flags or unflagged:
        raise ArchiveError(f"refused: {stem} fails verification: missing tiles {missing}, chunks differing from "
                           f"the manifest {mismatch}, bad flags {bad_flags}, tiles without a flag {unflagged}")


def _verify_data_in_zip(man: dict, zip_path: Path) -> None:
    from .data import fingerprint

    try:
        with _zip_group(zip_path, man["data"]["path"]) as g:
            fp, attrs = fingerprint(g["x"][...], g["y"][...], g["split"][...]), dict(g.attrs)
    except Exception as err:  # noqa: BLE001 - whatever zarr raises: the store is unusable
        raise ArchiveError(f"refused: data store {man['data']['path']} in the archive is unreadable: {err}") from None
    if (fp, fp, man["data"]["dataset"]) != (attrs.get("fingerprint"), man["data"]["fingerprint"], attrs.get("name")):
        raise ArchiveError(f"refused: data store {man['data']['path']}: arrays hash to {fp}, its attrs say "
                           f"{attrs.get('fingerprint')} ({attrs.get('name')}), {MANIFEST} {man['data']['fingerprint']}")


def import_archive(zip_path: str | Path, results: str | Path, config: dict, overwrite: bool = False) -> dict:
    """Check everything, then write the files in dependency order and order their modification times."""
    zip_path, results = Path(zip_path), Path(results)
    try:
        zf = zipfile.ZipFile(zip_path)
    except (OSError, zipfile.BadZipFile) as err:
        raise ArchiveError(f"refused: {zip_path} cannot be opened as a zip file: {err}") from None
    with zf:
        try:
            man = _read_manifest(zf)
            check_entries(zf, man, results)
            diffs = config_differences(man, config)
            if diffs:
                raise ArchiveError("refused: the archive was computed under another config:\n  " + "\n  ".join(diffs))
            check_contents(zf, man, zip_path)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ArchiveError(f"refused: malformed archive ({type(err).__name__}: {err})") from None
        data_rel = man["data"]["path"]
        keep_data = _existing_data(man, results)
        plan, kept = _plan(man, results, overwrite, skip_data=keep_data)
        times, floors = _level_times(results, plan, kept, keep_data, results / data_rel)
        if not keep_data:  # the data store goes to a temp folder renamed into place: absent or complete
            data, t = results / data_rel, times["data"]
            tmp = data.with_name(f".{data.name}.pntk-import-{os.getpid()}")
            try:
                for rel in (r for r in plan if level_of(r) == "data"):
                    _extract(zf, rel, tmp / Path(rel).relative_to(data_rel), man["files"][rel]["sha256"])
                (tmp / ".snakemake_timestamp").touch()  # Snakemake's modification time of a directory
                for f in [*tmp.rglob("*"), tmp]:
                    os.utime(f, (t, t), follow_symlinks=False)
                os.replace(tmp, data)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        for rel in sorted((r for r in plan if level_of(r) != "data"), key=lambda r: (LEVELS.index(level_of(r)), r)):
            _extract(zf, rel, results / rel, man["files"][rel]["sha256"])
    stale_kept = [r for r in kept if os.path.getmtime(results / r) <= floors[level_of(r)]]
    for rel in [r for r in plan if level_of(r) != "data"] + stale_kept:
        os.utime(results / rel, (times[level_of(rel)],) * 2, follow_symlinks=False)
    return {"stores": [s["key"] for s in man["stores"]], "runs": sorted(man["runs"]), "written": len(plan),
            "unchanged": len(kept), "data": "kept (same fingerprint)" if keep_data else "written"}


def _existing_data(man: dict, results: Path) -> bool:
    """True when this checkout already has the data store (same fingerprint), which is then kept."""
    path, fp = results / man["data"]["path"], man["data"]["fingerprint"]
    if (path / "zarr.json").is_file():
        have = _attrs(path).get("fingerprint")
        if have != fp:
            raise ArchiveError(f"refused: data fingerprint: archive {fp}, {path} {have}")
        return True
    if path.exists():
        raise ArchiveError(f"refused: {path} exists but is no prepared data store; move it away first")
    if not man["data"]["included"]:
        raise ArchiveError(f"refused: the archive holds no data store (packed with --no-data) and {path} does not "
                           f"exist; create it first (snakemake --cores 1 {man['data']['path']} with the same "
                           "config, under your results folder), then import again")
    return False


def _plan(man: dict, results: Path, overwrite: bool, skip_data: bool) -> tuple[list[str], list[str]]:
    """(files to write, files already here with the same content); refuse on differing files."""
    plan, kept, conflicts = [], [], []
    for rel, meta in man["files"].items():
        dst = results / rel
        if skip_data and level_of(rel) == "data":
            continue
        if not (dst.exists() or dst.is_symlink()):
            plan.append(rel)
        elif dst.is_file() and sha256_file(dst) == meta["sha256"]:
            kept.append(rel)
        else:
            (plan if overwrite and not (dst.is_dir() and not dst.is_symlink()) else conflicts).append(rel)
    root = os.path.realpath(results)
    outside = [r for r in plan if os.path.commonpath([root, os.path.realpath(Path(results, r).parent)]) != root]
    if outside:
        raise ArchiveError(f"refused: {outside[:3]} would be written outside {results} (through a symlink there)")
    if conflicts:
        raise ArchiveError(f"refused: {len(conflicts)} files already exist with other contents (use --overwrite "
                           f"to replace them): {conflicts[:5]}{' …' if len(conflicts) > 5 else ''}")
    return plan, kept


def _level_times(results: Path, plan: list[str], kept: list[str], keep_data: bool, data: Path) -> tuple[dict, dict]:
    """Per level: the mtime for the files written there, newer than every file on the levels below, and
    that floor (a kept file at or below it is touched too, so that it is not older than its inputs)."""
    stamp = data / ".snakemake_timestamp"
    prev = (stamp if stamp.exists() else data).stat().st_mtime if keep_data else float("-inf")
    base, times, floors = time.time() - 2 * len(LEVELS), {}, {}
    for n, level in enumerate(LEVELS):
        floors[level] = prev
        times[level] = prev if level == "data" and keep_data else max(base + 2 * n, prev + 1)
        here = [os.path.getmtime(results / r) for r in kept if level_of(r) == level]
        touched = any(level_of(r) == level for r in plan) or any(t <= prev for t in here)
        prev = max([prev, *here] + ([times[level]] if touched else []))
    return times, floors


def _extract(zf: zipfile.ZipFile, rel: str, dst: Path, sha: str) -> None:
    """Write one entry atomically (a temp file renamed over `dst`, never writing through a symlink)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.pntk-import-{os.getpid()}")
    try:
        with zf.open(rel) as src, open(tmp, "wb") as out:
            got = _copy(src, out)[0]
        if got != sha:
            raise ArchiveError(f"{rel}: contents changed while importing (sha256 {got}, expected {sha})")
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)

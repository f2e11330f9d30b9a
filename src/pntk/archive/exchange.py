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

import errno
import json
import os
import shutil
import stat
import time
import zipfile
from pathlib import Path

from .. import config as pcfg
from .._version import __version__
from ..data.prepared import prepared_store
from ..layout import Layout
from ..provenance import git_describe, sha256_file
from ..runs import Run
from ..store import tiles
from ..store.paths import SNAKEMAKE_TIMESTAMP, StorePaths
from .checks import (  # noqa: F401 (re-exported: archive.LEVELS & co.)
    CONFIG_KEYS,
    FORMAT,
    FORMAT_VERSION,
    LEVELS,
    MANIFEST,
    ArchiveError,
    ZipSource,
    _attrs,
    _copy,
    _read_manifest,
    check_contents,
    check_entries,
    config_differences,
    level_of,
    unsafe_name,
)

LEVEL_STEP_S = 1.0  # between dependency levels (whole seconds: file systems with 1-s timestamps)


def configured_stores(config: dict) -> list[tuple[str, str, str, int]]:
    """(key, stem relative to results, run name, epoch) of every store the config computes."""
    out = []
    for r in pcfg.all_runs(config):  # on the train split, then the networks of Figs 2–8 trained on D
        for e in pcfg.checkpoint_epochs(config, r.trained_on):
            for k, rows, cols in pcfg.store_specs(config, r.trained_on):
                paths = StorePaths.in_epoch(r.epoch_dir("", e), k, rows, cols)  # relative to results/
                out.append((f"{r.name}/epoch{e:03d}/{paths.name}", paths.stem.as_posix(), r.name, e))
    return out


def matches(key: str, selector: str) -> bool:
    """`--run` selectors: globs on `{dataset}/{arch}-w{W}-s{S}/epoch{EEE}/{kind}-{rows}-{cols}`, matching
    whole path components anywhere (`fcn-w16-s0`, `epoch001`, `*/pntk-*`, `digits/fcn-w16-s0/epoch000`)."""
    from fnmatch import fnmatchcase

    s = selector.strip("/")
    return any(fnmatchcase(key, p) for p in (s, f"{s}/*", f"*/{s}", f"*/{s}/*"))


def store_files(results: Path, stem: str) -> list[str]:
    """Files of one store relative to `results`, in dependency order (sentinel, chunks, flags, manifest)."""
    rel, flags = StorePaths(Path(stem)), StorePaths(results / stem).flag_files()
    return ([rel.sentinel.as_posix()] + _walk(results, rel.store.as_posix())
            + [rel.flag(*f.stem.split("_")).as_posix() for f in flags] + [rel.manifest.as_posix()])


def _walk(results: Path, rel_dir: str) -> list[str]:
    """Regular files below results/rel_dir (following symlinks, e.g. into a Snakemake output cache)."""
    out = []
    for dirpath, _, names in os.walk(results / rel_dir, followlinks=True):
        out += [Path(dirpath, n).relative_to(results).as_posix() for n in names
                if ".tmp" not in n and n != SNAKEMAKE_TIMESTAMP]
    return sorted(out)


def collect(config: dict, results: str | Path, selectors: list[str] | None = None,
            with_data: bool = True) -> tuple[dict, list[str]]:
    """(manifest without its `files`' sha256 yet, files relative to `results`) of what `pack` and `publish`
    write; refuse if any chosen store is unfinished or fails verification."""
    results, selectors = Path(results), list(selectors or [])
    cands = configured_stores(config)
    for sel in selectors:
        if not any(matches(c[0], sel) for c in cands):
            raise ArchiveError(f"--run {sel!r} matches no store of this config (stores look like {cands[0][0]})")
    data_rel = prepared_store("", config["data"]["name"]).as_posix()
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
            r = Run.parse(run)
            cks = [r.checkpoint("", e).as_posix() for e in pcfg.checkpoint_epochs(config, r.trained_on)]
            runs[run] = {"checkpoints": cks, "train_log": r.train_log("").as_posix()}
            missing = [p for p in cks + [runs[run]["train_log"]] if not (results / p).is_file()]
            problems += [f"{key}: outputs of its train job are missing: {missing}"] if missing else []
            files += cks + [runs[run]["train_log"]]
        files += store_files(results, stem)
    if problems:
        raise ArchiveError("refusing to pack unfinished or damaged kernel stores (finish them with snakemake "
                           "or leave them out with --run):\n  " + "\n  ".join(problems))
    if not stores:
        raise ArchiveError(f"nothing to pack: none of the {len(absent)} selected kernel stores is computed under "
                           f"{Layout(results).runs_folder} (e.g. {absent[0] if absent else '-'})")
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "pntk_version": __version__,
                "git_describe": git_describe(), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "config": {k: config[k] for k in CONFIG_KEYS},
                "data": {"dataset": config["data"]["name"], "path": data_rel, "included": with_data,
                         "fingerprint": data_attrs.get("fingerprint"), "attrs": data_attrs},
                "runs": runs, "stores": stores, "files": {}, "not_computed": absent}
    return manifest, files


def pack(config: dict, results: str | Path, out: str | Path, selectors: list[str] | None = None,
         with_data: bool = True) -> dict:
    """Write the archive `out`; refuse if any chosen store is unfinished or fails verification."""
    results = Path(results)
    manifest, files = collect(config, results, selectors, with_data)
    absent = manifest.pop("not_computed")
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
    paths = StorePaths(results / stem)
    zpath, init = paths.store, paths.sentinel
    if not any(p.exists() for p in (zpath, init, paths.manifest)):
        return ""
    if not (zpath / "zarr.json").is_file() or not init.is_file():
        return "incomplete (store or init.json missing)"
    res = tiles.verify(zpath)
    if res["manifest_missing"]:
        return f"not finalized (no manifest; {res['n_tiles'] - len(res['missing'])}/{res['n_tiles']} tiles written)"
    if res["unflagged"]:
        return f"tile flags missing for {res['unflagged']} (Snakemake would recompute those tiles)"
    if not res["ok"]:
        return f"fails verify (missing {res['missing']}, mismatch {res['mismatch']}, bad flags {res['bad_flags']})"
    attrs, ck = _attrs(zpath), Run.parse(run).checkpoint(results, epoch)
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


def import_archive(zip_path: str | Path, results: str | Path, config: dict, overwrite: bool = False) -> dict:
    """Check everything, then write the files in dependency order and order their modification times."""
    zip_path, results = Path(zip_path), Path(results)
    try:
        zf = zipfile.ZipFile(zip_path)
    except (OSError, zipfile.BadZipFile) as err:
        raise ArchiveError(f"refused: {zip_path} cannot be opened as a zip file: {err}") from None
    with zf:
        src = ZipSource(zf, zip_path)
        man = check_all(src, config)
        return install(src, man, results, overwrite)


def check_all(src, config: dict, man: dict | None = None) -> dict:
    """Every check of an archive (`src`: a ZipSource, or the DirSource of a published archive's staged copy),
    in the zip import's order: manifest, entries (names, set, sha256), config, contents. Returns the manifest."""
    try:
        man = _read_manifest(src) if man is None else man
        check_entries(src, man)
        refuse_config(man, config)
        check_contents(src, man, config)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise ArchiveError(f"refused: malformed archive ({type(err).__name__}: {err})") from None
    return man


def refuse_config(man: dict, config: dict) -> None:
    diffs = config_differences(man, config)
    if diffs:
        raise ArchiveError("refused: the archive was computed under another config:\n  " + "\n  ".join(diffs))


def install(src, man: dict, results: Path, overwrite: bool = False) -> dict:
    """Write the checked archive's files into `results` in dependency order (the data folder whole or not at
    all), then order their modification times so that Snakemake schedules none of the imported jobs."""
    results = Path(results)
    data_rel = man["data"]["path"]
    keep_data = _existing_data(man, results)
    plan, kept = _plan(man, results, overwrite, skip_data=keep_data)
    folder_rel = Path(data_rel).parent  # prepare_data's output folder, holding the store
    times, floors = _level_times(results, plan, kept, keep_data, results / folder_rel)
    if not keep_data:  # the data folder goes to a temp folder renamed into place: absent or complete
        data, t = results / folder_rel, times["data"]
        tmp = data.with_name(f".{data.name}.pntk-import-{os.getpid()}")
        try:
            for rel in (r for r in plan if level_of(r) == "data"):
                _extract(src, rel, tmp / Path(rel).relative_to(folder_rel), man["files"][rel]["sha256"])
            (tmp / ".snakemake_timestamp").touch()  # Snakemake's modification time of a directory output
            for f in [*tmp.rglob("*"), tmp]:
                os.utime(f, (t, t), follow_symlinks=False)
            os.replace(tmp, data)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    for rel in sorted((r for r in plan if level_of(r) != "data"), key=lambda r: (LEVELS.index(level_of(r)), r)):
        _extract(src, rel, results / rel, man["files"][rel]["sha256"])
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
    if path.parent.exists():
        raise ArchiveError(f"refused: {path.parent} exists but holds no prepared data store; move it away first")
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


def _code_floor() -> float:
    """Newest modification time of the rule scripts. Snakemake reruns a job whose outputs are not newer than
    its script ("Code has changed"), and a fresh clone's scripts are as new as the clone. Both the checkout
    pntk runs from and the one in the working directory count: one venv may serve several checkouts, and
    the workflow that reads the import is the one where `pntk archive import` is run."""
    roots = {pcfg.REPO_ROOT, Path.cwd()}
    scripts = [p for r in roots for p in (r / "scripts").glob("*.py")]
    return max((os.lstat(p).st_mtime for p in scripts), default=float("-inf"))


def _level_times(results: Path, plan: list[str], kept: list[str], keep_data: bool, data: Path) -> tuple[dict, dict]:
    """Per level: the mtime for the files written there, newer than every file on the levels below and
    than the rule scripts, and that floor (a kept file at or below it is touched too, so that it is not
    older than its inputs). No time lies ahead of the clock once this returns: it waits (a few seconds at
    most, right after a clone) rather than date files into the future, where the outputs of the next jobs
    would look older than their imported inputs."""
    stamp = data / ".snakemake_timestamp"
    prev = (stamp if stamp.exists() else data).stat().st_mtime if keep_data else float("-inf")
    base = max(time.time() - LEVEL_STEP_S * len(LEVELS), _code_floor() + LEVEL_STEP_S)
    times, floors = {}, {}
    for n, level in enumerate(LEVELS):
        floors[level] = prev
        times[level] = prev if level == "data" and keep_data else max(base + LEVEL_STEP_S * n, prev + LEVEL_STEP_S)
        here = [os.path.getmtime(results / r) for r in kept if level_of(r) == level]
        touched = any(level_of(r) == level for r in plan) or any(t <= prev for t in here)
        prev = max([prev, *here] + ([times[level]] if touched else []))
    if (ahead := max(times.values()) - time.time()) > 0:
        time.sleep(ahead + 0.01)
    return times, floors


def _extract(src, rel: str, dst: Path, sha: str) -> None:
    """Write one file atomically (a temp file renamed over `dst`, never writing through a symlink). From a
    movable source (a staged copy, checked already) the file is renamed into place: no second copy."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.movable:
        try:
            os.replace(src.root / rel, dst)
            return
        except OSError as err:
            if err.errno != errno.EXDEV:  # another file system: copied below
                raise
    tmp = dst.with_name(f".{dst.name}.pntk-import-{os.getpid()}")
    try:
        with src.open(rel) as fh, open(tmp, "wb") as out:
            got = _copy(fh, out)[0]
        if got != sha:
            raise ArchiveError(f"{rel}: contents changed while importing (sha256 {got}, expected {sha})")
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)

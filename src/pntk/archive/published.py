"""Published archives: what `pack` zips, laid out as a browsable folder on a file system or object store.

    publish   results/ → DEST (a folder or s3://bucket/prefix): the files `pack` would zip, under the same
              paths relative to the results folder (runs/…/kernels/*.zarr with their consolidated metadata,
              tile flags and manifests, every checkpoint and train log of their runs, data/…), then
              `pntk-archive.json` (format, pntk version, config subset, sha256 and size of every file; its
              `stores` are the index `pntk ls DEST` reads), written last: a destination without it is no
              archive (yet), so an interrupted publish is never imported.
    import    SOURCE (a folder, s3:// or http(s)://, read-only) → results/. The manifest first: names,
              config and the data store are checked before anything is downloaded. Then every listed file
              is streamed into a staging folder beside the results folder while hashed (never the whole
              archive in memory); a file staged already, or in the results folder with the right sha256,
              is not fetched again, so an interrupted import run again completes from where it stopped.
              Then the zip import's checks on the staged copy (names, sha256, config, weights_only
              checkpoints, store attrs, tile checksums, data fingerprint) and its install (dependency
              order, modification times). A refused archive leaves nothing behind: no results, no stage.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from pathlib import Path

from ..provenance import sha256_file
from ..store.remote import RemotePath, as_path, is_url
from .checks import MANIFEST, ArchiveError, DirSource, _copy, parse_manifest, unsafe_rel
from .exchange import _existing_data, _plan, check_all, collect, install, refuse_config


def is_published(source: str | Path) -> bool:
    """Is `source` a published archive's location (a URL or a folder) rather than a zip file?"""
    return is_url(str(source)) or Path(source).is_dir()


def publish(config: dict, results: str | Path, dest: str | Path, selectors: list[str] | None = None,
            with_data: bool = True, overwrite: bool = False) -> dict:
    """Write the published archive at `dest`; refuse if any chosen store is unfinished or fails verification,
    or if `dest` holds an archive already (unless `overwrite`)."""
    results = Path(results)
    manifest, files = collect(config, results, selectors, with_data)
    absent = manifest.pop("not_computed")
    root = as_path(str(dest))
    if isinstance(root, RemotePath):
        root.check_reachable(write=True)
    elif root.exists() and not root.is_dir():
        raise ArchiveError(f"{dest}: exists and is not a folder (publish writes a folder or s3:// prefix)")
    index = root / MANIFEST
    if index.exists():
        if not overwrite:
            raise ArchiveError(f"{dest}: holds a published archive already ({MANIFEST}); --overwrite replaces it")
        index.unlink()  # no archive there until the new manifest is written
    for rel in files:
        manifest["files"][rel] = _put(results / rel, root / rel)
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    if isinstance(root, RemotePath):
        index.write_text(text)
    else:
        from ..provenance import atomic_write_json

        atomic_write_json(index, manifest)
    return {**manifest, "not_computed": absent}


def _put(src: Path, dst) -> dict:
    """Copy one file to a folder (temp file renamed) or an S3 key (one PUT or a multipart upload), hashing."""
    with open(src, "rb") as fh:
        if isinstance(dst, RemotePath):
            with dst.open("wb") as out:
                sha, size = _copy(fh, out)
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}")
            try:
                with open(tmp, "wb") as out:
                    sha, size = _copy(fh, out)
                os.replace(tmp, dst)
            finally:
                tmp.unlink(missing_ok=True)
    return {"sha256": sha, "size": size}


def staging_dir(results: Path, source: str | Path) -> Path:
    """Where an import from `source` stages its files: beside the results folder (the same file system, so
    that the checked files are renamed into place), one folder per source, kept until the import ends."""
    key = str(source) if is_url(str(source)) else os.path.abspath(source)
    digest = hashlib.sha256(key.rstrip("/").encode()).hexdigest()[:12]
    return results.absolute().parent / f".{results.name}.pntk-import-{digest}"


def fetch(root, rel: str, dst: Path, size: int | None) -> tuple[str, int]:
    """Stream `rel` of the published archive at `root` into the local file `dst`; return (sha256, size)."""
    src = root / rel
    if isinstance(src, RemotePath):
        fh = src.open("rb", size=size)
    else:
        mode = os.lstat(src).st_mode  # FileNotFoundError: absent
        if stat.S_ISLNK(mode) or not stat.S_ISREG(mode):
            raise ArchiveError(f"refused: unsafe entries in the archive:\n  {rel!r}: "
                               f"{'symbolic link' if stat.S_ISLNK(mode) else 'not a regular file'}")
        fh = open(src, "rb")
    with fh, open(dst, "wb") as out:
        return _copy(fh, out)


def import_published(source: str | Path, results: str | Path, config: dict, overwrite: bool = False,
                     staging: str | Path | None = None) -> dict:
    """Check the manifest, stage every file (resumable), check the staged copy as the zip import checks a
    zip, then install it. Returns what `import_archive` returns plus fetched/bytes/staged/linked counts."""
    results = Path(results)
    root = as_path(str(source))
    try:
        raw = (root / MANIFEST).read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise ArchiveError(f"not a pntk archive: no {MANIFEST} at {source}") from None
    man = parse_manifest(raw)
    try:  # everything the manifest alone decides, before a single download
        bad = [f"{rel!r}: {why}" for rel in man["files"] if (why := unsafe_rel(rel))]
        if bad or MANIFEST in man["files"]:
            raise ArchiveError("refused: unsafe entries in the archive:\n  " + "\n  ".join(bad or [MANIFEST]))
        refuse_config(man, config)
        _plan(man, results, overwrite, skip_data=_existing_data(man, results))  # conflicts in results/
        listed = {rel: (meta["sha256"], int(meta["size"])) for rel, meta in man["files"].items()}
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise ArchiveError(f"refused: malformed archive ({type(err).__name__}: {err})") from None
    stage = Path(staging) if staging else staging_dir(results, source)
    stats = {"fetched": 0, "bytes": 0, "staged": 0, "linked": 0}
    try:
        _clear_unlisted(stage, listed)
        (stage / MANIFEST).write_bytes(raw)
        for rel in sorted(listed):
            _stage(root, rel, *listed[rel], stage, results, stats)
        src = DirSource(stage, movable=True)
        check_all(src, config, man)
        res = install(src, man, results, overwrite)
    except ArchiveError:
        shutil.rmtree(stage, ignore_errors=True)  # refused: nothing of it is kept
        raise
    shutil.rmtree(stage, ignore_errors=True)
    return {**res, **stats, "staging": str(stage)}


def _clear_unlisted(stage: Path, listed: dict) -> None:
    """A stage left by an interrupted import: keep the files this manifest lists (checked when staged again),
    drop anything else (partial downloads, files of an earlier publication)."""
    stage.mkdir(parents=True, exist_ok=True)
    for dirpath, dirnames, names in os.walk(stage):
        for n in names + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            p = Path(dirpath, n)
            if p.relative_to(stage).as_posix() not in listed:
                p.unlink()


def _stage(root, rel: str, sha: str, size: int, stage: Path, results: Path, stats: dict) -> None:
    dst = stage / rel
    if dst.is_symlink() or dst.exists():
        if dst.is_file() and not dst.is_symlink() and dst.stat().st_size == size and sha256_file(dst) == sha:
            stats["staged"] += 1
            return
        dst.unlink()
    dst.parent.mkdir(parents=True, exist_ok=True)
    here = results / rel
    if (here.is_file() and not here.is_symlink() and here.stat().st_size == size and sha256_file(here) == sha):
        try:  # in the results folder already (a data store kept, an earlier import): not fetched
            os.link(here, dst)
        except OSError:
            shutil.copyfile(here, dst)
        stats["linked"] += 1
        return
    part = dst.with_name(f".{dst.name}.part")
    try:
        got, n = fetch(root, rel, part, size)
    except FileNotFoundError:
        part.unlink(missing_ok=True)
        raise ArchiveError(f"refused: entries do not match {MANIFEST} (listed but absent ['{rel}'])") from None
    if (got, n) != (sha, size):
        part.unlink(missing_ok=True)
        raise ArchiveError(f"refused: sha256 of {rel} differs from {MANIFEST} (archive damaged or edited)")
    os.replace(part, dst)
    stats["fetched"] += 1
    stats["bytes"] += n

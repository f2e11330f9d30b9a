"""Checks of untrusted archives, run before `pntk archive import` writes a single file.

Entry names (no absolute paths, `..`, symlinks), sha256 of every entry, the config subset that
determines results, checkpoints (torch.load(weights_only=True) only), store attrs against the
checkpoints, tile checksums against manifests and flags, and the data fingerprint.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pickle
import re
import stat
import zipfile
from collections import Counter
from pathlib import Path

from .. import config as pcfg
from ..data import fingerprint
from ..data.prepared import prepared_store
from ..models.spec import entry_identity
from ..runs import Run, epoch_of
from ..store import tiles
from ..store import zarr_store as kstore
from ..store.paths import MANIFEST as MANIFEST_SUFFIX
from ..store.paths import SENTINEL, STORE, TILES, StorePaths

# version 2: the data store moved to data/{dataset}/{dataset}.zarr (Snakemake's timestamp beside it, not in it)
FORMAT, FORMAT_VERSION, MANIFEST = "pntk-archive", 2, "pntk-archive.json"
CONFIG_KEYS = ("data", "models", "seeds", "train", "kernels", "diagnostics")
DATA_KEYS = ("name", "train_size", "test_size", "subset_train", "subset_test", "seed")
KERNEL_KEYS = ("tile_size", "dtype", "method")
DIAGNOSTICS_KEYS = ("train_on", "epochs", "checkpoint_epochs")  # how the networks trained on D were trained
RUN_FIELDS = ("model", "width", "seed", "epoch")  # a store's attrs against its path
# Snakemake reruns a job whose output is older than an input: each level is newer than the ones before.
LEVELS = ("data", "run", "init", "store", "flag", "manifest")
CHUNK = 1 << 20


class ArchiveError(RuntimeError):
    """The archive cannot be packed or is refused; the message says what and where."""


def level_of(rel: str) -> str:
    """Dependency level of a file (see LEVELS), from its path relative to the results folder."""
    tests = (("data", rel.startswith("data/")), ("manifest", rel.endswith(MANIFEST_SUFFIX)),
             ("flag", f"{TILES}/" in rel), ("init", rel.endswith(SENTINEL)), ("store", f"{STORE}/" in rel))
    return next((level for level, hit in tests if hit), "run")


def _attrs(zarr_dir: Path | str, text: str | bytes | None = None) -> dict:
    """Group attributes straight from `zarr.json` (no zarr needed)."""
    raw = json.loads(text if text is not None else (Path(zarr_dir) / "zarr.json").read_text())
    return raw.get("attributes", {})


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


def unsafe_rel(name: str) -> str | None:
    """Why a file name from an archive (a zip entry, a published tree's manifest) may not be written under
    the results folder, from the name alone (None when it may)."""
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return "absolute path"
    if "\\" in name or any(p in ("", ".", "..") for p in name.rstrip("/").split("/")):
        return "path leaves the target folder ('..', '.', '\\' or empty component)"
    if name != MANIFEST and name.split("/")[0] not in ("data", "runs"):
        return "outside data/ and runs/"
    return None


def unsafe_name(info: zipfile.ZipInfo) -> str | None:
    """Why entry `info` may not be extracted under the results folder (None when it may)."""
    name, mode = info.filename, info.external_attr >> 16
    why = unsafe_rel(name)
    if why and why != "outside data/ and runs/":
        return why
    if stat.S_ISLNK(mode):
        return "symbolic link"
    if info.is_dir() or stat.S_IFMT(mode) not in (0, stat.S_IFREG):  # 0: no type recorded (Windows, writestr)
        return "not a regular file"
    return why


class ZipSource:
    """The files of a zip archive, read in place (nothing extracted)."""

    movable = False  # its entries are copied out, never moved

    def __init__(self, zf: zipfile.ZipFile, path: Path):
        self.zf, self.path = zf, Path(path)

    def entries(self) -> list[tuple[str, str | None]]:
        """(name, why it is unsafe or None) of every entry, duplicates included."""
        return [(i.filename, unsafe_name(i)) for i in self.zf.infolist()]

    def names(self) -> list[str]:
        return self.zf.namelist()

    def open(self, rel: str):
        return self.zf.open(rel)

    def read(self, rel: str) -> bytes:
        return self.zf.read(rel)

    @contextlib.contextmanager
    def group(self, path: str):
        """A zarr group read straight from the zip."""
        import zarr
        from zarr.storage import ZipStore

        zs = ZipStore(self.path, mode="r")
        try:
            yield zarr.open_group(store=zs, path=path, mode="r")
        finally:
            zs.close()


class DirSource:
    """The files of an archive laid out as a folder (a published archive's staged copy): the same reads as
    a zip. `movable`: its files may be moved (renamed) into the results folder rather than copied."""

    def __init__(self, root: Path, movable: bool = False):
        self.root, self.movable = Path(root), movable

    def entries(self) -> list[tuple[str, str | None]]:
        out = []
        for dirpath, dirnames, names in os.walk(self.root):  # never follows symlinks
            for n in names + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
                path = Path(dirpath, n)
                rel, mode = path.relative_to(self.root).as_posix(), os.lstat(path).st_mode
                why = unsafe_rel(rel) or ("symbolic link" if stat.S_ISLNK(mode) else
                                          None if stat.S_ISREG(mode) else "not a regular file")
                out.append((rel, why))
        return sorted(out)

    def names(self) -> list[str]:
        return [n for n, _ in self.entries()]

    def open(self, rel: str):
        return open(self.root / rel, "rb")

    def read(self, rel: str) -> bytes:
        try:
            return (self.root / rel).read_bytes()
        except FileNotFoundError:
            raise KeyError(rel) from None

    @contextlib.contextmanager
    def group(self, path: str):
        import zarr

        yield zarr.open_group(str(self.root / path), mode="r")


def _read_manifest(src) -> dict:
    try:
        raw = src.read(MANIFEST)
    except KeyError:
        raise ArchiveError(f"not a pntk archive: no {MANIFEST} at its root") from None
    return parse_manifest(raw)


def parse_manifest(raw: bytes) -> dict:
    """The manifest's JSON, refused unless it is this pntk's archive format."""
    try:
        man = json.loads(raw)
    except ValueError as err:
        raise ArchiveError(f"{MANIFEST} is not valid JSON: {err}") from None
    if not isinstance(man, dict) or man.get("format") != FORMAT or man.get("format_version") != FORMAT_VERSION:
        man = man if isinstance(man, dict) else {}
        raise ArchiveError(f"{MANIFEST}: format {man.get('format')!r} version {man.get('format_version')!r}, "
                           f"this pntk reads {FORMAT!r} version {FORMAT_VERSION}")
    return man


def check_entries(src, man: dict) -> None:
    """Names (safety), the set of entries against the manifest, and the sha256 of every entry (`src`: a
    ZipSource or DirSource)."""
    entries = src.entries()
    bad = [f"{name!r}: {why}" for name, why in entries if why]
    names = [name for name, _ in entries]
    if bad:
        raise ArchiveError("refused: unsafe entries in the archive:\n  " + "\n  ".join(bad))
    dup = sorted(n for n, c in Counter(names).items() if c > 1)
    extra = sorted(set(names) - set(man["files"]) - {MANIFEST})
    absent = sorted(set(man["files"]) - set(names))
    if dup or extra or absent:
        raise ArchiveError(f"refused: entries do not match {MANIFEST} (duplicated {dup}, not listed {extra}, "
                           f"listed but absent {absent})")
    for rel, meta in man["files"].items():
        with src.open(rel) as fh:
            ok = _copy(fh)[0] == meta["sha256"]
        if not ok:
            raise ArchiveError(f"refused: sha256 of {rel} differs from {MANIFEST} (archive damaged or edited)")


def config_differences(man: dict, config: dict) -> list[str]:
    """What in the archive's code-relevant config differs from `config` (empty when they agree)."""
    a, diffs = man["config"], []
    train_keys = sorted((set(a["train"]) | set(config["train"])) - {"device"})
    sections = [("data", DATA_KEYS), ("train", train_keys), ("kernels", KERNEL_KEYS)]
    if any(_parse_run(n).trained_on == "D" for n in man["runs"]):  # networks trained on D: how they were trained
        sections.append(("diagnostics", DIAGNOSTICS_KEYS))
    for sec, keys in sections:
        diffs += [f"{sec}.{k}: archive {a.get(sec, {}).get(k)}, config {config[sec].get(k)}"
                  for k in keys if a.get(sec, {}).get(k) != config[sec].get(k)]
    # Runs are named by the model's name (`{arch}` of the run name; Run.arch), which the models entries carry
    # after validation: the entry of that name must build the same network in both configs.
    models = {m["name"]: m for m in config["models"]}
    archived = {m.get("name") or m["arch"]: m for m in a["models"]}
    one_of = lambda v: str(v[0]) if len(v) == 1 else f"one of {v}"  # noqa: E731
    for name in man["runs"]:
        r = _parse_run(name)
        model, width, seed = r.arch, r.width, r.seed
        if model not in models:
            diffs.append(f"models: archive run {name} has model {model!r}, config has no model of that name "
                         f"(names: {', '.join(models)})")
            continue
        old, new = entry_identity(archived.get(model, {})), entry_identity(models[model])
        diffs += [f"models[{model}].{k}: archive {old[k]}, config {new[k]}" for k in old if old[k] != new[k]]
        if width not in models[model]["widths"]:
            diffs.append(f"width: archive {width}, config {one_of(models[model]['widths'])} (run {name})")
        if seed not in config["seeds"]:
            diffs.append(f"seed: archive {seed}, config {one_of(config['seeds'])} (run {name})")
    for s in man["stores"]:
        m = _parse_stem(s["stem"])
        if (m["kind"], m["rows"], m["cols"]) not in set(pcfg.store_specs(config, m["trained_on"])):
            diffs.append(f"kernels: archive store {m['kind']}-{m['rows']}-{m['cols']}, config kinds "
                         f"{config['kernels']['kinds']} index_sets {config['kernels']['index_sets'].get(m['kind'])}")
    return list(dict.fromkeys(diffs))


def _parse_run(name: str) -> Run:
    try:
        return Run.parse(name)
    except ValueError as err:
        raise ArchiveError(f"refused: {err}") from None


def _parse_stem(stem: str) -> dict:
    """{dataset, arch, width, seed, epoch, kind, rows, cols} of `runs/{run}/epoch{E}/kernels/{kind}-{rows}-{cols}`."""
    parts = stem.split("/")
    try:
        if len(parts) != 6 or parts[0] != "runs" or parts[4] != "kernels" or not re.fullmatch(r"epoch\d{3}", parts[3]):
            raise ValueError(stem)
        run = Run.parse(f"{parts[1]}/{parts[2]}")
        kind, rows, cols = StorePaths(Path(stem)).index_sets()
    except ValueError:
        raise ArchiveError(f"refused: {stem!r} is not "
                           "runs/{dataset}/{arch}-w{W}-s{S}/epoch{E}/kernels/…") from None
    return {**run.meta(), "epoch": epoch_of(parts[3]), "kind": kind, "rows": rows, "cols": cols}


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
    except Exception as err:  # any other failure: the file is not a checkpoint
        raise ArchiveError(f"refused: checkpoint {rel} cannot be read: {err}") from None
    missing = [k for k in ("model", "epoch", "spec", "seed", "data_fingerprint", "dataset")
               if not isinstance(ck, dict) or k not in ck]
    if missing:
        raise ArchiveError(f"refused: checkpoint {rel} lacks {missing}")
    return ck


def _model_source(config: dict, name: str) -> str | None:
    try:
        return pcfg.model_source(config, name)
    except (pcfg.ConfigError, ValueError) as err:
        raise ArchiveError(f"refused: models[{name}]: cannot fingerprint its module here: {err}") from None


def check_contents(src, man: dict, config: dict | None = None) -> None:
    """Checkpoints, store attrs and tile checksums, data fingerprint: all consistent with one another; with
    `config` (the importing checkout's), an import-path model's module must be the one the checkpoints were
    trained with (the train rule re-runs on an edit; imported files carry no Snakemake record of it)."""
    fp, ds, files = man["data"]["fingerprint"], man["data"]["dataset"], man["files"]
    data_rel = prepared_store("", man["config"]["data"]["name"]).as_posix()
    if man["data"]["path"] != data_rel or ds != man["config"]["data"]["name"] or any(
            level_of(r) == "data" and not r.startswith(data_rel + "/") for r in files):
        raise ArchiveError(f"refused: the data entries of the archive are not all under {data_rel}/")
    entries = {m.get("name") or m["arch"]: m for m in man["config"]["models"]}
    for name, run in man["runs"].items():
        r = _parse_run(name)
        dataset, model, width, seed = r.dataset, r.arch, r.width, r.seed
        epochs = sorted(man["config"]["diagnostics" if r.trained_on == "D" else "train"]["checkpoint_epochs"])
        want = [r.checkpoint("", e).as_posix() for e in epochs]
        if run["checkpoints"] != want or run["train_log"] != r.train_log("").as_posix() or dataset != ds:
            raise ArchiveError(f"refused: run {name} does not carry exactly the train outputs {want} + train_log.csv")
        here = ...  # the module's fingerprint (hashes its file): once a run, after its first checkpoint checks out
        for e, rel in zip(epochs, want):
            ck = load_checkpoint_bytes(rel, src.read(rel))
            got = {"model": ck["spec"].get("name") or ck["spec"].get("arch"),  # the run name of the model
                   "width": ck["spec"].get("width"), "seed": ck["seed"],
                   "epoch": ck["epoch"], "dataset": ck["dataset"], "data_fingerprint": ck["data_fingerprint"],
                   **entry_identity(ck["spec"])}
            exp = {"model": model, "width": width, "seed": seed, "epoch": e, "dataset": ds, "data_fingerprint": fp,
                   **entry_identity(entries.get(model, {}))}
            bad = [f"{k} {got[k]} (expected {exp[k]})" for k in exp if got[k] != exp[k]]
            if bad:
                raise ArchiveError(f"refused: checkpoint {rel} does not belong to its path/data/model: "
                                   f"{', '.join(bad)}")
            if here is ...:
                here = _model_source(config, model) if config is not None else None
            if here is not None and ck.get("model_source") != here:
                raise ArchiveError(f"refused: models[{model}] ({ck['spec'].get('arch')}): checkpoint {rel} was trained "
                                   f"with module {ck.get('model_source')}, this checkout has {here}; the runs would "
                                   "not be what this checkout's workflow trains (use the archive's module file)")
    kern = man["config"]["kernels"]
    for s in man["stores"]:
        stem, m = s["stem"], _parse_stem(s["stem"])
        paths, r = StorePaths(Path(stem)), Run.of_row(m)
        run, ck_rel = r.name, r.checkpoint("", m["epoch"]).as_posix()
        parts = [paths.sentinel.as_posix(), f"{paths.store.as_posix()}/zarr.json", paths.manifest.as_posix(), ck_rel]
        if run not in man["runs"] or any(p not in files for p in parts):
            raise ArchiveError(f"refused: store {stem} comes without its parts or checkpoint ({parts})")
        exp = {"model": m["arch"], **{k: m[k] for k in RUN_FIELDS[1:] + ("kind", "rows", "cols", "dataset",
                                                                         "trained_on")},
               "checkpoint": Path(ck_rel).name, "checkpoint_sha256": files[ck_rel]["sha256"],
               "data_fingerprint": fp, "arch": entries.get(m["arch"], {}).get("arch"),
               "tile_size": kern["tile_size"], "dtype": kern["dtype"], "method_requested": kern["method"]}
        smf = json.loads(src.read(parts[2]))
        for source, attrs in (("store attrs", _attrs("", src.read(parts[1]))),
                              ("manifest attrs", {**smf.get("attrs", {}), "dtype": smf.get("dtype")})):
            legacy = "model" not in attrs
            attrs = _current_attrs(attrs)
            bad = [f"{k} {attrs.get(k)} (its path/checkpoint/config say {v})"
                   for k, v in exp.items() if attrs.get(k) != v and not (legacy and k == "arch")]
            if bad:
                raise ArchiveError(f"refused: {stem}: {source} do not match: {'; '.join(bad)}")
        if smf.get("inputs", {}).get("checkpoint") != files[ck_rel]["sha256"]:
            raise ArchiveError(f"refused: {parts[2]} was finalized from another checkpoint than {ck_rel}")
        _verify_tiles(src, stem, smf.get("tiles", {}))
    if man["data"]["included"]:
        _verify_data(src, man)


def _current_attrs(attrs: dict) -> dict:
    """Attributes of a store written before stores named their model and the method asked for: there `arch`
    was the model's name in run names and `method` the configured one."""
    if "model" in attrs:
        return attrs
    return {**attrs, "model": attrs.get("arch"), "method_requested": attrs.get("method")}


def _verify_tiles(src, stem: str, expected: dict) -> None:
    flags, paths = {}, StorePaths(Path(stem))
    tiles_dir = paths.tiles_dir.as_posix() + "/"
    for rel in (n for n in src.names() if n.startswith(tiles_dir) and n.endswith(".json")):
        try:
            flags[Path(rel).name] = dict(json.loads(src.read(rel))["chunks"])
        except (ValueError, KeyError, TypeError):
            flags[Path(rel).name] = None
    try:
        with src.group(paths.store.as_posix()) as g:
            actual = kstore.checksums_of(g["kernel"])
    except Exception as err:  # whatever zarr or a codec raises on a damaged chunk or metadata
        raise ArchiveError(f"refused: kernel store {paths.store.as_posix()} in the archive is unreadable: "
                           f"{type(err).__name__}: {err}") from None
    c = tiles.compare_checksums(actual, expected, flags)
    if any(c.values()):
        raise ArchiveError(f"refused: {stem} fails verification: missing tiles {c['missing']}, chunks differing "
                           f"from the manifest {c['mismatch']}, bad flags {c['bad_flags']}, tiles without a flag "
                           f"{c['unflagged']}")


def _verify_data(src, man: dict) -> None:
    try:
        with src.group(man["data"]["path"]) as g:
            fp, attrs = fingerprint(g["x"][...], g["y"][...], g["split"][...]), dict(g.attrs)
    except Exception as err:  # whatever zarr raises: the store is unusable
        raise ArchiveError(f"refused: data store {man['data']['path']} in the archive is unreadable: {err}") from None
    if (fp, fp, man["data"]["dataset"]) != (attrs.get("fingerprint"), man["data"]["fingerprint"], attrs.get("name")):
        raise ArchiveError(f"refused: data store {man['data']['path']}: arrays hash to {fp}, its attrs say "
                           f"{attrs.get('fingerprint')} ({attrs.get('name')}), {MANIFEST} {man['data']['fingerprint']}")

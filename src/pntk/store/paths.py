"""The files of one kernel store: the one owner of the suffixes the tile protocol uses.

    {stem}.zarr               the Zarr v3 group (kernel values, coordinates, attributes)
    {stem}.init.json          sentinel written by init (the store exists and is empty)
    {stem}.tiles/{i}_{j}.json flag of tile (i, j): its chunk checksums and timing, written after the chunk
    {stem}.manifest.json      written by finalize once every flag matches its chunk; rules read this
    {stem}.cache.json         kernels.jobs: per_tile under --cache: the lookup's record (hit or miss, key)
with stem = results/runs/{run}/epoch{E}/kernels/{kind}-{rows}-{cols}. A StorePaths built from a pattern
with Snakemake wildcards (`{kind}`, …) yields patterns, so the rules use it too. A stem that is a URL
(`s3://bucket/…`, `https://host/…`) gives `pntk.store.remote.RemotePath`s for the same names.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .remote import RemotePath, as_path

STORE, SENTINEL, MANIFEST, TILES, CACHE_RECORD = ".zarr", ".init.json", ".manifest.json", ".tiles", ".cache.json"
_NAME = re.compile(r"^(?P<kind>[a-z_]+)-(?P<rows>(sub-)?(train|test))-(?P<cols>(sub-)?(train|test))$")


@dataclass(frozen=True)
class StorePaths:
    stem: Path | RemotePath

    def __post_init__(self):
        object.__setattr__(self, "stem", as_path(self.stem))

    @classmethod
    def of(cls, path: str | Path) -> StorePaths:
        """From the stem or any file of the store: `.zarr`, `.init.json`, `.manifest.json`, a tile flag."""
        p = as_path(path)
        if p.parent.name.endswith(TILES):  # a tile flag (or its log)
            return cls(p.parent.with_name(p.parent.name.removesuffix(TILES)))
        for suffix in (MANIFEST, SENTINEL, STORE, TILES, CACHE_RECORD):
            if p.name.endswith(suffix):
                return cls(p.with_name(p.name[: -len(suffix)]))
        return cls(p)

    @classmethod
    def in_epoch(cls, epoch_dir: str | Path, kind: str, rows: str, cols: str) -> StorePaths:
        return cls(as_path(epoch_dir) / "kernels" / f"{kind}-{rows}-{cols}")

    def _with(self, suffix: str) -> Path:
        return self.stem.with_name(self.stem.name + suffix)

    store = property(lambda self: self._with(STORE), doc="`{stem}.zarr`: the Zarr group")
    sentinel = property(lambda self: self._with(SENTINEL), doc="`{stem}.init.json`: written by init")
    manifest = property(lambda self: self._with(MANIFEST), doc="`{stem}.manifest.json`: written by finalize")
    tiles_dir = property(lambda self: self._with(TILES), doc="`{stem}.tiles/`: one flag per tile")
    cache_record = property(lambda self: self._with(CACHE_RECORD),
                            doc="`{stem}.cache.json`: the store cache lookup's record (not a file of the store)")

    def flag(self, i: int | str, j: int | str) -> Path | RemotePath:
        return self.tiles_dir / f"{i}_{j}.json"

    def flag_files(self) -> list[Path | RemotePath]:
        """Tile flags present on disk, sorted. Over http(s), where a folder cannot be listed: the flags the
        manifest names (one per computed tile) that are there."""
        if isinstance(self.stem, RemotePath) and not self.stem.listable:
            try:
                named = json.loads(self.manifest.read_text()).get("tile_seconds", {})
            except FileNotFoundError:
                return []
            return [f for f in sorted(self.flag(*k.split("_")) for k in named) if f.is_file()]
        return sorted(self.tiles_dir.glob("*.json")) if self.tiles_dir.is_dir() else []

    def log(self, step: str) -> Path | RemotePath:
        """Job log of `init` or `finalize` (tile logs sit beside their flags)."""
        return self._with(f".{step}.log")

    @property
    def name(self) -> str:
        """`{kind}-{rows}-{cols}`."""
        return self.stem.name

    @property
    def output_name(self) -> str:
        """`{kind}_{rows}_{cols}`: the name as a Python identifier (the output names of a cached rule)."""
        return self.name.replace("-", "_")

    def index_sets(self) -> tuple[str, str, str]:
        """(kind, rows, cols) parsed from the name; ValueError if it is not `{kind}-{rows}-{cols}`."""
        m = _NAME.match(self.name)
        if not m:
            raise ValueError(f"{self.stem}: store name is not {{kind}}-{{rows}}-{{cols}}")
        return m["kind"], m["rows"], m["cols"]

    def files(self) -> list[Path | RemotePath]:
        """Every file of the store that exists (sentinel, Zarr tree, flags, manifest), for archives. Over
        http(s) the Zarr tree is its metadata only (chunks cannot be listed there)."""
        out = [p for p in (self.sentinel,) if p.is_file()]
        if isinstance(self.stem, RemotePath) and not self.stem.listable:
            out += [p for p in (self.store / "zarr.json",) if p.is_file()]
        elif isinstance(self.store, RemotePath) and self.store.is_dir():
            out += sorted(p for p in self.store.rglob("*") if p.is_file())
        elif self.store.is_dir():
            out += local_files(self.store)
        out += self.flag_files()
        out += [p for p in (self.manifest,) if p.is_file()]
        return out


# Snakemake touches this file in a declared directory output (a store taken from its output cache): not a
# file of the store.
SNAKEMAKE_TIMESTAMP = ".snakemake_timestamp"


def local_files(folder: Path) -> list[Path]:
    """Regular files below a local folder, sorted, following symlinks: a store restored from Snakemake's output
    cache is a folder of links into the cache (Path.rglob does not enter a linked folder)."""
    return sorted(Path(d, n) for d, _, names in os.walk(folder, followlinks=True) for n in names
                  if n != SNAKEMAKE_TIMESTAMP)

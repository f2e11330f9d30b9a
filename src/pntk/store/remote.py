"""Kernel stores beyond one filesystem: on S3-compatible object storage, and read-only over http(s).

A store's location is a local path or a URL:

    s3://bucket/prefix/…/pntk-train-train.zarr    read and write (tiles, flags, sentinel, manifest)
    https://host/…/pntk-train-train.zarr          read only: any static web server (GET, HEAD)

``as_path`` turns a URL into a :class:`RemotePath`, the small part of the ``pathlib.Path`` API the store
code uses (name, parent, with_name, ``/``, exists, is_file, is_dir, read_text, write_text, glob, rglob,
stat), over an fsspec filesystem; anything else stays a ``Path``. ``StorePaths.of`` goes through it, so a
URL names the same files a local stem does (`….zarr`, `….init.json`, `….tiles/{i}_{j}.json`,
`….manifest.json`). ``zarr_store`` gives zarr the matching store: the local path, or a
``zarr.storage.FsspecStore`` (s3fs; fsspec's HTTP filesystem on aiohttp).

S3: the endpoint comes from ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL`` (an S3-compatible server;
without either, AWS itself), credentials from the standard AWS chain (environment, config files). Neither
is ever written into a store, its attrs, flags, manifest or logs: a URL carrying credentials
(`s3://key:secret@bucket/…`) is refused, and messages name the endpoint, never a key.

What is local-only, and what replaces it on S3:
    atomic writes (a temporary file renamed)   one PUT: an object appears whole or not at all
    fsync of a chunk before its flag            a PUT has returned once the object is durable
    RawChunks (readinto / pread of chunk files) zarr's own reads (``RawChunks.of`` returns None)
    listing flags (a directory)                 a prefix listing; over http, the flags the manifest names
"""
from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

SCHEMES = ("s3", "http", "https")
STREAM_BLOCK = 4 << 20  # bytes an S3 read fetches at once in RemotePath.open (memory held: about this much)
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class RemoteStoreError(OSError):
    """A store URL that cannot be used: unsupported, read-only, unreachable or without its bucket."""


def is_url(path) -> bool:
    return isinstance(path, RemotePath) or (isinstance(path, str) and bool(_URL.match(path)))


def as_path(path) -> Path | RemotePath:
    """A ``RemotePath`` for a URL (``file://`` is a local path), a ``Path`` for anything else."""
    if isinstance(path, RemotePath):
        return path
    if isinstance(path, str) and _URL.match(path):
        if path.startswith("file://"):
            return Path(path.removeprefix("file://"))
        return RemotePath(path)
    return Path(path)


def s3_endpoint() -> str | None:
    """The S3-compatible endpoint named by the environment (botocore's own variables), or None: AWS."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def storage_options(scheme: str) -> dict:
    """fsspec options for a scheme: the endpoint is passed explicitly (so that a cached filesystem made for
    one endpoint is never reused for another), with short connection timeouts and few retries, so that an
    unreachable endpoint fails in seconds, not minutes. Credentials are left to the AWS chain."""
    if scheme != "s3":
        return {}
    opts: dict = {"config_kwargs": {"connect_timeout": 5, "read_timeout": 60,
                                    "retries": {"max_attempts": 2, "mode": "standard"}}}
    if endpoint := s3_endpoint():
        opts["client_kwargs"] = {"endpoint_url": endpoint}
    return opts


def where(url: str) -> str:
    """The URL and, for S3, the endpoint it goes to: for messages."""
    if url.startswith("s3://"):
        endpoint = s3_endpoint()
        return f"{url} (S3 endpoint {endpoint})" if endpoint else \
            f"{url} (S3 endpoint: AWS's own; set AWS_ENDPOINT_URL_S3 for an S3-compatible server)"
    return url


def _filesystem(scheme: str):
    import fsspec

    try:
        # No listings cache: tile jobs in other processes add flags and chunks while this one lists.
        return fsspec.filesystem(scheme, use_listings_cache=False, **storage_options(scheme))
    except ImportError as err:
        raise RemoteStoreError(f"{scheme}:// stores need s3fs and aiohttp: pip install 'pntk[remote]' "
                               f"({err})") from None


@dataclass(frozen=True, eq=True, order=True)
class RemotePath:
    """A file or folder at a URL, with the ``pathlib.Path`` methods the store code uses."""

    url: str

    def __post_init__(self):
        parts = urlsplit(self.url)
        scheme = parts.scheme.lower()
        if scheme not in SCHEMES:
            raise RemoteStoreError(f"{self.url}: unsupported URL scheme {scheme!r}: a kernel store is a local "
                                   "path, s3://bucket/… (read and write) or http(s)://… (read only)")
        if "@" in parts.netloc:
            raise RemoteStoreError(f"{scheme}://…@{parts.netloc.rsplit('@', 1)[1]}{parts.path}: credentials in "
                                   "a store URL are refused (they would be written into attrs and manifests); "
                                   "use the AWS environment or config files")
        if not parts.netloc:
            raise RemoteStoreError(f"{self.url}: no {'bucket' if scheme == 's3' else 'host'} in the URL")
        if parts.query or parts.fragment:
            raise RemoteStoreError(f"{self.url}: a store URL has no query or fragment")
        object.__setattr__(self, "url", self.url.rstrip("/"))

    # -- names ------------------------------------------------------------------------------------------
    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme.lower()

    @property
    def writable(self) -> bool:
        return self.scheme == "s3"

    @property
    def listable(self) -> bool:
        """Can its folders be listed? S3 prefixes can; a static web server's cannot (in general)."""
        return self.scheme == "s3"

    @property
    def name(self) -> str:
        return self.url.rsplit("/", 1)[1] if urlsplit(self.url).path.strip("/") else ""

    @property
    def parent(self) -> RemotePath:
        if not self.name:
            return self
        return RemotePath(self.url.rsplit("/", 1)[0])

    def with_name(self, name: str) -> RemotePath:
        if not self.name:
            raise ValueError(f"{self.url} has an empty name")
        return RemotePath(f"{self.url.rsplit('/', 1)[0]}/{name}")

    def __truediv__(self, other) -> RemotePath:
        return RemotePath(f"{self.url}/{str(other).strip('/')}")

    def __str__(self) -> str:
        return self.url

    def relative_to(self, other) -> str:
        base = str(other).rstrip("/") + "/"
        if not self.url.startswith(base):
            raise ValueError(f"{self.url} is not under {other}")
        return self.url[len(base):]

    # -- reads ------------------------------------------------------------------------------------------
    @property
    def fs(self):
        return _filesystem(self.scheme)

    def _call(self, what: str, fn, *args):
        """fs call with its failure named: a missing file stays FileNotFoundError; an unreachable endpoint,
        a missing bucket or refused credentials become RemoteStoreError naming the URL and endpoint."""
        try:
            return fn(*args)
        except FileNotFoundError:
            raise
        except (RemoteStoreError, NotImplementedError):
            raise
        except Exception as err:
            raise RemoteStoreError(f"{where(self.url)}: {what} failed: {type(err).__name__}: {err}") from err

    def exists(self) -> bool:
        return bool(self._call("exists", self.fs.exists, self.url))

    def is_file(self) -> bool:
        return bool(self._call("isfile", self.fs.isfile, self.url))

    def is_dir(self) -> bool:
        if not self.listable:
            return False
        return bool(self._call("isdir", self.fs.isdir, self.url))

    def read_bytes(self) -> bytes:
        try:
            return self._call("read", self.fs.cat_file, self.url)
        except FileNotFoundError:
            raise FileNotFoundError(f"{self.url}: no such file") from None

    def open(self, mode: str = "rb", *, size: int | None = None):
        """A file object. Reading: one streamed GET over http(s) (with `size` known, no HEAD first); over S3
        one ranged GET per STREAM_BLOCK. Writing (S3 only): one PUT at close, or a multipart upload."""
        if "r" not in mode:
            self._need_write("write")
            return self._call("open", lambda: self.fs.open(self.url, mode))
        kw: dict = {"size": size} if size else {}
        if self.scheme in ("http", "https"):
            kw["block_size"] = 0  # streamed: no range requests, nothing held but the current read
        else:
            kw["block_size"] = STREAM_BLOCK  # s3fs reads ahead one block (its default: 50 MiB)
        try:
            return self._call("open", lambda: self.fs.open(self.url, mode, **kw))
        except FileNotFoundError:
            raise FileNotFoundError(f"{self.url}: no such file") from None

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding)

    def stat(self):
        size = self.__dict__.get("_size")
        if size is None:
            size = int(self._call("info", self.fs.info, self.url)["size"])
        return os.stat_result((0, 0, 0, 0, 0, 0, size, 0, 0, 0))

    def _listed(self, found) -> list[RemotePath]:
        """fs.find / fs.glob results (keys without the scheme, or {key: info}) as RemotePaths."""
        items = found.items() if isinstance(found, dict) else ((k, None) for k in found)
        out = []
        for key, info in items:
            p = RemotePath(key if _URL.match(key) else f"{self.scheme}://{key}")
            if info is not None and info.get("type") == "directory":
                continue
            if info is not None and info.get("size") is not None:
                object.__setattr__(p, "_size", int(info["size"]))  # stat() without a request
            out.append(p)
        return sorted(out)

    def rglob(self, pattern: str) -> list[RemotePath]:
        """Every file below this folder whose name matches `pattern` (one listing)."""
        self._need_listing("rglob")
        found = self._call("listing", self.fs.find, self.url, None, False, True)  # detail=True
        return [p for p in self._listed(found) if fnmatch.fnmatch(p.name, pattern)]

    def glob(self, pattern: str) -> list[RemotePath]:
        """Files directly in this folder whose name matches `pattern`."""
        self._need_listing("glob")
        try:
            found = self._call("listing", self.fs.ls, self.url, True)
        except FileNotFoundError:
            return []
        return [p for p in self._listed({i["name"]: i for i in found})
                if p.parent == self and fnmatch.fnmatch(p.name, pattern)]

    def _need_listing(self, what: str) -> None:
        if not self.listable:
            raise RemoteStoreError(f"{self.url}: cannot {what}: a folder over {self.scheme}:// cannot be listed")

    # -- writes (S3 only) -------------------------------------------------------------------------------
    def _need_write(self, what: str) -> None:
        if not self.writable:
            raise RemoteStoreError(f"{self.url}: cannot {what}: stores over {self.scheme}:// are read-only "
                                   "(a static web server); write to s3://… or a local path")

    def write_bytes(self, data: bytes) -> None:
        """One PUT: the object appears whole or not at all (what a local temp-file-and-rename gives)."""
        self._need_write("write")
        self._call("write", self.fs.pipe_file, self.url, data)

    def write_text(self, text: str, encoding: str = "utf-8") -> None:
        self.write_bytes(text.encode(encoding))

    def unlink(self, missing_ok: bool = False) -> None:
        self._need_write("delete")
        try:
            self._call("delete", self.fs.rm_file, self.url)
        except FileNotFoundError:
            if not missing_ok:
                raise

    def remove_tree(self) -> None:
        """Delete every object under this prefix (a store being replaced)."""
        self._need_write("delete")
        found = self._call("listing", self.fs.find, self.url)
        if found:
            self._call("delete", self.fs.rm, found)

    def mkdir(self, parents: bool = False, exist_ok: bool = False) -> None:
        """Nothing to do: S3 has no folders (a key's prefix exists once an object has it)."""
        self._need_write("create a folder")

    # -- zarr -------------------------------------------------------------------------------------------
    def check_reachable(self, *, write: bool) -> None:
        """Fail early, naming the URL and endpoint: an unsupported write, a missing bucket, an unreachable
        endpoint, refused credentials. Checked once per bucket (or host) and process."""
        if write:
            self._need_write("write a store")
        key = (self.scheme, urlsplit(self.url).netloc, s3_endpoint() if self.scheme == "s3" else None, write)
        if key in _REACHABLE:
            return
        if self.scheme == "s3":
            bucket = f"s3://{urlsplit(self.url).netloc}"
            try:
                self._call("opening the bucket", self.fs.ls, bucket)
            except FileNotFoundError:
                raise RemoteStoreError(f"{where(self.url)}: no bucket {bucket} there") from None
        _REACHABLE.add(key)

    def zarr_store(self, *, read_only: bool):
        """A ``zarr.storage.FsspecStore`` at this URL (asynchronous filesystem, as zarr needs)."""
        from zarr.storage import FsspecStore

        self.check_reachable(write=not read_only)
        try:
            return FsspecStore.from_url(self.url, storage_options=storage_options(self.scheme) or None,
                                        read_only=read_only)
        except ImportError as err:
            raise RemoteStoreError(f"{self.scheme}:// stores need s3fs and aiohttp: pip install 'pntk[remote]' "
                                   f"({err})") from None


_REACHABLE: set[tuple] = set()


def zarr_store(path, *, read_only: bool):
    """What zarr.open_group takes for a store location: the local path as a string, or an FsspecStore."""
    if is_url(path):
        p = as_path(path)
        if isinstance(p, RemotePath):
            return p.zarr_store(read_only=read_only)
        path = p
    return str(path)


def write_json(path, obj) -> None:
    """A JSON record (flag, sentinel, manifest) as `provenance.atomic_write_json` writes it locally
    (temporary file, fsync, rename); at a URL one PUT, which is atomic by itself."""
    p = as_path(path)
    if isinstance(p, RemotePath):
        p.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
        return
    from ..provenance import atomic_write_json

    atomic_write_json(p, obj)


def sha256_of(path) -> str:
    """sha256 of a file, local or at a URL."""
    p = as_path(path)
    if isinstance(p, RemotePath):
        return hashlib.sha256(p.read_bytes()).hexdigest()
    from ..provenance import sha256_file

    return sha256_file(p)


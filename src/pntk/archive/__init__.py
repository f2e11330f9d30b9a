"""Archives: pack finished kernel stores with their inputs; check and import another checkout's archive.

    exchange configured_stores, pack, import_archive (the archive file: what goes in, how it comes out)
    checks   what an archive must satisfy before anything is extracted: levels, names, fingerprints; the
             sources checks read (a zip, a folder)
    published publish, import_published (the same archive as a browsable folder or s3:// prefix; imported
             from a folder, s3:// or http(s)://, streamed and resumable)

Above config and store: an archive's contents are what a config computes, read through the store.
"""
from .checks import LEVELS, MANIFEST, ArchiveError, level_of, unsafe_name
from .exchange import configured_stores, import_archive, matches, pack
from .published import import_published, is_published, publish

__all__ = ["LEVELS", "MANIFEST", "ArchiveError", "configured_stores", "import_archive", "import_published",
           "is_published", "level_of", "matches", "pack", "publish", "unsafe_name"]

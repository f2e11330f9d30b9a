"""Archives: pack finished kernel stores with their inputs; check and import another checkout's archive.

    exchange configured_stores, pack, import_archive (the archive file: what goes in, how it comes out)
    checks   what an archive must satisfy before anything is extracted: levels, names, fingerprints

Above config and store: an archive's contents are what a config computes, read through the store.
"""
from .checks import LEVELS, MANIFEST, ArchiveError, level_of, unsafe_name
from .exchange import configured_stores, import_archive, matches, pack

__all__ = ["LEVELS", "MANIFEST", "ArchiveError", "configured_stores", "import_archive", "level_of", "matches", "pack",
           "unsafe_name"]

"""Kernel stores on disk: the Zarr layout, the tile protocol, the jobs that run it, and archives.

    zarr_store      one Zarr v3 group per kernel: create, read/write a tile, checksums, read a block
    tiles           init → tile (chunk + flag) → finalize (manifest); verify
    jobs            what the kernel rules run (init, one tile, every store of a checkpoint)
    archive, archive_checks   pack finished stores with their inputs; check and import an archive
"""
from .tiles import finalize, verify
from .zarr_store import create_store, read_block, store_info, tile_sha256

__all__ = ["create_store", "finalize", "read_block", "store_info", "tile_sha256", "verify"]

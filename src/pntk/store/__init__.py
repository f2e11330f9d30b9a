"""Kernel stores on disk or object storage: the Zarr layout and the tile protocol. No config, no training:
what a rule runs on a store is pntk.kernel_jobs, archives of stores are pntk.archive.

    zarr_store      one Zarr v3 group per kernel: create, read/write a tile, checksums, read a block
    tiles           init → tile (chunk + flag) → finalize (manifest); verify
    tile_io         row caches and the tile writer of a job; paths: every file of a store; raw_chunks
    remote          stores at s3:// URLs (read and write) and http(s):// URLs (read only)
    shared_cache    finished stores in a content-addressed folder (kernels.jobs: per_tile under --cache)
"""
from .tiles import finalize, verify
from .zarr_store import create_store, read_block, store_info, tile_sha256

__all__ = ["create_store", "finalize", "read_block", "store_info", "tile_sha256", "verify"]

"""Data sets: raw loaders (`datasets`) and the prepared Zarr store every rule reads (`prepared`).

    prepare_dataset(name, root, out)  raw split → normalised Zarr store `out` with a fingerprint
    prepared_store(results, name)     where the workflow keeps it: `results/data/{name}/{name}.zarr`
    open_prepared(path, lazy=False)   PreparedData (x, y, split, attrs); lazy keeps x on disk
    index_set(data, name, ...)        global example indices of `train`, `test`, `sub-train`, `sub-test`
    open_images(path), read_rows(x, ids)   the images only, lazily: what a tile job reads
"""
from .datasets import DATASETS, SPECS, load_splits
from .prepared import (
                       ATTR_KEYS,
                       INDEX_SETS,
                       PreparedData,
                       balanced_subset,
                       fingerprint,
                       index_set,
                       open_images,
                       open_prepared,
                       prepare_dataset,
                       prepared_folder,
                       prepared_store,
                       read_rows,
                       store_in,
                       store_of,
                       stratified_subset,
)

__all__ = ["ATTR_KEYS", "DATASETS", "INDEX_SETS", "SPECS", "PreparedData", "balanced_subset", "fingerprint",
           "index_set", "load_splits", "open_images", "open_prepared", "prepare_dataset", "prepared_folder",
           "prepared_store", "read_rows", "store_in", "store_of", "stratified_subset"]

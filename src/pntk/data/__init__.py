"""Data sets: raw loaders (`datasets`) and the prepared Zarr store every rule reads (`prepared`).

    prepare_dataset(name, root, out)  raw split → normalised Zarr store `out` with a fingerprint
    prepared_store(results, name)     where the workflow keeps it: `results/data/{name}/{name}.zarr`
    open_prepared(path, lazy=False)   PreparedData (x, y, split, attrs); lazy keeps x on disk
    index_set(data, name, ...)        global example indices of `train`, `test`, `sub-train`, `sub-test`
"""
from .datasets import DATASETS, SPECS, load_splits
from .prepared import (ATTR_KEYS, INDEX_SETS, PreparedData, balanced_subset, fingerprint, index_set,
                       open_prepared, prepare_dataset, prepared_folder, prepared_store, store_in,
                       store_of, stratified_subset)

__all__ = ["ATTR_KEYS", "DATASETS", "INDEX_SETS", "SPECS", "PreparedData", "balanced_subset", "fingerprint",
           "index_set", "load_splits", "open_prepared", "prepare_dataset", "prepared_folder", "prepared_store",
           "store_in", "store_of", "stratified_subset"]

"""pntk: pseudo-NTK and empirical NTK of PyTorch models, tiled into Zarr stores.

    pntk.open_kernel(path)   a kernel store as a labelled xarray.DataArray with its provenance in attrs
    pntk.kernels.empirical_kernel(model, x1, x2=None, kind="pntk")   the kernel engine
"""
__version__ = "0.1.0"


def open_kernel(path):
    """A kernel store as a labelled, lazily read ``xarray.DataArray``.

    Dims (row, col) or, for the eNTK, (row, col, out_row, out_col); coordinates row/col = data-set
    indices and row_label/col_label = class labels; attrs = the store's provenance (kind, rows, cols;
    `method` that ran and `method_requested`; `model` (the name in run names), `arch` (built-in or import
    path), `model_kwargs` and `model_spec` (``ModelSpec.from_dict`` rebuilds it); width, seed, epoch,
    checkpoint and its sha256, data fingerprint; pntk_version, torch_version, git_describe) plus
    `store` (its path) and `finalized` (a manifest exists: every tile checked). `path` may be the
    `….zarr` store, its `….manifest.json`, `….init.json`, a tile flag, or the common stem.
    """
    from .store.zarr_store import kernel_dataarray

    return kernel_dataarray(path)

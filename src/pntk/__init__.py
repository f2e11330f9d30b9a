"""pntk: pseudo-NTK and empirical NTK of PyTorch models, tiled into Zarr stores.

    pntk.open_kernel(path)   a kernel store as a labelled xarray.DataArray with its provenance in attrs
    pntk.kernels.empirical_kernel(model, x1, x2=None, kind="pntk")   the kernel engine
"""
from ._version import __version__

__all__ = ["__version__", "open_kernel"]


def __getattr__(name: str):
    """`pntk.open_kernel` (pntk.store.zarr_store.kernel_dataarray) on first use: importing pntk, or any of its
    packages, imports no store (zarr, xarray); nor do the cache keys' import closures count it."""
    if name == "open_kernel":
        from .store.zarr_store import kernel_dataarray

        return kernel_dataarray
    raise AttributeError(f"module 'pntk' has no attribute {name!r}")

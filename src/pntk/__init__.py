"""pntk: pseudo-NTK and empirical NTK of PyTorch models, tiled into Zarr stores."""
__version__ = "0.1.0"

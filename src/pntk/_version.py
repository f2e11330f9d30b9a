"""The version of pntk, below every module that records it (provenance, archives, predictions)."""
__version__ = "0.1.0"

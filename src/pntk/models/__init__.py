"""The networks a run trains: what one is (spec), the built-in zoo, and models named by an import path.

    spec        ModelSpec (no torch import), ARCHS, is_import_path, entry_identity, entry_label
    zoo         the paper's FCN, ConvNet, ResNet-18, WideResNet-16-k (NTKLinear: pntk.layers)
    imported    `arch: "module:callable"` / `"torchvision:name"`: resolve, build, fingerprint the source
    build       build_model, init_model (seeded), readout_width(_of), check_model (config validation)

Inside: spec ← imported ← build → zoo. The torch-free members are imported with the face (config
validation reads specs without torch); the networks and builders on first use.
"""
from .._lazy import lazy_members
from .imported import (
    TORCHVISION,
    ModelImportError,
    add_python_path,
    default_name,
    source_digest,
    split_import_path,
)
from .spec import ARCHS, DEFAULT_DEPTH, ENTRY_KEYS, ModelSpec, entry_identity, entry_label, is_import_path

_HEAVY = {"build_model": "build", "check_model": "build", "init_model": "build", "readout_width": "build",
          "readout_width_of": "build", "build_imported": "imported", "FCN": "zoo", "ConvNet": "zoo",
          "convnet_strides": "zoo", "ResNet18": "zoo", "WideResNet16": "zoo", "he_relu_": "zoo",
          "lecun_readout_": "zoo", "NTKLinear": "zoo"}
__getattr__ = lazy_members(__name__, _HEAVY)

__all__ = ["ARCHS", "DEFAULT_DEPTH", "ENTRY_KEYS", "FCN", "TORCHVISION", "ConvNet", "ModelImportError", "ModelSpec",
           "NTKLinear", "ResNet18", "WideResNet16", "add_python_path", "build_imported", "build_model", "check_model",
           "convnet_strides", "default_name", "entry_identity", "entry_label", "he_relu_", "init_model",
           "is_import_path", "lecun_readout_", "readout_width", "readout_width_of", "source_digest",
           "split_import_path"]

"""Build the network a ModelSpec describes: a built-in of the zoo or an import-path model.

    build_model(spec)   init_model(spec, seed)   readout_width(model)   readout_width_of(spec)
    check_model(spec)   what config validation runs for an import-path model (pntk.models.imported)
"""
from __future__ import annotations

import torch
from torch import nn

from ..layers import NTKLinear
from .imported import TORCHVISION, TORCHVISION_HINT, ModelImportError, build_imported
from .spec import DEFAULT_DEPTH, ModelSpec
from .zoo import FCN, ConvNet, ResNet18, WideResNet16


def build_model(spec: ModelSpec) -> nn.Module:
    """Construct the model described by ``spec`` (parameters drawn from torch's current RNG)."""
    spec.validate()
    if spec.imported:
        return build_imported(spec)
    c, h, w = spec.in_shape
    if spec.arch == "fcn":
        return FCN(c * h * w, spec.width, spec.num_classes, spec.depth or DEFAULT_DEPTH["fcn"], spec.parameterization)
    if spec.arch == "convnet":
        return ConvNet(spec.in_shape, spec.width, spec.num_classes, spec.depth or DEFAULT_DEPTH["convnet"])
    if spec.arch == "resnet18":
        return ResNet18(c, spec.width, spec.num_classes)
    return WideResNet16(c, spec.width, spec.num_classes, spec.depth or DEFAULT_DEPTH["wrn16"])


def init_model(spec: ModelSpec, seed: int) -> nn.Module:
    """Build the model with parameters determined by ``seed`` alone."""
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        return build_model(spec)
    finally:
        torch.random.set_rng_state(gen_state)


def readout_width(model: nn.Module) -> int | None:
    """Input width of the last dense layer (nn.Linear or NTKLinear, in registration order): the w of the
    pNTK convergence theorem. None for a model without one."""
    last = None
    for m in model.modules():
        if isinstance(m, nn.Linear):
            last = m.in_features
        elif isinstance(m, NTKLinear):
            last = m.weight.shape[1]
    return last


def readout_width_of(spec: ModelSpec) -> int | None:
    """`readout_width` of the model `spec` describes, built on the meta device (no memory, no init cost;
    falls back to a CPU build for a user model that cannot be built there)."""
    try:
        with torch.device("meta"):
            return readout_width(build_model(spec))
    except (NotImplementedError, RuntimeError):
        return readout_width(init_model(spec, 0))


def check_model(spec: ModelSpec) -> int | None:
    """Build `spec` and run it on dummy inputs; return its readout width (None without a Linear layer).

    Raises ModelImportError saying what failed: import, call, output type/shape in eval and train mode,
    non-finite outputs, or two builds with the same seed that differ."""
    shape = tuple(int(s) for s in spec.in_shape)
    model = init_model(spec, seed=0)
    again = init_model(spec, seed=0).state_dict()
    differ = [k for k, v in model.state_dict().items() if k not in again or not torch.equal(v, again[k])]
    if differ:
        raise ModelImportError(f"{spec.arch}: two builds with the same seed differ in {differ[:3]}; draw the "
                               "initial parameters from torch's RNG (the run's seed is set before the call)")
    for mode, n in (("eval", 1), ("train", 2)):  # train mode: BatchNorm needs 2 samples per channel
        getattr(model, mode)()
        x = torch.randn(n, *shape, generator=torch.Generator().manual_seed(0))  # (n, C, H, W)
        try:
            with torch.no_grad():
                out = model(x)
        except Exception as err:  # report any failure of the user's forward
            hint = f"; {TORCHVISION_HINT}" if spec.arch.startswith(TORCHVISION + ":") else ""
            raise ModelImportError(f"{spec.arch} (width {spec.width}) failed in {mode} mode on input of shape "
                                   f"{tuple(x.shape)} (N, C, H, W): {type(err).__name__}: {err}{hint}") from None
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (n, spec.num_classes):
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ModelImportError(f"{spec.arch} (width {spec.width}) maps input {tuple(x.shape)} to {got} in "
                                   f"{mode} mode; expected a tensor of shape ({n}, {spec.num_classes}) (N, "
                                   "num_classes)")
        if not torch.isfinite(out).all():
            raise ModelImportError(f"{spec.arch} (width {spec.width}) gives non-finite outputs at initialisation")
    return readout_width(model)

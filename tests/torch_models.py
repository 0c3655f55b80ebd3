"""The PyTorch references of the parity tests, and the tests' helpers around them.

The references themselves live in the package (keras_zoo/torch_reference.py: torchvision's and
timm's own models, and megvii's ShuffleNet V1 layout), which `keras-zoo bench` uses as well;
this module re-exports them and adds what only the tests need: random weights with calibrated
batch norm (`randomize`, `random_reference`) and state dicts as NumPy arrays.
"""

from __future__ import annotations

import torch
from torch import nn

from keras_zoo.torch_reference import (
    MEGVII_V1,
    TIMM_MOBILENET_V1,
    import_timm,
    import_torchvision,
    torch_model,
)

__all__ = [
    "MEGVII_V1",
    "TIMM_MOBILENET_V1",
    "import_timm",
    "import_torchvision",
    "torch_model",
    "randomize",
    "random_reference",
    "random_transformer_reference",
    "state_dict_numpy",
]


@torch.no_grad()
def randomize(
    model: nn.Module,
    seed: int = 0,
    calibration_size: int = 224,
    calibration_batch: int = 4,
    *,
    affine_first: bool = False,
) -> nn.Module:
    """Random weights and calibrated batch norm: He-normal (fan-out) convolutions and linears,
    running statistics from train-mode passes over random data (cumulative average), then random
    affine parameters. Every nn.Conv2d, nn.Linear and nn.BatchNorm2d is covered, subclasses
    included (timm's BatchNormAct2d is a BatchNorm2d; its activation stays part of its forward),
    and each batch norm keeps its own momentum; a module with parameters of another kind is an
    error. Returns the model in eval mode (dropout off), the mode every reference is compared in.

    Stochastic depth and dropout are off during the calibration pass. With `affine_first` the
    random affine parameters are set before it, so that in eval mode every batch norm sees the
    statistics it was calibrated with: deep stacks of gated residual blocks (EfficientNet's)
    otherwise grow their activations block after block (to 1e5 in efficientnet_v2_s) until
    float32 rounding decides the logits (torch's own float32 result 30% from its float64
    one); with it they stay near 1 and torch's float32 is within 1e-5 of its float64."""
    kinds = (nn.Conv2d, nn.Linear, nn.BatchNorm2d)
    for path, m in model.named_modules():
        if not isinstance(m, kinds) and next(m.parameters(recurse=False), None) is not None:
            raise TypeError(f"randomize: no rule for the parameters of {path} ({type(m).__name__})")
    g = torch.Generator().manual_seed(seed)
    momenta = {}
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            # He-normal over fan-out, torchvision's own initialisation of its convolutions
            fan_out = m.weight.shape[0] * m.weight[0, 0].numel()
            m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_out) ** 0.5)
            if m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
        elif isinstance(m, nn.BatchNorm2d):
            m.reset_parameters()
            if affine_first:
                _random_affine(m, g)
            momenta[m], m.momentum = m.momentum, None
    model.train()
    for m in model.modules():
        if type(m).__name__ in _DROPPING:
            m.eval()
    model(torch.randn(calibration_batch, 3, calibration_size, calibration_size, generator=g))
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = momenta[m]
            if not affine_first:
                _random_affine(m, g)
    return model.eval()


_DROPPING = ("StochasticDepth", "DropPath", "Dropout")  # modules that drop in train mode


def _random_affine(m: nn.BatchNorm2d, g: torch.Generator) -> None:
    m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.2)


def random_reference(name: str, seed: int, *, affine_first: bool = False, **kwargs) -> nn.Module:
    """randomize(torch_model(name, **kwargs), seed): the same weights, without first paying for
    the source's own initialisation, which randomize replaces (built on the meta device, then
    given uninitialised CPU storage; randomize writes every parameter and batch-norm buffer)."""
    with torch.device("meta"):
        model = torch_model(name, **kwargs)
    return randomize(model.to_empty(device="cpu"), seed=seed, affine_first=affine_first)


def state_dict_numpy(model: nn.Module) -> dict:
    """{name: NumPy array} of the model's parameters and buffers."""
    return {k: v.detach().numpy() for k, v in model.state_dict().items()}


@torch.no_grad()
def randomize_transformer(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random values for every parameter of a Vision Transformer, none left at torchvision's
    zeros (its head, class token and biases): weights normal over fan-in (a projection keeps
    the tokens' scale; an attention's packed in_proj_weight counts per q, k, v), biases,
    class token and position embedding normal, LayerNorm scales in [0.5, 1.5) and shifts
    normal. Returns the model in eval mode."""
    g = torch.Generator().manual_seed(seed)
    for path, p in model.named_parameters():
        leaf = path.rsplit(".", 1)[-1]
        if p.ndim >= 2 and leaf not in ("class_token", "pos_embedding"):
            fan_in = p[0].numel()
            p.copy_(torch.randn(p.shape, generator=g) / fan_in**0.5)
        elif ".ln" in path and leaf == "weight":
            p.copy_(torch.rand(p.shape, generator=g) + 0.5)
        else:
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return model.eval()


def random_transformer_reference(name: str, seed: int, **kwargs) -> nn.Module:
    """randomize_transformer(torch_model(name, **kwargs), seed), built without paying for
    torchvision's own initialisation (on the meta device, then uninitialised CPU storage)."""
    with torch.device("meta"):
        model = torch_model(name, **kwargs)
    return randomize_transformer(model.to_empty(device="cpu"), seed=seed)

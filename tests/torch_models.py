"""The PyTorch references of the parity tests: the sources' own modules wherever one installs.

- torchvision's own models (torchvision.models.get_model) for every ResNet, ResNeXt and Wide
  ResNet id, mobilenet_v2, mobilenet_v3_large / _small and shufflenet_v2_x*;
- timm's own MobileNet V1 (timm.create_model) for mobilenet_v1: mobilenetv1_100 (alpha 1.0) and
  mobilenetv1_125 (alpha 1.25), the only widths timm registers; other alphas have no reference;
- megvii's ShuffleNet V1 (ShuffleNet-Series) is not a package and has no installable source, so
  its layout is written out below by hand, following megvii's ShuffleNetV1/blocks.py and
  network.py.
"""

from __future__ import annotations

import sys
import types

import torch
from torch import nn

# timm's registered MobileNet V1 constructors, by width multiplier
TIMM_MOBILENET_V1 = {1.0: "mobilenetv1_100", 1.25: "mobilenetv1_125"}


def import_torchvision():
    """`import torchvision`, made to work on the CPU build of torch used here.

    torchvision/__init__ imports torchvision._meta_registrations, which registers meta kernels for
    torchvision's compiled operators; this torch build has none of them, so the plain import fails
    with "operator torchvision::nms does not exist". The model definitions (torchvision.models)
    need none of those operators: an empty module stands in for _meta_registrations. Everything in
    the tests imports torchvision (and timm, which imports it) through here.
    """
    if "torchvision" not in sys.modules:
        sys.modules.setdefault("torchvision._meta_registrations",
                               types.ModuleType("torchvision._meta_registrations"))
    import torchvision

    return torchvision


def import_timm():
    """`import timm`, after torchvision (see import_torchvision)."""
    import_torchvision()
    import timm

    return timm


def torch_model(name: str, num_classes: int = 1000, alpha: float = 1.0) -> nn.Module:
    """The reference of a keras_zoo id (alpha: the width multiplier of the MobileNets), built by
    its source's own constructor, with that source's own initialisation (see `randomize`)."""
    if name == "mobilenet_v1":
        if alpha not in TIMM_MOBILENET_V1:
            raise ValueError(f"mobilenet_v1: timm has a MobileNet V1 only for alpha in "
                             f"{sorted(TIMM_MOBILENET_V1)}; got alpha={alpha}")
        return import_timm().create_model(TIMM_MOBILENET_V1[alpha], pretrained=False,
                                          num_classes=num_classes)
    if name.startswith("shufflenet_v1_g"):  # shufflenet_v1_g3_x1_0
        _check_no_alpha(name, alpha)
        group, scale = name[len("shufflenet_v1_g"):].split("_x")
        group, scale = int(group), float(scale.replace("_", "."))
        return ShuffleNetV1(MEGVII_V1[group, scale], group, num_classes)
    kwargs = {}
    if name.startswith("mobilenet_v"):
        kwargs["width_mult"] = alpha
    else:
        _check_no_alpha(name, alpha)
    return import_torchvision().models.get_model(name, weights=None, num_classes=num_classes,
                                                 **kwargs)


def _check_no_alpha(name, alpha):
    if alpha != 1.0:
        raise ValueError(f"{name} has no width multiplier; got alpha={alpha}")


class ShuffleV1Block(nn.Module):
    """megvii's ShuffleV1Block (ShuffleNet-Series, ShuffleNetV1/blocks.py)."""

    def __init__(self, inp, oup, *, group, first_group, mid_channels, stride):
        super().__init__()
        self.stride, self.group = stride, group
        outputs = oup - inp if stride == 2 else oup
        self.branch_main_1 = nn.Sequential(
            nn.Conv2d(inp, mid_channels, 1, 1, 0, groups=1 if first_group else group, bias=False),
            nn.BatchNorm2d(mid_channels), nn.ReLU(inplace=True),
            nn.Conv2d(mid_channels, mid_channels, 3, stride, 1, groups=mid_channels, bias=False),
            nn.BatchNorm2d(mid_channels))
        self.branch_main_2 = nn.Sequential(
            nn.Conv2d(mid_channels, outputs, 1, 1, 0, groups=group, bias=False),
            nn.BatchNorm2d(outputs))
        if stride == 2:
            self.branch_proj = nn.AvgPool2d(3, 2, 1)

    def channel_shuffle(self, x):
        # megvii's own formulation: reshape to (C / group, group), then swap
        b, c, h, w = x.shape
        x = x.reshape(b, c // self.group, self.group, h, w).permute(0, 2, 1, 3, 4)
        return x.reshape(b, c, h, w)

    def forward(self, old_x):
        x = self.branch_main_1(old_x)
        if self.group > 1:
            x = self.channel_shuffle(x)
        x = self.branch_main_2(x)
        if self.stride == 1:
            return torch.relu(x + old_x)
        return torch.cat((self.branch_proj(old_x), torch.relu(x)), 1)


class ShuffleNetV1(nn.Module):
    """megvii's ShuffleNetV1 (first_conv, maxpool, features, classifier) for any channels."""

    def __init__(self, channels, group, num_classes=1000):
        super().__init__()
        stem, *stages = channels
        self.first_conv = nn.Sequential(nn.Conv2d(3, stem, 3, 2, 1, bias=False),
                                        nn.BatchNorm2d(stem), nn.ReLU(inplace=True))
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        features, cin = [], stem
        for s, (repeats, cout) in enumerate(zip([4, 8, 4], stages)):
            for i in range(repeats):
                features.append(ShuffleV1Block(cin, cout, group=group,
                                               first_group=s == 0 and i == 0,
                                               mid_channels=cout // 4, stride=2 if i == 0 else 1))
                cin = cout
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Linear(cin, num_classes, bias=False))

    def forward(self, x):
        x = self.features(self.maxpool(self.first_conv(x)))
        return self.classifier(x.mean([2, 3]))


# megvii's stage_out_channels for the released settings (stem, stage2, stage3, stage4)
MEGVII_V1 = {
    (3, 0.5): (12, 120, 240, 480), (3, 1.0): (24, 240, 480, 960),
    (3, 1.5): (24, 360, 720, 1440), (3, 2.0): (48, 480, 960, 1920),
    (8, 0.5): (16, 192, 384, 768), (8, 1.0): (24, 384, 768, 1536),
    (8, 1.5): (24, 576, 1152, 2304), (8, 2.0): (48, 768, 1536, 3072),
}


@torch.no_grad()
def randomize(model: nn.Module, seed: int = 0, calibration_size: int = 224,
              calibration_batch: int = 4) -> nn.Module:
    """Random weights and calibrated batch norm: He-normal (fan-out) convolutions and linears,
    running statistics from train-mode passes over random data (cumulative average), then random
    affine parameters. Every nn.Conv2d, nn.Linear and nn.BatchNorm2d is covered, subclasses
    included (timm's BatchNormAct2d is a BatchNorm2d; its activation stays part of its forward),
    and each batch norm keeps its own momentum; a module with parameters of another kind is an
    error. Returns the model in eval mode (dropout off), the mode every reference is compared in."""
    kinds = (nn.Conv2d, nn.Linear, nn.BatchNorm2d)
    for path, m in model.named_modules():
        if not isinstance(m, kinds) and next(m.parameters(recurse=False), None) is not None:
            raise TypeError(f"randomize: no rule for the parameters of {path} "
                            f"({type(m).__name__})")
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
            momenta[m], m.momentum = m.momentum, None
    model.train()
    model(torch.randn(calibration_batch, 3, calibration_size, calibration_size, generator=g))
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = momenta[m]
            m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
            m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.2)
    return model.eval()


def random_reference(name: str, seed: int, **kwargs) -> nn.Module:
    """randomize(torch_model(name, **kwargs), seed): the same weights, without first paying for
    the source's own initialisation, which randomize replaces (built on the meta device, then
    given uninitialised CPU storage; randomize writes every parameter and batch-norm buffer)."""
    with torch.device("meta"):
        model = torch_model(name, **kwargs)
    return randomize(model.to_empty(device="cpu"), seed=seed)


def state_dict_numpy(model: nn.Module) -> dict:
    return {k: v.detach().numpy() for k, v in model.state_dict().items()}

"""The PyTorch reference of every keras_zoo id, built by its source's own constructor.

- torchvision's own models (torchvision.models.get_model) for every ResNet, ResNeXt and Wide
  ResNet id, mobilenet_v2, mobilenet_v3_large / _small, shufflenet_v2_x* and vit_*;
- timm's own MobileNet V1 (timm.create_model) for mobilenet_v1: mobilenetv1_100 (alpha 1.0) and
  mobilenetv1_125 (alpha 1.25), the only widths timm registers; other alphas have no reference;
- megvii's ShuffleNet V1 (ShuffleNet-Series) is not a package and has no installable source, so
  its layout is written out here by hand, following megvii's ShuffleNetV1/blocks.py and
  network.py (`ShuffleNetV1`, `ShuffleV1Block`).

`keras-zoo bench` takes its torch column from `torch_model`, and the parity tests compare
against it. PyTorch is not a dependency of keras_zoo: this module imports torch, torchvision and
timm only when a reference is built, and says how to install them when they are missing.

>>> from keras_zoo.torch_reference import torch_model
>>> torch_model("shufflenet_v1_g3_x0_5", num_classes=10).classifier[0].out_features
10
"""

from __future__ import annotations

import functools
import sys
import types
from typing import Any

INSTALL = "pip install torch==2.13.0 torchvision==0.28.0 timm"

# timm's registered MobileNet V1 constructors, by width multiplier
TIMM_MOBILENET_V1 = {1.0: "mobilenetv1_100", 1.25: "mobilenetv1_125"}

# megvii's stage_out_channels for the released settings (stem, stage2, stage3, stage4)
MEGVII_V1 = {
    (3, 0.5): (12, 120, 240, 480),
    (3, 1.0): (24, 240, 480, 960),
    (3, 1.5): (24, 360, 720, 1440),
    (3, 2.0): (48, 480, 960, 1920),
    (8, 0.5): (16, 192, 384, 768),
    (8, 1.0): (24, 384, 768, 1536),
    (8, 1.5): (24, 576, 1152, 2304),
    (8, 2.0): (48, 768, 1536, 3072),
}

_MEGVII_CLASSES = ("ShuffleV1Block", "ShuffleNetV1")


def _require(module: str) -> Any:
    """`import module`, or an ImportError in one line naming the install step when it is
    missing (an error raised inside an installed package passes through unchanged)."""
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name is None or err.name.split(".")[0] != module.split(".")[0]:
            raise
        raise ImportError(
            f"the torch references need {module}, which is not installed: {INSTALL}"
        ) from None


def import_torch() -> Any:
    """`import torch`, or an ImportError naming the install step."""
    return _require("torch")


def import_torchvision() -> Any:
    """`import torchvision`, made to work on CPU builds of torch without torchvision's kernels.

    torchvision/__init__ imports torchvision._meta_registrations, which registers meta kernels for
    torchvision's compiled operators; a torch build without them fails the plain import with
    "operator torchvision::nms does not exist". The model definitions (torchvision.models) need
    none of those operators: an empty module stands in for _meta_registrations. Everything that
    builds a reference imports torchvision (and timm, which imports it) through here.
    """
    import_torch()
    if "torchvision" not in sys.modules:
        sys.modules.setdefault(
            "torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations")
        )
    return _require("torchvision")


def import_timm() -> Any:
    """`import timm`, after torchvision (see `import_torchvision`)."""
    import_torchvision()
    return _require("timm")


def torch_model(
    name: str, num_classes: int = 1000, alpha: float = 1.0, image_size: int | None = None
) -> Any:
    """The torch.nn.Module reference of a keras_zoo id (alpha: the width multiplier of the
    MobileNets; image_size: the square input size of the Vision Transformers, whose position
    embedding fixes it, 224 by default), built by its source's own constructor, with that
    source's own initialisation.

    Raises ValueError for an alpha the source does not offer, or an image_size for an id
    without one, ImportError (naming the install step) without torch, torchvision or timm.
    """
    if image_size is not None and not name.startswith("vit_"):
        raise ValueError(f"{name} takes any input size; image_size applies to vit_* ids")
    if name == "mobilenet_v1":
        if alpha not in TIMM_MOBILENET_V1:
            raise ValueError(
                f"mobilenet_v1: timm has a MobileNet V1 only for alpha in "
                f"{sorted(TIMM_MOBILENET_V1)}; got alpha={alpha}"
            )
        return import_timm().create_model(
            TIMM_MOBILENET_V1[alpha], pretrained=False, num_classes=num_classes
        )
    if name.startswith("shufflenet_v1_g"):  # shufflenet_v1_g3_x1_0
        _check_no_alpha(name, alpha)
        group_text, scale_text = name[len("shufflenet_v1_g") :].split("_x")
        group, scale = int(group_text), float(scale_text.replace("_", "."))
        if (group, scale) not in MEGVII_V1:
            raise ValueError(
                f"{name}: megvii released ShuffleNet V1 only for (groups, scale) "
                f"in {sorted(MEGVII_V1)}"
            )
        return _megvii_classes()[1](MEGVII_V1[group, scale], group, num_classes)
    kwargs: dict[str, Any] = {}
    if name.startswith("mobilenet_v"):
        kwargs["width_mult"] = alpha
    else:
        _check_no_alpha(name, alpha)
    if image_size is not None:
        kwargs["image_size"] = image_size
    return import_torchvision().models.get_model(
        name, weights=None, num_classes=num_classes, **kwargs
    )


def _check_no_alpha(name: str, alpha: float) -> None:
    if alpha != 1.0:
        raise ValueError(f"{name} has no width multiplier; got alpha={alpha}")


@functools.cache
def _megvii_classes() -> tuple[type, type]:
    """(ShuffleV1Block, ShuffleNetV1), defined on first use, since they subclass nn.Module."""
    torch = import_torch()
    nn = torch.nn
    module: Any = nn.Module

    class ShuffleV1Block(module):
        """megvii's ShuffleV1Block (ShuffleNet-Series, ShuffleNetV1/blocks.py)."""

        def __init__(self, inp, oup, *, group, first_group, mid_channels, stride):
            super().__init__()
            self.stride, self.group = stride, group
            outputs = oup - inp if stride == 2 else oup
            self.branch_main_1 = nn.Sequential(
                nn.Conv2d(
                    inp, mid_channels, 1, 1, 0, groups=1 if first_group else group, bias=False
                ),
                nn.BatchNorm2d(mid_channels),
                nn.ReLU(inplace=True),
                nn.Conv2d(
                    mid_channels, mid_channels, 3, stride, 1, groups=mid_channels, bias=False
                ),
                nn.BatchNorm2d(mid_channels),
            )
            self.branch_main_2 = nn.Sequential(
                nn.Conv2d(mid_channels, outputs, 1, 1, 0, groups=group, bias=False),
                nn.BatchNorm2d(outputs),
            )
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

    class ShuffleNetV1(module):
        """megvii's ShuffleNetV1 (first_conv, maxpool, features, classifier) for any channels."""

        def __init__(self, channels, group, num_classes=1000):
            super().__init__()
            stem, *stages = channels
            self.first_conv = nn.Sequential(
                nn.Conv2d(3, stem, 3, 2, 1, bias=False), nn.BatchNorm2d(stem), nn.ReLU(inplace=True)
            )
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            features, cin = [], stem
            for s, (repeats, cout) in enumerate(zip([4, 8, 4], stages)):
                for i in range(repeats):
                    features.append(
                        ShuffleV1Block(
                            cin,
                            cout,
                            group=group,
                            first_group=s == 0 and i == 0,
                            mid_channels=cout // 4,
                            stride=2 if i == 0 else 1,
                        )
                    )
                    cin = cout
            self.features = nn.Sequential(*features)
            self.classifier = nn.Sequential(nn.Linear(cin, num_classes, bias=False))

        def forward(self, x):
            x = self.features(self.maxpool(self.first_conv(x)))
            return self.classifier(x.mean([2, 3]))

    for cls in (ShuffleV1Block, ShuffleNetV1):  # importable by name, so that pickle finds them
        cls.__qualname__, cls.__module__ = cls.__name__, __name__
    return ShuffleV1Block, ShuffleNetV1


def __getattr__(name: str) -> Any:
    # ShuffleV1Block and ShuffleNetV1 exist once torch is imported, on first access
    if name in _MEGVII_CLASSES:
        return _megvii_classes()[_MEGVII_CLASSES.index(name)]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

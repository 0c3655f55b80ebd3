"""The PyTorch reference of every keras_zoo id, built by its source's own constructor.

- torchvision's own models (torchvision.models.get_model) for every ResNet, ResNeXt and Wide
  ResNet id, mobilenet_v2, mobilenet_v3_large / _small, shufflenet_v2_x*, vit_* and convnext_*;
- timm's own MobileNet V1 (timm.create_model) for mobilenet_v1: mobilenetv1_100 (alpha 1.0) and
  mobilenetv1_125 (alpha 1.25), the only widths timm registers; other alphas have no reference;
- megvii's ShuffleNet V1 (ShuffleNet-Series) is not a package and has no installable source, so
  its layout is written out here by hand, following megvii's ShuffleNetV1/blocks.py and
  network.py (`ShuffleNetV1`, `ShuffleV1Block`);
- PFLD-pytorch (polarisZhao/PFLD-pytorch) is not a package either: its models/pfld.py
  (`PFLDInference`, `AuxiliaryNet`, `InvertedResidual`) is written out here, module names and
  forward pass as there, for pfld and pfld_0_25 (see `pfld_model`).

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

# keras_zoo's PFLD ids and their widths; PFLD-pytorch itself defines width 1.0 only
PFLD_WIDTHS = {"pfld": 1.0, "pfld_0_25": 0.25}
PFLD_LANDMARKS = (68, 98, 106)  # the point sets keras_zoo's PFLD takes
_PFLD_CLASSES = ("InvertedResidual", "PFLDInference", "AuxiliaryNet", "PFLDLandmarks")


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
    name: str, num_classes: int | None = None, alpha: float = 1.0, image_size: int | None = None
) -> Any:
    """The torch.nn.Module reference of a keras_zoo id (num_classes: the classifier's outputs,
    1000 by default, or PFLD's landmark head's, 2 x the points, 196 by default; alpha: the width
    multiplier of the MobileNets and of pfld; image_size: the square input size of the Vision
    Transformers, whose position embedding fixes it, 224 by default), built by its source's own
    constructor, with that source's own initialisation.

    Raises ValueError for an alpha the source does not offer, or an image_size for an id
    without one, ImportError (naming the install step) without torch, torchvision or timm.
    """
    if name in PFLD_WIDTHS:
        if image_size not in (None, 112):
            raise ValueError(f"image_size={image_size!r}: {name} takes 112x112 only")
        return pfld_model(name, 196 if num_classes is None else num_classes, alpha)
    if image_size is not None and not name.startswith("vit_"):
        raise ValueError(f"{name} takes any input size; image_size applies to vit_* ids")
    num_classes = 1000 if num_classes is None else num_classes
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


def pfld_model(name: str, num_classes: int = 196, alpha: float = 1.0) -> Any:
    """PFLD-pytorch's landmark backbone for keras_zoo's `name` (pfld, or pfld_0_25), with
    `num_classes` landmark outputs (2 x 68, 98 or 106 points), as `PFLDLandmarks`: its
    PFLDInference, whose forward returns the landmarks alone, as PFLD-pytorch's test.py takes
    them (`_, landmarks = pfld_backbone(img)`); the same state_dict.

    PFLD-pytorch defines width 1.0 only; pfld_0_25 (and pfld's `alpha`) scale every channel
    count of the backbone as keras_zoo's does (max(1, int(channels x width))), its module
    names unchanged. Raises ValueError for another name or num_classes, or an alpha with
    pfld_0_25.
    """
    if name not in PFLD_WIDTHS:
        raise ValueError(f"name: {name!r} is not a PFLD id; one of {sorted(PFLD_WIDTHS)}")
    if name == "pfld_0_25":
        _check_no_alpha(name, alpha)
    width = PFLD_WIDTHS[name] * alpha
    if not width > 0:
        raise ValueError(f"alpha: {name} needs a positive width multiplier; got alpha={alpha}")
    allowed = [2 * k for k in PFLD_LANDMARKS]
    if num_classes not in allowed:
        raise ValueError(
            f"num_classes: {name}'s landmark head has 2 x 68, 98 or 106 points = one of "
            f"{allowed} outputs; got {num_classes!r}"
        )
    return _pfld_classes()[3](width=width, outputs=num_classes)


@functools.cache
def _pfld_classes() -> tuple[type, type, type, type]:
    """(InvertedResidual, PFLDInference, AuxiliaryNet, PFLDLandmarks), PFLD-pytorch's modules
    (models/pfld.py) with a width multiplier, defined on first use (they subclass nn.Module).

    At width 1.0 and 196 outputs their state_dict keys and forward passes are PFLD-pytorch's,
    which the port maps by name; what they do that the paper does not: conv2 is a full 3x3
    convolution, each inverted residual's shortcut is a flag of its own, bn8 is built (and
    saved) but never applied (conv8, biased, goes straight to ReLU), and the auxiliary net's
    7x7 conv4 pads by 1."""
    torch = import_torch()
    nn = torch.nn
    module: Any = nn.Module

    def conv_bn(inp, oup, kernel, stride, padding=1):
        # PFLD-pytorch's conv_bn: keys .0 (conv) and .1 (batch norm); padding 1 by default
        return nn.Sequential(
            nn.Conv2d(inp, oup, kernel, stride, padding, bias=False),
            nn.BatchNorm2d(oup),
            nn.ReLU(inplace=True),
        )

    class InvertedResidual(module):
        """1x1 expansion, 3x3 depthwise, 1x1 projection, each with its batch norm, as one flat
        Sequential `conv` (conv.0 .. conv.7); the input added when `use_res_connect`."""

        def __init__(self, inp, oup, stride, use_res_connect, expand_ratio=6):
            super().__init__()
            hidden = inp * expand_ratio
            self.stride, self.use_res_connect = stride, use_res_connect
            self.conv = nn.Sequential(
                nn.Conv2d(inp, hidden, 1, 1, 0, bias=False),
                nn.BatchNorm2d(hidden),
                nn.ReLU(inplace=True),
                nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
                nn.BatchNorm2d(hidden),
                nn.ReLU(inplace=True),
                nn.Conv2d(hidden, oup, 1, 1, 0, bias=False),
                nn.BatchNorm2d(oup),
            )

        def forward(self, x):
            # read at every call, so that a test can plant a shortcut PFLD-pytorch lacks
            return x + self.conv(x) if self.use_res_connect else self.conv(x)

    class PFLDInference(module):
        """The landmark backbone; forward returns (block3_5's map, landmarks (N, outputs))."""

        def __init__(self, width: float = 1.0, outputs: int = 196):
            super().__init__()

            def w(channels):
                return max(1, int(channels * width))

            stem, c3, c5, c6, c7, c8 = w(64), w(64), w(128), w(16), w(32), w(128)
            self.conv1 = nn.Conv2d(3, stem, kernel_size=3, stride=2, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(stem)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(stem, stem, kernel_size=3, stride=1, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(stem)
            self.conv3_1 = InvertedResidual(stem, c3, 2, False, 2)
            for i in range(2, 6):
                setattr(self, f"block3_{i}", InvertedResidual(c3, c3, 1, True, 2))
            self.conv4_1 = InvertedResidual(c3, c5, 2, False, 2)
            self.conv5_1 = InvertedResidual(c5, c5, 1, False, 4)  # same width, no shortcut
            for i in range(2, 7):
                setattr(self, f"block5_{i}", InvertedResidual(c5, c5, 1, True, 4))
            self.conv6_1 = InvertedResidual(c5, c6, 1, False, 2)  # 14x14
            self.conv7 = conv_bn(c6, c7, 3, 2)  # 7x7
            self.conv8 = nn.Conv2d(c7, c8, 7, 1, 0)  # 1x1
            self.bn8 = nn.BatchNorm2d(c8)  # in the state_dict, not in forward
            self.avg_pool1 = nn.AvgPool2d(14)
            self.avg_pool2 = nn.AvgPool2d(7)
            self.fc = nn.Linear(c6 + c7 + c8, outputs)

        def forward(self, x):
            x = self.relu(self.bn1(self.conv1(x)))
            x = self.relu(self.bn2(self.conv2(x)))
            x = self.conv3_1(x)
            for i in range(2, 6):
                x = getattr(self, f"block3_{i}")(x)
            out1 = x
            x = self.conv5_1(self.conv4_1(out1))
            for i in range(2, 7):
                x = getattr(self, f"block5_{i}")(x)
            x = self.conv6_1(x)
            x1 = self.avg_pool1(x).flatten(1)
            x = self.conv7(x)
            x2 = self.avg_pool2(x).flatten(1)
            x3 = self.relu(self.conv8(x)).flatten(1)
            return out1, self.fc(torch.cat([x1, x2, x3], 1))

    class AuxiliaryNet(module):
        """The head-pose net on block3_5's map (64 channels at width 1.0): (N, 3) angles."""

        def __init__(self):
            super().__init__()
            self.conv1 = conv_bn(64, 128, 3, 2)
            self.conv2 = conv_bn(128, 128, 3, 1)
            self.conv3 = conv_bn(128, 32, 3, 2)
            self.conv4 = conv_bn(32, 128, 7, 1)
            self.max_pool1 = nn.MaxPool2d(3)
            self.fc1 = nn.Linear(128, 32)
            self.fc2 = nn.Linear(32, 3)

        def forward(self, x):
            x = self.conv4(self.conv3(self.conv2(self.conv1(x))))
            return self.fc2(self.fc1(self.max_pool1(x).flatten(1)))

    class PFLDLandmarks(PFLDInference):
        """PFLDInference whose forward returns the landmarks alone (its second output): the
        output keras_zoo's pfld has, and what PFLD-pytorch's test.py keeps."""

        def forward(self, x):
            return super().forward(x)[1]

    classes = (InvertedResidual, PFLDInference, AuxiliaryNet, PFLDLandmarks)
    for cls in classes:  # importable by name, so that pickle finds them
        cls.__qualname__, cls.__module__ = cls.__name__, __name__
    return classes


def __getattr__(name: str) -> Any:
    # megvii's and PFLD-pytorch's classes exist once torch is imported, on first access
    if name in _MEGVII_CLASSES:
        return _megvii_classes()[_MEGVII_CLASSES.index(name)]
    if name in _PFLD_CLASSES:
        return _pfld_classes()[_PFLD_CLASSES.index(name)]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""PFLD-pytorch's modules as the parity reference of keras_zoo's PFLD.

PFLD-pytorch (polarisZhao/PFLD-pytorch) is not a package and has no installable source, so its
`PFLDInference` and `AuxiliaryNet` are written out here, following its models/pfld.py at the
commit of its published checkpoint (b00750c37deaf5d133933d080d4b7a6421826812), whose
state_dict keys they reproduce: the same module names, the same forward pass. What that
forward pass does and the paper does not: conv2 is a full 3x3 convolution; each inverted
residual's shortcut is a flag of its own; bn8 is built (and saved) but never applied, conv8
(biased) going straight to ReLU; the auxiliary net's 7x7 conv4 pads by 1.
"""

from __future__ import annotations

import torch
from torch import nn


def conv_bn(inp: int, oup: int, kernel: int, stride: int, padding: int = 1) -> nn.Sequential:
    """Conv (no bias) + BatchNorm + ReLU as one Sequential (keys .0, .1), padding 1 always."""
    layers = [
        nn.Conv2d(inp, oup, kernel, stride, padding, bias=False),
        nn.BatchNorm2d(oup),
        nn.ReLU(inplace=True),
    ]
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """1x1 expand + BN + ReLU, 3x3 depthwise + BN + ReLU, 1x1 project + BN, in one flat
    Sequential `conv` (keys conv.0 .. conv.7); the input added when `use_res_connect`."""

    def __init__(self, inp: int, oup: int, stride: int, use_res_connect: bool, expand_ratio=6):
        super().__init__()
        assert stride in (1, 2)
        hidden = inp * expand_ratio
        self.stride = stride
        self.use_res_connect = use_res_connect
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
        y = self.conv(x)
        return x + y if self.use_res_connect else y


class PFLDInference(nn.Module):
    """The landmark backbone; forward returns (block3_5's 28x28 map, landmarks (N, 196))."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = nn.Conv2d(64, 64, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.conv3_1 = InvertedResidual(64, 64, 2, False, 2)
        for i in range(2, 6):
            setattr(self, f"block3_{i}", InvertedResidual(64, 64, 1, True, 2))
        self.conv4_1 = InvertedResidual(64, 128, 2, False, 2)
        self.conv5_1 = InvertedResidual(128, 128, 1, False, 4)
        for i in range(2, 7):
            setattr(self, f"block5_{i}", InvertedResidual(128, 128, 1, True, 4))
        self.conv6_1 = InvertedResidual(128, 16, 1, False, 2)
        self.conv7 = conv_bn(16, 32, 3, 2)
        self.conv8 = nn.Conv2d(32, 128, 7, 1, 0)
        self.bn8 = nn.BatchNorm2d(128)  # in the state_dict, not in forward
        self.avg_pool1 = nn.AvgPool2d(14)
        self.avg_pool2 = nn.AvgPool2d(7)
        self.fc = nn.Linear(176, 196)

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


class AuxiliaryNet(nn.Module):
    """The head-pose net on block3_5's map: (N, 3) angles."""

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
        x = self.max_pool1(x).flatten(1)
        return self.fc2(self.fc1(x))


class PFLDTraining(nn.Module):
    """The two modules train.py trains together, as one module for `randomize`: forward returns
    (landmarks, angles); `checkpoint(epoch)` is what train.py saves."""

    def __init__(self):
        super().__init__()
        self.pfld_backbone = PFLDInference()
        self.auxiliarynet = AuxiliaryNet()

    def forward(self, x):
        features, landmarks = self.pfld_backbone(x)
        return landmarks, self.auxiliarynet(features)

    def checkpoint(self, epoch: int = 1) -> dict:
        return {
            "epoch": epoch,
            "pfld_backbone": self.pfld_backbone.state_dict(),
            "auxiliarynet": self.auxiliarynet.state_dict(),
        }

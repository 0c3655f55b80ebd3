"""PyTorch reference models with torchvision's module names and key layout.

torchvision itself does not import with the CPU build of torch used here, so the references the
parity tests compare against are written out in full, following torchvision's definitions.
"""

from __future__ import annotations

import torch
from torch import nn


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64):
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    def __init__(self, block, layers, num_classes=1000, groups=1, width_per_group=64):
        super().__init__()
        self.inplanes = 64
        self.groups, self.base_width = groups, width_per_group
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], 2)
        self.layer3 = self._make_layer(block, 256, layers[2], 2)
        self.layer4 = self._make_layer(block, 512, layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)

    def _make_layer(self, block, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample, self.groups, self.base_width)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes, groups=self.groups,
                                base_width=self.base_width))
        return nn.Sequential(*layers)

    def forward_features(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x):
        return self.fc(torch.flatten(self.avgpool(self.forward_features(x)), 1))


RESNETS = {
    "resnet18": (BasicBlock, [2, 2, 2, 2], {}),
    "resnet34": (BasicBlock, [3, 4, 6, 3], {}),
    "resnet50": (Bottleneck, [3, 4, 6, 3], {}),
    "resnet101": (Bottleneck, [3, 4, 23, 3], {}),
    "resnet152": (Bottleneck, [3, 8, 36, 3], {}),
    "resnext50_32x4d": (Bottleneck, [3, 4, 6, 3], dict(groups=32, width_per_group=4)),
    "resnext101_32x8d": (Bottleneck, [3, 4, 23, 3], dict(groups=32, width_per_group=8)),
    "resnext101_64x4d": (Bottleneck, [3, 4, 23, 3], dict(groups=64, width_per_group=4)),
    "wide_resnet50_2": (Bottleneck, [3, 4, 6, 3], dict(width_per_group=128)),
    "wide_resnet101_2": (Bottleneck, [3, 4, 23, 3], dict(width_per_group=128)),
}


def torch_model(name: str, num_classes: int = 1000, alpha: float = 1.0) -> nn.Module:
    """The reference of a keras_zoo id (alpha: the width multiplier of the MobileNets)."""
    if name == "mobilenet_v1":
        return MobileNetV1(num_classes, alpha)
    if name == "mobilenet_v2":
        return MobileNetV2(num_classes, alpha)
    if name.startswith("mobilenet_v3_"):
        return MobileNetV3(name.rpartition("_")[2], num_classes, alpha)
    if name.startswith("shufflenet_v2_x"):  # shufflenet_v2_x1_5
        return ShuffleNetV2(float(name[len("shufflenet_v2_x"):].replace("_", ".")), num_classes)
    if name.startswith("shufflenet_v1_g"):  # shufflenet_v1_g3_x1_0
        group, scale = name[len("shufflenet_v1_g"):].split("_x")
        group, scale = int(group), float(scale.replace("_", "."))
        return ShuffleNetV1(MEGVII_V1[group, scale], group, num_classes)
    block, layers, kwargs = RESNETS[name]
    return ResNet(block, layers, num_classes=num_classes, **kwargs)


def _make_divisible(v, divisor=8, min_value=None):
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class ConvNormAct(nn.Sequential):
    """torchvision's Conv2dNormActivation: keys .0 (conv), .1 (batch norm)."""

    def __init__(self, cin, cout, k=3, stride=1, groups=1, act=nn.ReLU6, eps=1e-5, momentum=0.1):
        layers = [nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
                  nn.BatchNorm2d(cout, eps=eps, momentum=momentum)]
        if act is not None:
            layers.append(act(inplace=True))
        super().__init__(*layers)


class InvertedResidualV2(nn.Module):
    def __init__(self, inp, oup, stride, expand_ratio):
        super().__init__()
        hidden = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers = [] if expand_ratio == 1 else [ConvNormAct(inp, hidden, 1)]
        layers += [ConvNormAct(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    SETTING = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1],
               [6, 160, 3, 2], [6, 320, 1, 1]]

    def __init__(self, num_classes=1000, width_mult=1.0):
        super().__init__()
        inp = _make_divisible(32 * width_mult)
        last = _make_divisible(1280 * max(1.0, width_mult))
        features = [ConvNormAct(3, inp, stride=2)]
        for t, c, n, s in self.SETTING:
            out = _make_divisible(c * width_mult)
            for i in range(n):
                features.append(InvertedResidualV2(inp, out, s if i == 0 else 1, t))
                inp = out
        features.append(ConvNormAct(inp, last, 1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, num_classes))

    def forward(self, x):
        x = nn.functional.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(x, 1))


class SqueezeExcitation(nn.Module):
    def __init__(self, channels, squeeze):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.activation = nn.ReLU()
        self.scale_activation = nn.Hardsigmoid()

    def forward(self, x):
        s = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return s * x


class InvertedResidualV3(nn.Module):
    def __init__(self, cin, k, exp, cout, use_se, act, stride):
        super().__init__()
        act = nn.Hardswish if act == "HS" else nn.ReLU
        bn = dict(eps=0.001, momentum=0.01)
        self.use_res_connect = stride == 1 and cin == cout
        layers = [] if exp == cin else [ConvNormAct(cin, exp, 1, act=act, **bn)]
        layers.append(ConvNormAct(exp, exp, k, stride, groups=exp, act=act, **bn))
        if use_se:
            layers.append(SqueezeExcitation(exp, _make_divisible(exp // 4, 8)))
        layers.append(ConvNormAct(exp, cout, 1, act=None, **bn))
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.block(x) if self.use_res_connect else self.block(x)


V3_ROWS = {
    "large": ([(16, 3, 16, 16, False, "RE", 1), (16, 3, 64, 24, False, "RE", 2),
               (24, 3, 72, 24, False, "RE", 1), (24, 5, 72, 40, True, "RE", 2),
               (40, 5, 120, 40, True, "RE", 1), (40, 5, 120, 40, True, "RE", 1),
               (40, 3, 240, 80, False, "HS", 2), (80, 3, 200, 80, False, "HS", 1),
               (80, 3, 184, 80, False, "HS", 1), (80, 3, 184, 80, False, "HS", 1),
               (80, 3, 480, 112, True, "HS", 1), (112, 3, 672, 112, True, "HS", 1),
               (112, 5, 672, 160, True, "HS", 2), (160, 5, 960, 160, True, "HS", 1),
               (160, 5, 960, 160, True, "HS", 1)], 1280),
    "small": ([(16, 3, 16, 16, True, "RE", 2), (16, 3, 72, 24, False, "RE", 2),
               (24, 3, 88, 24, False, "RE", 1), (24, 5, 96, 40, True, "HS", 2),
               (40, 5, 240, 40, True, "HS", 1), (40, 5, 240, 40, True, "HS", 1),
               (40, 5, 120, 48, True, "HS", 1), (48, 5, 144, 48, True, "HS", 1),
               (48, 5, 288, 96, True, "HS", 2), (96, 5, 576, 96, True, "HS", 1),
               (96, 5, 576, 96, True, "HS", 1)], 1024),
}


class MobileNetV3(nn.Module):
    def __init__(self, arch, num_classes=1000, width_mult=1.0):
        super().__init__()
        rows, last_channel = V3_ROWS[arch]
        adj = lambda c: _make_divisible(c * width_mult)  # noqa: E731
        rows = [(adj(a), k, adj(e), adj(o), se, act, s) for a, k, e, o, se, act, s in rows]
        bn = dict(eps=0.001, momentum=0.01)
        layers = [ConvNormAct(3, rows[0][0], 3, 2, act=nn.Hardswish, **bn)]
        layers += [InvertedResidualV3(*row) for row in rows]
        last_conv = 6 * rows[-1][3]
        layers.append(ConvNormAct(rows[-1][3], last_conv, 1, act=nn.Hardswish, **bn))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(last_conv, adj(last_channel)), nn.Hardswish(inplace=True),
            nn.Dropout(0.2, inplace=True), nn.Linear(adj(last_channel), num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class DepthwiseSeparable(nn.Module):
    """timm's DepthwiseSeparableConv with activation after the pointwise conv."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv_dw = nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False)
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv_pw = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv_dw(x)))
        return torch.relu(self.bn2(self.conv_pw(x)))


class MobileNetV1(nn.Module):
    """timm's mobilenetv1_100 key layout: conv_stem, bn1, blocks.S.B.*, classifier."""

    STAGES = [(64, 1, 1), (128, 2, 2), (256, 2, 2), (512, 2, 6), (1024, 2, 2)]

    def __init__(self, num_classes=1000, width_mult=1.0):
        super().__init__()
        cin = _make_divisible(32 * width_mult)
        self.conv_stem = nn.Conv2d(3, cin, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cin)
        stages = []
        for c, s, n in self.STAGES:
            cout = _make_divisible(c * width_mult)
            blocks = []
            for i in range(n):
                blocks.append(DepthwiseSeparable(cin, cout, s if i == 0 else 1))
                cin = cout
            stages.append(nn.Sequential(*blocks))
        self.blocks = nn.Sequential(*stages)
        self.classifier = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.blocks(torch.relu(self.bn1(self.conv_stem(x))))
        return self.classifier(x.mean((2, 3)))


def torch_channel_shuffle(x, groups):
    """torchvision's channel_shuffle: view as (groups, C / groups), transpose, flatten."""
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).contiguous().view(b, c, h, w)


class ShuffleV2Unit(nn.Module):
    """torchvision's shufflenetv2.InvertedResidual."""

    def __init__(self, inp, oup, stride):
        super().__init__()
        self.stride = stride
        bf = oup // 2
        if stride > 1:
            self.branch1 = nn.Sequential(
                nn.Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False), nn.BatchNorm2d(inp),
                nn.Conv2d(inp, bf, 1, bias=False), nn.BatchNorm2d(bf), nn.ReLU(inplace=True))
        else:
            self.branch1 = nn.Sequential()
        self.branch2 = nn.Sequential(
            nn.Conv2d(inp if stride > 1 else bf, bf, 1, bias=False), nn.BatchNorm2d(bf),
            nn.ReLU(inplace=True),
            nn.Conv2d(bf, bf, 3, stride, 1, groups=bf, bias=False), nn.BatchNorm2d(bf),
            nn.Conv2d(bf, bf, 1, bias=False), nn.BatchNorm2d(bf), nn.ReLU(inplace=True))

    def forward(self, x):
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return torch_channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    CHANNELS = {0.5: [24, 48, 96, 192, 1024], 1.0: [24, 116, 232, 464, 1024],
                1.5: [24, 176, 352, 704, 1024], 2.0: [24, 244, 488, 976, 2048]}

    def __init__(self, scale, num_classes=1000):
        super().__init__()
        ch = self.CHANNELS[scale]
        self.conv1 = nn.Sequential(nn.Conv2d(3, ch[0], 3, 2, 1, bias=False),
                                   nn.BatchNorm2d(ch[0]), nn.ReLU(inplace=True))
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = ch[0]
        for i, (repeats, cout) in enumerate(zip([4, 8, 4], ch[1:4])):
            units = [ShuffleV2Unit(cin, cout, 2)] + [ShuffleV2Unit(cout, cout, 1)
                                                      for _ in range(repeats - 1)]
            setattr(self, f"stage{i + 2}", nn.Sequential(*units))
            cin = cout
        self.conv5 = nn.Sequential(nn.Conv2d(cin, ch[-1], 1, bias=False),
                                   nn.BatchNorm2d(ch[-1]), nn.ReLU(inplace=True))
        self.fc = nn.Linear(ch[-1], num_classes)

    def forward(self, x):
        x = self.maxpool(self.conv1(x))
        x = self.conv5(self.stage4(self.stage3(self.stage2(x))))
        return self.fc(x.mean([2, 3]))


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
    """Random weights and calibrated batch norm: He-normal (fan-out) convolutions and linears, running
    statistics from train-mode passes over random data (cumulative average), then random affine
    parameters. Returns the model in eval mode."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            # He-normal over fan-out, torchvision's own initialisation of its convolutions
            fan_out = m.weight.shape[0] * m.weight[0, 0].numel()
            m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_out) ** 0.5)
            if m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
        elif isinstance(m, nn.BatchNorm2d):
            m.reset_parameters()
            m.momentum = None
    model.train()
    model(torch.randn(calibration_batch, 3, calibration_size, calibration_size, generator=g))
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = 0.1
            m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
            m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.2)
    return model.eval()


def state_dict_numpy(model: nn.Module) -> dict:
    return {k: v.detach().numpy() for k, v in model.state_dict().items()}

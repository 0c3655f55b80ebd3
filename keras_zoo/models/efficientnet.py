"""EfficientNet B0-B7 and EfficientNetV2 S/M/L as tables of stage configurations.

torchvision's EfficientNet class builds both: a 3x3 stride-2 stem (features.0), one
features.N per row of the stage table (MBConv blocks: features.N.B.block.K, squeeze-and-
excitation with SiLU and a sigmoid gate, squeezed to a quarter of the block's input channels;
V2's first stages FusedMBConv), a 1x1 convolution (features.N+1), average pooling and the
classifier (classifier.1 after a dropout). B1-B7 scale the B0 table's channels by `width`
(rounded to multiples of 8) and its repeats by `depth` (rounded up). Layer names are
torchvision's module paths, so torchvision checkpoints load by name; timm's EfficientNets
(its EfficientNet builder: conv_stem, bn1, blocks.S.B, conv_head, bn2, classifier) map by
keras_zoo.port.key_maps.

Stochastic depth (`drop_path_rate`, torchvision's stochastic_depth_prob) drops the branch of
block k of n at drop_path_rate * k / n in training; off unless asked for, as in every family
(torchvision trains these with 0.2); inference is unchanged.

Keras and the blocks are imported by the functions that build: the tables register the ids
without TensorFlow.

>>> import keras_zoo
>>> model = keras_zoo.build("efficientnet_b0")
>>> sum(int(w.numpy().size) for w in model.weights if "moving" not in w.path)
5288548
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

from keras_zoo import checks
from keras_zoo.builder import build_model
from keras_zoo.registry import register_model
from keras_zoo.weight_sets import WeightSet, timm_weights, torchvision_weights

if TYPE_CHECKING:
    import keras

TITLE = "EfficientNet B0-B7/V2"  # the family as the command line's description names it


@dataclasses.dataclass(frozen=True)
class Stage:
    """One row of torchvision's inverted_residual_setting, before width and depth scaling."""

    fused: bool  # FusedMBConv (EfficientNetV2's first stages) or MBConv
    expansion: int
    kernel: int
    stride: int  # the first block's
    input_channels: int
    out_channels: int
    repeats: int


def _mb(*row: int) -> Stage:
    return Stage(False, *row)


def _fused(*row: int) -> Stage:
    return Stage(True, *row)


B_STAGES = (
    _mb(1, 3, 1, 32, 16, 1),
    _mb(6, 3, 2, 16, 24, 2),
    _mb(6, 5, 2, 24, 40, 2),
    _mb(6, 3, 2, 40, 80, 3),
    _mb(6, 5, 1, 80, 112, 3),
    _mb(6, 5, 2, 112, 192, 4),
    _mb(6, 3, 1, 192, 320, 1),
)
V2_S = (
    _fused(1, 3, 1, 24, 24, 2),
    _fused(4, 3, 2, 24, 48, 4),
    _fused(4, 3, 2, 48, 64, 4),
    _mb(4, 3, 2, 64, 128, 6),
    _mb(6, 3, 1, 128, 160, 9),
    _mb(6, 3, 2, 160, 256, 15),
)
V2_M = (
    _fused(1, 3, 1, 24, 24, 3),
    _fused(4, 3, 2, 24, 48, 5),
    _fused(4, 3, 2, 48, 80, 5),
    _mb(4, 3, 2, 80, 160, 7),
    _mb(6, 3, 1, 160, 176, 14),
    _mb(6, 3, 2, 176, 304, 18),
    _mb(6, 3, 1, 304, 512, 5),
)
V2_L = (
    _fused(1, 3, 1, 32, 32, 4),
    _fused(4, 3, 2, 32, 64, 7),
    _fused(4, 3, 2, 64, 96, 7),
    _mb(4, 3, 2, 96, 192, 10),
    _mb(6, 3, 1, 192, 224, 19),
    _mb(6, 3, 2, 224, 384, 25),
    _mb(6, 3, 1, 384, 640, 7),
)


@dataclasses.dataclass(frozen=True)
class Arch:
    """One architecture: its stage table, width and depth multipliers, the last
    convolution's channels (None: 4 x the last stage's), the classifier's dropout and the
    batch norms' epsilon and (torch) momentum."""

    stages: tuple[Stage, ...]
    width: float
    depth: float
    dropout: float
    bn_epsilon: float = 1e-5
    bn_momentum: float = 0.1
    last_channel: int | None = None


# B5-B7: torchvision's weights of these were ported from TensorFlow's
_TF: dict[str, Any] = dict(bn_epsilon=1e-3, bn_momentum=0.01)
_V2: dict[str, Any] = dict(bn_epsilon=1e-3, last_channel=1280)
ARCHS = {
    "b0": Arch(B_STAGES, 1.0, 1.0, 0.2),
    "b1": Arch(B_STAGES, 1.0, 1.1, 0.2),
    "b2": Arch(B_STAGES, 1.1, 1.2, 0.3),
    "b3": Arch(B_STAGES, 1.2, 1.4, 0.3),
    "b4": Arch(B_STAGES, 1.4, 1.8, 0.4),
    "b5": Arch(B_STAGES, 1.6, 2.2, 0.4, **_TF),
    "b6": Arch(B_STAGES, 1.8, 2.6, 0.5, **_TF),
    "b7": Arch(B_STAGES, 2.0, 3.1, 0.5, **_TF),
    "v2_s": Arch(V2_S, 1.0, 1.0, 0.2, **_V2),
    "v2_m": Arch(V2_M, 1.0, 1.0, 0.3, **_V2),
    "v2_l": Arch(V2_L, 1.0, 1.0, 0.4, **_V2),
}


def scaled_stages(arch: Arch) -> tuple[Stage, ...]:
    """The stage table with `arch`'s width (channels, multiples of 8) and depth (repeats,
    rounded up) applied, as torchvision's MBConvConfig does."""
    from keras_zoo.blocks import make_divisible

    return tuple(
        dataclasses.replace(
            stage,
            input_channels=make_divisible(stage.input_channels * arch.width),
            out_channels=make_divisible(stage.out_channels * arch.width),
            repeats=int(math.ceil(stage.repeats * arch.depth)),
        )
        for stage in arch.stages
    )


def efficientnet(
    arch: str,
    *,
    dropout: float | None = None,
    drop_path_rate: float = 0.0,
    bn_epsilon: float | None = None,
    name: str = "efficientnet",
    **kwargs: Any,
) -> keras.Model:
    """EfficientNet (Tan and Le, 2019: "b0" .. "b7") or EfficientNetV2 (Tan and Le, 2021:
    "v2_s", "v2_m", "v2_l") as torchvision defines them. dropout is the classifier's (the
    architecture's own by default: 0.2 .. 0.5); drop_path_rate is stochastic depth (in
    [0, 1), off by default; torchvision's stochastic_depth_prob, 0.2 in its training);
    bn_epsilon the batch norms' epsilon (torchvision's 1e-5 for B0-B4, 1e-3 for B5-B7 and V2;
    timm's B5 weights use 1e-5, set by the weight set)."""
    from keras import layers

    from keras_zoo.blocks import conv_bn_act, fused_mbconv, inverted_res_block, make_divisible
    from keras_zoo.layers import apply_stages

    spec = ARCHS[checks.check_choice(arch, "arch", tuple(ARCHS))]
    dropout = checks.check_fraction(spec.dropout if dropout is None else dropout, "dropout")
    drop_path_rate = checks.check_fraction(drop_path_rate, "drop_path_rate")
    epsilon = spec.bn_epsilon if bn_epsilon is None else bn_epsilon
    bn: dict[str, Any] = dict(
        epsilon=checks.check_positive_number(epsilon, "bn_epsilon", usual="1e-5, 1e-3"),
        momentum=1.0 - spec.bn_momentum,  # Keras' momentum weighs the running value
    )
    stages = scaled_stages(spec)
    total = sum(stage.repeats for stage in stages)
    last_conv = spec.last_channel or 4 * stages[-1].out_channels

    def block(stage: Stage, in_channels: int, stride: int, index: int, path: str):
        expanded = make_divisible(in_channels * stage.expansion)
        rate = drop_path_rate * index / total
        if stage.fused:
            return lambda x: fused_mbconv(
                x,
                expanded,
                stage.out_channels,
                stride,
                stage.kernel,
                name=path,
                drop_path_rate=rate,
                **bn,
            )
        return lambda x: inverted_res_block(
            x,
            expanded,
            stage.out_channels,
            stride,
            stage.kernel,
            activation_kind="silu",
            use_se=True,
            name=path,
            seq="block",
            project_as_unit=True,
            se_channels=_se_channels,
            se_activation="silu",
            se_gate="sigmoid",
            drop_path_rate=rate,
            **bn,
        )

    def features(x):
        x = conv_bn_act(
            x, stages[0].input_channels, 3, 2, name="features.0", activation_kind="silu", **bn
        )
        steps, index = [], 0
        for s, stage in enumerate(stages):
            for b in range(stage.repeats):
                stride = stage.stride if b == 0 else 1
                channels = stage.input_channels if b == 0 else stage.out_channels
                steps.append(
                    (stride, block(stage, channels, stride, index, f"features.{s + 1}.{b}"))
                )
                index += 1
        steps.append(
            (
                1,
                lambda t: conv_bn_act(
                    t,
                    last_conv,
                    1,
                    name=f"features.{len(stages) + 1}",
                    activation_kind="silu",
                    **bn,
                ),
            )
        )
        return apply_stages(x, steps, stride=2)

    def head(x, classes):
        x = layers.Dropout(dropout, name="classifier.0")(x)
        return layers.Dense(classes, name="classifier.1")(x)

    return build_model(features, head, name=name, **kwargs)


def _se_channels(input_channels: int, expanded_channels: int) -> int:
    """EfficientNet's squeeze width: a quarter of the block's input channels."""
    return max(1, input_channels // 4)


# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class EfficientNetVariant:
    """One id: its architecture key, torchvision's parameter count and GMACs
    (torchvision.models.<Id>_Weights: num_params, _ops), its weight sets (the default first)
    and the keywords each checkpoint layout needs."""

    name: str
    arch: str
    params: int
    gmacs: float
    weights: tuple[WeightSet, ...]
    layout_config: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)


tv = torchvision_weights
BICUBIC: dict[str, Any] = dict(interpolation="bicubic")
# timm's own EfficientNets use PyTorch's default batch-norm epsilon, where torchvision's
# B5-B7 (weights ported from TensorFlow) use 1e-3
_TIMM_EPSILON = {"timm": {"bn_epsilon": 1e-5}}


def _timm(tag: str, top1: float, size: int, crop_pct: float, **kwargs: Any) -> WeightSet:
    # top-1, size and crop from timm's results-imagenet.csv, the rest from its pretrained cfg
    return timm_weights(tag, top1, size=size, crop_pct=crop_pct, **kwargs)


VARIANTS: tuple[EfficientNetVariant, ...] = (
    EfficientNetVariant(
        "efficientnet_b0",
        "b0",
        5_288_548,
        0.386,
        (
            tv("efficientnet_b0_rwightman-7f5810bc.pth", "IMAGENET1K_V1", 77.692, **BICUBIC),
            _timm(
                "efficientnet_b0.ra_in1k",
                77.694,
                224,
                0.875,
                release="v0.1-weights/efficientnet_b0_ra-3dd342df.pth",
            ),
        ),
    ),
    EfficientNetVariant(
        "efficientnet_b1",
        "b1",
        7_794_184,
        0.687,
        (
            tv("efficientnet_b1-c27df63c.pth", "IMAGENET1K_V2", 79.838, resize=255, size=240),
            tv(
                "efficientnet_b1_rwightman-bac287d4.pth",
                "IMAGENET1K_V1",
                78.642,
                size=240,
                **BICUBIC,
            ),
            _timm(
                "efficientnet_b1.ft_in1k",
                78.800,
                256,
                1.0,
                release="v0.1-weights/efficientnet_b1-533bc792.pth",
            ),
        ),
    ),
    EfficientNetVariant(
        "efficientnet_b2",
        "b2",
        9_109_994,
        1.088,
        (
            tv(
                "efficientnet_b2_rwightman-c35c1473.pth",
                "IMAGENET1K_V1",
                80.608,
                resize=288,
                size=288,
                **BICUBIC,
            ),
            _timm(
                "efficientnet_b2.ra_in1k",
                80.610,
                288,
                1.0,
                release="v0.1-weights/efficientnet_b2_ra-bcdf34b7.pth",
            ),
        ),
    ),
    EfficientNetVariant(
        "efficientnet_b3",
        "b3",
        12_233_232,
        1.827,
        (
            tv(
                "efficientnet_b3_rwightman-b3899882.pth",
                "IMAGENET1K_V1",
                82.008,
                resize=320,
                size=300,
                **BICUBIC,
            ),
            _timm(
                "efficientnet_b3.ra2_in1k",
                82.242,
                320,
                1.0,
                release="v0.1-weights/efficientnet_b3_ra2-cf984f9c.pth",
            ),
        ),
    ),
    EfficientNetVariant(
        "efficientnet_b4",
        "b4",
        19_341_616,
        4.394,
        (
            tv(
                "efficientnet_b4_rwightman-23ab8bcd.pth",
                "IMAGENET1K_V1",
                83.384,
                resize=384,
                size=380,
                **BICUBIC,
            ),
            _timm(
                "efficientnet_b4.ra2_in1k",
                83.414,
                384,
                1.0,
                release="v0.1-weights/efficientnet_b4_ra2_320-7eb33cd5.pth",
            ),
        ),
    ),
    EfficientNetVariant(
        "efficientnet_b5",
        "b5",
        30_389_784,
        10.266,
        (
            tv(
                "efficientnet_b5_lukemelas-1a07897c.pth",
                "IMAGENET1K_V1",
                83.444,
                resize=456,
                size=456,
                **BICUBIC,
            ),
            _timm("efficientnet_b5.sw_in12k_ft_in1k", 85.892, 448, 1.0, bn_epsilon=1e-5),
        ),
        _TIMM_EPSILON,
    ),
    EfficientNetVariant(
        "efficientnet_b6",
        "b6",
        43_040_704,
        19.068,
        (
            tv(
                "efficientnet_b6_lukemelas-24a108a5.pth",
                "IMAGENET1K_V1",
                84.008,
                resize=528,
                size=528,
                **BICUBIC,
            ),
        ),
        _TIMM_EPSILON,
    ),
    EfficientNetVariant(
        "efficientnet_b7",
        "b7",
        66_347_960,
        37.746,
        (
            tv(
                "efficientnet_b7_lukemelas-c5b4e57e.pth",
                "IMAGENET1K_V1",
                84.122,
                resize=600,
                size=600,
                **BICUBIC,
            ),
        ),
        _TIMM_EPSILON,
    ),
    EfficientNetVariant(
        "efficientnet_v2_s",
        "v2_s",
        21_458_488,
        8.366,
        (tv("efficientnet_v2_s-dd5fe13b.pth", "IMAGENET1K_V1", 84.228, resize=384, size=384),),
    ),
    EfficientNetVariant(
        "efficientnet_v2_m",
        "v2_m",
        54_139_356,
        24.582,
        (tv("efficientnet_v2_m-dc08266a.pth", "IMAGENET1K_V1", 85.112, resize=480, size=480),),
    ),
    EfficientNetVariant(
        "efficientnet_v2_l",
        "v2_l",
        118_515_272,
        56.08,
        (
            tv(
                "efficientnet_v2_l-59c71312.pth",
                "IMAGENET1K_V1",
                85.808,
                resize=480,
                size=480,
                mean=(0.5, 0.5, 0.5),
                std=(0.5, 0.5, 0.5),
                **BICUBIC,
            ),
        ),
    ),
)

for _variant in VARIANTS:
    register_model(
        _variant.name,
        "efficientnet",
        efficientnet,
        config=dict(arch=_variant.arch),
        params=_variant.params,
        gmacs=_variant.gmacs,
        classifier=("classifier.1",),
        layout_config=_variant.layout_config,
        weights=_variant.weights,
    )

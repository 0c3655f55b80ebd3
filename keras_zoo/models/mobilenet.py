"""MobileNet V1, V2 and V3 (Small, Large) as tables of block configurations.

- V2 and V3 follow torchvision exactly (module paths features.N.conv.K / features.N.block.K,
  classifier.K; `alpha` is torchvision's width_mult), so torchvision checkpoints load by name.
- V1 is timm's mobilenetv1_100 (conv_stem, bn1, blocks.S.B.conv_dw, .bn1, .conv_pw, .bn2,
  classifier), ReLU6 after every batch norm as in timm, keras.applications and the TF-slim
  original (the paper's figure says ReLU), batch norm epsilon 1e-5;
  `alpha` scales every layer's channels, rounded to multiples of 8 as timm does (for alpha in
  0.25, 0.5, 0.75, 1.0 this equals keras.applications MobileNet's int(c * alpha)).

Keras and the blocks are imported by the functions that build: the tables register the ids
without TensorFlow.

>>> import keras_zoo
>>> model = keras_zoo.build("mobilenet_v2", alpha=0.75)
>>> sum(int(w.numpy().size) for w in model.trainable_weights)
2636424
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from keras_zoo import checks
from keras_zoo.builder import build_model
from keras_zoo.registry import register_model
from keras_zoo.weight_sets import WeightSet, timm_weights, torchvision_weights

if TYPE_CHECKING:
    import keras

TITLE = "MobileNet V1/V2/V3"  # the family as the command line's description names it
V3_BN_EPSILON = 1e-3  # torchvision's V3 (timm's own V3 weights use PyTorch's default 1e-5)
V3_BN_MOMENTUM = 0.99  # torch momentum 0.01


def _check_alpha(alpha: Any) -> float:
    return checks.check_positive_number(alpha, "alpha", usual="0.35 .. 1.4")


# ---------------------------------------------------------------------------------------------
# MobileNet V1: its stages of depthwise separable blocks, after a 32-channel stride-2 stem.
@dataclasses.dataclass(frozen=True)
class V1Stage:
    channels: int  # output channels, before width scaling
    stride: int  # the first block's
    repeats: int


V1_STAGES = (
    V1Stage(64, 1, 1),
    V1Stage(128, 2, 2),
    V1Stage(256, 2, 2),
    V1Stage(512, 2, 6),
    V1Stage(1024, 2, 2),
)


def mobilenet_v1(
    *, alpha: float = 1.0, depth_multiplier: int = 1, name: str = "mobilenet_v1", **kwargs: Any
) -> keras.Model:
    """MobileNet V1 (Howard et al., 2017): depthwise separable convolutions.

    alpha is the paper's width multiplier; the resolution multiplier is the input size
    (input_shape=(160, 160, 3) ...). depth_multiplier multiplies the depthwise channels, as in
    keras.applications.MobileNet.
    """
    from keras import layers

    from keras_zoo.blocks import activation, batch_norm, conv2d, make_divisible
    from keras_zoo.layers import apply_stages

    alpha = _check_alpha(alpha)
    checks.check_positive_int(depth_multiplier, "depth_multiplier")

    def features(x):
        x = conv2d(x, make_divisible(32 * alpha), 3, 2, name="conv_stem")
        x = batch_norm(x, name="bn1", fused=True)
        x = activation(x, "relu6", name="act1")
        steps = []
        for s, stage in enumerate(V1_STAGES):
            for b in range(stage.repeats):
                stride = stage.stride if b == 0 else 1
                steps.append(
                    (
                        stride,
                        _v1_step(
                            make_divisible(stage.channels * alpha),
                            stride,
                            depth_multiplier,
                            f"blocks.{s}.{b}",
                        ),
                    )
                )
        return apply_stages(x, steps, stride=2)

    def head(x, classes):
        return layers.Dense(classes, name="classifier")(x)

    return build_model(features, head, name=name, **kwargs)


def _v1_step(filters, stride, depth_multiplier, name):
    from keras_zoo.blocks import depthwise_separable

    return lambda x: depthwise_separable(
        x, filters, stride, depth_multiplier, name=name, activation_kind="relu6"
    )


# ---------------------------------------------------------------------------------------------
# MobileNet V2: torchvision's inverted_residual_setting (t, c, n, s), one row per stage.
@dataclasses.dataclass(frozen=True)
class V2Stage:
    expansion: int  # t
    channels: int  # c, output channels before width scaling
    repeats: int  # n
    stride: int  # s, the first block's


V2_SETTING = (
    V2Stage(1, 16, 1, 1),
    V2Stage(6, 24, 2, 2),
    V2Stage(6, 32, 3, 2),
    V2Stage(6, 64, 4, 2),
    V2Stage(6, 96, 3, 1),
    V2Stage(6, 160, 3, 2),
    V2Stage(6, 320, 1, 1),
)


def mobilenet_v2(
    *, alpha: float = 1.0, dropout: float = 0.2, name: str = "mobilenet_v2", **kwargs: Any
) -> keras.Model:
    """MobileNet V2 (Sandler et al., 2018): inverted residuals with linear bottlenecks.

    alpha is torchvision's width_mult: channels rounded by make_divisible to multiples of 8,
    the last 1280-channel convolution not narrowed below alpha 1.0.
    """
    from keras import layers

    from keras_zoo.blocks import conv_bn_act, make_divisible
    from keras_zoo.layers import apply_stages

    alpha = _check_alpha(alpha)
    dropout = checks.check_fraction(dropout, "dropout")
    stem = make_divisible(32 * alpha)
    last = make_divisible(1280 * max(1.0, alpha))

    def features(x):
        x = conv_bn_act(x, stem, 3, 2, name="features.0", activation_kind="relu6")
        steps, index, channels = [], 1, stem
        for stage in V2_SETTING:
            out = make_divisible(stage.channels * alpha)
            for i in range(stage.repeats):
                stride = stage.stride if i == 0 else 1
                steps.append(
                    (stride, _v2_step(int(round(channels * stage.expansion)), out, stride, index))
                )
                channels, index = out, index + 1
        steps.append(
            (
                1,
                lambda t: conv_bn_act(
                    t, last, 1, name=f"features.{index}", activation_kind="relu6"
                ),
            )
        )
        return apply_stages(x, steps, stride=2)

    def head(x, classes):
        x = layers.Dropout(dropout, name="classifier.0")(x)
        return layers.Dense(classes, name="classifier.1")(x)

    return build_model(features, head, name=name, **kwargs)


def _v2_step(expanded, out, stride, index):
    from keras_zoo.blocks import inverted_res_block

    return lambda x: inverted_res_block(
        x, expanded, out, stride, activation_kind="relu6", name=f"features.{index}", seq="conv"
    )


# ---------------------------------------------------------------------------------------------
# MobileNet V3: torchvision's InvertedResidualConfig rows, before width scaling.
@dataclasses.dataclass(frozen=True)
class V3Block:
    input_channels: int
    kernel: int
    expanded_channels: int
    out_channels: int
    use_se: bool
    activation: str  # "RE" (ReLU) or "HS" (hard-swish)
    stride: int


V3_LARGE = (
    V3Block(16, 3, 16, 16, False, "RE", 1),
    V3Block(16, 3, 64, 24, False, "RE", 2),
    V3Block(24, 3, 72, 24, False, "RE", 1),
    V3Block(24, 5, 72, 40, True, "RE", 2),
    V3Block(40, 5, 120, 40, True, "RE", 1),
    V3Block(40, 5, 120, 40, True, "RE", 1),
    V3Block(40, 3, 240, 80, False, "HS", 2),
    V3Block(80, 3, 200, 80, False, "HS", 1),
    V3Block(80, 3, 184, 80, False, "HS", 1),
    V3Block(80, 3, 184, 80, False, "HS", 1),
    V3Block(80, 3, 480, 112, True, "HS", 1),
    V3Block(112, 3, 672, 112, True, "HS", 1),
    V3Block(112, 5, 672, 160, True, "HS", 2),
    V3Block(160, 5, 960, 160, True, "HS", 1),
    V3Block(160, 5, 960, 160, True, "HS", 1),
)
V3_SMALL = (
    V3Block(16, 3, 16, 16, True, "RE", 2),
    V3Block(16, 3, 72, 24, False, "RE", 2),
    V3Block(24, 3, 88, 24, False, "RE", 1),
    V3Block(24, 5, 96, 40, True, "HS", 2),
    V3Block(40, 5, 240, 40, True, "HS", 1),
    V3Block(40, 5, 240, 40, True, "HS", 1),
    V3Block(40, 5, 120, 48, True, "HS", 1),
    V3Block(48, 5, 144, 48, True, "HS", 1),
    V3Block(48, 5, 288, 96, True, "HS", 2),
    V3Block(96, 5, 576, 96, True, "HS", 1),
    V3Block(96, 5, 576, 96, True, "HS", 1),
)


@dataclasses.dataclass(frozen=True)
class V3Arch:
    blocks: tuple[V3Block, ...]
    last_channel: int  # the classifier's hidden width, before width scaling


V3_ARCHS = {"large": V3Arch(V3_LARGE, 1280), "small": V3Arch(V3_SMALL, 1024)}


def mobilenet_v3(
    arch: str,
    *,
    alpha: float = 1.0,
    dropout: float = 0.2,
    bn_epsilon: float = V3_BN_EPSILON,
    name: str = "mobilenet_v3",
    **kwargs: Any,
) -> keras.Model:
    """MobileNet V3 (Howard et al., 2019), "large" or "small", as torchvision defines it:
    hard-swish, squeeze-and-excitation with a hard-sigmoid gate, a 16-filter stem, and the
    classifier Linear -> hard-swish -> Dropout -> Linear. alpha is torchvision's width_mult
    (every channel count, the classifier's hidden width included). bn_epsilon is the batch
    norms' epsilon: torchvision's 1e-3, or 1e-5 for timm's weights (set by the weight set)."""
    from keras import layers

    from keras_zoo.blocks import activation, conv_bn_act, make_divisible
    from keras_zoo.layers import apply_stages

    alpha = _check_alpha(alpha)
    dropout = checks.check_fraction(dropout, "dropout")
    bn = dict(
        epsilon=checks.check_positive_number(bn_epsilon, "bn_epsilon", usual="1e-3, 1e-5"),
        momentum=V3_BN_MOMENTUM,
    )
    rows, last_channel = V3_ARCHS[arch].blocks, V3_ARCHS[arch].last_channel
    scale = lambda c: make_divisible(c * alpha)  # noqa: E731
    last_conv = 6 * scale(rows[-1].out_channels)

    def features(x):
        x = conv_bn_act(
            x,
            scale(rows[0].input_channels),
            3,
            2,
            name="features.0",
            activation_kind="hardswish",
            **bn,
        )
        steps = [(row.stride, _v3_step(row, scale, i + 1, bn)) for i, row in enumerate(rows)]
        steps.append(
            (
                1,
                lambda t: conv_bn_act(
                    t,
                    last_conv,
                    1,
                    name=f"features.{len(rows) + 1}",
                    activation_kind="hardswish",
                    **bn,
                ),
            )
        )
        return apply_stages(x, steps, stride=2)

    def head(x, classes):
        x = layers.Dense(scale(last_channel), name="classifier.0")(x)
        x = activation(x, "hardswish", name="classifier.1")
        x = layers.Dropout(dropout, name="classifier.2")(x)
        return layers.Dense(classes, name="classifier.3")(x)

    return build_model(features, head, name=name, **kwargs)


def _v3_step(row: V3Block, scale, index: int, bn: dict):
    from keras_zoo.blocks import inverted_res_block

    return lambda x: inverted_res_block(
        x,
        scale(row.expanded_channels),
        scale(row.out_channels),
        row.stride,
        row.kernel,
        activation_kind="hardswish" if row.activation == "HS" else "relu",
        use_se=row.use_se,
        name=f"features.{index}",
        seq="block",
        project_as_unit=True,
        **bn,
    )


# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class MobileNetVariant:
    """One MobileNet id: the function that builds it and the architecture it fixes (`config`),
    its parameter count and GMACs, the classifier's layers, its weight sets (the default first)
    and the keywords each checkpoint layout needs (`layout_config`)."""

    name: str
    builder: Callable[..., keras.Model]
    params: int
    gmacs: float
    classifier: tuple[str, ...]
    weights: tuple[WeightSet, ...] = ()
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    layout_config: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)


# Parameter counts are torchvision's (V2, V3) and keras.applications' (V1) at alpha 1.0; GMACs
# torchvision's published figures (V1: the paper's). Weight sets: torchvision's
# (torchvision.models.<Id>_Weights, DEFAULT first) and timm's (top-1 from timm's
# results-imagenet.csv; mobilenetv1_100.ra4's from timm's README, at 224).
tv = torchvision_weights
_V3: dict[str, Any] = dict(alpha=1.0, bn_epsilon=V3_BN_EPSILON)
# timm's V3 weights were trained with PyTorch's default batch-norm epsilon
_V3_LAYOUTS = {"timm": {"bn_epsilon": 1e-5}}
VARIANTS: tuple[MobileNetVariant, ...] = (
    MobileNetVariant(
        "mobilenet_v1",
        mobilenet_v1,
        4_231_976,
        0.569,
        ("classifier",),
        (
            timm_weights(
                "mobilenetv1_100.ra4_e3600_r224_in1k",
                75.382,
                mean=(0.5, 0.5, 0.5),
                std=(0.5, 0.5, 0.5),
                alpha=1.0,
                depth_multiplier=1,
            ),
        ),
    ),
    MobileNetVariant(
        "mobilenet_v2",
        mobilenet_v2,
        3_504_872,
        0.301,
        ("classifier.1",),
        (
            tv("mobilenet_v2-7ebf99e0.pth", "IMAGENET1K_V2", 72.154, resize=232, alpha=1.0),
            tv("mobilenet_v2-b0353104.pth", "IMAGENET1K_V1", 71.878, alpha=1.0),
            timm_weights(
                "mobilenetv2_100.ra_in1k",
                72.976,
                alpha=1.0,
                release="v0.1-weights/mobilenetv2_100_ra-b33bc2c4.pth",
            ),
        ),
    ),
    MobileNetVariant(
        "mobilenet_v3_large",
        mobilenet_v3,
        5_483_032,
        0.217,
        ("classifier.0", "classifier.3"),
        (
            tv("mobilenet_v3_large-5c1a4163.pth", "IMAGENET1K_V2", 75.274, resize=232, **_V3),
            tv("mobilenet_v3_large-8738ca79.pth", "IMAGENET1K_V1", 74.042, **_V3),
            timm_weights(
                "mobilenetv3_large_100.ra_in1k",
                75.766,
                alpha=1.0,
                bn_epsilon=1e-5,
                release="v0.1-weights/mobilenetv3_large_100_ra-f55367f5.pth",
            ),
        ),
        config=dict(arch="large"),
        layout_config=_V3_LAYOUTS,
    ),
    MobileNetVariant(
        "mobilenet_v3_small",
        mobilenet_v3,
        2_542_856,
        0.057,
        ("classifier.0", "classifier.3"),
        (
            tv("mobilenet_v3_small-047dcff4.pth", "IMAGENET1K_V1", 67.668, **_V3),
            timm_weights(
                "mobilenetv3_small_100.lamb_in1k",
                67.656,
                alpha=1.0,
                bn_epsilon=1e-5,
                release="v0.1-weights/mobilenetv3_small_100_lamb-266a294c.pth",
            ),
        ),
        config=dict(arch="small"),
        layout_config=_V3_LAYOUTS,
    ),
)

for _variant in VARIANTS:
    register_model(
        _variant.name,
        "mobilenet",
        _variant.builder,
        config=_variant.config,
        params=_variant.params,
        gmacs=_variant.gmacs,
        classifier=_variant.classifier,
        layout_config=_variant.layout_config,
        weights=_variant.weights,
    )

"""ShuffleNet V1 and V2 as tables of stage channels.

- V2 follows torchvision (conv1.0, stage2.0.branch1.0, stage2.0.branch2.3, conv5.0, fc), so its
  checkpoints load by name; `scale` picks the width (0.5, 1.0, 1.5, 2.0).
- V1 follows megvii's official release (megvii-model/ShuffleNet-Series, ShuffleNetV1: first_conv,
  features.N.branch_main_1/2, classifier.0 without bias) for groups 3 and 8, the settings with
  official weights, with its stage channels and stems; groups 1, 2 and 4 take the paper's Table 1
  channels times `scale` (rounded to multiples of 4 x groups, so every unit's group convolutions
  divide evenly) and a 24 x scale stem. Where the Keras side differs: megvii's 7x7 average pool
  before the classifier is a global average pool (the same at 224x224, and any size works), and
  its channel shuffle is expressed as the paper's shuffle with C / groups groups (the same
  permutation; see blocks.shuffle_v1_unit).

Keras and the blocks are imported by the functions that build: the tables register the ids
without TensorFlow.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from keras_zoo import checks
from keras_zoo.builder import build_model
from keras_zoo.registry import register_model
from keras_zoo.weight_sets import (
    MEGVII_PREPROCESSING,
    Preprocessing,
    WeightSet,
    megvii_weights,
    torchvision_weights,
)

if TYPE_CHECKING:
    import keras

TITLE = "ShuffleNet V1/V2"  # the family as the command line's description names it
STAGE_REPEATS = (4, 8, 4)
SCALES = (0.5, 1.0, 1.5, 2.0)


# ---------------------------------------------------------------------------------------------
# ShuffleNet V2: torchvision's stages_out_channels per width, stem 24.
@dataclasses.dataclass(frozen=True)
class V2Widths:
    stages: tuple[int, int, int]  # stage2, stage3, stage4 output channels
    last: int  # conv5's


V2_CHANNELS = {
    0.5: V2Widths((48, 96, 192), 1024),
    1.0: V2Widths((116, 232, 464), 1024),
    1.5: V2Widths((176, 352, 704), 1024),
    2.0: V2Widths((244, 488, 976), 2048),
}


def _check_scale(scale: Any) -> float:
    return float(checks.check_choice(scale, "scale", SCALES))


def shufflenet_v2(*, scale: float = 1.0, name: str = "shufflenet_v2", **kwargs: Any) -> keras.Model:
    """ShuffleNet V2 (Ma et al., 2018) at width `scale` (0.5, 1.0, 1.5 or 2.0)."""
    from keras import layers

    from keras_zoo.blocks import conv_bn_act
    from keras_zoo.layers import apply_stages

    widths = V2_CHANNELS[_check_scale(scale)]
    stages, last = widths.stages, widths.last

    def features(x):
        x = conv_bn_act(x, 24, 3, 2, name="conv1", activation_kind="relu")
        steps = [(2, _max_pool)]
        for index, (channels, repeats) in enumerate(zip(stages, STAGE_REPEATS)):
            for i in range(repeats):
                steps.append(
                    (
                        2 if i == 0 else 1,
                        _v2_step(channels, 2 if i == 0 else 1, f"stage{index + 2}.{i}"),
                    )
                )
        steps.append((1, lambda t: conv_bn_act(t, last, 1, name="conv5", activation_kind="relu")))
        return apply_stages(x, steps, stride=2)

    def head(x, classes):
        return layers.Dense(classes, name="fc")(x)

    return build_model(features, head, name=name, **kwargs)


def _max_pool(x, name="maxpool"):
    from keras import layers

    # zero padding equals PyTorch's -inf padding here: the input is >= 0 after a ReLU
    x = layers.ZeroPadding2D(1, name=f"{name}.pad")(x)
    return layers.MaxPooling2D(3, 2, name=name)(x)


def _v2_step(channels, stride, name):
    from keras_zoo.blocks import shuffle_unit

    return lambda x: shuffle_unit(x, channels, stride, name=name)


# ---------------------------------------------------------------------------------------------
# ShuffleNet V1's channels. Groups 3 and 8: megvii's tables for every scale, by
# (groups, scale). Other groups: the paper's Table 1 at 1.0x, by groups.
@dataclasses.dataclass(frozen=True)
class V1Widths:
    stem: int
    stages: tuple[int, int, int]  # stage2, stage3, stage4 output channels


V1_OFFICIAL = {
    (3, 0.5): V1Widths(12, (120, 240, 480)),
    (3, 1.0): V1Widths(24, (240, 480, 960)),
    (3, 1.5): V1Widths(24, (360, 720, 1440)),
    (3, 2.0): V1Widths(48, (480, 960, 1920)),
    (8, 0.5): V1Widths(16, (192, 384, 768)),
    (8, 1.0): V1Widths(24, (384, 768, 1536)),
    (8, 1.5): V1Widths(24, (576, 1152, 2304)),
    (8, 2.0): V1Widths(48, (768, 1536, 3072)),
}
V1_PAPER = {
    1: V1Widths(24, (144, 288, 576)),
    2: V1Widths(24, (200, 400, 800)),
    4: V1Widths(24, (272, 544, 1088)),
}
V1_GROUPS = (1, 2, 3, 4, 8)


def v1_channels(groups: int, scale: float) -> tuple[int, int, int, int]:
    """(stem, stage2, stage3, stage4) output channels of ShuffleNet V1 at `groups`, `scale`."""
    from keras_zoo.blocks import make_divisible

    checks.check_choice(groups, "groups", V1_GROUPS)
    scale = _check_scale(scale)
    if (groups, scale) in V1_OFFICIAL:
        official = V1_OFFICIAL[(groups, scale)]
        return (official.stem, *official.stages)
    # stage widths double from stage to stage; a multiple of 4 x groups keeps every group
    # convolution (bottleneck = output / 4) even
    paper = V1_PAPER[groups]
    stage2 = make_divisible(paper.stages[0] * scale, 4 * groups)
    return (int(paper.stem * scale), stage2, 2 * stage2, 4 * stage2)


def shufflenet_v1(
    *, groups: int = 3, scale: float = 1.0, name: str = "shufflenet_v1", **kwargs: Any
) -> keras.Model:
    """ShuffleNet V1 (Zhang et al., 2018) with `groups` in 1, 2, 3, 4, 8 and `scale` in 0.5,
    1.0, 1.5, 2.0: pointwise group convolutions, channel shuffle, depthwise convolutions."""
    from keras import layers

    from keras_zoo.blocks import batch_norm, conv2d
    from keras_zoo.layers import apply_stages

    stem, *stages = v1_channels(groups, scale)

    def features(x):
        x = conv2d(x, stem, 3, 2, name="first_conv.0")
        x = batch_norm(x, name="first_conv.1", fused=True)
        x = layers.ReLU(name="first_conv.2")(x)
        steps, index = [(2, _max_pool)], 0
        for s, (channels, repeats) in enumerate(zip(stages, STAGE_REPEATS)):
            for i in range(repeats):
                steps.append(
                    (
                        2 if i == 0 else 1,
                        _v1_step(channels, 2 if i == 0 else 1, groups, s == 0 and i == 0, index),
                    )
                )
                index += 1
        return apply_stages(x, steps, stride=2)

    def head(x, classes):
        return layers.Dense(classes, use_bias=False, name="classifier.0")(x)

    return build_model(features, head, name=name, **kwargs)


def _v1_step(channels, stride, groups, first_group, index):
    from keras_zoo.blocks import shuffle_v1_unit

    return lambda x: shuffle_v1_unit(
        x, channels, stride, groups, first_group=first_group, name=f"features.{index}"
    )


# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ShuffleNetVariant:
    """One ShuffleNet id: the function that builds it and the architecture it fixes (`config`),
    its parameter count and GMACs, the classifier's layers, its weight sets (the default first)
    and, for an id without weights, its preprocessing."""

    name: str
    builder: Callable[..., keras.Model]
    params: int
    gmacs: float
    classifier: tuple[str, ...]
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    weights: tuple[WeightSet, ...] = ()
    preprocessing: Preprocessing | None = None


def _scale_name(scale: float) -> str:
    return str(scale).replace(".", "_")


def _v2(
    scale: float, params: int, gmacs: float, file: str, top1: float, resize: int
) -> ShuffleNetVariant:
    return ShuffleNetVariant(
        f"shufflenet_v2_x{_scale_name(scale)}",
        shufflenet_v2,
        params,
        gmacs,
        ("fc",),
        dict(scale=scale),
        (torchvision_weights(file, "IMAGENET1K_V1", top1, resize=resize),),
    )


def _v1(groups: int, scale: float, params: int, gmacs: float, top1: float) -> ShuffleNetVariant:
    return ShuffleNetVariant(
        f"shufflenet_v1_g{groups}_x{_scale_name(scale)}",
        shufflenet_v1,
        params,
        gmacs,
        ("classifier.0",),
        dict(groups=groups, scale=scale),
        (megvii_weights(groups, scale, top1),),
    )


# V2: torchvision's published parameter counts, GMACs and IMAGENET1K_V1 weights (file, top-1,
# the resize before the 224 crop).
V2_VARIANTS = (
    _v2(0.5, 1_366_792, 0.04, "shufflenetv2_x0.5-f707e7126e.pth", 60.552, 256),
    _v2(1.0, 2_278_604, 0.145, "shufflenetv2_x1-5666bf0f80.pth", 69.362, 256),
    _v2(1.5, 3_503_624, 0.296, "shufflenetv2_x1_5-3c479a10.pth", 72.996, 232),
    _v2(2.0, 7_393_996, 0.583, "shufflenetv2_x2_0-8be3c8ee.pth", 76.230, 232),
)
# V1: parameter counts and GMACs as counted here (trainable weights, keras_zoo.count_macs);
# tests/test_shufflenet.py checks the counts against the megvii-layout torch reference and the
# 1.0x complexities against the paper's Table 1. Top-1: 100 minus the top-1 error megvii
# publishes for its checkpoints (ShuffleNet-Series, ShuffleNetV1/README.md).
V1_VARIANTS = (
    _v1(3, 0.5, 717_324, 0.0376, 57.3),
    _v1(3, 1.0, 1_864_728, 0.1375, 67.8),
    _v1(3, 1.5, 3_441_168, 0.2924, 71.6),
    _v1(3, 2.0, 5_449_776, 0.524, 74.1),
    _v1(8, 0.5, 1_010_448, 0.0405, 58.8),
    _v1(8, 1.0, 2_433_768, 0.1384, 68.0),
    _v1(8, 1.5, 4_268_952, 0.2902, 71.0),
    _v1(8, 2.0, 6_521_232, 0.5219, 72.9),
)
VARIANTS: tuple[ShuffleNetVariant, ...] = (
    *V2_VARIANTS,
    # the ids whose width (and V1's groups) are keywords: counted at the defaults, no weights
    dataclasses.replace(V2_VARIANTS[1], name="shufflenet_v2", config={}, weights=()),
    *V1_VARIANTS,
    dataclasses.replace(
        V1_VARIANTS[1],
        name="shufflenet_v1",
        config={},
        weights=(),
        preprocessing=MEGVII_PREPROCESSING,
    ),
)

for _variant in VARIANTS:
    register_model(
        _variant.name,
        "shufflenet",
        _variant.builder,
        config=_variant.config,
        params=_variant.params,
        gmacs=_variant.gmacs,
        classifier=_variant.classifier,
        weights=_variant.weights,
        **({"preprocessing": _variant.preprocessing} if _variant.preprocessing else {}),
    )

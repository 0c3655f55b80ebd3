"""ResNet, ResNeXt and Wide-ResNet: torchvision's "v1.5" ResNet family as a table of variants.

Each variant is a block type, the number of blocks in the four stages, and the bottleneck's
groups and width; the layer names are torchvision's module paths (conv1, bn1, layer1.0.conv1,
layer1.0.downsample.0, fc), so torchvision checkpoints load by name. Keras and the blocks are
imported by `resnet`, which builds: the table registers the ids without TensorFlow.

>>> import keras_zoo
>>> model = keras_zoo.build("resnext50_32x4d", include_top=False, pooling="avg")
>>> model.output.shape
(None, 2048)
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from keras_zoo.builder import build_model
from keras_zoo.registry import register_model
from keras_zoo.weight_sets import WeightSet, timm_weights, torchvision_weights

if TYPE_CHECKING:
    import keras


TITLE = "ResNet/ResNeXt/Wide-ResNet"  # the family as the command line's description names it


@dataclasses.dataclass(frozen=True)
class ResNetVariant:
    """One ResNet id: its block (the name of a function of keras_zoo.blocks), the blocks in each
    of the four stages, the bottleneck's groups and width per group, torchvision's published
    parameter count and GMACs, and its weight sets (the default first)."""

    name: str
    block: str
    layers: tuple[int, int, int, int]
    params: int
    gmacs: float
    weights: tuple[WeightSet, ...] = ()
    groups: int = 1
    width_per_group: int = 64


# The weight sets are torchvision's (torchvision.models.<Id>_Weights, DEFAULT first) and timm's.
tv = torchvision_weights
VARIANTS: tuple[ResNetVariant, ...] = (
    ResNetVariant(
        "resnet18",
        "basic_block",
        (2, 2, 2, 2),
        11_689_512,
        1.814,
        (tv("resnet18-f37072fd.pth", "IMAGENET1K_V1", 69.758),),
    ),
    ResNetVariant(
        "resnet34",
        "basic_block",
        (3, 4, 6, 3),
        21_797_672,
        3.664,
        (tv("resnet34-b627a593.pth", "IMAGENET1K_V1", 73.314),),
    ),
    ResNetVariant(
        "resnet50",
        "bottleneck",
        (3, 4, 6, 3),
        25_557_032,
        4.089,
        (
            tv("resnet50-11ad3fa6.pth", "IMAGENET1K_V2", 80.858, resize=232),
            tv("resnet50-0676ba61.pth", "IMAGENET1K_V1", 76.130),
            # timm's results-imagenet.csv: 81.214 at 288x288, crop 1.0
            timm_weights(
                "resnet50.a1_in1k",
                81.214,
                size=288,
                crop_pct=1.0,
                release="v0.1-rsb-weights/resnet50_a1_0-14fe96d1.pth",
            ),
        ),
    ),
    ResNetVariant(
        "resnet101",
        "bottleneck",
        (3, 4, 23, 3),
        44_549_160,
        7.801,
        (
            tv("resnet101-cd907fc2.pth", "IMAGENET1K_V2", 81.886, resize=232),
            tv("resnet101-63fe2227.pth", "IMAGENET1K_V1", 77.374),
        ),
    ),
    ResNetVariant(
        "resnet152",
        "bottleneck",
        (3, 8, 36, 3),
        60_192_808,
        11.514,
        (
            tv("resnet152-f82ba261.pth", "IMAGENET1K_V2", 82.284, resize=232),
            tv("resnet152-394f9c45.pth", "IMAGENET1K_V1", 78.312),
        ),
    ),
    ResNetVariant(
        "resnext50_32x4d",
        "bottleneck",
        (3, 4, 6, 3),
        25_028_904,
        4.23,
        (
            tv("resnext50_32x4d-1a0047aa.pth", "IMAGENET1K_V2", 81.198, resize=232),
            tv("resnext50_32x4d-7cdf4587.pth", "IMAGENET1K_V1", 77.618),
        ),
        groups=32,
        width_per_group=4,
    ),
    ResNetVariant(
        "resnext101_32x8d",
        "bottleneck",
        (3, 4, 23, 3),
        88_791_336,
        16.414,
        (
            tv("resnext101_32x8d-110c445d.pth", "IMAGENET1K_V2", 82.834, resize=232),
            tv("resnext101_32x8d-8ba56ff5.pth", "IMAGENET1K_V1", 79.312),
        ),
        groups=32,
        width_per_group=8,
    ),
    ResNetVariant(
        "resnext101_64x4d",
        "bottleneck",
        (3, 4, 23, 3),
        83_455_272,
        15.46,
        (tv("resnext101_64x4d-173b62eb.pth", "IMAGENET1K_V1", 83.246, resize=232),),
        groups=64,
        width_per_group=4,
    ),
    ResNetVariant(
        "wide_resnet50_2",
        "bottleneck",
        (3, 4, 6, 3),
        68_883_240,
        11.398,
        (
            tv("wide_resnet50_2-9ba9bcbe.pth", "IMAGENET1K_V2", 81.602, resize=232),
            tv("wide_resnet50_2-95faca4d.pth", "IMAGENET1K_V1", 78.468),
        ),
        width_per_group=128,
    ),
    ResNetVariant(
        "wide_resnet101_2",
        "bottleneck",
        (3, 4, 23, 3),
        126_886_696,
        22.753,
        (
            tv("wide_resnet101_2-d733dc28.pth", "IMAGENET1K_V2", 82.510, resize=232),
            tv("wide_resnet101_2-32ee1156.pth", "IMAGENET1K_V1", 78.848),
        ),
        width_per_group=128,
    ),
)

STAGE_PLANES = (64, 128, 256, 512)
BLOCKS = ("basic_block", "bottleneck")  # of keras_zoo.blocks


def resnet(
    block: str,
    layers_per_stage: tuple[int, int, int, int],
    *,
    groups: int = 1,
    width_per_group: int = 64,
    drop_path_rate: float = 0.0,
    name: str = "resnet",
    **kwargs: Any,
) -> keras.Model:
    """A ResNet of `block`s ("basic_block" or "bottleneck") with `layers_per_stage` blocks in
    each of the four stages; `kwargs` are build_model's shared keywords (include_top, weights,
    input_shape, ...).

    `drop_path_rate` (in [0, 1), off by default) is stochastic depth as timm's ResNet trains
    with it: block i of all n drops its residual branch at drop_path_rate * i / (n - 1)
    (`keras_zoo.layers.drop_path_rates`; the first block has none); inference is unchanged."""
    from keras import layers

    from keras_zoo import blocks, checks
    from keras_zoo.blocks import batch_norm, conv2d
    from keras_zoo.layers import apply_stages, drop_path_rates

    checks.check_choice(block, "block", BLOCKS)
    drop_path_rate = checks.check_fraction(drop_path_rate, "drop_path_rate")
    rates = drop_path_rates(drop_path_rate, sum(layers_per_stage))
    block_fn = getattr(blocks, block)
    block_kwargs = (
        {} if block == "basic_block" else {"groups": groups, "width_per_group": width_per_group}
    )

    def features(x):
        x = conv2d(x, 64, 7, 2, name="conv1")
        x = batch_norm(x, name="bn1", fused=True)
        x = layers.ReLU(name="relu")(x)
        # Zero padding equals PyTorch's -inf padding here: the input is >= 0 after the ReLU.
        x = layers.ZeroPadding2D(1, name="maxpool.pad")(x)
        x = layers.MaxPooling2D(3, 2, name="maxpool")(x)
        positions = [
            (i, j, planes)
            for i, (planes, n_blocks) in enumerate(zip(STAGE_PLANES, layers_per_stage))
            for j in range(n_blocks)
        ]
        steps = [
            (stride, _block_step(block_fn, planes, stride, block_kwargs, rate, f"layer{i + 1}.{j}"))
            for (i, j, planes), rate in zip(positions, rates)
            for stride in [2 if i > 0 and j == 0 else 1]
        ]
        return apply_stages(x, steps, stride=4)

    def head(x, classes):
        return layers.Dense(classes, name="fc")(x)

    return build_model(features, head, name=name, **kwargs)


def _block_step(block, planes, stride, block_kwargs, drop_path_rate, name):
    return lambda x: block(
        x, planes, stride, **block_kwargs, drop_path_rate=drop_path_rate, name=name
    )


for _variant in VARIANTS:
    register_model(
        _variant.name,
        "resnet",
        resnet,
        config=dict(
            block=_variant.block,
            layers_per_stage=_variant.layers,
            groups=_variant.groups,
            width_per_group=_variant.width_per_group,
        ),
        params=_variant.params,
        gmacs=_variant.gmacs,
        classifier=("fc",),
        weights=_variant.weights,
    )

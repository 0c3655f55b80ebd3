"""ConvNeXt (Liu et al., 2022, "A ConvNet for the 2020s") as torchvision defines it, as a table
of variants.

Each variant is the number of blocks and the channels of its four stages (torchvision's
block_setting). The layer names are torchvision's module paths, so torchvision checkpoints load
by name:

- the stem: features.0.0, a 4x4 convolution of stride 4 with a bias, and features.0.1, a
  LayerNorm;
- the stages features.1, 3, 5, 7 of blocks (`convnext_block`: a 7x7 depthwise convolution
  features.K.B.block.0, LayerNorm block.2, Dense block.3 to four times the channels, GELU,
  Dense block.5 back, the layer scale features.K.B.layer_scale, the residual add);
- the downsampling between them, features.2, 4, 6: a LayerNorm (.0) and a 2x2 convolution of
  stride 2 with a bias (.1);
- the head: the global average, classifier.0 (a LayerNorm of the pooled features) and
  classifier.2 (Dense).

Every LayerNorm normalises the channels (NHWC's last axis, what torchvision's LayerNorm2d
computes on NCHW) with epsilon 1e-6; GELU is torch's exact erf form. timm's checkpoints (stem,
stages.S.downsample, stages.S.blocks.B.conv_dw / norm / mlp.fc1 / mlp.fc2 / gamma, head.norm,
head.fc) load through their layout table (`keras_zoo.port.key_maps`). The stage outputs
(features.1, 3, 5, 7, at strides 4, 8, 16, 32) are marked as `StageOutput`s.

Keras and the blocks are imported by the functions that build: the table registers the ids
without TensorFlow.

>>> import keras_zoo
>>> model = keras_zoo.build("convnext_tiny", features_only=True, input_shape=(64, 64, 3))
>>> [tuple(o.shape) for o in model.outputs]
[(None, 16, 16, 96), (None, 8, 8, 192), (None, 4, 4, 384), (None, 2, 2, 768)]
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


TITLE = "ConvNeXt"  # the family as the command line's description names it

STEM_STRIDE = 4  # the stem's 4x4 "patchify" convolution
LAYER_SCALE = 1e-6  # the layer scales' initial value, torchvision's and timm's
LN_EPSILON = 1e-6  # every LayerNorm's, torchvision's and timm's (torch's default is 1e-5)


@dataclasses.dataclass(frozen=True)
class ConvNeXtVariant:
    """One ConvNeXt id: the blocks (`depths`) and channels (`dims`) of its four stages,
    torchvision's CNBlockConfig rows; the stochastic depth rate torchvision trained it with
    (its stochastic_depth_prob, not applied unless asked for: `convnext`'s drop_path_rate);
    torchvision's published parameter count and GMACs; its weight sets (the default first)."""

    name: str
    depths: tuple[int, int, int, int]
    dims: tuple[int, int, int, int]
    trained_drop_path_rate: float
    params: int
    gmacs: float
    weights: tuple[WeightSet, ...] = ()


def _timm(tag: str, top1: float) -> WeightSet:
    # top-1 from timm's results-imagenet.csv, measured at the cfg's test size (288, crop 1.0);
    # bicubic, ImageNet mean and std as its pretrained cfg
    return timm_weights(tag, top1, size=288, crop_pct=1.0)


# torchvision.models.ConvNeXt_*_Weights: url, acc@1, transforms (resize 236, 230, 232, 232,
# crop 224, bilinear), num_params and _ops (GMACs, as for every torchvision id); timm's
# fb_in1k and fb_in22k_ft_in1k sets (facebookresearch's weights in timm's layout).
tv = torchvision_weights
VARIANTS: tuple[ConvNeXtVariant, ...] = (
    ConvNeXtVariant(
        "convnext_tiny",
        (3, 3, 9, 3),
        (96, 192, 384, 768),
        0.1,
        28_589_128,
        4.456,
        (
            tv("convnext_tiny-983f1562.pth", "IMAGENET1K_V1", 82.520, resize=236),
            _timm("convnext_tiny.fb_in1k", 82.698),
            _timm("convnext_tiny.fb_in22k_ft_in1k", 78.898),
        ),
    ),
    ConvNeXtVariant(
        "convnext_small",
        (3, 3, 27, 3),
        (96, 192, 384, 768),
        0.4,
        50_223_688,
        8.684,
        (
            tv("convnext_small-0c510722.pth", "IMAGENET1K_V1", 83.616, resize=230),
            _timm("convnext_small.fb_in1k", 83.7),
            _timm("convnext_small.fb_in22k_ft_in1k", 85.262),
        ),
    ),
    ConvNeXtVariant(
        "convnext_base",
        (3, 3, 27, 3),
        (128, 256, 512, 1024),
        0.5,
        88_591_464,
        15.355,
        (
            tv("convnext_base-6075fbad.pth", "IMAGENET1K_V1", 84.062, resize=232),
            _timm("convnext_base.fb_in1k", 84.428),
            _timm("convnext_base.fb_in22k_ft_in1k", 86.274),
        ),
    ),
    ConvNeXtVariant(
        "convnext_large",
        (3, 3, 27, 3),
        (192, 384, 768, 1536),
        0.5,
        197_767_336,
        34.361,
        (
            tv("convnext_large-ea097f82.pth", "IMAGENET1K_V1", 84.414, resize=232),
            _timm("convnext_large.fb_in1k", 84.846),
            _timm("convnext_large.fb_in22k_ft_in1k", 87.026),
        ),
    ),
)


def _check_stages(values: Any, arg: str) -> tuple[int, int, int, int]:
    """`values` as a tuple of 4 positive ints (one per stage), or ValueError naming `arg`."""
    if (
        not isinstance(values, (tuple, list))
        or len(values) != 4
        or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values)
    ):
        raise ValueError(f"{arg} must be 4 positive integers (one per stage), got {values!r}")
    first, second, third, fourth = values
    return first, second, third, fourth


def convnext(
    *,
    depths: tuple[int, int, int, int],
    dims: tuple[int, int, int, int],
    drop_path_rate: float = 0.0,
    name: str = "convnext",
    **kwargs: Any,
) -> keras.Model:
    """torchvision's ConvNeXt: `depths[i]` blocks of `dims[i]` channels in stage i, a
    downsampling to the next stage's channels between stages; `kwargs` are build_model's
    shared keywords (include_top, input_shape, pooling, features_only, ...).

    `drop_path_rate` (in [0, 1), off by default, as for the ResNets and ViTs) is stochastic
    depth as torchvision trains ConvNeXt with it (its stochastic_depth_prob: 0.1 for tiny, 0.4
    for small, 0.5 for base and large): block i of all n drops its branch at
    drop_path_rate * i / (n - 1) (`keras_zoo.layers.drop_path_rates`; the first block has
    none); inference is unchanged.

    >>> from keras_zoo.models.convnext import convnext
    >>> convnext(depths=(1, 1, 1, 1), dims=(8, 16, 32, 64), input_shape=(32, 32, 3),
    ...          classes=10).count_params()
    62642
    """
    depths = _check_stages(depths, "depths")
    dims = _check_stages(dims, "dims")
    drop_path_rate = checks.check_fraction(drop_path_rate, "drop_path_rate")
    from keras import layers

    from keras_zoo.blocks import conv2d, layer_norm
    from keras_zoo.layers import apply_stages, drop_path_rates

    rates = drop_path_rates(drop_path_rate, sum(depths))
    first = [sum(depths[:s]) for s in range(len(depths))]  # each stage's first block

    def features(x):
        x = conv2d(
            x, dims[0], STEM_STRIDE, STEM_STRIDE, name="features.0.0", use_bias=True, padding=0
        )
        x = layer_norm(x, name="features.0.1", epsilon=LN_EPSILON)
        steps = []
        for s, (depth, dim) in enumerate(zip(depths, dims)):
            if s:
                steps.append((2, _downsample_step(dim, f"features.{2 * s}")))
            steps += [
                (1, _block_step(f"features.{2 * s + 1}.{b}", rates[first[s] + b]))
                for b in range(depth)
            ]
        return apply_stages(x, steps, stride=STEM_STRIDE)

    def head(x, classes):
        x = layer_norm(x, name="classifier.0", epsilon=LN_EPSILON)
        return layers.Dense(classes, name="classifier.2")(x)

    return build_model(features, head, name=name, **kwargs)


def _downsample_step(filters: int, name: str) -> Callable[[Any], Any]:
    from keras_zoo.blocks import conv2d, layer_norm

    def downsample(x):
        # torchvision's: LayerNorm2d, then a 2x2 convolution of stride 2, unpadded
        x = layer_norm(x, name=f"{name}.0", epsilon=LN_EPSILON)
        return conv2d(x, filters, 2, 2, name=f"{name}.1", use_bias=True, padding=0)

    return downsample


def _block_step(name: str, drop_path_rate: float) -> Callable[[Any], Any]:
    return lambda x: convnext_block(x, name=name, drop_path_rate=drop_path_rate)


def convnext_block(
    x: Any,
    *,
    name: str,
    kernel_size: int = 7,
    expansion: int = 4,
    layer_scale: float = LAYER_SCALE,
    drop_path_rate: float = 0.0,
) -> Any:
    """ConvNeXt's block (torchvision's CNBlock) on an NHWC tensor: a k x k depthwise
    convolution with a bias (`name`.block.0), a LayerNorm over the channels (`name`.block.2,
    epsilon 1e-6), a Dense to `expansion` times the channels (`name`.block.3), torch's GELU
    (`name`.block.4, `keras_zoo.blocks.gelu_erf`), a Dense back (`name`.block.5), the branch
    scaled per channel (`name`.layer_scale, a `keras_zoo.layers.LayerScale` starting at
    `layer_scale`) and, with `drop_path_rate`, dropped under stochastic depth
    (`name`.stochastic_depth), then added to the input (the layer `name`). torchvision's
    block.1 and block.6 permute to channels-last and back, which NHWC needs neither of.

    >>> import keras
    >>> convnext_block(keras.Input((56, 56, 96)), name="features.1.0").shape
    (None, 56, 56, 96)
    """
    from keras import layers

    from keras_zoo.blocks import activation, drop_path, gelu_erf, layer_norm
    from keras_zoo.layers import LayerScale

    channels = int(x.shape[-1])
    # PyTorch pads k // 2 on every side, which at stride 1 is Keras' "same"
    depthwise = layers.DepthwiseConv2D(
        kernel_size, padding="same", use_bias=True, name=f"{name}.block.0"
    )
    y = layer_norm(depthwise(x), name=f"{name}.block.2", epsilon=LN_EPSILON)
    y = layers.Dense(expansion * channels, name=f"{name}.block.3")(y)
    y = activation(y, gelu_erf, name=f"{name}.block.4")
    y = layers.Dense(channels, name=f"{name}.block.5")(y)
    y = LayerScale(layer_scale, name=f"{name}.layer_scale")(y)
    y = drop_path(y, drop_path_rate, name=f"{name}.stochastic_depth")
    return layers.Add(name=name)([x, y])


for _variant in VARIANTS:
    register_model(
        _variant.name,
        "convnext",
        convnext,
        config=dict(depths=_variant.depths, dims=_variant.dims),
        params=_variant.params,
        gmacs=_variant.gmacs,
        classifier=("classifier.0", "classifier.2"),
        weights=_variant.weights,
    )

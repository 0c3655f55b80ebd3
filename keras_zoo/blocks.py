"""Reusable functional building blocks: each takes a tensor and returns a tensor.

Weighted layers are named after the PyTorch module path of the weights they hold (the block's
`name` is its module path, e.g. "layer2.0"), so porting a checkpoint is a name lookup. The
block's output layer carries the block's own name: the tensor named "layer2.0" is what the
PyTorch module layer2.0 returns.

Padding: PyTorch pads a k x k convolution by k // 2 on every side. Keras 'same' equals that at
stride 1 but pads only bottom/right at stride 2, so strided convolutions get an explicit
ZeroPadding2D and 'valid'.
"""

from __future__ import annotations

from keras import layers

from keras_zoo.layers import BatchNormalization, ChannelShuffle, ChannelSplit, Conv2D

TORCH_BN_EPSILON = 1e-5
TORCH_BN_MOMENTUM = 0.9  # Keras momentum = 1 - PyTorch momentum (0.1)


def _pad(x, kernel_size: int, stride: int, name: str):
    """(x, padding) so that a k x k window at `stride` pads k // 2 on every side, as PyTorch."""
    pad = kernel_size // 2
    if pad and stride > 1:
        return layers.ZeroPadding2D(pad, name=f"{name}.pad")(x), "valid"
    return x, "same" if pad else "valid"


def conv2d(x, filters: int, kernel_size: int, stride: int = 1, groups: int = 1, *, name: str,
           use_bias: bool = False):
    """A k x k convolution padded as PyTorch pads it (k // 2 on every side). A grouped one is
    keras_zoo.layers.Conv2D: TensorFlow's own grouped kernel, not Keras' XLA function."""
    x, padding = _pad(x, kernel_size, stride, name)
    return (Conv2D if groups > 1 else layers.Conv2D)(
        filters, kernel_size, strides=stride, padding=padding, groups=groups,
        use_bias=use_bias, name=name,
    )(x)


def depthwise_conv2d(x, kernel_size: int, stride: int = 1, depth_multiplier: int = 1, *,
                     name: str):
    """A k x k depthwise convolution (PyTorch's groups == channels) padded as PyTorch pads it.

    DepthwiseConv2D, not Conv2D(groups=channels): the same function, many times faster on CPU.
    """
    x, padding = _pad(x, kernel_size, stride, name)
    return layers.DepthwiseConv2D(
        kernel_size, strides=stride, padding=padding, depth_multiplier=depth_multiplier,
        use_bias=False, name=name,
    )(x)


def activation(x, kind: str | None, *, name: str):
    """PyTorch's activations by name: relu, relu6, hardswish, hardsigmoid (Keras 3's hard_silu
    and hard_sigmoid are PyTorch's relu6(x + 3) / 6 forms); None is the identity."""
    if kind is None:
        return x
    if kind == "relu":
        return layers.ReLU(name=name)(x)
    if kind == "relu6":
        return layers.ReLU(6.0, name=name)(x)
    keras_name = {"hardswish": "hard_silu", "hardsigmoid": "hard_sigmoid"}[kind]
    return layers.Activation(keras_name, name=name)(x)


def batch_norm(x, *, name: str, epsilon: float = TORCH_BN_EPSILON,
               momentum: float = TORCH_BN_MOMENTUM):
    """A batch norm with PyTorch's defaults. After a Conv2D that TensorFlow computes as one op
    (plain ones, and keras_zoo.layers.Conv2D's grouped ones) it is
    keras_zoo.layers.BatchNormalization, whose inference TensorFlow merges into the
    convolution; after anything else (depthwise convolutions, Keras' grouped ones), where
    nothing merges and the standalone fused kernel is the slower one, Keras' own.
    scripts/bench_batchnorm.py and scripts/bench_grouped_conv.py measure the choices."""
    history = getattr(x, "_keras_history", None)  # the layer that made x (symbolic x only)
    producer = history.operation if history else None
    fused = isinstance(producer, Conv2D) or (isinstance(producer, layers.Conv2D)
                                             and producer.groups == 1)
    layer = BatchNormalization if fused else layers.BatchNormalization
    return layer(epsilon=epsilon, momentum=momentum, name=name)(x)


def conv_bn(x, filters: int, kernel_size: int, stride: int = 1, groups: int = 1, *,
            name: str, bn_name: str, epsilon: float = TORCH_BN_EPSILON):
    """conv2d followed by batch_norm, without an activation."""
    x = conv2d(x, filters, kernel_size, stride, groups, name=name)
    return batch_norm(x, name=bn_name, epsilon=epsilon)


def conv_bn_act(x, filters: int, kernel_size: int, stride: int = 1, groups: int = 1, *,
                name: str, activation_kind: str | None, epsilon: float = TORCH_BN_EPSILON,
                momentum: float = TORCH_BN_MOMENTUM, depthwise: bool = False):
    """torchvision's Conv2dNormActivation: layers `name`.0 (conv), `name`.1 (batch norm) and
    `name`.2 (activation). depthwise=True makes the convolution depthwise."""
    if depthwise:
        x = depthwise_conv2d(x, kernel_size, stride, name=f"{name}.0")
    else:
        x = conv2d(x, filters, kernel_size, stride, groups, name=f"{name}.0")
    x = batch_norm(x, name=f"{name}.1", epsilon=epsilon, momentum=momentum)
    return activation(x, activation_kind, name=f"{name}.2")


def _make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """`v` rounded to a multiple of `divisor`, never more than 10% below `v` (the channel
    rounding of the MobileNet papers, torchvision and timm).

    >>> _make_divisible(32 * 0.75), _make_divisible(16 * 0.35), _make_divisible(18)
    (24, 8, 24)
    """
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def se_block(x, squeeze_channels: int, *, name: str, gate: str = "hardsigmoid"):
    """Squeeze-and-excitation: global average pool, 1x1 conv + ReLU to `squeeze_channels`,
    1x1 conv + gate back to the input's channels, then scale the input (torchvision's
    SqueezeExcitation: `name`.fc1, `name`.fc2)."""
    channels = x.shape[-1]
    s = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}.avgpool")(x)
    s = layers.Conv2D(squeeze_channels, 1, name=f"{name}.fc1")(s)
    s = layers.ReLU(name=f"{name}.activation")(s)
    s = layers.Conv2D(channels, 1, name=f"{name}.fc2")(s)
    s = activation(s, gate, name=f"{name}.scale_activation")
    return layers.Multiply(name=name)([x, s])


def _inverted_res_block(x, expanded: int, filters: int, stride: int = 1, kernel_size: int = 3, *,
                        activation_kind: str, use_se: bool = False, name: str, seq: str,
                        epsilon: float = TORCH_BN_EPSILON, momentum: float = TORCH_BN_MOMENTUM,
                        project_as_unit: bool = False):
    """MobileNet V2/V3 inverted residual: 1x1 expand + activation (skipped when `expanded`
    equals the input channels), k x k depthwise + activation, optional squeeze-and-excitation,
    1x1 linear projection; a residual add when stride is 1 and channels are unchanged.

    Layers are named as torchvision's nn.Sequential `name`.`seq` numbers them: V2
    ("features.3.conv") has the projection as two entries (conv, batch norm); V3
    ("features.3.block") as one Conv2dNormActivation (`project_as_unit=True`).

    >>> import keras
    >>> y = _inverted_res_block(keras.Input((56, 56, 24)), 144, 24, activation_kind="relu6",
    ...                         name="features.3", seq="conv")
    >>> y.shape
    (None, 56, 56, 24)
    """
    inputs = x
    bn = dict(epsilon=epsilon, momentum=momentum)
    i = 0
    if expanded != x.shape[-1]:
        x = conv_bn_act(x, expanded, 1, name=f"{name}.{seq}.{i}", activation_kind=activation_kind,
                        **bn)
        i += 1
    x = conv_bn_act(x, expanded, kernel_size, stride, name=f"{name}.{seq}.{i}",
                    activation_kind=activation_kind, depthwise=True, **bn)
    i += 1
    if use_se:
        x = se_block(x, _make_divisible(expanded // 4, 8), name=f"{name}.{seq}.{i}")
        i += 1
    if project_as_unit:
        x = conv_bn_act(x, filters, 1, name=f"{name}.{seq}.{i}", activation_kind=None, **bn)
    else:
        x = conv2d(x, filters, 1, name=f"{name}.{seq}.{i}")
        x = batch_norm(x, name=f"{name}.{seq}.{i + 1}", **bn)
    if stride == 1 and inputs.shape[-1] == filters:
        return layers.Add(name=name)([inputs, x])
    return layers.Identity(name=name)(x)


def depthwise_separable(x, filters: int, stride: int = 1, depth_multiplier: int = 1, *,
                        name: str, activation_kind: str = "relu",
                        epsilon: float = TORCH_BN_EPSILON):
    """MobileNet V1's block: 3x3 depthwise + BN + activation, 1x1 pointwise + BN + activation
    (timm's DepthwiseSeparableConv names: conv_dw, bn1, conv_pw, bn2)."""
    x = depthwise_conv2d(x, 3, stride, depth_multiplier, name=f"{name}.conv_dw")
    x = batch_norm(x, name=f"{name}.bn1", epsilon=epsilon)
    x = activation(x, activation_kind, name=f"{name}.act1")
    x = conv2d(x, filters, 1, name=f"{name}.conv_pw")
    x = batch_norm(x, name=f"{name}.bn2", epsilon=epsilon)
    return activation(x, activation_kind, name=name)


def channel_shuffle(x, groups: int, *, name: str):
    """ShuffleNet's channel shuffle (see keras_zoo.layers.ChannelShuffle).

    >>> import keras
    >>> channel_shuffle(keras.Input((7, 7, 48)), 2, name="shuffle").shape
    (None, 7, 7, 48)
    """
    return ChannelShuffle(groups, name=name)(x)


def shuffle_unit(x, filters: int, stride: int = 1, *, name: str):
    """ShuffleNet V2 unit, torchvision's InvertedResidual: at stride 1 the channels split in
    two halves, one passes through and the other through 1x1 conv + BN + ReLU, 3x3 depthwise +
    BN, 1x1 conv + BN + ReLU (`name`.branch2.0 .. .7); at stride 2 both branches see the whole
    input, the first as 3x3 depthwise + BN, 1x1 conv + BN + ReLU (`name`.branch1.0 .. .4).
    The halves are concatenated and shuffled in 2 groups.

    >>> import keras
    >>> shuffle_unit(keras.Input((28, 28, 24)), 116, stride=2, name="stage2.0").shape
    (None, 14, 14, 116)
    """
    branch = filters // 2
    if stride == 1:
        if x.shape[-1] != filters:
            raise ValueError(f"{name}: a stride-1 unit keeps its {x.shape[-1]} channels, "
                             f"got filters={filters}")
        passed, x2 = ChannelSplit(name=f"{name}.split")(x)
    else:
        b1 = depthwise_conv2d(x, 3, stride, name=f"{name}.branch1.0")
        b1 = batch_norm(b1, name=f"{name}.branch1.1")
        b1 = conv2d(b1, branch, 1, name=f"{name}.branch1.2")
        b1 = batch_norm(b1, name=f"{name}.branch1.3")
        passed = layers.ReLU(name=f"{name}.branch1.4")(b1)
        x2 = x
    b2 = conv2d(x2, branch, 1, name=f"{name}.branch2.0")
    b2 = batch_norm(b2, name=f"{name}.branch2.1")
    b2 = layers.ReLU(name=f"{name}.branch2.2")(b2)
    b2 = depthwise_conv2d(b2, 3, stride, name=f"{name}.branch2.3")
    b2 = batch_norm(b2, name=f"{name}.branch2.4")
    b2 = conv2d(b2, branch, 1, name=f"{name}.branch2.5")
    b2 = batch_norm(b2, name=f"{name}.branch2.6")
    b2 = layers.ReLU(name=f"{name}.branch2.7")(b2)
    y = layers.Concatenate(name=f"{name}.concat")([passed, b2])
    return channel_shuffle(y, 2, name=name)


def shuffle_v1_unit(x, filters: int, stride: int, groups: int, *, first_group: bool = False,
                    name: str):
    """ShuffleNet V1 unit, megvii's ShuffleV1Block: 1x1 group conv (plain in the first unit of
    stage 2) + BN + ReLU to filters / 4, channel shuffle, 3x3 depthwise (strided) + BN, 1x1
    group conv + BN; stride 1 adds the input then ReLU, stride 2 concatenates a 3x3 average
    pool of the input (zero padding counted, as PyTorch's count_include_pad) with ReLU(branch).

    Layer names follow megvii's release (`name`.branch_main_1.0 .. .4, .branch_main_2.0/.1).
    Its shuffle reshapes the channels to (C / groups, groups) before transposing: the paper's
    shuffle with C / groups groups, which is what its checkpoints were trained with.
    """
    inp = x.shape[-1]
    mid = filters // 4
    outputs = filters - inp if stride == 2 else filters
    for what, value in (("input channels", inp), ("bottleneck channels", mid),
                        ("branch output channels", outputs)):
        if value % groups:
            raise ValueError(f"{name}: {what} ({value}) must be divisible by groups ({groups})")
    y = conv2d(x, mid, 1, groups=1 if first_group else groups, name=f"{name}.branch_main_1.0")
    y = batch_norm(y, name=f"{name}.branch_main_1.1")
    y = layers.ReLU(name=f"{name}.branch_main_1.2")(y)
    y = depthwise_conv2d(y, 3, stride, name=f"{name}.branch_main_1.3")
    y = batch_norm(y, name=f"{name}.branch_main_1.4")
    if groups > 1:
        y = channel_shuffle(y, mid // groups, name=f"{name}.shuffle")
    y = conv2d(y, outputs, 1, groups=groups, name=f"{name}.branch_main_2.0")
    y = batch_norm(y, name=f"{name}.branch_main_2.1")
    if stride == 1:
        y = layers.Add(name=f"{name}.add")([y, x])
        return layers.ReLU(name=name)(y)
    proj = layers.ZeroPadding2D(1, name=f"{name}.branch_proj.pad")(x)
    proj = layers.AveragePooling2D(3, 2, name=f"{name}.branch_proj")(proj)
    y = layers.ReLU(name=f"{name}.relu")(y)
    return layers.Concatenate(name=name)([proj, y])


def _shortcut(x, filters: int, stride: int, *, name: str):
    """Identity, or torchvision's 1x1 conv + BN `downsample` when the shape changes."""
    if stride == 1 and x.shape[-1] == filters:
        return x
    return conv_bn(x, filters, 1, stride, name=f"{name}.downsample.0",
                   bn_name=f"{name}.downsample.1")


def basic_block(x, planes: int, stride: int = 1, *, name: str):
    """ResNet's two 3x3 convolutions with a residual shortcut (ResNet-18/34).

    >>> import keras
    >>> y = basic_block(keras.Input((56, 56, 64)), 128, stride=2, name="layer2.0")
    >>> y.shape
    (None, 28, 28, 128)
    """
    shortcut = _shortcut(x, planes * basic_block.expansion, stride, name=name)
    y = conv_bn(x, planes, 3, stride, name=f"{name}.conv1", bn_name=f"{name}.bn1")
    y = layers.ReLU(name=f"{name}.relu1")(y)
    y = conv_bn(y, planes, 3, name=f"{name}.conv2", bn_name=f"{name}.bn2")
    y = layers.Add(name=f"{name}.add")([y, shortcut])
    return layers.ReLU(name=name)(y)


basic_block.expansion = 1


def bottleneck(x, planes: int, stride: int = 1, groups: int = 1, width_per_group: int = 64, *,
               name: str):
    """ResNet "v1.5" bottleneck: 1x1 reduce, 3x3 (strided, grouped), 1x1 expand by 4.

    groups and width_per_group make the same block serve ResNeXt (32 groups of 4) and
    Wide-ResNet (width 128): width = int(planes * width_per_group / 64) * groups.

    >>> import keras
    >>> y = bottleneck(keras.Input((56, 56, 64)), 64, groups=32, width_per_group=4, name="layer1.0")
    >>> y.shape
    (None, 56, 56, 256)
    """
    width = int(planes * (width_per_group / 64.0)) * groups
    out = planes * bottleneck.expansion
    shortcut = _shortcut(x, out, stride, name=name)
    y = conv_bn(x, width, 1, name=f"{name}.conv1", bn_name=f"{name}.bn1")
    y = layers.ReLU(name=f"{name}.relu1")(y)
    y = conv_bn(y, width, 3, stride, groups, name=f"{name}.conv2", bn_name=f"{name}.bn2")
    y = layers.ReLU(name=f"{name}.relu2")(y)
    y = conv_bn(y, out, 1, name=f"{name}.conv3", bn_name=f"{name}.bn3")
    y = layers.Add(name=f"{name}.add")([y, shortcut])
    return layers.ReLU(name=name)(y)


bottleneck.expansion = 4


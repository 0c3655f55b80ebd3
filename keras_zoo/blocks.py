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

from collections.abc import Callable
from typing import Any

import keras
from keras import layers

from keras_zoo.layers import BatchNormalization, ChannelShuffle, ChannelSplit, Conv2D, DropPath

TORCH_BN_EPSILON = 1e-5
TORCH_BN_MOMENTUM = 0.9  # Keras momentum = 1 - PyTorch momentum (0.1)

Tensor = Any  # a Keras tensor: symbolic while a model is built
# an activation: a torch or Keras name, a function of a tensor, or None for the identity
ActivationSpec = str | Callable[[Any], Any] | None


def _pad(
    x: Tensor, kernel_size: int, stride: int, name: str, padding: int | None = None
) -> tuple[Tensor, str]:
    """(x, padding) so that a k x k window at `stride` pads `padding` (by default k // 2) on
    every side, as PyTorch."""
    pad = kernel_size // 2 if padding is None else padding
    if pad and (stride > 1 or pad != kernel_size // 2):
        return layers.ZeroPadding2D(pad, name=f"{name}.pad")(x), "valid"
    return x, "same" if pad else "valid"


def conv2d(
    x: Tensor,
    filters: int,
    kernel_size: int,
    stride: int = 1,
    groups: int = 1,
    *,
    name: str,
    use_bias: bool = False,
    padding: int | None = None,
) -> Tensor:
    """A k x k convolution padded as PyTorch pads it: `padding` on every side, by default
    k // 2. A grouped one is keras_zoo.layers.Conv2D: TensorFlow's own grouped kernel, not
    Keras' XLA function. Either way TensorFlow computes it as one op: a batch norm after it
    is `fused`."""
    x, keras_padding = _pad(x, kernel_size, stride, name, padding)
    return (Conv2D if groups > 1 else layers.Conv2D)(
        filters,
        kernel_size,
        strides=stride,
        padding=keras_padding,
        groups=groups,
        use_bias=use_bias,
        name=name,
    )(x)


def depthwise_conv2d(
    x: Tensor, kernel_size: int, stride: int = 1, depth_multiplier: int = 1, *, name: str
) -> Tensor:
    """A k x k depthwise convolution (PyTorch's groups == channels) padded as PyTorch pads it.

    DepthwiseConv2D, not Conv2D(groups=channels): the same function, many times faster on CPU.
    """
    x, padding = _pad(x, kernel_size, stride, name)
    return layers.DepthwiseConv2D(
        kernel_size,
        strides=stride,
        padding=padding,
        depth_multiplier=depth_multiplier,
        use_bias=False,
        name=name,
    )(x)


@keras.saving.register_keras_serializable(package="keras_zoo")
def gelu_tanh(x: Tensor) -> Tensor:
    """torch's GELU(approximate="tanh"), timm's "gelu_tanh"; Keras' "gelu" is the exact erf
    form, torch's default."""
    return keras.activations.gelu(x, approximate=True)


def _keras_activation(keras_name: Any) -> Callable[[str], layers.Layer]:
    return lambda name: layers.Activation(keras_name, name=name)


# torch's activations by the names torch.nn and timm give them. Where Keras has the same name
# for another function, torch's wins: "leaky_relu" has torch's slope 0.01 (Keras' is 0.2).
# "gelu" is the exact erf form in both (Keras' gelu defaults to approximate=False).
TORCH_ACTIVATIONS: dict[str, Callable[[str], layers.Layer]] = {
    "relu": lambda name: layers.ReLU(name=name),
    "relu6": lambda name: layers.ReLU(6.0, name=name),
    # Keras 3's hard_silu and hard_sigmoid are torch's x * relu6(x + 3) / 6 and relu6(x + 3) / 6
    "hardswish": _keras_activation("hard_silu"),
    "hard_swish": _keras_activation("hard_silu"),
    "hardsigmoid": _keras_activation("hard_sigmoid"),
    "hard_sigmoid": _keras_activation("hard_sigmoid"),
    "silu": _keras_activation("silu"),
    "swish": _keras_activation("silu"),
    "gelu": _keras_activation("gelu"),
    "gelu_tanh": _keras_activation(gelu_tanh),
    "sigmoid": _keras_activation("sigmoid"),
    "tanh": _keras_activation("tanh"),
    "hardtanh": _keras_activation("hard_tanh"),
    "mish": _keras_activation("mish"),
    "elu": _keras_activation("elu"),
    "celu": _keras_activation("celu"),
    "selu": _keras_activation("selu"),
    "softplus": _keras_activation("softplus"),
    "leaky_relu": lambda name: layers.LeakyReLU(0.01, name=name),
    "identity": _keras_activation("linear"),
}


def activation(x: Tensor, kind: ActivationSpec, *, name: str) -> Tensor:
    """`kind` applied to `x` as one layer named `name`; None is the identity (no layer).

    `kind` is a torch name (`TORCH_ACTIVATIONS`: relu, relu6, hardswish, hardsigmoid, silu or
    swish, gelu (erf) or gelu_tanh, sigmoid, ...), any other Keras activation name
    (keras.activations), or a function of a tensor.

    >>> import keras
    >>> inputs = keras.Input((4,))
    >>> model = keras.Model(inputs, activation(inputs, "swish", name="act"))
    >>> model.get_layer("act").get_config()["activation"]
    'silu'
    """
    if kind is None:
        return x
    if isinstance(kind, str):
        if kind in TORCH_ACTIVATIONS:
            return TORCH_ACTIVATIONS[kind](name)(x)
        try:
            keras.activations.get(kind)
        except ValueError:
            keras_names = sorted(
                n
                for n in dir(keras.activations)
                if not n.startswith("_") and n not in ("get", "serialize", "deserialize")
            )
            raise ValueError(
                f"activation {kind!r} ({name}): expected a torch name "
                f"({', '.join(TORCH_ACTIVATIONS)}), a Keras activation name "
                f"({', '.join(keras_names)}), a function of a tensor, or None"
            ) from None
        return layers.Activation(kind, name=name)(x)
    if callable(kind):
        return layers.Activation(kind, name=name)(x)
    raise TypeError(
        f"activation ({name}): expected a name such as 'relu' or 'silu', a function "
        f"of a tensor, or None; got {kind!r}"
    )


def batch_norm(
    x: Tensor,
    *,
    name: str,
    fused: bool,
    epsilon: float = TORCH_BN_EPSILON,
    momentum: float = TORCH_BN_MOMENTUM,
) -> Tensor:
    """A batch norm with PyTorch's defaults: keras_zoo.layers.BatchNormalization, which keeps
    torch's running variance. `fused` says that `x` comes straight from a Conv2D that
    TensorFlow computes as one op (a plain one, or keras_zoo.layers.Conv2D's grouped one, which
    is what `conv2d` builds): inference then goes through TensorFlow's fused kernel, which it
    merges into the convolution. Otherwise (after a depthwise convolution, Keras' own grouped
    one, or anything else), where nothing merges and the standalone fused kernel is the slower
    one, inference is Keras' multiply-add. scripts/bench_batchnorm.py and
    scripts/bench_grouped_conv.py measure the choices; both compute the same function."""
    if not isinstance(fused, bool):
        raise TypeError(f"fused must be True or False ({name}), got {fused!r}")
    return BatchNormalization(epsilon=epsilon, momentum=momentum, fused=fused, name=name)(x)


def conv_bn(
    x: Tensor,
    filters: int,
    kernel_size: int,
    stride: int = 1,
    groups: int = 1,
    *,
    name: str,
    bn_name: str,
    epsilon: float = TORCH_BN_EPSILON,
) -> Tensor:
    """conv2d followed by batch_norm, without an activation."""
    x = conv2d(x, filters, kernel_size, stride, groups, name=name)
    return batch_norm(x, name=bn_name, fused=True, epsilon=epsilon)


def conv_bn_act(
    x: Tensor,
    filters: int,
    kernel_size: int,
    stride: int = 1,
    groups: int = 1,
    *,
    name: str,
    activation_kind: ActivationSpec,
    epsilon: float = TORCH_BN_EPSILON,
    momentum: float = TORCH_BN_MOMENTUM,
    depthwise: bool = False,
    padding: int | None = None,
) -> Tensor:
    """torchvision's Conv2dNormActivation: layers `name`.0 (conv), `name`.1 (batch norm) and
    `name`.2 (activation). depthwise=True makes the convolution depthwise; `padding` is the
    convolution's on every side (by default k // 2)."""
    if depthwise:
        if padding is not None:
            raise ValueError(f"{name}: a depthwise convolution here pads k // 2")
        x = depthwise_conv2d(x, kernel_size, stride, name=f"{name}.0")
    else:
        x = conv2d(x, filters, kernel_size, stride, groups, name=f"{name}.0", padding=padding)
    x = batch_norm(x, name=f"{name}.1", fused=not depthwise, epsilon=epsilon, momentum=momentum)
    return activation(x, activation_kind, name=f"{name}.2")


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """`v` rounded to a multiple of `divisor`, never more than 10% below `v` (the channel
    rounding of the MobileNet papers, torchvision and timm).

    >>> make_divisible(32 * 0.75), make_divisible(16 * 0.35), make_divisible(18)
    (24, 8, 24)
    """
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


_make_divisible = make_divisible  # the name the design and older code use


def se_block(
    x: Tensor,
    squeeze_channels: int,
    *,
    name: str,
    activation_kind: ActivationSpec = "relu",
    gate: ActivationSpec = "hardsigmoid",
) -> Tensor:
    """Squeeze-and-excitation, torchvision's SqueezeExcitation: global average pool, 1x1 conv
    + `activation_kind` (torchvision's `activation`) to `squeeze_channels`, 1x1 conv + `gate`
    (its `scale_activation`) back to the input's channels, then the input scaled by it
    (layers `name`.fc1, `name`.fc2). MobileNet V3 squeezes with ReLU and gates with
    hard-sigmoid; EfficientNet with SiLU and sigmoid.

    >>> import keras
    >>> se_block(keras.Input((7, 7, 96)), 24, name="se", activation_kind="silu",
    ...          gate="sigmoid").shape
    (None, 7, 7, 96)
    """
    if (
        isinstance(squeeze_channels, bool)
        or not isinstance(squeeze_channels, int)
        or squeeze_channels < 1
    ):
        raise ValueError(
            f"squeeze_channels ({name}) must be a positive int, got {squeeze_channels!r}"
        )
    channels = x.shape[-1]
    s = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}.avgpool")(x)
    s = layers.Conv2D(squeeze_channels, 1, name=f"{name}.fc1")(s)
    s = activation(s, activation_kind, name=f"{name}.activation")
    s = layers.Conv2D(channels, 1, name=f"{name}.fc2")(s)
    s = activation(s, gate, name=f"{name}.scale_activation")
    return layers.Multiply(name=name)([x, s])


def mobilenet_v3_se_channels(input_channels: int, expanded_channels: int) -> int:
    """MobileNet V3's squeeze width: a quarter of the expanded channels, a multiple of 8."""
    return make_divisible(expanded_channels // 4, 8)


def inverted_res_block(
    x: Tensor,
    expanded: int,
    filters: int,
    stride: int = 1,
    kernel_size: int = 3,
    *,
    activation_kind: ActivationSpec,
    use_se: bool = False,
    name: str,
    seq: str,
    epsilon: float = TORCH_BN_EPSILON,
    momentum: float = TORCH_BN_MOMENTUM,
    project_as_unit: bool = False,
    se_channels: int | Callable[[int, int], int] = mobilenet_v3_se_channels,
    se_activation: ActivationSpec = "relu",
    se_gate: ActivationSpec = "hardsigmoid",
    residual: bool | None = None,
    flat: bool = False,
    drop_path_rate: float = 0.0,
) -> Tensor:
    """MobileNet V2/V3 inverted residual: 1x1 expand + activation (skipped when `expanded`
    equals the input channels), k x k depthwise + activation, optional squeeze-and-excitation,
    1x1 linear projection; a residual add when stride is 1 and channels are unchanged, or as
    `residual` says where a source sets it per block (PFLD-pytorch's use_res_connect, False
    for some blocks that could have one).

    The squeeze-and-excitation (`se_block`) squeezes to `se_channels`: a number, or a function
    of (input channels, expanded channels), by default MobileNet V3's
    `mobilenet_v3_se_channels` (EfficientNet's MBConv: `lambda cin, _: max(1, cin // 4)`);
    `se_activation` and `se_gate` are its activation and gate. With `drop_path_rate` a block
    with a residual drops its branch under stochastic depth (`name`.stochastic_depth,
    torchvision's MBConv) before the addition.

    Layers are named as torchvision's nn.Sequential `name`.`seq` numbers them: V2
    ("features.3.conv") has the projection as two entries (conv, batch norm); V3
    ("features.3.block") as one Conv2dNormActivation (`project_as_unit=True`). `flat=True`
    numbers every layer of the sequence on its own (PFLD-pytorch's InvertedResidual.conv:
    expansion conv, batch norm, ReLU at 0, 1, 2, the depthwise ones at 3, 4, 5, the
    projection's conv and batch norm at 6, 7).

    >>> import keras
    >>> y = inverted_res_block(keras.Input((56, 56, 24)), 144, 24, activation_kind="relu6",
    ...                        name="features.3", seq="conv")
    >>> y.shape
    (None, 56, 56, 24)
    """
    inputs = x
    bn: dict[str, Any] = dict(epsilon=epsilon, momentum=momentum)
    if flat and (use_se or project_as_unit):
        raise ValueError(
            f"{name}: flat numbering takes no squeeze-and-excitation and no unit projection"
        )
    can_add = stride == 1 and inputs.shape[-1] == filters
    if residual and not can_add:
        raise ValueError(
            f"{name}: a residual needs stride 1 and unchanged channels, got stride {stride} and "
            f"{inputs.shape[-1]} -> {filters} channels"
        )
    i = 0

    def conv_step(x: Tensor, out: int, kernel: int, step_stride: int, depthwise: bool) -> Tensor:
        nonlocal i
        if not flat:
            x = conv_bn_act(
                x,
                out,
                kernel,
                step_stride,
                name=f"{name}.{seq}.{i}",
                activation_kind=activation_kind,
                depthwise=depthwise,
                **bn,
            )
            i += 1
            return x
        if depthwise:
            x = depthwise_conv2d(x, kernel, step_stride, name=f"{name}.{seq}.{i}")
        else:
            x = conv2d(x, out, kernel, step_stride, name=f"{name}.{seq}.{i}")
        x = batch_norm(x, name=f"{name}.{seq}.{i + 1}", fused=not depthwise, **bn)
        x = activation(x, activation_kind, name=f"{name}.{seq}.{i + 2}")
        i += 3
        return x

    if expanded != x.shape[-1]:
        x = conv_step(x, expanded, 1, 1, depthwise=False)
    x = conv_step(x, expanded, kernel_size, stride, depthwise=True)
    if use_se:
        squeeze = se_channels(inputs.shape[-1], expanded) if callable(se_channels) else se_channels
        x = se_block(
            x, squeeze, name=f"{name}.{seq}.{i}", activation_kind=se_activation, gate=se_gate
        )
        i += 1
    if project_as_unit:
        x = conv_bn_act(x, filters, 1, name=f"{name}.{seq}.{i}", activation_kind=None, **bn)
    else:
        x = conv2d(x, filters, 1, name=f"{name}.{seq}.{i}")
        x = batch_norm(x, name=f"{name}.{seq}.{i + 1}", fused=True, **bn)
    if can_add if residual is None else residual:
        x = drop_path(x, drop_path_rate, name=f"{name}.stochastic_depth")
        return layers.Add(name=name)([inputs, x])
    return layers.Identity(name=name)(x)


_inverted_res_block = inverted_res_block  # the name the design and older code use


def fused_mbconv(
    x: Tensor,
    expanded: int,
    filters: int,
    stride: int = 1,
    kernel_size: int = 3,
    *,
    name: str,
    activation_kind: ActivationSpec = "silu",
    epsilon: float = TORCH_BN_EPSILON,
    momentum: float = TORCH_BN_MOMENTUM,
    drop_path_rate: float = 0.0,
) -> Tensor:
    """EfficientNetV2's FusedMBConv (torchvision's `name`.block): the expansion and the
    depthwise convolution of an inverted residual fused into one k x k convolution +
    activation (`block.0`), then a 1x1 linear projection (`block.1`); when `expanded` equals
    the input channels, the k x k convolution + activation alone (`block.0`). A residual add
    when stride is 1 and channels are unchanged, its branch under stochastic depth at
    `drop_path_rate` (`name`.stochastic_depth).

    >>> import keras
    >>> fused_mbconv(keras.Input((56, 56, 24)), 96, 48, 2, name="features.2.0").shape
    (None, 28, 28, 48)
    """
    inputs = x
    bn: dict[str, Any] = dict(epsilon=epsilon, momentum=momentum)
    if expanded != x.shape[-1]:
        x = conv_bn_act(
            x,
            expanded,
            kernel_size,
            stride,
            name=f"{name}.block.0",
            activation_kind=activation_kind,
            **bn,
        )
        x = conv_bn_act(x, filters, 1, name=f"{name}.block.1", activation_kind=None, **bn)
    else:
        x = conv_bn_act(
            x,
            filters,
            kernel_size,
            stride,
            name=f"{name}.block.0",
            activation_kind=activation_kind,
            **bn,
        )
    if stride == 1 and inputs.shape[-1] == filters:
        x = drop_path(x, drop_path_rate, name=f"{name}.stochastic_depth")
        return layers.Add(name=name)([inputs, x])
    return layers.Identity(name=name)(x)


def depthwise_separable(
    x: Tensor,
    filters: int,
    stride: int = 1,
    depth_multiplier: int = 1,
    *,
    name: str,
    activation_kind: ActivationSpec = "relu",
    epsilon: float = TORCH_BN_EPSILON,
) -> Tensor:
    """MobileNet V1's block: 3x3 depthwise + BN + activation, 1x1 pointwise + BN + activation
    (timm's DepthwiseSeparableConv names: conv_dw, bn1, conv_pw, bn2)."""
    x = depthwise_conv2d(x, 3, stride, depth_multiplier, name=f"{name}.conv_dw")
    x = batch_norm(x, name=f"{name}.bn1", fused=False, epsilon=epsilon)
    x = activation(x, activation_kind, name=f"{name}.act1")
    x = conv2d(x, filters, 1, name=f"{name}.conv_pw")
    x = batch_norm(x, name=f"{name}.bn2", fused=True, epsilon=epsilon)
    return activation(x, activation_kind, name=name)


def channel_shuffle(x: Tensor, groups: int, *, name: str) -> Tensor:
    """ShuffleNet's channel shuffle (see keras_zoo.layers.ChannelShuffle).

    >>> import keras
    >>> channel_shuffle(keras.Input((7, 7, 48)), 2, name="shuffle").shape
    (None, 7, 7, 48)
    """
    return ChannelShuffle(groups, name=name)(x)


def shuffle_unit(x: Tensor, filters: int, stride: int = 1, *, name: str) -> Tensor:
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
            raise ValueError(
                f"{name}: a stride-1 unit keeps its {x.shape[-1]} channels, got filters={filters}"
            )
        passed, x2 = ChannelSplit(name=f"{name}.split")(x)
    else:
        b1 = depthwise_conv2d(x, 3, stride, name=f"{name}.branch1.0")
        b1 = batch_norm(b1, name=f"{name}.branch1.1", fused=False)
        b1 = conv2d(b1, branch, 1, name=f"{name}.branch1.2")
        b1 = batch_norm(b1, name=f"{name}.branch1.3", fused=True)
        passed = layers.ReLU(name=f"{name}.branch1.4")(b1)
        x2 = x
    b2 = conv2d(x2, branch, 1, name=f"{name}.branch2.0")
    b2 = batch_norm(b2, name=f"{name}.branch2.1", fused=True)
    b2 = layers.ReLU(name=f"{name}.branch2.2")(b2)
    b2 = depthwise_conv2d(b2, 3, stride, name=f"{name}.branch2.3")
    b2 = batch_norm(b2, name=f"{name}.branch2.4", fused=False)
    b2 = conv2d(b2, branch, 1, name=f"{name}.branch2.5")
    b2 = batch_norm(b2, name=f"{name}.branch2.6", fused=True)
    b2 = layers.ReLU(name=f"{name}.branch2.7")(b2)
    y = layers.Concatenate(name=f"{name}.concat")([passed, b2])
    return channel_shuffle(y, 2, name=name)


def shuffle_v1_unit(
    x: Tensor, filters: int, stride: int, groups: int, *, first_group: bool = False, name: str
) -> Tensor:
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
    for what, value in (
        ("input channels", inp),
        ("bottleneck channels", mid),
        ("branch output channels", outputs),
    ):
        if value % groups:
            raise ValueError(f"{name}: {what} ({value}) must be divisible by groups ({groups})")
    y = conv2d(x, mid, 1, groups=1 if first_group else groups, name=f"{name}.branch_main_1.0")
    y = batch_norm(y, name=f"{name}.branch_main_1.1", fused=True)
    y = layers.ReLU(name=f"{name}.branch_main_1.2")(y)
    y = depthwise_conv2d(y, 3, stride, name=f"{name}.branch_main_1.3")
    y = batch_norm(y, name=f"{name}.branch_main_1.4", fused=False)
    if groups > 1:
        y = channel_shuffle(y, mid // groups, name=f"{name}.shuffle")
    y = conv2d(y, outputs, 1, groups=groups, name=f"{name}.branch_main_2.0")
    y = batch_norm(y, name=f"{name}.branch_main_2.1", fused=True)
    if stride == 1:
        y = layers.Add(name=f"{name}.add")([y, x])
        return layers.ReLU(name=name)(y)
    proj = layers.ZeroPadding2D(1, name=f"{name}.branch_proj.pad")(x)
    proj = layers.AveragePooling2D(3, 2, name=f"{name}.branch_proj")(proj)
    y = layers.ReLU(name=f"{name}.relu")(y)
    return layers.Concatenate(name=name)([proj, y])


def drop_path(x: Tensor, rate: float, *, name: str) -> Tensor:
    """A residual branch `x` under stochastic depth at `rate` (keras_zoo.layers.DropPath,
    named `name`); at rate 0 `x` itself, no layer, so that a model built without stochastic
    depth is layer for layer the one built before it existed."""
    return DropPath(rate, name=name)(x) if rate else x


def _shortcut(x: Tensor, filters: int, stride: int, *, name: str) -> Tensor:
    """Identity, or torchvision's 1x1 conv + BN `downsample` when the shape changes."""
    if stride == 1 and x.shape[-1] == filters:
        return x
    return conv_bn(
        x, filters, 1, stride, name=f"{name}.downsample.0", bn_name=f"{name}.downsample.1"
    )


def basic_block(
    x: Tensor, planes: int, stride: int = 1, *, name: str, drop_path_rate: float = 0.0
) -> Tensor:
    """ResNet's two 3x3 convolutions with a residual shortcut (ResNet-18/34); with
    `drop_path_rate` the branch goes through a DropPath (`name`.drop_path, timm's) before the
    addition.

    >>> import keras
    >>> y = basic_block(keras.Input((56, 56, 64)), 128, stride=2, name="layer2.0")
    >>> y.shape
    (None, 28, 28, 128)
    """
    shortcut = _shortcut(x, planes * BASIC_BLOCK_EXPANSION, stride, name=name)
    y = conv_bn(x, planes, 3, stride, name=f"{name}.conv1", bn_name=f"{name}.bn1")
    y = layers.ReLU(name=f"{name}.relu1")(y)
    y = conv_bn(y, planes, 3, name=f"{name}.conv2", bn_name=f"{name}.bn2")
    y = drop_path(y, drop_path_rate, name=f"{name}.drop_path")
    y = layers.Add(name=f"{name}.add")([y, shortcut])
    return layers.ReLU(name=name)(y)


BASIC_BLOCK_EXPANSION = 1
basic_block.expansion = BASIC_BLOCK_EXPANSION  # type: ignore[attr-defined]  # torchvision's


def bottleneck(
    x: Tensor,
    planes: int,
    stride: int = 1,
    groups: int = 1,
    width_per_group: int = 64,
    *,
    name: str,
    drop_path_rate: float = 0.0,
) -> Tensor:
    """ResNet "v1.5" bottleneck: 1x1 reduce, 3x3 (strided, grouped), 1x1 expand by 4.

    groups and width_per_group make the same block serve ResNeXt (32 groups of 4) and
    Wide-ResNet (width 128): width = int(planes * width_per_group / 64) * groups. With
    `drop_path_rate` the branch goes through a DropPath (`name`.drop_path, timm's) before the
    addition.

    >>> import keras
    >>> y = bottleneck(keras.Input((56, 56, 64)), 64, groups=32, width_per_group=4, name="layer1.0")
    >>> y.shape
    (None, 56, 56, 256)
    """
    width = int(planes * (width_per_group / 64.0)) * groups
    out = planes * BOTTLENECK_EXPANSION
    shortcut = _shortcut(x, out, stride, name=name)
    y = conv_bn(x, width, 1, name=f"{name}.conv1", bn_name=f"{name}.bn1")
    y = layers.ReLU(name=f"{name}.relu1")(y)
    y = conv_bn(y, width, 3, stride, groups, name=f"{name}.conv2", bn_name=f"{name}.bn2")
    y = layers.ReLU(name=f"{name}.relu2")(y)
    y = conv_bn(y, out, 1, name=f"{name}.conv3", bn_name=f"{name}.bn3")
    y = drop_path(y, drop_path_rate, name=f"{name}.drop_path")
    y = layers.Add(name=f"{name}.add")([y, shortcut])
    return layers.ReLU(name=name)(y)


BOTTLENECK_EXPANSION = 4
bottleneck.expansion = BOTTLENECK_EXPANSION  # type: ignore[attr-defined]  # torchvision's


TORCH_LN_EPSILON = 1e-6  # torchvision's ViT LayerNorm (torch's own default is 1e-5)


@keras.saving.register_keras_serializable(package="keras_zoo")
def gelu_erf(x: Tensor) -> Tensor:
    """torch's GELU, x * (1 + erf(x / sqrt(2))) / 2, in every dtype: TensorFlow's exact gelu
    (Keras' "gelu") rounds its 1 / sqrt(2) to float32, 5e-9 off in float64."""
    return 0.5 * x * (1.0 + keras.ops.erf(x * 0.7071067811865476))


def layer_norm(x: Tensor, *, name: str, epsilon: float = TORCH_LN_EPSILON) -> Tensor:
    """torch's nn.LayerNorm over the last axis (weights `name`.weight and .bias)."""
    return layers.LayerNormalization(epsilon=epsilon, name=name)(x)


def attention_block(
    x: Tensor,
    num_heads: int,
    *,
    name: str,
    norm: str = "ln_1",
    attention: str = "self_attention",
    epsilon: float = TORCH_LN_EPSILON,
    attention_dropout: float = 0.0,
    output_name: str | None = None,
    drop_path_rate: float = 0.0,
) -> Tensor:
    """Pre-norm multi-head self-attention with a residual: x + attention(norm(x)), the first
    half of torchvision's ViT EncoderBlock (layers `name`.`norm`, a LayerNormalization, and
    `name`.`attention`, a MultiHeadAttention of `num_heads` heads of width channels /
    num_heads, whose weights port from torch's nn.MultiheadAttention). The residual add is
    named `output_name`, by default `name`.`attention`_residual. In float64 the attention is
    exact when 1 / sqrt(head width) is exact in float32 (widths 16, 64, 256: every published
    ViT's 64): Keras' TensorFlow attention rounds its scale to float32. With `drop_path_rate`
    the attention's output goes through a DropPath (`name`.`attention`_drop_path, timm's
    drop_path1) before the addition.

    >>> import keras
    >>> attention_block(keras.Input((197, 768)), 12, name="encoder_layer_0").shape
    (None, 197, 768)
    """
    channels = int(x.shape[-1])
    if isinstance(num_heads, bool) or not isinstance(num_heads, int) or num_heads < 1:
        raise ValueError(f"num_heads ({name}) must be a positive int, got {num_heads!r}")
    if channels % num_heads:
        raise ValueError(
            f"num_heads ({name}): the {channels} channels must divide into {num_heads} heads"
        )
    y = layer_norm(x, name=f"{name}.{norm}", epsilon=epsilon)
    y = layers.MultiHeadAttention(
        num_heads,
        channels // num_heads,
        dropout=attention_dropout,
        name=f"{name}.{attention}",
    )(y, y)
    y = drop_path(y, drop_path_rate, name=f"{name}.{attention}_drop_path")
    return layers.Add(name=output_name or f"{name}.{attention}_residual")([x, y])


def mlp_block(
    x: Tensor,
    hidden: int,
    *,
    name: str,
    norm: str = "ln_2",
    mlp: str = "mlp",
    activation_kind: ActivationSpec = gelu_erf,
    epsilon: float = TORCH_LN_EPSILON,
    dropout: float = 0.0,
    output_name: str | None = None,
    drop_path_rate: float = 0.0,
) -> Tensor:
    """Pre-norm MLP with a residual: x + Linear(act(Linear(norm(x)))), the second half of
    torchvision's ViT EncoderBlock: layers `name`.`norm` (LayerNormalization), `name`.`mlp`.0
    (Dense to `hidden`), `name`.`mlp`.1 (`activation_kind`, by default torch's GELU,
    `gelu_erf`) and `name`.`mlp`.3 (Dense back to the input's channels), the numbering of
    torchvision's MLP (dropouts at .2 and .4). The residual add is named `output_name`, by
    default `name`. With `drop_path_rate` the MLP's output goes through a DropPath
    (`name`.`mlp`_drop_path, timm's drop_path2) before the addition.

    >>> import keras
    >>> mlp_block(keras.Input((197, 768)), 3072, name="encoder_layer_0").shape
    (None, 197, 768)
    """
    channels = int(x.shape[-1])
    y = layer_norm(x, name=f"{name}.{norm}", epsilon=epsilon)
    y = layers.Dense(hidden, name=f"{name}.{mlp}.0")(y)
    y = activation(y, activation_kind, name=f"{name}.{mlp}.1")
    if dropout:
        y = layers.Dropout(dropout, name=f"{name}.{mlp}.2")(y)
    y = layers.Dense(channels, name=f"{name}.{mlp}.3")(y)
    if dropout:
        y = layers.Dropout(dropout, name=f"{name}.{mlp}.4")(y)
    y = drop_path(y, drop_path_rate, name=f"{name}.{mlp}_drop_path")
    return layers.Add(name=output_name or name)([x, y])

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

TORCH_BN_EPSILON = 1e-5
TORCH_BN_MOMENTUM = 0.9  # Keras momentum = 1 - PyTorch momentum (0.1)


def conv2d(x, filters: int, kernel_size: int, stride: int = 1, groups: int = 1, *, name: str,
           use_bias: bool = False):
    """A k x k convolution padded as PyTorch pads it (k // 2 on every side)."""
    pad = kernel_size // 2
    if pad and stride > 1:
        x = layers.ZeroPadding2D(pad, name=f"{name}.pad")(x)
        padding = "valid"
    else:
        padding = "same" if pad else "valid"
    return layers.Conv2D(
        filters, kernel_size, strides=stride, padding=padding, groups=groups,
        use_bias=use_bias, name=name,
    )(x)


def batch_norm(x, *, name: str, epsilon: float = TORCH_BN_EPSILON,
               momentum: float = TORCH_BN_MOMENTUM):
    return layers.BatchNormalization(epsilon=epsilon, momentum=momentum, name=name)(x)


def conv_bn(x, filters: int, kernel_size: int, stride: int = 1, groups: int = 1, *,
            name: str, bn_name: str, epsilon: float = TORCH_BN_EPSILON):
    """conv2d followed by batch_norm, without an activation."""
    x = conv2d(x, filters, kernel_size, stride, groups, name=name)
    return batch_norm(x, name=bn_name, epsilon=epsilon)


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


"""Counting a model's multiply-accumulates from its layers' shapes."""

from __future__ import annotations

import math

import keras

from keras_zoo import walk


def _macs(layer) -> int:
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        # kernel (kh, kw, C, multiplier): one k*k window per output element
        kh, kw = layer.kernel.shape[:2]
        return math.prod(layer.output.shape[1:]) * kh * kw
    if isinstance(layer, keras.layers.Conv2D):
        # kernel (kh, kw, C / groups, O): every output element sums kh * kw * C / groups products
        kh, kw, cin_per_group, _ = layer.kernel.shape
        return math.prod(layer.output.shape[1:]) * kh * kw * cin_per_group
    if isinstance(layer, keras.layers.Dense):
        cin, cout = layer.kernel.shape
        return math.prod(layer.output.shape[1:-1]) * cin * cout
    return 0


def count_macs(model: keras.Model) -> int:
    """Multiply-accumulates of one image through the convolution and dense layers of `model`.

    This is what torchvision's tables call GFLOPS (batch norm, activations and pooling are not
    counted). The model needs a fixed input size.

    >>> import keras_zoo
    >>> round(keras_zoo.count_macs(keras_zoo.build("resnet50")) / 1e9, 3)
    4.089
    """
    total = 0
    for layer in walk.layers(model):
        if not isinstance(
            layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)
        ):
            continue
        shape = layer.output.shape
        if any(d is None for d in shape[1:]):
            raise ValueError(
                f"count_macs needs a fixed input size; layer {layer.name!r} has output shape "
                f"{tuple(shape)}. Build the model with input_shape=(224, 224, 3)."
            )
        total += _macs(layer)
    return total

"""Counting a model's multiply-accumulates from its layers' shapes."""

from __future__ import annotations

import math

import keras

from keras_zoo import walk


def _attention_macs(layer, model) -> int:
    # the query, key, value and output projections, then softmax(Q K^T) V over every head
    node = walk.call_of(model, layer)
    query, value = node.input_tensors[:2]
    lq, lk = math.prod(query.shape[1:-1]), math.prod(value.shape[1:-1])
    heads, key_dim, value_dim = layer.num_heads, layer.key_dim, layer.value_dim or layer.key_dim
    d_q, d_v = query.shape[-1], value.shape[-1]
    d_out = layer.output.shape[-1]
    projections = lq * d_q * heads * key_dim + lk * d_v * heads * (key_dim + value_dim)
    projections += lq * heads * value_dim * d_out
    return projections + heads * lq * lk * (key_dim + value_dim)


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
    """Multiply-accumulates of one image through the convolution, dense and attention layers
    of `model` (an attention's projections and its two products, Q K^T and the weighted sum of
    V).

    This is what torchvision's tables call GFLOPS (batch norm, layer norm, activations, softmax
    and pooling are not counted). The model needs a fixed input size.

    >>> import keras_zoo
    >>> round(keras_zoo.count_macs(keras_zoo.build("resnet50")) / 1e9, 3)
    4.089
    """
    total = 0
    for layer in walk.layers(model):
        counted = (
            keras.layers.Conv2D,
            keras.layers.DepthwiseConv2D,
            keras.layers.Dense,
            keras.layers.MultiHeadAttention,
        )
        if not isinstance(layer, counted):
            continue
        shape = layer.output.shape
        if any(d is None for d in shape[1:]):
            raise ValueError(
                f"count_macs needs a fixed input size; layer {layer.name!r} has output shape "
                f"{tuple(shape)}. Build the model with input_shape=(224, 224, 3)."
            )
        if isinstance(layer, keras.layers.MultiHeadAttention):
            total += _attention_macs(layer, _owner(model, layer))
        else:
            total += _macs(layer)
    return total


def _owner(model: keras.Model, layer) -> keras.Model:
    """The model, `model` or one nested in it, whose graph calls `layer`."""
    for candidate in [
        model,
        *(m for m in walk.layers(model, models=True) if walk.is_graph_model(m)),
    ]:
        if any(node.operation is layer for node in walk.calls_in(candidate)):
            return candidate
    raise ValueError(f"count_macs: layer {layer.name!r} is not called in {model.name!r}")

"""An inference export: every BatchNormalization folded into the convolution before it.

In inference a batch norm is an affine map per channel, y = x * s + (beta - mean * s) with
s = gamma / sqrt(variance + epsilon); after a convolution (or a dense layer) it folds into that
layer: its kernel scaled by s along the output channels, its bias (zero if it had none) mapped
through the same affine. The folded model computes the same function with one op less per
batch norm, and TensorFlow fuses the convolution's bias and activation into it.
docs/BENCHMARKS.md measures what that is worth.
"""

from __future__ import annotations

from collections import Counter

import keras
import numpy as np

from keras_zoo import walk

# Layers whose kernel has the output channels on its last axis (depthwise ones as (in, mult)).
_FOLDABLE = (
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.DepthwiseConv1D,
    keras.layers.DepthwiseConv2D,
    keras.layers.Dense,
)


def fold_batchnorm(model: keras.Model) -> keras.Model:
    """A copy of `model` for inference, each foldable batch norm folded into its producer.

    A BatchNormalization folds when its input is the only use of the output of a Conv1D/2D/3D,
    DepthwiseConv1D/2D or Dense layer without an activation, both called once, normalising that
    layer's channel axis. It is replaced by an Identity layer of the same name, so every layer
    name still reaches the same values; batch norms that do not fold stay as they are. Nested
    Functional and Sequential models are folded too. `model` itself is left unchanged.

    The copy is for inference and export (`predict`, `evaluate`, saving): it has no batch
    statistics left to train. Outputs equal the original's to float32 rounding (relative
    differences of about 1e-6; tests/test_fold.py checks every family). The copy keeps the
    model's description (`keras_zoo.describe`).

    >>> import numpy as np, keras_zoo
    >>> model = keras_zoo.build("mobilenet_v2", alpha=0.5, input_shape=(64, 64, 3))
    >>> folded = keras_zoo.fold_batchnorm(model)
    >>> len(folded.weights) < len(model.weights)
    True
    >>> x = np.random.default_rng(0).uniform(-1, 1, (2, 64, 64, 3)).astype("float32")
    >>> bool(np.allclose(folded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6))
    True
    """
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"model must be a Functional or Sequential keras.Model, got {type(model).__name__}"
        )
    try:
        pairs = _foldable_pairs(model)
    except TypeError as error:  # a subclassed model, at the top or nested: no graph to fold
        raise TypeError(
            f"model: fold_batchnorm needs Functional or Sequential models ({error})"
        ) from None
    producers = {id(bn): layer for layer, bn in pairs}  # batch norm -> the layer it folds into
    folded_into = {id(layer): bn for layer, bn in pairs}
    clones = {}
    replacements = set()

    def clone(layer):
        config = layer.get_config()
        if id(layer) in producers:
            new = keras.layers.Identity(name=layer.name)
            replacements.add(id(new))
        else:
            if id(layer) in folded_into:
                config["use_bias"] = True
            new = layer.__class__.from_config(config)
        clones[id(layer)] = (layer, new)
        return new

    def call(layer, *args, **kwargs):  # a batch norm's call arguments (mask) are not Identity's
        return layer(args[0]) if id(layer) in replacements else layer(*args, **kwargs)

    if isinstance(model, keras.Sequential):  # which takes neither of the two below
        folded = keras.models.clone_model(model, clone_function=clone, recursive=True)
    else:
        names = {
            id(layer.output): layer.name
            for layer in model.layers
            if isinstance(layer, keras.layers.InputLayer)
        }
        inputs = keras.tree.map_structure(  # the input layers keep their names
            lambda t: keras.Input(batch_shape=t.shape, dtype=t.dtype, name=names[id(t)]),
            model.input,
        )
        folded = keras.models.clone_model(
            model, input_tensors=inputs, clone_function=clone, call_function=call, recursive=True
        )
    for old, new in clones.values():
        if id(old) in producers:
            continue
        if id(old) in folded_into:
            new.set_weights(_folded_weights(old, folded_into[id(old)]))
        else:
            new.set_weights(old.get_weights())
    if getattr(model, "description", None) is not None:  # what it is (keras_zoo.describe) stays
        folded.description = model.description
    return folded


def _foldable_pairs(model: keras.Model) -> list[tuple]:
    """(layer, batch norm) for every batch norm of `model` and its nested models that folds
    into the layer before it."""
    pairs = []
    nested = walk.layers(model, subclassed="error", models=True)
    for sub in [model, *(layer for layer in nested if isinstance(layer, keras.Model))]:
        graph = walk.graph_of(sub)
        nodes = walk.calls_in(graph)
        producers = {id(t): node.operation for node in nodes for t in node.output_tensors}
        uses = Counter(id(t) for node in nodes for t in node.input_tensors)
        uses.update(id(t) for t in graph.outputs)  # a model output is a use the fold would lose
        calls = Counter(id(node.operation) for node in nodes)
        for node in nodes:
            bn = node.operation
            if not isinstance(bn, keras.layers.BatchNormalization) or len(node.input_tensors) != 1:
                continue
            tensor = node.input_tensors[0]
            producer = producers[id(tensor)]
            if (
                _can_fold(producer, bn, len(tensor.shape))
                and uses[id(tensor)] == 1
                and calls[id(producer)] == 1
                and calls[id(bn)] == 1
            ):
                pairs.append((producer, bn))
    return pairs


def _can_fold(layer, bn, rank: int) -> bool:
    if not isinstance(layer, _FOLDABLE) or layer.activation is not keras.activations.linear:
        return False
    channels_last = getattr(layer, "data_format", "channels_last") == "channels_last"
    return bn.axis % rank == (rank - 1 if channels_last else 1)


def _folded_weights(layer, bn) -> list[np.ndarray]:
    """[kernel, bias] of `layer` with `bn` folded in, computed in float64."""
    kernel = layer.kernel.numpy().astype(np.float64)
    channels = bn.moving_mean.shape[0]
    gamma = bn.gamma.numpy() if bn.scale else np.ones(channels)
    beta = bn.beta.numpy() if bn.center else np.zeros(channels)
    scale = gamma.astype(np.float64) / np.sqrt(
        bn.moving_variance.numpy().astype(np.float64) + bn.epsilon
    )
    bias = layer.bias.numpy().astype(np.float64) if layer.use_bias else np.zeros(channels)
    if isinstance(layer, (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)):
        kernel = kernel * scale.reshape(kernel.shape[-2:])  # channel c * mult + m
    else:
        kernel = kernel * scale
    bias = (bias - bn.moving_mean.numpy()) * scale + beta
    dtype = layer.kernel.dtype
    return [kernel.astype(dtype), bias.astype(dtype)]

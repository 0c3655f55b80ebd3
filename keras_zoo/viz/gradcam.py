"""Grad-CAM (Selvaraju et al., 2017): where in the image a layer's evidence for a class lies."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from keras_zoo import walk
from keras_zoo.features import token_grid
from keras_zoo.viz.features import as_images
from keras_zoo.viz.graph import (
    default_cam_layer,
    find_layers,
    split_at,
    token_map_grid,
    tokens_to_map,
)


def _is_softmax(model: keras.Model) -> bool:
    last = walk.producer(model, model.outputs[0]) if model.outputs else None
    return getattr(last, "activation", None) is keras.activations.softmax


def grad_cam(
    model: keras.Model,
    images: Any,
    class_index: int | Sequence[int] | None = None,
    layer: str | None = None,
    *,
    resize: bool = True,
) -> np.ndarray:
    """Grad-CAM heatmaps of `images` for `class_index`, at `layer`.

    For each image: the layer's channels weighted by the spatial mean of the class score's
    gradient, summed, passed through ReLU, scaled to a maximum of 1 and resized to the image
    (bilinear). Returns float32 (N, H, W) in [0, 1]; with resize=False the maps at the
    layer's own resolution, (N, height, width) in the model's float type.

    class_index: one class for every image, one per image, or None for each image's predicted
    class. layer: default the last layer with a 4-D output (for a keras_zoo model, its last
    stage output). The class score is the model's output, or its logarithm when the model ends
    in a softmax (the gradient of a saturated probability vanishes, its log's does not).

    A transformer's token layer, output (batch, 1 + rows * columns, d), is seen as the
    (rows, columns, d) map of its patch tokens (its feature outputs record the layout,
    `keras_zoo.features.token_grid`; the class token is left out); a ViT's default layer is its
    last block's ln_1 (`default_cam_layer`).

    >>> import numpy as np, keras_zoo
    >>> model = keras_zoo.build("resnet18", input_shape=(64, 64, 3), classes=3)
    >>> grad_cam(model, np.random.rand(2, 64, 64, 3), class_index=1).shape
    (2, 64, 64)
    >>> vit = keras_zoo.build("vit_b_32", input_shape=(64, 64, 3), classes=3)
    >>> grad_cam(vit, np.random.rand(2, 64, 64, 3), resize=False).shape  # 2x2 patches
    (2, 2, 2)
    """
    import tensorflow as tf

    batch = as_images(model, images)
    ref = (
        default_cam_layer(model)
        if layer is None
        else find_layers(model, [layer], argument="layer")[0]
    )
    grid = token_map_grid(model, ref)
    run = split_at(model, ref)
    x = tf.constant(batch)
    with tf.GradientTape() as tape:
        features, outputs = run(x)
        if grid is None and len(features.shape) != 4:
            tokens = token_grid(model)
            also = (
                ""
                if tokens is None
                else f" or tokens (batch, {tokens.prefix_tokens + tokens.rows * tokens.columns}"
                ", width) on its grid"
            )
            raise ValueError(
                f"layer {ref.name!r} outputs shape {tuple(features.shape)}, not a "
                f"feature map (batch, height, width, channels){also}"
            )
        outputs = tf.reshape(outputs, (len(batch), -1))
        classes = _class_indices(class_index, outputs, len(batch))
        scores = tf.gather(outputs, classes, axis=1, batch_dims=1)
        if _is_softmax(model):
            scores = tf.math.log(scores + 1e-12)
    grads = tape.gradient(scores, features)
    if grads is None:
        raise ValueError(f"the output of {model.name!r} does not depend on layer {ref.name!r}")
    if grid is not None:
        features, grads = tokens_to_map(features, grid), tokens_to_map(grads, grid)
        if not np.any(grads.numpy()):
            warnings.warn(
                f"grad_cam: the class scores do not depend on the patch tokens of layer "
                f"{ref.name!r} (the output reads only the class token after it), so its "
                f"heatmaps are zero; {default_cam_layer(model).name!r}, the default, is the "
                "last layer whose patch tokens count",
                stacklevel=2,
            )
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(weights * features, axis=-1))
    peak = tf.reduce_max(cam, axis=(1, 2), keepdims=True)
    cam = tf.math.divide_no_nan(cam, peak)
    if not resize:
        return cam.numpy()
    cam = tf.image.resize(cam[..., None], batch.shape[1:3], method="bilinear")[..., 0]
    return np.clip(cam.numpy(), 0, 1).astype(np.float32)


def _class_indices(class_index, outputs, n: int):
    import tensorflow as tf

    n_classes = outputs.shape[-1]
    if class_index is None:
        return tf.argmax(outputs, axis=-1, output_type=tf.int32)
    indices = (
        np.broadcast_to(np.asarray(class_index), (n,))
        if np.ndim(class_index) == 0
        else np.asarray(class_index)
    )
    if (
        indices.shape != (n,)
        or not np.issubdtype(indices.dtype, np.integer)
        or indices.min() < 0
        or indices.max() >= n_classes
    ):
        raise ValueError(
            f"class_index: expected None, or one class or {n} classes in "
            f"[0, {n_classes}), got {class_index!r}"
        )
    return tf.constant(indices, tf.int32)

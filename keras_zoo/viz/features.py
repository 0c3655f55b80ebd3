"""Feature maps: what chosen layers of a model output for given images."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import keras
import numpy as np

from keras_zoo.viz.graph import (
    LayerRef,
    as_feature_map,
    default_feature_layers,
    find_layers,
    make_probe,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def as_images(model: keras.Model, images: Any, *, argument: str = "images") -> np.ndarray:
    """`images` as a batch (N, H, W, C) that fits the model's input, in the input's float
    dtype (float32, or float64 for a model built in float64).

    Takes an array (one image (H, W, C) becomes a batch of one) or a tf.data.Dataset of
    batches, or of (batch, labels), whose first batch is used. A model of other inputs (tokens
    (N, T, D)) takes a batch of its own rank the same way.
    """
    import tensorflow as tf

    if isinstance(images, tf.data.Dataset):
        first = next(iter(images))
        images = first[0] if isinstance(first, (tuple, list)) else first
    dtype = np.dtype(keras.backend.standardize_dtype(model.inputs[0].dtype))
    try:
        batch = np.asarray(images, dtype=dtype if dtype.kind == "f" else np.float32)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"{argument}: expected an array of images, got {type(images).__name__} ({err})"
        ) from None
    expected = tuple(model.inputs[0].shape[1:])
    if batch.ndim == len(expected):
        batch = batch[None]
    if (
        batch.ndim != len(expected) + 1
        or len(batch) == 0
        or any(e is not None and e != d for e, d in zip(expected, batch.shape[1:]))
    ):
        raise ValueError(
            f"{argument}: expected images of shape (N, {', '.join(map(str, expected))}) for "
            f"{model.name!r}, got shape {batch.shape}"
        )
    return batch


def resolve_layers(
    model: keras.Model, layers: Sequence[str] | None, input_shape: Sequence[int] | None = None
) -> list[LayerRef]:
    """`layers` by name, or the default feature layers (`default_feature_layers`)."""
    if layers is None:
        return default_feature_layers(model, input_shape)
    return find_layers(model, layers)


def feature_maps(
    model: keras.Model, images: Any, layers: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """The outputs of `layers` (default: the feature outputs of a keras_zoo model, else the last
    layer at each resolution) for `images`, by layer name, in inference mode; a feature
    output's tokens as the map of its patch tokens.

    >>> import numpy as np, keras_zoo
    >>> model = keras_zoo.build("resnet18", input_shape=(64, 64, 3))
    >>> {k: v.shape for k, v in feature_maps(model, np.zeros((2, 64, 64, 3))).items()}
    {'stage1': (2, 16, 16, 64), 'stage2': (2, 8, 8, 128), 'stage3': (2, 4, 4, 256), \
'stage4': (2, 2, 2, 512)}
    """
    batch = as_images(model, images)
    refs = resolve_layers(model, layers, batch.shape[1:])
    values = make_probe(model, refs)(batch)
    return {ref.name: np.asarray(as_feature_map(v, ref)) for ref, v in zip(refs, values)}


def activation_stats(values: np.ndarray) -> dict[str, float]:
    """mean, std and the fraction of exact zeros of an activation tensor."""
    values = np.asarray(values)
    return {
        "mean": float(values.mean()),
        "std": float(values.std()),
        "zero_fraction": float(np.mean(values == 0)),
    }


def plot_feature_maps(
    model: keras.Model,
    image: Any,
    layer: str,
    n: int = 12,
    *,
    cols: int = 4,
    cmap: str = "gray",
) -> Figure:
    """The first `n` channels of `layer`'s output for one image, as a matplotlib Figure: a grid
    of `cols` columns (3x4 by default), one grayscale picture per channel.

    `image` is one model input (H, W, C), already preprocessed as the model expects.

    >>> import numpy as np, keras_zoo
    >>> model = keras_zoo.build("mobilenet_v2", input_shape=(96, 96, 3))
    >>> figure = plot_feature_maps(model, np.random.rand(96, 96, 3), "stage2")
    >>> len(figure.axes)
    12
    """
    from keras_zoo.checks import check_positive_int

    n, cols = check_positive_int(n, "n"), check_positive_int(cols, "cols")
    batch = as_images(model, image, argument="image")
    if len(batch) != 1:
        raise ValueError(f"image: expected one image, got a batch of {len(batch)}")
    (ref,) = find_layers(model, [layer], argument="layer")
    (value,) = make_probe(model, [ref])(batch)
    value = np.asarray(as_feature_map(value, ref))
    if value.ndim != 4:
        raise ValueError(
            f"layer {layer!r} outputs shape {value.shape}, not a feature map "
            "(batch, height, width, channels)"
        )
    return channel_figure(value[0], ref.name, n=n, cols=cols, cmap=cmap)


def channel_figure(
    feature_map: np.ndarray, title: str, *, n: int = 12, cols: int = 4, cmap: str = "gray"
) -> Figure:
    """One image's feature map (H, W, C): its first `n` channels as a Figure of `cols` columns."""
    from matplotlib.figure import Figure

    n = min(n, feature_map.shape[-1])
    rows = -(-n // cols)
    figure = Figure(figsize=(2.2 * min(cols, n), 2.2 * rows + 0.5), layout="constrained")
    for i in range(n):
        ax = figure.add_subplot(rows, min(cols, n), i + 1)
        ax.imshow(feature_map[:, :, i], cmap=cmap, interpolation="nearest")
        ax.set_title(f"channel {i}", fontsize=8)
        ax.set_axis_off()
    figure.suptitle(f"{title}: {'x'.join(map(str, feature_map.shape))}")
    return figure

"""Images in: reading image files and normalising them as a model id's weights expect."""

from __future__ import annotations

import os

import numpy as np

from keras_zoo.registry import ModelInfo


def load_image(path: str | os.PathLike, size: tuple[int, int]) -> np.ndarray:
    """The image file at `path` as RGB float32 (height, width, 3) in [0, 1], resized to `size`
    (height, width) bilinearly; ValueError naming the file if it is missing or not an image."""
    import keras

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"image {path!r}: no such file")
    try:
        image = keras.utils.load_img(path, color_mode="rgb", target_size=tuple(size),
                                     interpolation="bilinear")
    except Exception as err:  # PIL raises several types for a file that is not an image
        raise ValueError(f"image {path!r} is not a readable image: {err}") from None
    return np.asarray(image, np.float32) / 255.0


def normalize(images: np.ndarray, info: ModelInfo) -> np.ndarray:
    """RGB images in [0, 1] normalised as `info`'s weights expect: (x - mean) / std, then
    reordered to BGR for weights trained on BGR images.

    >>> import keras_zoo
    >>> x = normalize(np.full((1, 2, 2, 3), 0.5), keras_zoo.model_info("resnet50"))
    >>> [round(float(v), 3) for v in x[0, 0, 0]]
    [0.066, 0.196, 0.418]
    """
    x = (np.asarray(images, np.float32) - np.float32(info.mean)) / np.float32(info.std)
    return x[..., ::-1] if info.channel_order == "BGR" else x

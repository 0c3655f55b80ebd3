"""Images as an export takes them: random pictures for the check, image files, or pixels,
resized, cropped and (unless the model normalises its own input) normalised as the
preprocessing says."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from keras_zoo.weight_sets import Preprocessing


class Images:
    """Images prepared for a model of `input_shape` (height, width, channels): `pre` says how
    they are resized and normalised; `in_model`: the model normalises its own input."""

    def __init__(self, pre: Preprocessing, in_model: bool, input_shape: Sequence[int]):
        from keras_zoo.preprocess import normalize_layer, resize_layer

        self.size = input_shape[0]
        self.resize = resize_layer(pre, self.size)
        self.normalize = None if in_model else normalize_layer(pre)
        self.input_shape = input_shape

    def pixels(self, pixels: np.ndarray) -> np.ndarray:
        """Resized RGB pixels in [0, 255] -> the model's input (normalised unless the model
        does it)."""
        x = np.asarray(pixels, np.float32)
        return x if self.normalize is None else np.asarray(self.normalize(x), np.float32)

    def random(self, n: int, seed: int = 0) -> np.ndarray:
        """n random pictures: smooth colour fields (a 5x5 grid of random colours, resized)
        with fine noise. Unlike pixel noise, whose images all look alike to a network that
        averages over space, they differ from one another as photographs do."""
        import keras

        rng = np.random.default_rng(seed)
        height, width, channels = self.input_shape
        coarse = rng.uniform(0, 255, (n, 5, 5, channels)).astype(np.float32)
        smooth = np.asarray(keras.ops.image.resize(coarse, (height, width)), np.float32)
        noise = rng.normal(0, 16, (n, height, width, channels)).astype(np.float32)
        return self.pixels(np.clip(smooth + noise, 0, 255))

    def files(self, files: Sequence[str]) -> np.ndarray:
        """The image files, read as RGB and prepared; ValueError for a model that does not
        take 3 channels."""
        from keras_zoo.data import read_image

        if self.input_shape[-1] != 3:
            raise ValueError(
                f"images: the model takes {self.input_shape[-1]}-channel inputs; "
                "image folders give RGB"
            )
        resized = [np.asarray(self.resize(read_image(f)), np.float32) for f in files]
        return self.pixels(np.stack(resized))

    def regions(self, task: Any, files: Sequence[str], regions: np.ndarray) -> np.ndarray:
        """The `regions` of the image files, cut out as `task` crops them (`Task.crops`), at
        the model's input size, prepared."""
        from keras_zoo.data import read_image

        crops = task.crops([read_image(f) for f in files], regions, int(self.input_shape[0]))
        return self.pixels(np.asarray(crops, np.float32))

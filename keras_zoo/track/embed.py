"""Appearance embeddings of detections for `Sort(max_cosine_distance=...)`: each box cut from its
video frame, resized, and run through a keras_zoo backbone without its classifier, its pooled
features the embedding (DeepSORT's use of a re-identification network, with any zoo backbone).

Importing this module loads Keras; `keras_zoo.track` itself does not.

>>> import numpy as np
>>> embedder = Embedder("mobilenet_v3_small", input_size=(64, 32))
>>> frame = np.zeros((120, 160, 3), np.uint8)
>>> embedder(frame, np.array([[10.0, 20.0, 40.0, 100.0]])).shape
(1, 576)
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

# DeepSORT's crops are 128 x 64 (height x width), a pedestrian's shape
DEFAULT_INPUT_SIZE = (128, 64)
DEFAULT_BATCH_SIZE = 64


class Embedder:
    """A zoo backbone that maps boxes in a frame to appearance embeddings.

    Args:
        model_id: a keras_zoo model id (`keras_zoo.list_models()`), built without its top,
            with average pooling and its own preprocessing (the crops are RGB in [0, 255]).
        weights: what `keras_zoo.build(weights=...)` takes: "imagenet", a weight set's key, a
            PyTorch checkpoint or a Keras weights file; None leaves the weights random.
        input_size: (height, width) every crop is resized to.
        batch_size: crops run through the model at a time.

    Calling it with a frame (H, W, 3) and boxes (N, 4) [x1, y1, x2, y2] returns (N, D)
    float32 embeddings; `sequence` embeds the boxes of many frames, batching crops across
    frames. A box is clipped to the frame first (its part outside the frame is not seen);
    a box with nothing inside the frame gets a zero embedding, near no track.
    """

    def __init__(
        self,
        model_id: str = "mobilenet_v3_small",
        weights: str | os.PathLike | None = None,
        *,
        input_size: tuple[int, int] = DEFAULT_INPUT_SIZE,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        import keras_zoo
        from keras_zoo import checks

        size = tuple(input_size)
        if len(size) != 2 or not all(isinstance(v, int) and v >= 32 for v in size):
            raise ValueError(
                f"input_size: expected (height, width), each >= 32, got {input_size!r}"
            )
        self.batch_size = checks.check_positive_int(batch_size, "batch_size")
        self.input_size: tuple[int, int] = (int(size[0]), int(size[1]))
        self.model = keras_zoo.build(
            model_id,
            include_top=False,
            pooling="avg",
            include_preprocessing=True,
            weights=weights,
            input_shape=(*self.input_size, 3),
        )
        self.dimension = int(self.model.output.shape[-1])
        self._run = _compiled(self.model, self.input_size)

    def __call__(self, frame: Any, boxes: Any) -> np.ndarray:
        """The (N, D) embeddings of `boxes` in `frame`."""
        return next(iter(self.sequence([(frame, boxes)])))

    def sequence(self, frames: Iterable[tuple[Any, Any]]) -> Iterator[np.ndarray]:
        """For each (frame, boxes) pair, in order, the (N, D) embeddings of its boxes; crops
        of consecutive frames share batches, and a frame's embeddings are yielded once its
        last crop has run."""
        pending: list[tuple[int, np.ndarray]] = []  # (boxes, crops) of frames not yet yielded
        crops: list[np.ndarray] = []
        outputs: list[np.ndarray] = []
        for frame, boxes in frames:
            frame_crops, inside = self._crops(frame, boxes)
            pending.append((int(inside.sum()), inside))
            crops.extend(frame_crops)
            while len(crops) >= self.batch_size:
                outputs.append(self._embed(crops[: self.batch_size]))
                del crops[: self.batch_size]
            yield from _complete(pending, outputs, self.dimension)
        if crops:
            outputs.append(self._embed(crops))
        yield from _complete(pending, outputs, self.dimension, final=True)

    def _crops(self, frame: Any, boxes: Any) -> tuple[list[np.ndarray], np.ndarray]:
        """The frame's boxes cut and resized (float32, one (h, w, 3) array per box that has
        pixels in the frame) and the mask of those boxes."""
        import tensorflow as tf

        image = np.asarray(frame)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"frame: expected an (H, W, 3) uint8 RGB image, got {image.dtype} {image.shape}"
            )
        b = (
            np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
            if np.size(boxes)
            else np.zeros((0, 4))
        )
        height, width = image.shape[:2]
        clipped = np.clip(b, 0.0, [width, height, width, height])
        inside = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
        if not inside.any():
            return [], inside
        # Each crop pixel samples the box at its own centre, as a resize with half-pixel
        # centres does (OpenCV's INTER_LINEAR, tf.image.resize): the first sample lies half a
        # step inside the box. crop_and_resize takes the first and last sample's position,
        # normalised so that 0 and 1 are the first and last pixel centre; the frame is padded
        # by a replicated pixel so that samples within half a pixel of its edge read the edge
        # rather than black.
        c = clipped[inside]
        out_h, out_w = self.input_size
        step_x = (c[:, 2] - c[:, 0]) / out_w
        step_y = (c[:, 3] - c[:, 1]) / out_h
        first_x = c[:, 0] + 0.5 * step_x - 0.5 + 1.0  # +1: the padding
        first_y = c[:, 1] + 0.5 * step_y - 0.5 + 1.0
        last_x = first_x + (out_w - 1) * step_x
        last_y = first_y + (out_h - 1) * step_y
        # the padded frame's last pixel centre is at height + 1 (and width + 1)
        normalised = np.stack([first_y, first_x, last_y, last_x], axis=1) / np.array(
            [height + 1, width + 1, height + 1, width + 1]
        )
        padded = np.pad(image, ((1, 1), (1, 1), (0, 0)), mode="edge")
        cut = tf.image.crop_and_resize(
            tf.convert_to_tensor(padded[None], tf.float32),
            normalised.astype(np.float32),
            tf.zeros(len(c), tf.int32),
            self.input_size,
        )
        return list(cut.numpy()), inside

    def _embed(self, crops: list[np.ndarray]) -> np.ndarray:
        return np.asarray(self._run(np.stack(crops)))


def _compiled(model: Any, input_size: tuple[int, int]) -> Any:
    """The model's inference as one traced function for any batch size."""
    import tensorflow as tf

    @tf.function(
        input_signature=[tf.TensorSpec((None, *input_size, 3), tf.float32)], reduce_retracing=True
    )
    def run(x: Any) -> Any:
        return model(x, training=False)

    return run


def _complete(
    pending: list[tuple[int, np.ndarray]],
    outputs: list[np.ndarray],
    dimension: int,
    final: bool = False,
) -> Iterator[np.ndarray]:
    """Yields the embeddings of the oldest pending frames whose crops have all run, taking
    their rows from `outputs` (both lists are consumed in place)."""
    done = sum(len(o) for o in outputs)
    while pending and (pending[0][0] <= done or final):
        count, inside = pending.pop(0)
        rows = np.concatenate(outputs) if outputs else np.zeros((0, dimension), np.float32)
        embedded, rest = rows[:count], rows[count:]
        outputs[:] = [rest] if len(rest) else []
        done -= count
        out = np.zeros((len(inside), dimension), np.float32)
        out[inside] = embedded
        yield out

"""What a person sees of landmarks: points drawn on faces, in TensorBoard while a model
trains and on predict's images, and the face detector that finds the face in a photo.

>>> import numpy as np
>>> face = np.zeros((20, 20, 3), np.uint8)
>>> drawn = draw_points(face, np.array([[10.0, 10.0]]), radius=2)
>>> drawn[10, 10].tolist(), drawn[0, 0].tolist()
([255, 40, 40], [0, 0, 0])
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from keras_zoo.callbacks import InspectionCallback

PREDICTED = (255, 40, 40)  # red: what the model says
TRUE = (40, 220, 40)  # green: the annotation
ZOOM = 3  # the TensorBoard crops enlarged, so that 98 points stay apart


def draw_points(
    image: np.ndarray,
    points: np.ndarray,
    *,
    colour: tuple[int, int, int] = PREDICTED,
    radius: float | None = None,
) -> np.ndarray:
    """`image` (H, W, 3) as uint8 with a filled dot at each of `points` ((K, 2) or (2K,) in
    the image's pixels); the dots' radius from the image's size unless given."""
    from PIL import Image, ImageDraw

    picture = Image.fromarray(np.clip(np.asarray(image), 0, 255).astype(np.uint8))
    if radius is None:
        radius = max(1.0, max(picture.size) / 150)
    pen = ImageDraw.Draw(picture)
    for x, y in np.asarray(points, np.float64).reshape(-1, 2):
        pen.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour)
    return np.asarray(picture)


def pictures(batch: np.ndarray, channel_order: str) -> np.ndarray:
    """Prepared crops (N, S, S, 3), however normalised, as RGB uint8 pictures: each min-max
    scaled, BGR turned back to RGB."""
    from keras_zoo.viz.images import minmax

    shown = minmax(np.asarray(batch, np.float32), axis=(1, 2, 3))
    if channel_order == "BGR":
        shown = shown[..., ::-1]
    return (shown * 255).round().astype(np.uint8)


def faces_with_points(
    batch: np.ndarray, predicted: np.ndarray, true: np.ndarray | None, channel_order: str
) -> np.ndarray:
    """The crops enlarged `ZOOM` times with the predicted points (red) and, where given, the
    annotated ones (green): uint8 (N, S*ZOOM, S*ZOOM, 3)."""
    shown = pictures(batch, channel_order).repeat(ZOOM, 1).repeat(ZOOM, 2)
    side = shown.shape[1]
    out = []
    for i, picture in enumerate(shown):
        if true is not None:
            picture = draw_points(picture, np.asarray(true[i]) * side, colour=TRUE)
        out.append(draw_points(picture, np.asarray(predicted[i]) * side, colour=PREDICTED))
    return np.stack(out)


class LandmarkLogger(InspectionCallback):
    """Logs validation faces with the model's points (red) and the annotated ones (green)
    every epoch (`landmarks/faces`), and at the end of training the cumulative error
    distribution of the validation faces (`landmarks/ced`). `validation` is the task's
    validation dataset of (prepared crops, training targets: the points in [0, 1] first,
    `fitting`); `count` faces are drawn."""

    def __init__(self, log_dir: str | os.PathLike, validation: Any, count: int = 8):
        super().__init__(log_dir)
        self.validation = validation
        self.count = count

    def prepare(self) -> None:
        from keras_zoo.description import describe

        crops: list[np.ndarray] = []
        points: list[np.ndarray] = []
        for x, y in self.validation:
            crops.append(np.asarray(x))
            points.append(np.asarray(y))
            if sum(len(c) for c in crops) >= self.count:
                break
        self._crops = np.concatenate(crops)[: self.count]
        self._true = _points(np.concatenate(points)[: self.count])
        self._order = describe(self.model).preprocessing.channel_order

    def log(self, epoch: int) -> None:
        import tensorflow as tf

        predicted = np.asarray(self.model.predict_on_batch(self._crops))[:, : self._true.shape[1]]
        tf.summary.image(
            "landmarks/faces",
            faces_with_points(self._crops, predicted, self._true, self._order),
            max_outputs=len(self._crops),
            description="validation faces: the model's points red, the annotation green",
        )

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._writer is not None:
            with self._writer.as_default(step=0):
                self._log_ced()
            self._writer.flush()
        super().on_train_end(logs)

    def _log_ced(self) -> None:
        import tensorflow as tf

        from keras_zoo.tasks.landmarks import measures
        from keras_zoo.viz.images import figure_to_array

        predicted, true = [], []
        for x, y in self.validation:
            points = _points(np.asarray(y))
            predicted.append(np.asarray(self.model.predict_on_batch(x))[:, : points.shape[1]])
            true.append(points)
        errors = measures.nme(np.concatenate(predicted), np.concatenate(true))
        figure = measures.ced_figure({"validation": errors}, title="validation faces")
        tf.summary.image(
            "landmarks/ced",
            figure_to_array(figure)[None],
            description=f"cumulative error distribution of {len(errors)} validation faces",
        )


def _points(targets: np.ndarray) -> np.ndarray:
    """The points in [0, 1] (N, 2K) of training targets (`fitting`)."""
    from keras_zoo.tasks.landmarks.fitting import EXTRA

    return targets[:, : targets.shape[1] - EXTRA]


def detect_face(image: np.ndarray, name: str) -> tuple[float, float, float, float]:
    """The largest face OpenCV's frontal Haar cascade finds in `image` (RGB uint8), as a box
    (x, y, width, height); ValueError naming `name` when OpenCV (the "faces" extra) is not
    installed or no face is found."""
    try:
        import cv2  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        raise ValueError(
            f"{name}: finding the face needs OpenCV (pip install opencv-python-headless); "
            "or give the face's box with --box x,y,width,height"
        ) from None
    opencv: Any = cv2  # its stubs lack the cascade classes
    cascade = opencv.CascadeClassifier(
        os.path.join(opencv.data.haarcascades, "haarcascade_frontalface_default.xml")
    )
    gray = opencv.cvtColor(np.asarray(image, np.uint8), opencv.COLOR_RGB2GRAY)
    found = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))
    if len(found) == 0:
        raise ValueError(
            f"{name}: no face found (OpenCV's frontal face detector); give the face's box "
            "with --box x,y,width,height"
        )
    x, y, w, h = max(found, key=lambda b: b[2] * b[3])
    return float(x), float(y), float(w), float(h)

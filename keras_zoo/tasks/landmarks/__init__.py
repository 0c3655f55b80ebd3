"""Facial landmarks: K points per face, the model's outputs their 2K coordinates (x0, y0, x1,
...) in [0, 1] of a square crop around the face (PFLD's).

Data is a WFLW annotation file or folder, or a folder of images with iBUG `.pts` files beside
them (`annotations.read_landmarks`); the targets are the points in the images' pixels. The
model sees the crop PFLD-pytorch trains on, 1.2 times the points' extent (`crops`), moved at
random in training (rotation, scale, shift, the mirror image with the dataset's point table,
colour); fit minimises the summed squared error of the coordinates (PFLD-pytorch's L2; or
the wing loss, or PFLD's own loss with its auxiliary head-pose net: `fitting`) and reports the
NME, normalised by the outer eye corners (`measures`), which picks the best
epoch. evaluate reports the NME by the eye corners and by the box diagonal, the failure rate
and AUC at 0.1 and draws the cumulative error distribution; predict finds the face (a box
given, else OpenCV's face detector), crops 1.1 times its box as PFLD-pytorch's camera.py does,
and returns the points in the image's pixels; TensorBoard shows validation faces with the
model's points and the annotation's, and the error distribution at the end. Two runtimes agree
on a face when no coordinate differs by more than 0.1% of the crop.

>>> task = Landmarks()
>>> task.agree(np.array([[0.5, 0.5]]), np.array([[0.5004, 0.5]])).tolist()
[True]
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from keras_zoo.tasks import Monitor, Task, register
from keras_zoo.tasks.landmarks.annotations import ATTRIBUTES
from keras_zoo.weight_sets import Preprocessing

POINT_NAMES = "landmarks.json"
PREDICT_OPTIONS: dict[str, Any] = {"box": None}
AGREEMENT = 1e-3  # the largest coordinate difference, in crop widths, of two agreeing runtimes


def points_of(targets: np.ndarray) -> np.ndarray:
    """The pixel points (N, 2K) of the data's targets (points, then the attribute flags)."""
    return np.asarray(targets, np.float32).reshape(len(targets), -1)[:, :-ATTRIBUTES]


class Landmarks(Task):
    """Facial landmarks (see the module's docstring)."""

    name = "landmarks"
    monitor = Monitor("val_nme", "min", "validation NME")
    score_name = "NME"
    named_outputs = False
    names_files = (POINT_NAMES,)
    agreement_name = "landmark agreement"
    augmentations = ("rotate", "scale", "shift", "flip", "colour")
    draws = True
    losses = ("l2", "wing", "pfld")

    def read(self, root: str | os.PathLike, *, argument: str = "data", verify: bool = True) -> Any:
        """The faces of a WFLW annotation file or folder, or of a folder of images with
        `.pts` files (`annotations.read_landmarks`)."""
        from keras_zoo.tasks.landmarks.annotations import read_landmarks

        return read_landmarks(root, argument=argument, verify=verify)

    def head(self, names: Sequence[str] | None) -> dict[str, Any]:
        """As many points as the data has, two outputs each (`annotations.point_names`): a
        start checkpoint's head of another point count is left out, as a classifier's."""
        if names is None:
            return {}
        return {"num_landmarks": len(names) // 2, "classes": len(names)}

    def loss(self, name: str | None = None) -> Any:
        """ "l2" (the default): the summed squared error of the coordinates (PFLD-pytorch's
        L2); "wing": the wing loss (Feng et al. 2018) with its width 10 and curvature 2 in
        pixels of a 112-pixel crop; "pfld": PFLD-pytorch's attribute- and angle-weighted L2,
        which trains the auxiliary head-pose net beside the points (`fitting.TargetLoss`)."""
        from keras_zoo import checks
        from keras_zoo.tasks.landmarks.fitting import TargetLoss

        return TargetLoss(checks.check_choice(name or "l2", "loss", self.losses))

    def metrics(self) -> list:
        """The NME (by the outer eye corners)."""
        from keras_zoo.tasks.landmarks.fitting import nme_metric

        return [nme_metric()]

    def fit_keywords(self, loss: str | None, data: Any) -> dict[str, Any]:
        """PFLD's loss trains the auxiliary net (auxiliary=True) and weighs faces by WFLW's
        attribute flags: ValueError for data without them."""
        if loss != "pfld":
            return {}
        if data.attributes is None:
            raise ValueError(
                f"loss 'pfld': data {data.root!r} has no WFLW attribute flags, by which PFLD's "
                "loss weighs the faces (a face without any adds nothing); use l2 or wing"
            )
        return {"auxiliary": True}

    def fit_models(self, model: Any, loss: str | None) -> tuple[Any, Any]:
        """For PFLD's loss, the model with the auxiliary net as fit trains it (points and
        angles side by side) and as the run keeps it (points alone): `fitting.fit_models`."""
        from keras_zoo.tasks.landmarks.fitting import fit_models

        return fit_models(model, loss)

    def dataset(
        self,
        files: Sequence[str] | np.ndarray,
        targets: np.ndarray,
        *,
        image_size: int,
        preprocessing: Preprocessing,
        batch_size: int,
        training: bool = False,
        augment: tuple[str, ...] = (),
        seed: int = 0,
    ) -> Any:
        """(prepared crops, training targets) batches of the faces whose pixel points and
        attribute flags are `targets`: PFLD-pytorch's crops, changed at random in training as
        `augment` asks (`crops.augmented`), each image's changes drawn from `seed` anew each
        epoch; a training target holds the points in [0, 1] of the crop, the head pose PFLD
        computes from them and the flags (`fitting`)."""
        import tensorflow as tf

        from keras_zoo.data import _decode, prefetched, shuffled_with_draws
        from keras_zoo.preprocess import normalize_layer
        from keras_zoo.tasks.landmarks import crops
        from keras_zoo.tasks.landmarks.annotations import MIRROR
        from keras_zoo.tasks.landmarks.fitting import ANGLES, training_angles

        targets = np.asarray(targets, np.float32)
        points = points_of(targets)
        flags = targets[:, points.shape[1] :]
        regions = crops.landmark_regions(points)
        normal = crops.to_crop(points, regions)
        normalize = normalize_layer(preprocessing)
        mirror = MIRROR.get(points.shape[1] // 2)
        changes = tuple(augment) if training else ()

        def load(path, points, region, flags, draw):
            image = _decode(path)
            out, moved = crops.augmented(
                image,
                tf.reshape(points, (-1, 2)),
                region,
                size=image_size,
                seed=draw,
                augment=changes,
                mirror=mirror,
            )
            return normalize(out), tf.reshape(moved, (-1,)), flags

        def targets_of(images, points, flags):  # the head pose solved a batch at a time
            angles = tf.numpy_function(training_angles, [points], tf.float32, stateful=False)
            angles = tf.ensure_shape(angles, (None, ANGLES))
            return images, tf.concat([points, angles, flags], 1)

        ds = tf.data.Dataset.from_tensor_slices((list(files), normal, regions, flags))
        if training:
            ds = shuffled_with_draws(ds, len(files), seed)
        else:  # unchanged crops: the draw is not read
            ds = tf.data.Dataset.zip(
                ds, tf.data.Dataset.from_tensors(tf.constant(0, tf.int64)).repeat()
            )
        ds = ds.map(
            lambda item, draw: load(item[0], item[1], item[2], item[3], draw),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        return prefetched(ds.batch(batch_size).map(targets_of, num_parallel_calls=tf.data.AUTOTUNE))

    def samples(self, data: Any, indices: np.ndarray, count: int, seed: int) -> np.ndarray:
        """`count` of the validation faces, drawn with `seed`, in order."""
        rng = np.random.default_rng(seed)
        return np.sort(rng.choice(indices, min(count, len(indices)), replace=False))

    def callbacks(self, log_dir: str, samples: np.ndarray, validation: Any, data: Any) -> list:
        """Validation faces with the model's points and the annotated ones, each epoch, and
        the error distribution at the end (`view.LandmarkLogger`)."""
        from keras_zoo.tasks.landmarks.view import LandmarkLogger

        return [LandmarkLogger(log_dir, validation)]

    def write_names(self, out: str, names: Sequence[str] | None) -> tuple[str, ...]:
        """landmarks.json: {"points": K}."""
        from keras_zoo.run_state import write_json

        write_json(os.path.join(out, POINT_NAMES), {"points": len(names or ()) // 2})
        return (POINT_NAMES,)

    def read_names(self, folder: str, weights: str) -> tuple[str, ...] | None:
        """The output names ("0.x", "0.y", ...) of the K points landmarks.json in `folder`
        counts."""
        from keras_zoo.run_state import read_json_object
        from keras_zoo.tasks.landmarks.annotations import point_names

        path = os.path.join(folder, POINT_NAMES)
        if not os.path.isfile(path):
            raise ValueError(f"weights {weights!r}: no {POINT_NAMES} beside them")
        points = read_json_object(path, "landmark points").get("points")
        if not isinstance(points, int) or isinstance(points, bool) or not 0 < points <= 1000:
            raise ValueError(f'{path}: expected {{"points": K}} with K a count of points')
        return point_names(points)

    def prediction_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """`box`: the face's box (x, y, width, height) in every image; None (the default)
        finds it with OpenCV's face detector."""
        checked = self.with_defaults(options, PREDICT_OPTIONS)
        if checked["box"] is not None:
            checked["box"] = check_box(checked["box"])
        return checked

    def regions(
        self,
        files: Sequence[str],
        *,
        targets: np.ndarray | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> np.ndarray | None:
        """The square each image's face is cropped to (x0, y0, size): around the annotated
        points (`targets`, as in training), else 1.1 times the face's box (the `box` option,
        or OpenCV's face detector's); ValueError naming the image where the crop lies mostly
        outside it or no face is found."""
        from keras_zoo.data import read_image
        from keras_zoo.tasks.landmarks import crops
        from keras_zoo.tasks.landmarks.view import detect_face

        if targets is not None:
            return crops.landmark_regions(points_of(targets))
        box = (options or {}).get("box")
        found = []
        for path in files:
            name = f"image {path!r}"
            image = read_image(path)
            region = crops.box_region(box if box is not None else detect_face(image, name))
            crops.check_inside(region, image.shape, name)
            found.append(region)
        return np.stack(found)

    def crops(self, images: Sequence[np.ndarray], regions: np.ndarray, size: int) -> np.ndarray:
        """The faces' squares cut out at size x size (`crops.crop_images`)."""
        from keras_zoo.tasks.landmarks import crops

        return crops.crop_images(images, regions, size)

    def decode(
        self,
        outputs: np.ndarray,
        names: Sequence[str] | None,
        activation: str | None,
        options: Mapping[str, Any],
        regions: np.ndarray | None = None,
    ) -> list:
        """Each face's points (K, 2) in its image's pixels (in the crop's [0, 1] where no
        regions are given)."""
        from keras_zoo.tasks.landmarks import crops

        outputs = np.asarray(outputs, np.float32).reshape(len(outputs), -1)
        if regions is not None:
            outputs = crops.to_image(outputs, regions)
        return [row.reshape(-1, 2) for row in outputs]

    def prediction_text(self, result: Any) -> str:
        """ "98 points: 31.2,50.1 32.0,55.7 ..."."""
        return f"{len(result)} points: " + " ".join(f"{x:.1f},{y:.1f}" for x, y in result)

    def draw(self, image: np.ndarray, result: Any) -> np.ndarray:
        """The image with the predicted points drawn."""
        from keras_zoo.tasks.landmarks.view import draw_points

        return draw_points(image, result)

    def evaluate(
        self, outputs: np.ndarray, targets: np.ndarray, names: Sequence[str] | None
    ) -> Any:
        """NME by the outer eye corners (where the point count has them) and by the box
        diagonal, failure rate and AUC at 0.1, the error distribution (`measures`)."""
        from keras_zoo.tasks.landmarks.evaluation import LandmarkEvaluation

        return LandmarkEvaluation.of(self._in_pixels(outputs, targets), points_of(targets))

    def agree(self, reference: np.ndarray, outputs: np.ndarray) -> np.ndarray:
        """Whether no coordinate differs by more than 0.1% of the crop."""
        n = len(reference)
        difference = np.abs(
            np.asarray(reference).reshape(n, -1) - np.asarray(outputs).reshape(n, -1)
        )
        return difference.max(-1) <= AGREEMENT

    def score(self, outputs: np.ndarray, targets: np.ndarray) -> float:
        """The mean NME (by the eye corners, else the box diagonal) against pixel targets."""
        from keras_zoo.tasks.landmarks.measures import EYE_CORNERS, nme

        points = points_of(targets)
        kind = "eyes" if points.shape[1] // 2 in EYE_CORNERS else "box"
        return float(np.mean(nme(self._in_pixels(outputs, targets), points, normalise=kind)))

    def _in_pixels(self, outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Crop outputs in the pixels of the images whose annotated points are `targets`
        (the crops evaluate and the export check took); ValueError where the counts differ."""
        from keras_zoo.tasks.landmarks import crops

        outputs = np.asarray(outputs, np.float32).reshape(len(outputs), -1)
        targets = points_of(targets)
        if outputs.shape[1] != targets.shape[1]:
            raise ValueError(
                f"data: the faces have {targets.shape[1] // 2} points but the model gives "
                f"{outputs.shape[1] // 2}"
            )
        return crops.to_image(outputs, crops.landmark_regions(targets))


def check_box(box: Any) -> tuple[float, float, float, float]:
    """A face box (x, y, width, height) of numbers, or "x,y,w,h"; ValueError naming `box`."""
    if isinstance(box, str):
        box = box.split(",")
    try:
        values = tuple(float(v) for v in box)
    except (TypeError, ValueError):
        values = ()
    if len(values) != 4 or not all(np.isfinite(values)) or values[2] <= 0 or values[3] <= 0:
        raise ValueError(
            f"box: expected x,y,width,height with a positive width and height, got {box!r}"
        )
    return values  # type: ignore[return-value]


register(Landmarks())

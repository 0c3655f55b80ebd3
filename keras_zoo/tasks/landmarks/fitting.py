"""What fit sees of a landmark model: its targets, losses, NME metric, and, for PFLD's loss,
the model with the auxiliary head-pose net that fit trains beside the one a run keeps.

A training target is one row of 2K + 9 numbers: the face's points in [0, 1] of its crop (x0, y0,
x1, ...), the head pose PFLD-pytorch computes from them (pitch, yaw, roll in degrees,
`pose.head_pose`), and WFLW's 6 attribute flags (zeros for data without them). A model's
outputs are the 2K coordinates, followed, in the model fit trains for PFLD's loss, by the 3
angles of its auxiliary net. Losses and the metric read the point count from the targets' width.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import keras
import numpy as np

from keras_zoo.tasks.landmarks.annotations import ATTRIBUTES
from keras_zoo.tasks.landmarks.measures import EYE_CORNERS, L2Loss, WingLoss, pfld_loss

ANGLES = 3
EXTRA = ANGLES + ATTRIBUTES  # the numbers after the points in a training target
WING_CROP = 112.0  # the crop size in whose pixels the wing loss's width and curvature count


def _parts(y_true: Any, y_pred: Any) -> tuple[Any, Any, Any, Any, Any]:
    """(true points, predicted points, true angles, predicted angles or None, attributes)."""
    width = int(y_true.shape[-1]) - EXTRA
    y_pred = keras.ops.cast(y_pred, y_true.dtype)
    angles = y_pred[:, width : width + ANGLES] if int(y_pred.shape[-1]) > width else None
    return (
        y_true[:, :width],
        y_pred[:, :width],
        y_true[:, width : width + ANGLES],
        angles,
        y_true[:, width + ANGLES :],
    )


@keras.saving.register_keras_serializable(package="keras_zoo")
class TargetLoss(keras.losses.Loss):
    """A landmark loss on training targets (points, angles, attributes): "l2" (PFLD-pytorch's
    summed squared error), "wing" (`measures.WingLoss` in pixels of a 112-pixel crop) or
    "pfld" (`measures.pfld_loss`, PFLD-pytorch's attribute- and angle-weighted L2, on the
    outputs of the model with the auxiliary net: points then angles)."""

    def __init__(self, kind: str = "l2", name: str | None = None, **kwargs: Any) -> None:
        super().__init__(name=name or f"{kind}_loss", **kwargs)
        self.kind = kind
        self._wing = WingLoss(width=10.0, curvature=2.0, scale=WING_CROP, reduction=None)
        self._l2 = L2Loss(reduction=None)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        points, predicted, angles, predicted_angles, attributes = _parts(y_true, y_pred)
        if self.kind == "pfld":
            if predicted_angles is None:
                raise ValueError("loss 'pfld': the model gives no angles (no auxiliary net)")
            # one value for the batch: the attribute weights are the batch's own fractions
            loss = pfld_loss(points, predicted, angles, predicted_angles, attributes)
            return keras.ops.ones_like(points[:, 0]) * loss
        loss = self._wing if self.kind == "wing" else self._l2
        return loss(points, predicted)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "kind": self.kind}


def nme(y_true: Any, y_pred: Any) -> Any:
    """Per face, the NME of the predicted crop coordinates: normalised by the outer eye
    corners for 98 and 68 points, else by the box diagonal (`measures.nme` in numpy)."""
    ops = keras.ops
    points, predicted, _, _, _ = _parts(y_true, y_pred)
    count = int(points.shape[-1]) // 2
    true = ops.reshape(points, (-1, count, 2))
    pred = ops.reshape(predicted, (-1, count, 2))
    error = ops.mean(ops.sqrt(ops.sum((true - pred) ** 2, -1)), -1)
    corners = EYE_CORNERS.get(count)
    if corners is not None:
        scale = ops.norm(true[:, corners[0]] - true[:, corners[1]], axis=-1)
    else:
        scale = ops.norm(ops.max(true, 1) - ops.min(true, 1), axis=-1)
    return error / scale


def nme_metric() -> keras.metrics.Metric:
    """fit's "nme", the mean of `nme` over the faces."""
    return keras.metrics.MeanMetricWrapper(nme, name="nme")


def training_angles(points: np.ndarray) -> np.ndarray:
    """The head pose (N, 3) float32 PFLD-pytorch trains its auxiliary net on, of faces' points
    (N, 2K) in [0, 1] of their crops, solved for the batch at once; zeros for a point count
    without PFLD's tracked points or a face whose pose cannot be solved (points on a line)."""
    from keras_zoo.tasks.landmarks.pose import TRACKED_POINTS, head_pose

    pts = np.asarray(points, np.float32).reshape(len(points), -1, 2)
    angles = np.zeros((len(pts), ANGLES), np.float32)
    if pts.shape[1] not in TRACKED_POINTS or not len(pts):
        return angles
    try:
        return np.asarray(head_pose(pts), np.float32)
    except ValueError:  # a face the solver refuses: the others solved one by one
        for i, face in enumerate(pts):
            try:
                angles[i] = head_pose(face)
            except ValueError:
                pass
        return angles


def fit_models(model: keras.Model, loss: str | None) -> tuple[keras.Model, keras.Model]:
    """(the model fit trains, the model a run keeps): `model` twice, or, for PFLD's loss, a
    model built with its auxiliary net, as one of its points and angles side by side and one
    of its points alone, described as built without the net (the same layers: the kept
    model's weights are those of `keras_zoo.build` without `auxiliary`)."""
    from keras_zoo.description import describe, describe_model

    if loss != "pfld":
        return model, model
    outputs = model.output
    if not isinstance(outputs, dict) or "angles" not in outputs:
        raise ValueError("loss 'pfld': the model has no auxiliary net (auxiliary=True)")
    description = describe(model)
    fit = describe_model(
        keras.Model(
            model.inputs,
            keras.layers.Concatenate(name="landmarks_and_angles")(
                [outputs["landmarks"], outputs["angles"]]
            ),
            name=model.name,
        ),
        description,
    )
    keywords = {k: v for k, v in description.keywords.items() if k != "auxiliary"}
    kept = describe_model(
        keras.Model(model.inputs, outputs["landmarks"], name=model.name),
        dataclasses.replace(description, keywords=keywords),
    )
    return fit, kept

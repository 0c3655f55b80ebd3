"""How far predicted facial landmarks are from the true ones, and the losses that train them.

Measures (NumPy, on points (N, K, 2) of (x, y) or flattened (N, 2K) as x0, y0, x1, y1, ...):
`nme` is each face's normalised mean error, the mean over its points of the Euclidean error
divided by the true face's inter-ocular distance (its outer eye corners, `EYE_CORNERS`) or its
bounding box's diagonal; `failure_rate` the fraction of faces whose error passes a threshold
(0.1 is the usual one); `ced` the cumulative error distribution and `auc` the area under it up
to the threshold, as PFLD-pytorch's test.py computes them; `ced_figure` draws the distributions
of several models.

Losses (keras.ops, so that they run in a TensorFlow graph; on the model's 2K coordinates in
[0, 1] of the face crop): `L2Loss`, `WingLoss`, and `pfld_loss`, PFLD's angle- and
attribute-weighted L2 as PFLD-pytorch's PFLDLoss computes it.

>>> target = np.array([[[0.0, 0.0], [4.0, 0.0]]])  # one face of two points 4 apart
>>> predicted = target + [[[3.0, 4.0], [0.0, 0.0]]]  # the first point 5 off
>>> nme(predicted, target, normalise="eyes", eye_corners=(0, 1)).tolist()  # (5 + 0) / 2 / 4
[0.625]
>>> errors = np.array([0.02, 0.05, 0.1, 0.2])
>>> float(failure_rate(errors)), round(auc(errors), 4)
(0.25, 0.3253)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
from numpy.typing import ArrayLike

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# The outer eye corners by number of points: WFLW's 98 (60 and 72) and 300W's / iBUG's 68
# (36 and 45), the "inter-ocular" normalisation that PFLD-pytorch's test.py uses.
EYE_CORNERS: dict[int, tuple[int, int]] = {98: (60, 72), 68: (36, 45)}
NORMALISATIONS = ("eyes", "box")


def as_points(points: ArrayLike, name: str = "points") -> np.ndarray:
    """`points` as a float64 array (N, K, 2): (N, K, 2) as it is, (N, 2K) (x0, y0, x1, ...)
    reshaped. `name` is the argument that the ValueError for another shape names."""
    array = np.asarray(points, dtype=np.float64)
    if array.ndim == 2 and array.shape[1] % 2 == 0:
        return array.reshape(len(array), -1, 2)
    if array.ndim == 3 and array.shape[2] == 2:
        return array
    raise ValueError(
        f"{name}: expected points (N, K, 2) or flattened (N, 2K), got shape {array.shape}"
    )


def normalising_distance(
    target: ArrayLike, normalise: str = "eyes", eye_corners: tuple[int, int] | None = None
) -> np.ndarray:
    """Per face (N,), the distance that `nme` divides by: "eyes", the distance between the
    target's outer eye corners (indices `eye_corners`, else `EYE_CORNERS` by the number of
    points); "box", the diagonal of the bounding box of the target's points."""
    points = as_points(target, "target")
    k = points.shape[1]
    if normalise == "eyes":
        corners = eye_corners if eye_corners is not None else EYE_CORNERS.get(k)
        if corners is None:
            raise ValueError(
                f"normalise: 'eyes' knows the outer eye corners of {sorted(EYE_CORNERS)} points "
                f"per face, not {k}; pass eye_corners=(i, j) or normalise='box'"
            )
        if len(corners) != 2 or not all(-k <= int(i) < k for i in corners):
            raise ValueError(f"eye_corners: expected two point indices below {k}, got {corners}")
        distance = np.linalg.norm(points[:, corners[0]] - points[:, corners[1]], axis=-1)
        what = "distance between the outer eye corners"
    elif normalise == "box":
        if eye_corners is not None:
            raise ValueError("eye_corners: only normalise='eyes' uses it, not 'box'")
        extent = points.max(axis=1) - points.min(axis=1)
        distance = np.hypot(extent[:, 0], extent[:, 1])
        what = "bounding box"
    else:
        raise ValueError(f"normalise: expected one of {NORMALISATIONS}, got {normalise!r}")
    degenerate = np.flatnonzero(~(distance > 0))
    if degenerate.size:  # the error would be infinite or NaN, and an average of it meaningless
        raise ValueError(f"target: face {degenerate[0]} has a zero {what}")
    return distance


def nme(
    predicted: ArrayLike,
    target: ArrayLike,
    *,
    normalise: str = "eyes",
    eye_corners: tuple[int, int] | None = None,
) -> np.ndarray:
    """Normalised mean error (N,): per face, the mean over its points of the Euclidean
    distance between predicted and target point, divided by `normalising_distance` of the
    target ("eyes": its outer eye corners, PFLD-pytorch's compute_nme; "box": its bounding
    box's diagonal). Points (N, K, 2) or flattened (N, 2K), in any one unit."""
    pred, true = as_points(predicted, "predicted"), as_points(target, "target")
    if pred.shape[1] != true.shape[1]:
        raise ValueError(
            f"predicted has {pred.shape[1]} points per face but target {true.shape[1]}"
        )
    if len(pred) != len(true):
        raise ValueError(f"predicted has {len(pred)} faces but target {len(true)}")
    distance = normalising_distance(true, normalise, eye_corners)
    return np.linalg.norm(pred - true, axis=-1).mean(axis=1) / distance


def _errors(errors: ArrayLike) -> np.ndarray:
    array = np.asarray(errors, dtype=np.float64).ravel()
    if not array.size:
        raise ValueError("errors: expected at least one face's error, got none")
    if np.isnan(array).any():
        raise ValueError(f"errors: NaN at index {np.flatnonzero(np.isnan(array))[0]}")
    return array


def failure_rate(errors: ArrayLike, threshold: float = 0.1) -> float:
    """The fraction of faces whose error is above `threshold`; an error equal to it is not a
    failure (PFLD-pytorch counts errors <= the threshold as successes)."""
    return float(np.mean(_errors(errors) > threshold))


def ced(
    errors: ArrayLike, threshold: float = 0.1, step: float = 1e-4
) -> tuple[np.ndarray, np.ndarray]:
    """The cumulative error distribution: x = np.arange(0, threshold + step, step) as
    PFLD-pytorch's compute_auc samples it, and the fraction of errors <= each x.

    The grid is NumPy's arange: for threshold 0.1 and step 1e-4 it is 1001 points ending at 0.1
    exactly, but floating point can add a point past the threshold (0.05 and 1e-4 end at
    0.0501), as it does in PFLD-pytorch."""
    if not (threshold > 0 and 0 < step <= threshold):
        raise ValueError(
            f"threshold, step: expected 0 < step <= threshold, got {threshold} and {step}"
        )
    values = np.sort(_errors(errors))
    x = np.arange(0.0, threshold + step, step)
    # searchsorted's "right" side counts the errors <= x
    return x, np.searchsorted(values, x, side="right") / len(values)


def auc(errors: ArrayLike, threshold: float = 0.1, step: float = 1e-4) -> float:
    """The area under `ced` from 0 to `threshold`, divided by `threshold` (1 when every error
    is 0, 0 when all fail), as PFLD-pytorch's compute_auc: Simpson's rule on the sampled
    distribution (scipy.integrate.simpson; composite Simpson over pairs of steps when the grid
    has an odd number of points, as the default 1001 has; on an even number the SciPy releases
    since 1.11 integrate the last step with a quadratic through the last three points where
    PFLD-pytorch's older scipy.integrate.simps averaged two Simpson rules, which differ only
    near the ends of the grid). A step in the distribution between samples costs up to 2/3 of
    a step of area: errors all threshold / 2 give 0.5 + step / (3 * threshold)."""
    from scipy.integrate import simpson

    x, fraction = ced(errors, threshold, step)
    return float(simpson(fraction, x=x) / threshold)


def ced_figure(
    curves: Mapping[str, ArrayLike], threshold: float = 0.1, title: str = "", *, step: float = 1e-4
) -> Figure:
    """The cumulative error distributions of `curves` (name -> errors (N,), e.g. `nme`'s) as a
    matplotlib Figure: x the NME from 0 to `threshold`, y the fraction of faces with at most
    that error, one line per curve with its `auc` and `failure_rate` in the legend."""
    from matplotlib.figure import Figure

    if not curves:
        raise ValueError("curves: expected at least one named array of errors, got none")
    figure = Figure(figsize=(6.4, 4.6), layout="constrained")
    ax = figure.add_subplot()
    for name, errors in curves.items():
        x, fraction = ced(errors, threshold, step)
        area, failed = auc(errors, threshold, step), failure_rate(errors, threshold)
        ax.plot(x, fraction, label=f"{name}: AUC {area:.4f}, FR {failed:.2%}")
    ax.set_xlim(0, threshold)
    ax.set_ylim(0, 1)
    ax.set_xlabel("NME")
    ax.set_ylabel("fraction of faces")
    ax.grid(True, alpha=0.4)
    ax.legend(loc="lower right", title=f"AUC and FR at {threshold:g}")
    if title:
        ax.set_title(title)
    return figure


def _per_face_sum(values: Any) -> Any:
    """The sum over all axes but the first (the faces)."""
    return keras.ops.sum(values, axis=tuple(range(1, len(values.shape))))


@keras.saving.register_keras_serializable(package="keras_zoo")
class L2Loss(keras.losses.Loss):
    """Per face the sum of the squared coordinate errors, averaged over the faces (the
    `reduction`): PFLD-pytorch's l2_distant, its unweighted loss. y_true and y_pred (N, 2K)."""

    def __init__(self, name: str = "l2_loss", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return _per_face_sum(keras.ops.square(y_pred - y_true))


@keras.saving.register_keras_serializable(package="keras_zoo")
class WingLoss(keras.losses.Loss):
    """Wing loss (Feng et al., CVPR 2018, "Wing Loss for Robust Facial Landmark Localisation
    with CNNs"): per coordinate, with x = `scale` times its error, w*ln(1 + |x|/eps) for
    |x| < w = `width` and |x| - C beyond, C = w - w*ln(1 + w/eps) joining the two at w; eps is
    `curvature`. Summed over the coordinates, averaged over the faces (the `reduction`).

    The log's steep start weighs small and medium errors more than L1 or L2 do; width and
    curvature are in pixels in the paper (10 and 2), so on coordinates in [0, 1] of a crop
    `scale` is the crop's size in pixels (112 for PFLD). PFLD-pytorch's wing_loss is this with
    scale 1."""

    def __init__(
        self,
        width: float = 10.0,
        curvature: float = 2.0,
        scale: float = 1.0,
        name: str = "wing_loss",
        **kwargs: Any,
    ) -> None:
        for arg, value in (("width", width), ("curvature", curvature), ("scale", scale)):
            if not value > 0:
                raise ValueError(f"{arg}: expected a positive number, got {value}")
        super().__init__(name=name, **kwargs)
        self.width, self.curvature, self.scale = float(width), float(curvature), float(scale)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        w, eps = self.width, self.curvature
        c = w - w * math.log1p(w / eps)
        x = keras.ops.abs(y_true - y_pred) * self.scale
        return _per_face_sum(keras.ops.where(x < w, w * keras.ops.log1p(x / eps), x - c))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "width": self.width,
            "curvature": self.curvature,
            "scale": self.scale,
        }


def pfld_loss(
    landmarks_true: Any,
    landmarks_pred: Any,
    angles_true: Any,
    angles_pred: Any,
    attributes: Any,
    *,
    batch_size: int | None = None,
    radians: bool = False,
) -> Any:
    """PFLD's weighted loss over a batch, as PFLD-pytorch's PFLDLoss computes it: the mean over
    the faces of weight_angle * weight_attribute * l2, where

    - l2 is the face's sum of squared coordinate errors (landmarks (N, 2K));
    - weight_angle = sum over the 3 Euler angles (N, 3; pitch, yaw, roll in degrees as
      PFLD-pytorch's data lists hold them and its auxiliary net learns them) of
      1 - cos(angle_pred - angle_true);
    - weight_attribute = sum over columns 1..5 of `attributes` (N, 6: WFLW's pose, expression,
      illumination, make-up, occlusion and blur flags) of flag * weight, a column's weight
      1 / its mean over the batch, or `batch_size` (default: the batch's number of faces;
      PFLD-pytorch passes its configured training batch size) where no face has the flag;
      that weight multiplies only zero flags, so it keeps the loss finite and changes nothing.

    PFLD's paper (Guo et al. 2019, arXiv 1902.10859, eq. 2) writes
    L = 1/M sum_m sum_n (sum_c w_n^c sum_k (1 - cos theta_n^k)) ||d_n^m||^2 over classes such
    as profile, frontal, head up, head down, expression and occlusion, w^c the reciprocal of a
    class's fraction. The repository differs: it drops the pose column (column 0), so no class
    covers a face with none of the five flags and such a face adds 0 to the loss, however wrong
    its points; it takes the fractions per batch, not over the data set; and it takes the
    cosine of differences in degrees as if they were radians (1 - cos is then 0 again at
    2*pi degrees). `radians=True` converts the differences to radians first, the paper's
    reading; the default keeps the repository's. Runs on keras.ops, in a graph as well.
    """
    ops = keras.ops
    landmarks_pred = ops.convert_to_tensor(landmarks_pred)
    dtype = landmarks_pred.dtype
    if "float" not in str(dtype):
        dtype = keras.backend.floatx()
    landmarks_pred = ops.cast(landmarks_pred, dtype)
    landmarks_true = ops.cast(ops.convert_to_tensor(landmarks_true), dtype)
    angles_true = ops.cast(ops.convert_to_tensor(angles_true), dtype)
    angles_pred = ops.cast(ops.convert_to_tensor(angles_pred), dtype)
    attributes = ops.convert_to_tensor(attributes)
    if len(attributes.shape) != 2 or attributes.shape[1] not in (None, 6):
        raise ValueError(
            f"attributes: expected WFLW's (N, 6) flags, got shape {tuple(attributes.shape)}"
        )
    for name, angles in (("angles_true", angles_true), ("angles_pred", angles_pred)):
        if len(angles.shape) != 2 or angles.shape[1] not in (None, 3):
            raise ValueError(
                f"{name}: expected (N, 3) pitch, yaw and roll, got shape {tuple(angles.shape)}"
            )

    difference = angles_pred - angles_true
    if radians:
        difference = difference * (math.pi / 180.0)
    weight_angle = ops.sum(1.0 - ops.cos(difference), axis=1)

    flags = ops.cast(attributes[:, 1:6], dtype)
    fraction = ops.mean(flags, axis=0)
    faces = ops.cast(ops.shape(flags)[0] if batch_size is None else batch_size, dtype)
    present = fraction > 0
    # the inner where keeps 1 / 0 out of the graph, and so out of the gradient
    weight = ops.where(present, 1.0 / ops.where(present, fraction, 1.0), faces)
    weight_attribute = ops.sum(flags * weight, axis=1)

    l2 = _per_face_sum(ops.square(landmarks_true - landmarks_pred))
    return ops.mean(weight_angle * weight_attribute * l2)

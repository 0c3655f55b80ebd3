"""Face crops: the square region of an image a landmark model sees, and the points in it.

A region is (x0, y0, size): a square of `size` pixels whose top-left corner is (x0, y0), in the
image's pixel coordinates. A point (x, y) of the image is (x - x0, y - y0) / size in the crop,
PFLD-pytorch's normalisation (its training data, data/SetPreparation.py); the crop's pixel (u, v)
samples the image at x0 + (u + 0.5) * size / S - 0.5 (S the crop size), bilinearly, as OpenCV's
resize of the cut-out square does, with black beyond the image's edges as its zero border.

`landmark_regions` is PFLD-pytorch's training crop, a square 1.2 times the points' extent around
their centre, in its integer arithmetic; `box_region` the crop around a face detector's box (its
camera.py: a square 1.1 times the box's longer side). Training moves the crop at random
(rotation, scale, shift, mirror with the dataset's index table, colour) and the points with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

LANDMARK_MARGIN = 1.2  # PFLD-pytorch's training crop around the points' extent
BOX_MARGIN = 1.1  # its camera.py's crop around a detector's box
# the random changes of training and their ranges
ROTATION_DEGREES = 30.0
SCALE_RANGE = (0.9, 1.1)
SHIFT_FRACTION = 0.1
COLOUR_CHANGES = ("brightness", "contrast", "saturation")


def landmark_regions(points: np.ndarray) -> np.ndarray:
    """(N, 3) regions (x0, y0, size) around each face's points ((N, K, 2) or (N, 2K) pixel
    coordinates): as PFLD-pytorch crops them, the points' extent (integer corners, + 1), its
    centre, a side of 1.2 times its longer side, in integers."""
    pts = np.asarray(points, np.float64)
    pts = pts.reshape(len(pts), -1, 2)
    low = np.trunc(pts.min(1))
    extent = np.trunc(pts.max(1)) - low + 1
    centre = np.trunc(low + extent / 2)
    size = np.trunc(extent.max(1) * LANDMARK_MARGIN)
    corner = centre - np.floor(size / 2)[:, None]
    return np.concatenate([corner, size[:, None]], 1).astype(np.float32)


def box_region(box: Sequence[float]) -> np.ndarray:
    """The region (x0, y0, size) around a face box (x, y, width, height): a square 1.1 times
    its longer side, centred on it."""
    x, y, w, h = (float(v) for v in box)
    size = max(w, h) * BOX_MARGIN
    return np.array([x + w / 2 - size / 2, y + h / 2 - size / 2, size], np.float32)


def to_crop(points: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """Pixel points (N, 2K) as coordinates in [0, 1] of their regions' crops."""
    pts = np.asarray(points, np.float32).reshape(len(points), -1, 2)
    regions = np.asarray(regions, np.float32)
    return ((pts - regions[:, None, :2]) / regions[:, None, 2:]).reshape(len(points), -1)


def to_image(points: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """Crop coordinates (N, 2K) in [0, 1] back to the image's pixels."""
    pts = np.asarray(points, np.float32).reshape(len(points), -1, 2)
    regions = np.asarray(regions, np.float32)
    return (pts * regions[:, None, 2:] + regions[:, None, :2]).reshape(len(points), -1)


def _window(region: Any, size: int, angle: Any = 0.0, scale: Any = 1.0, shift: Any = (0.0, 0.0)):
    """The projective transform (8 numbers, tf.raw_ops.ImageProjectiveTransformV3's) from the
    crop's pixels to the image's, of `region` turned by `angle` (radians) about its centre,
    its side times `scale`, its centre moved by `shift` (fractions of its side)."""
    import tensorflow as tf

    region = tf.cast(region, tf.float32)
    side = region[2]
    cx = region[0] + side * (0.5 + shift[0])
    cy = region[1] + side * (0.5 + shift[1])
    k = side * scale / size
    cos, sin = k * tf.cos(angle), k * tf.sin(angle)
    half = 0.5 - size / 2  # the crop's pixel centre u + 0.5 relative to its middle, at u = 0
    return tf.stack(
        [
            cos,
            -sin,
            cx - 0.5 + (cos - sin) * half,
            sin,
            cos,
            cy - 0.5 + (sin + cos) * half,
            0.0,
            0.0,
        ]
    )


def _moved(points: Any, angle: Any, scale: Any, shift: Any) -> Any:
    """Crop coordinates (K, 2) of the unchanged crop as they are in the crop `_window` cuts
    with the same angle, scale and shift."""
    import tensorflow as tf

    centred = points - 0.5 - tf.stack([shift[0], shift[1]])
    cos, sin = tf.cos(angle), tf.sin(angle)
    x = (cos * centred[:, 0] + sin * centred[:, 1]) / scale
    y = (-sin * centred[:, 0] + cos * centred[:, 1]) / scale
    return tf.stack([x, y], 1) + 0.5


def crop(image: Any, transform: Any, size: int) -> Any:
    """The size x size crop of one image (H, W, 3) that `transform` (`_window`) cuts,
    bilinear, black beyond the image."""
    import tensorflow as tf

    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=tf.cast(image, tf.float32)[None],
        transforms=transform[None],
        output_shape=tf.constant([size, size], tf.int32),
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )
    return out[0]


def crop_images(images: Sequence[np.ndarray], regions: np.ndarray, size: int) -> np.ndarray:
    """(N, size, size, 3) float32 crops, values as in the images (0..255), of each image's
    region."""
    return np.stack(
        [
            crop(image, _window(region, size), size).numpy()
            for image, region in zip(images, np.asarray(regions, np.float32))
        ]
    )


def check_inside(region: np.ndarray, shape: Sequence[int], name: str) -> None:
    """ValueError naming `name` where a region leaves less than half of itself on the image
    (a box beyond the photo, or a photo much smaller than the face it should hold)."""
    x0, y0, side = (float(v) for v in region)
    height, width = shape[:2]
    overlap = max(0.0, min(x0 + side, width) - max(x0, 0.0)) * max(
        0.0, min(y0 + side, height) - max(y0, 0.0)
    )
    if side <= 0 or overlap < 0.5 * side * side:
        raise ValueError(
            f"{name}: the face's crop ({x0:.0f}, {y0:.0f}, {side:.0f} pixels square) lies "
            f"mostly outside the {width}x{height} image"
        )


def augmented(
    image: Any,
    points: Any,
    region: Any,
    *,
    size: int,
    seed: Any,
    augment: tuple[str, ...],
    mirror: Sequence[int] | None,
) -> tuple[Any, Any]:
    """One training crop of `image` around `region` and its points (K, 2) in [0, 1] of it,
    changed at random (from the stateless `seed`) as `augment` asks: "rotate" (up to 30
    degrees either way), "scale" (0.9 to 1.1), "shift" (up to a tenth of the side), "flip"
    (half of the crops mirrored, the points renumbered by the `mirror` table), "colour"
    (brightness, contrast and saturation)."""
    import tensorflow as tf

    def uniform(index: int, low: float, high: float) -> Any:
        return tf.random.stateless_uniform((), tf.stack([seed, index]), low, high)

    angle = uniform(1, -1.0, 1.0) * np.deg2rad(ROTATION_DEGREES) if "rotate" in augment else 0.0
    scale = uniform(2, *SCALE_RANGE) if "scale" in augment else 1.0
    shift = (
        (uniform(3, -SHIFT_FRACTION, SHIFT_FRACTION), uniform(4, -SHIFT_FRACTION, SHIFT_FRACTION))
        if "shift" in augment
        else (0.0, 0.0)
    )
    out = crop(image, _window(region, size, angle, scale, shift), size)
    pts = _moved(points, angle, scale, shift)
    if "flip" in augment and mirror is not None:
        flip = uniform(5, 0.0, 1.0) < 0.5
        mirrored = tf.gather(tf.stack([1.0 - pts[:, 0], pts[:, 1]], 1), list(mirror))
        pts = tf.where(flip, mirrored, pts)
        out = tf.where(flip, tf.reverse(out, [1]), out)
    if "colour" in augment:
        out = tf.image.stateless_random_brightness(out, 0.2 * 255, tf.stack([seed, 6]))
        out = tf.image.stateless_random_contrast(out, 0.7, 1.3, tf.stack([seed, 7]))
        out = tf.image.stateless_random_saturation(out, 0.7, 1.3, tf.stack([seed, 8]))
        out = tf.clip_by_value(out, 0.0, 255.0)
    return out, pts

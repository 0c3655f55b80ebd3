"""RandAugment and TrivialAugmentWide as torchvision.transforms.v2 has them, as TensorFlow ops that
run inside a tf.data pipeline (graph mode; no Python per image, no tf.py_function).

The fourteen operations (`OPS`), their magnitude bins (`augmentation_space`), the random sign of
the signed ones and the arithmetic of each operation follow torchvision 0.28's `RandAugment` and
`TrivialAugmentWide` (transforms/v2/_auto_augment.py) and the functional ops they call on uint8
tensors (transforms/v2/functional/_color.py and _geometry.py): float32 where torchvision computes
in float32, its fused multiply-adds, its truncation back to uint8, its nearest-neighbour
`grid_sample` (pixel centres, ties to even) for the shears, translations and rotations, with
`fill` (0 by default, as torchvision's fill=None) outside the image. Each operation gives
torchvision's pixels for the same magnitude (tests/test_recipes_autoaugment.py).

Images are uint8, height x width x channels (RGB, or one channel), before normalisation: one
image (H, W, C), as the training pipeline maps its images before batching, or a batch
(N, H, W, C), whose every image draws operations of its own. The draws are stateless: the same
`seed` (a shape (2,) integer tensor, as tf.random.stateless_* take, or an int) gives the same
result, in a dataset's map as eagerly.

>>> import tensorflow as tf

from keras_zoo import checks
>>> image = tf.zeros((32, 48, 3), tf.uint8)
>>> tuple(rand_augment(image, seed=[1, 2]).shape), trivial_augment_wide(image, seed=7).dtype
((32, 48, 3), tf.uint8)
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from keras_zoo import checks

# torchvision's order of the operations (its _AUGMENTATION_SPACE keys): an op's index is its
# place here, for both policies
OPS = (
    "Identity",
    "ShearX",
    "ShearY",
    "TranslateX",
    "TranslateY",
    "Rotate",
    "Brightness",
    "Color",
    "Contrast",
    "Sharpness",
    "Posterize",
    "Solarize",
    "AutoContrast",
    "Equalize",
)
POLICIES = ("rand_augment", "trivial_augment_wide")
GEOMETRIC = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate")  # consecutive in OPS


@dataclasses.dataclass(frozen=True)
class Linear:
    """Magnitudes spread evenly from `start` to `end` over the bins (torch.linspace in float32);
    `per` "width" or "height": `end` is a fraction of the image's width or height.
    `signed`: each draw negates the magnitude with probability 1/2."""

    start: float
    end: float
    signed: bool = True
    per: str = ""


@dataclasses.dataclass(frozen=True)
class Bits:
    """Posterize's bit counts: bin i keeps round(8 - i / ((bins - 1) / `drop`)) bits."""

    drop: int
    signed: bool = False


Bins = Linear | Bits | None  # None: an operation without a magnitude (0.0)

_LIGHT = Linear(0.0, 0.9)  # RandAugment's brightness, colour, contrast and sharpness
_WIDE = Linear(0.0, 0.99)  # TrivialAugmentWide's
_SOLARIZE = Linear(1.0, 0.0, signed=False)  # the threshold, a fraction of 255

# torchvision's _AUGMENTATION_SPACE of each policy, op by op in `OPS` order
SPACES: dict[str, dict[str, Bins]] = {
    "rand_augment": {
        "Identity": None,
        "ShearX": Linear(0.0, 0.3),
        "ShearY": Linear(0.0, 0.3),
        "TranslateX": Linear(0.0, 150.0 / 331.0, per="width"),
        "TranslateY": Linear(0.0, 150.0 / 331.0, per="height"),
        "Rotate": Linear(0.0, 30.0),
        "Brightness": _LIGHT,
        "Color": _LIGHT,
        "Contrast": _LIGHT,
        "Sharpness": _LIGHT,
        "Posterize": Bits(4),
        "Solarize": _SOLARIZE,
        "AutoContrast": None,
        "Equalize": None,
    },
    "trivial_augment_wide": {
        "Identity": None,
        "ShearX": _WIDE,
        "ShearY": _WIDE,
        "TranslateX": Linear(0.0, 32.0),
        "TranslateY": Linear(0.0, 32.0),
        "Rotate": Linear(0.0, 135.0),
        "Brightness": _WIDE,
        "Color": _WIDE,
        "Contrast": _WIDE,
        "Sharpness": _WIDE,
        "Posterize": Bits(6),
        "Solarize": _SOLARIZE,
        "AutoContrast": None,
        "Equalize": None,
    },
}

# the public functions build their graphs with no Python control flow on tensors: autograph,
# which a tf.data map applies to the functions it calls, would only slow their tracing
_plain_graph = tf.autograph.experimental.do_not_convert

_DEG_TO_RAD = math.pi / 180.0  # Python's math.radians and math.degrees multiply by these
_RAD_TO_DEG = 180.0 / math.pi


def augmentation_space(
    policy: str, num_magnitude_bins: int = 31, height: int = 224, width: int = 224
) -> dict[str, tuple[np.ndarray | None, bool]]:
    """Every operation's magnitude bins and whether a draw signs them, for an image of
    height x width, as torchvision's `_AUGMENTATION_SPACE` of RandAugment
    (policy "rand_augment") or TrivialAugmentWide ("trivial_augment_wide") gives them:
    {op: (float32 magnitudes, or int32 bit counts for Posterize, or None; signed)}.

    >>> bins, signed = augmentation_space("rand_augment")["Rotate"]
    >>> float(bins[9]), signed
    (9.0, True)
    """
    space = SPACES[_check_policy(policy)]
    bins = _check_bins(num_magnitude_bins)
    height, width = _check_size(height, "height"), _check_size(width, "width")
    index = tf.range(bins)
    out: dict[str, tuple[np.ndarray | None, bool]] = {}
    for op, row in space.items():
        if row is None:
            out[op] = (None, False)
            continue
        values = _magnitude(row, index, bins, tf.constant(height), tf.constant(width)).numpy()
        out[op] = (
            values.astype(np.int32) if isinstance(row, Bits) else values.astype(np.float32),
            row.signed,
        )
    return out


@_plain_graph
def apply_op(image: Any, op_name: str, magnitude: Any, *, fill: Any = None) -> tf.Tensor:
    """`image` (uint8, (H, W, C) or a batch (N, H, W, C)) with the operation `op_name` (one of
    `OPS`) at `magnitude` (a number or a scalar tensor; ignored by Identity, AutoContrast and
    Equalize), as torchvision's `_apply_image_or_video_transform` applies it: deterministic,
    the core of `rand_augment` and `trivial_augment_wide`. `fill`: the value (or one per
    channel) of the pixels that a shear, translation or rotation brings in from outside the
    image; None is 0.

    >>> image = tf.constant([[[10], [200]]], tf.uint8)
    >>> apply_op(image, "Solarize", 0.5)[..., 0].numpy().tolist()  # 200 >= 127.5: inverted
    [[10, 55]]
    """
    op = checks.check_choice(op_name, "op_name", OPS)
    images = _check_images(image)
    _check_magnitude(op, magnitude)
    # a Python number straight to float64 (tf.cast would pass it through float32 first)
    value = (
        tf.cast(magnitude, tf.float64)
        if tf.is_tensor(magnitude)
        else tf.constant(float(magnitude), tf.float64)
    )
    fills = _fill_values(fill, images.shape[-1])
    if images.shape.rank == 3:
        return _apply(images, op, value, fills)
    return tf.map_fn(
        lambda one: _apply(one, op, value, fills),
        images,
        fn_output_signature=tf.TensorSpec(images.shape[1:], tf.uint8),
    )


@_plain_graph
def rand_augment(
    images: Any,
    seed: Any,
    num_ops: int = 2,
    magnitude: int = 9,
    num_magnitude_bins: int = 31,
    *,
    fill: Any = None,
) -> tf.Tensor:
    """RandAugment as torchvision.transforms.v2.RandAugment(num_ops, magnitude,
    num_magnitude_bins) does it: `num_ops` times in a row, an operation of `OPS` drawn
    uniformly, at bin `magnitude` of its bins (`augmentation_space`), negated with probability
    1/2 where the operation is signed. `images`: uint8 (H, W, C), or (N, H, W, C) where each
    image draws its own operations; `seed`: see the module's docstring; `fill`: as `apply_op`'s.
    The draws are `draw_ops(seed, "rand_augment", ...)`'s (per image of a batch: of
    `image_seeds(seed, N)`)."""
    ops = _check_count(num_ops, "num_ops")
    bins = _check_bins(num_magnitude_bins)
    index = _check_bin_index(magnitude, bins)
    draw = functools.partial(
        draw_ops, policy="rand_augment", num_ops=ops, magnitude=index, num_magnitude_bins=bins
    )
    return _augment(images, seed, draw, "rand_augment", bins, fill)


@_plain_graph
def trivial_augment_wide(
    images: Any, seed: Any, num_magnitude_bins: int = 31, *, fill: Any = None
) -> tf.Tensor:
    """TrivialAugmentWide as torchvision.transforms.v2.TrivialAugmentWide(num_magnitude_bins)
    does it: one operation of `OPS` drawn uniformly, at a bin drawn uniformly among
    `num_magnitude_bins` of its wide bins (`augmentation_space`), negated with probability 1/2
    where the operation is signed. Arguments as `rand_augment`'s; the draws are
    `draw_ops(seed, "trivial_augment_wide", ...)`'s."""
    bins = _check_bins(num_magnitude_bins)
    draw = functools.partial(
        draw_ops, policy="trivial_augment_wide", num_ops=1, num_magnitude_bins=bins
    )
    return _augment(images, seed, draw, "trivial_augment_wide", bins, fill)


@_plain_graph
def draw_ops(
    seed: Any,
    policy: str,
    num_ops: int = 1,
    magnitude: int | None = None,
    num_magnitude_bins: int = 31,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """The draws of one image: (op indices into `OPS`, bin indices, negate flags), each of
    shape (num_ops,). Ops are uniform over `OPS`; bins are `magnitude` for every op where it
    is given (RandAugment) or uniform over the bins (TrivialAugmentWide); a flag is True with
    probability 1/2 and negates a signed op's magnitude, as torchvision's
    `torch.rand(()) <= 0.5`."""
    _check_policy(policy)
    count = _check_count(num_ops, "num_ops")
    bins = _check_bins(num_magnitude_bins)
    if magnitude is not None:
        magnitude = _check_bin_index(magnitude, bins)
    seeds = tf.random.experimental.stateless_split(_check_seed(seed), num=3 * max(count, 1))
    ops, chosen, negate = [], [], []
    for k in range(count):
        ops.append(tf.random.stateless_uniform([], seeds[3 * k], 0, len(OPS), tf.int32))
        if magnitude is None:
            chosen.append(tf.random.stateless_uniform([], seeds[3 * k + 1], 0, bins, tf.int32))
        else:
            chosen.append(tf.constant(magnitude, tf.int32))
        negate.append(tf.random.stateless_uniform([], seeds[3 * k + 2]) < 0.5)
    if not count:
        return tf.zeros([0], tf.int32), tf.zeros([0], tf.int32), tf.zeros([0], tf.bool)
    return tf.stack(ops), tf.stack(chosen), tf.stack(negate)


def image_seeds(seed: Any, count: Any) -> tf.Tensor:
    """The seeds (count, 2) of a batch's images, drawn from `seed`: image i of a batch draws
    its operations as a single image with seed image_seeds(seed, N)[i] would."""
    return tf.random.stateless_uniform(
        [count, 2], _check_seed(seed), minval=None, maxval=None, dtype=tf.int64
    )


# --- the random wrappers ---------------------------------------------------------------------


def _augment(images: Any, seed: Any, draw: Any, policy: str, bins: int, fill: Any) -> tf.Tensor:
    images = _check_images(images)
    seed = _check_seed(seed)
    fills = _fill_values(fill, images.shape[-1])
    space = SPACES[policy]

    def one(image, image_seed):
        ops, chosen, negate = draw(image_seed)
        for k in range(ops.shape[0]):
            magnitude = _drawn_magnitude(image, space, ops[k], chosen[k], negate[k], bins)
            image = _apply_drawn(image, ops[k], magnitude, fills)
        return image

    if images.shape.rank == 3:
        return one(images, seed)
    return tf.map_fn(
        lambda item: one(*item),
        (images, image_seeds(seed, tf.shape(images)[0])),
        fn_output_signature=tf.TensorSpec(images.shape[1:], tf.uint8),
    )


def _drawn_magnitude(image, space, op, index, negate, bins):
    """The magnitude of the drawn `op` (an index into `OPS`) at bin `index`, negated where
    `negate` and the op is signed: each distinct row of bins computed once, then looked up."""
    shape = tf.shape(image)
    rows = [row for row in dict.fromkeys(space.values()) if row is not None]
    values = [_magnitude(row, index, bins, shape[0], shape[1]) for row in rows]
    values.append(tf.constant(0.0, tf.float64))  # the ops without a magnitude
    where = [len(rows) if space[o] is None else rows.index(space[o]) for o in OPS]
    signed = [space[o] is not None and space[o].signed for o in OPS]
    value = tf.gather(tf.stack(values), tf.gather(where, op))
    return tf.where(tf.gather(signed, op) & negate, -value, value)


def _apply_drawn(image, op, magnitude, fills):
    """`_apply` for an op index drawn in the graph: one branch per kernel, the five shears,
    translations and rotations sharing one (their matrices differ, not their sampling)."""
    kernels = list(dict.fromkeys("affine" if o in GEOMETRIC else o for o in OPS))
    branch = [kernels.index("affine" if o in GEOMETRIC else o) for o in OPS]
    first = OPS.index(GEOMETRIC[0])

    def affine():
        # every geometric op's arguments, the drawn one's picked
        args = tf.stack([_affine_args(o, magnitude, tf.shape(image)) for o in GEOMETRIC])
        picked = tf.gather(args, op - first)
        return _affine(image, fills, *tf.unstack(picked))

    branches = [
        affine if kernel == "affine" else functools.partial(_apply, image, kernel, magnitude, fills)
        for kernel in kernels
    ]
    return tf.ensure_shape(tf.switch_case(tf.gather(branch, op), branches), image.shape)


def _magnitude(row: Bins, index: Any, bins: int, height: Any, width: Any) -> tf.Tensor:
    """The magnitude (float64) at bin `index` of `row`, as torchvision computes it: float32
    torch.linspace (start + step * i up to half way, end - step * (n - 1 - i) after, each one
    fused multiply-add, rounded once), or posterize's rounded bit counts."""
    index = tf.convert_to_tensor(index, tf.int32)
    if row is None:
        return tf.zeros_like(index, tf.float64)
    i = tf.cast(index, tf.float64)
    if isinstance(row, Bits):
        ratio = _float32(i / float(np.float32((bins - 1) / row.drop)))
        return tf.round(_float32(8.0 - ratio))  # round: half to even, as torch's
    end = tf.constant(row.end, tf.float64)
    if row.per:
        size = height if row.per == "height" else width
        end = end * tf.cast(size, tf.float64)  # 150.0 / 331.0 * width, in float64 as Python
    start, end = float(np.float32(row.start)), _float32(end)
    step = _float32(_float32(end - start) / (bins - 1))
    # the products are exact in float64: one rounding, as a fused multiply-add's
    value = tf.where(index < bins // 2, start + step * i, end - step * (bins - 1 - i))
    return _float32(value)


# --- the operations, each as torchvision's uint8 kernel ----------------------------------------


def _apply(image: tf.Tensor, op: str, magnitude: tf.Tensor, fills: tf.Tensor) -> tf.Tensor:
    """One image (H, W, C) uint8 with `op` at `magnitude` (float64), as torchvision's
    `_apply_image_or_video_transform`."""
    if op in GEOMETRIC:
        return _affine(image, fills, *tf.unstack(_affine_args(op, magnitude, tf.shape(image))))
    kernels = {
        "Identity": lambda x, m: x,
        "Brightness": _brightness,
        "Color": _saturation,
        "Contrast": _contrast,
        "Sharpness": _sharpness,
        "Posterize": _posterize,
        "Solarize": _solarize,
        "AutoContrast": lambda x, m: _autocontrast(x),
        "Equalize": lambda x, m: _equalize(x),
    }
    return kernels[op](image, magnitude)


def _affine_args(op: str, magnitude: tf.Tensor, shape: tf.Tensor) -> tf.Tensor:
    """The arguments of F.affine for a geometric op, as torchvision's
    `_apply_image_or_video_transform` gives them: (angle, translate x, y, shear x, y in
    degrees, centre x, y relative to the image centre), float64."""
    zero = tf.zeros_like(magnitude)
    if op in ("ShearX", "ShearY"):
        # a shear of atan(magnitude) degrees, about the top-left corner
        degrees = tf.atan(magnitude) * _RAD_TO_DEG
        size = tf.cast(shape, tf.float64)
        shear = [degrees, zero] if op == "ShearX" else [zero, degrees]
        return tf.stack([zero, zero, zero, *shear, -0.5 * size[1], -0.5 * size[0]])
    if op in ("TranslateX", "TranslateY"):
        pixels = tf.cast(tf.cast(magnitude, tf.int32), tf.float64)  # int(): toward zero
        shift = [pixels, zero] if op == "TranslateX" else [zero, pixels]
        return tf.stack([zero, *shift, zero, zero, zero, zero])
    # Rotate: F.rotate turns the other way from F.affine, after angle % 360
    return tf.stack([-tf.math.floormod(magnitude, 360.0), zero, zero, zero, zero, zero, zero])


def _affine(image, fills, angle, tx, ty, shear_x, shear_y, cx, cy):
    """F.affine_image / rotate_image with nearest interpolation and expand=False: torchvision's
    inverse matrix in float64 (_get_inverse_affine_matrix, scale 1), its float32 sampling grid
    (_affine_grid) and grid_sample's nearest pixel (align_corners=False: pixel centres;
    ties to even), `fills` where that pixel is outside the image."""
    rot = angle * _DEG_TO_RAD
    sx, sy = shear_x * _DEG_TO_RAD, shear_y * _DEG_TO_RAD
    cos_sy, tan_sx = tf.cos(sy), tf.tan(sx)
    cx_tx, cy_ty = cx + tx, cy + ty
    a = tf.cos(rot - sy) / cos_sy
    b = -(a * tan_sx + tf.sin(rot))
    c = tf.sin(rot - sy) / cos_sy
    d = tf.cos(rot) - c * tan_sx
    m0, m1, m3, m4 = d, -b, -c, a
    m2 = cx - m0 * cx_tx - m1 * cy_ty
    m5 = cy - m3 * cx_tx - m4 * cy_ty
    theta = _float32(tf.stack([m0, m1, m2, m3, m4, m5]))
    shape = tf.shape(image)
    height, width = tf.cast(shape[0], tf.float64), tf.cast(shape[1], tf.float64)
    # the pixel centres relative to the image centre, theta over half the size, and the sum
    # term by term, each rounded to float32 as torch's bmm rounds it
    xs = tf.range(width)[tf.newaxis, :] - (width - 1.0) * 0.5
    ys = tf.range(height)[:, tf.newaxis] - (height - 1.0) * 0.5
    source = []
    for row, size in ((theta[:3], width), (theta[3:], height)):
        scaled = _float32(row / (0.5 * size))
        grid = _float32(_float32(xs * scaled[0]) + _float32(ys * scaled[1]))
        grid = _float32(grid + scaled[2])
        # grid_sample: back to pixels ((g + 1) * size / 2 - 0.5), nearest, ties to even
        pixel = _float32(_float32(_float32(grid + 1.0) * (0.5 * size)) - 0.5)
        source.append(tf.cast(tf.round(pixel), tf.int32))
    col, line = source
    inside = (col >= 0) & (col < shape[1]) & (line >= 0) & (line < shape[0])
    at = tf.stack(
        [tf.clip_by_value(line, 0, shape[0] - 1), tf.clip_by_value(col, 0, shape[1] - 1)], -1
    )
    return tf.where(inside[..., tf.newaxis], tf.gather_nd(image, at), fills)


def _float32(x: tf.Tensor) -> tf.Tensor:
    """float64 `x` rounded to float32 and back: one float32 operation done in float64 and
    rounded is that operation's float32 result, and a rounding the graph optimizer cannot
    reorder (it regroups chains of float32 adds, which changes their rounding)."""
    return tf.cast(tf.cast(x, tf.float32), tf.float64)


def _fma(a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) -> tf.Tensor:
    """float32 a * b + c rounded once, as torch's vectorised add(..., alpha=) (fmadd)."""
    wide = tf.cast(a, tf.float64) * tf.cast(b, tf.float64) + tf.cast(c, tf.float64)
    return tf.cast(wide, tf.float32)


def _to_uint8(x: tf.Tensor) -> tf.Tensor:
    """clamp(0, 255) then .to(uint8): truncation."""
    return tf.cast(tf.floor(tf.clip_by_value(x, 0.0, 255.0)), tf.uint8)


def _blend(image: tf.Tensor, other: tf.Tensor, ratio: tf.Tensor) -> tf.Tensor:
    """torchvision's _blend: image * ratio + other * (1 - ratio), in float32, truncated."""
    ratio32 = tf.cast(ratio, tf.float32)
    scaled = tf.cast(image, tf.float32) * ratio32
    return _to_uint8(_fma(other, tf.cast(1.0 - ratio, tf.float32), scaled))


def _gray(image: tf.Tensor) -> tf.Tensor:
    """_rgb_to_grayscale_image, floored as for uint8 images: (H, W, 1) float32."""
    if image.shape[-1] == 1:
        return tf.cast(image, tf.float32)
    r, g, b = tf.unstack(tf.cast(image, tf.float32), axis=-1)
    gray = _fma(b, np.float32(0.114), _fma(g, np.float32(0.587), r * np.float32(0.2989)))
    return tf.floor(gray)[..., tf.newaxis]


def _brightness(image: tf.Tensor, magnitude: tf.Tensor) -> tf.Tensor:
    factor = tf.cast(1.0 + magnitude, tf.float32)
    return _to_uint8(tf.cast(image, tf.float32) * factor)


def _saturation(image: tf.Tensor, magnitude: tf.Tensor) -> tf.Tensor:
    if image.shape[-1] == 1:  # as PIL: a gray image has no saturation
        return image
    return _blend(image, _gray(image), 1.0 + magnitude)


def _contrast(image: tf.Tensor, magnitude: tf.Tensor) -> tf.Tensor:
    gray = _gray(image)
    # the sum of whole numbers is exact in float64 (and in torch's float32 below 2**24)
    total = tf.cast(tf.reduce_sum(tf.cast(gray, tf.float64)), tf.float32)
    mean = total / tf.cast(tf.size(gray), tf.float32)
    return _blend(image, mean, 1.0 + magnitude)


def _sharpness(image: tf.Tensor, magnitude: tf.Tensor) -> tf.Tensor:
    """adjust_sharpness_image: the inside pixels move towards a 3 x 3 blur (5 in the middle,
    1 around, over 13; rounded) by 1 - factor; the border rows and columns stay, and so do
    images of 2 rows or columns or fewer."""
    height, width = image.shape[0], image.shape[1]
    if (height is not None and height <= 2) or (width is not None and width <= 2):
        return image
    shape = tf.shape(image)
    return tf.cond(
        (shape[0] <= 2) | (shape[1] <= 2), lambda: image, lambda: _sharpened(image, magnitude)
    )


def _sharpened(image: tf.Tensor, magnitude: tf.Tensor) -> tf.Tensor:
    shape = tf.shape(image)
    x = tf.cast(image, tf.float32)
    kernel = np.full((3, 3), 1.0 / 13.0, np.float32)
    kernel[1, 1] = 5.0 / 13.0
    weights = tf.constant(np.tile(kernel[:, :, None, None], (1, 1, image.shape[-1], 1)))
    # whole numbers over 13 are never within 1/26 of a half: the sum's order cannot matter
    blurred = tf.round(tf.nn.depthwise_conv2d(x[tf.newaxis], weights, [1, 1, 1, 1], "VALID")[0])
    inner = x[1:-1, 1:-1]
    alpha = tf.cast(1.0 - (1.0 + magnitude), tf.float32)
    padded = tf.pad(_fma(blurred - inner, alpha, inner), [[1, 1], [1, 1], [0, 0]])
    rows = tf.range(shape[0])[:, tf.newaxis, tf.newaxis]
    cols = tf.range(shape[1])[tf.newaxis, :, tf.newaxis]
    inside = (rows > 0) & (rows < shape[0] - 1) & (cols > 0) & (cols < shape[1] - 1)
    return _to_uint8(tf.where(inside, padded, x))


def _posterize(image: tf.Tensor, magnitude: tf.Tensor) -> tf.Tensor:
    bits = tf.clip_by_value(tf.cast(magnitude, tf.int32), 0, 8)
    mask = tf.cast(tf.bitwise.left_shift(tf.bitwise.left_shift(1, bits) - 1, 8 - bits), tf.uint8)
    return tf.bitwise.bitwise_and(image, mask)


def _solarize(image: tf.Tensor, magnitude: tf.Tensor) -> tf.Tensor:
    # threshold 255 * magnitude in float64, compared with the uint8 pixels in float32
    threshold = tf.cast(255.0 * magnitude, tf.float32)
    return tf.where(tf.cast(image, tf.float32) >= threshold, 255 - image, image)


def _autocontrast(image: tf.Tensor) -> tf.Tensor:
    """Each channel stretched to [0, 255]: (x - min) / ((max - min) / 255), truncated; a
    constant channel stays."""
    x = tf.cast(image, tf.float32)
    low = tf.reduce_min(x, axis=[0, 1], keepdims=True)
    high = tf.reduce_max(x, axis=[0, 1], keepdims=True)
    flat = tf.equal(high, low)
    scale = tf.where(flat, 1.0, (high - low) * np.float32(1.0 / 255))
    low = tf.where(flat, 0.0, low)
    return _to_uint8((x - low) / scale)


def _equalize(image: tf.Tensor) -> tf.Tensor:
    """equalize_image (PIL's scheme): per channel, lut[k] = (cum_hist[k - 1] + step // 2) //
    step, lut[0] = 0, step = (the pixels other than those at the channel's maximum) // 255;
    a channel with step 0 stays."""
    channels = tf.transpose(tf.reshape(tf.cast(image, tf.int32), [-1, image.shape[-1]]))
    count = tf.shape(channels)[1]
    hist = tf.math.bincount(channels, minlength=256, maxlength=256, axis=-1)
    cum = tf.cumsum(hist, axis=-1)
    brightest = tf.reduce_max(channels, axis=-1, keepdims=True)
    top = tf.reduce_sum(tf.cast(tf.equal(channels, brightest), tf.int32), axis=-1, keepdims=True)
    step = (count - top) // 255
    lut = tf.clip_by_value((cum[:, :-1] + step // 2) // tf.maximum(step, 1), 0, 255)
    lut = tf.concat([tf.zeros_like(lut[:, :1]), lut], axis=-1)
    out = tf.where(step > 0, tf.gather(lut, channels, batch_dims=1), channels)
    return tf.reshape(tf.cast(tf.transpose(out), tf.uint8), tf.shape(image))


# --- argument checks ---------------------------------------------------------------------------


def _check_policy(policy: Any) -> str:
    return checks.check_choice(policy, "policy", POLICIES)


def _check_count(value: Any, arg: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{arg} must be a non-negative integer, got {value!r}")
    return int(value)


def _check_bins(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 2:
        raise ValueError(f"num_magnitude_bins must be an integer >= 2, got {value!r}")
    return int(value)


def _check_bin_index(value: Any, bins: int) -> int:
    integral = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not integral or not 0 <= int(value) < bins:
        raise ValueError(
            f"magnitude must be a bin index in [0, {bins - 1}] (num_magnitude_bins={bins}), "
            f"got {value!r}"
        )
    return int(value)


def _check_size(value: Any, arg: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{arg} must be a positive integer, got {value!r}")
    return int(value)


def _check_images(images: Any) -> tf.Tensor:
    """A uint8 tensor (H, W, C) or (N, H, W, C) with 1 or 3 channels."""
    if not tf.is_tensor(images):
        images = np.asarray(images)
        if images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 (before normalisation), got {images.dtype}")
        images = tf.convert_to_tensor(images)
    if images.dtype != tf.uint8:
        raise ValueError(f"images must be uint8 (before normalisation), got {images.dtype.name}")
    rank = images.shape.rank
    if rank not in (3, 4) or images.shape[-1] not in (1, 3):
        raise ValueError(
            "images must be (height, width, channels) or (batch, height, width, channels) with "
            f"1 or 3 channels, got shape {images.shape}"
        )
    return images


def _check_seed(seed: Any) -> tf.Tensor:
    """A shape (2,) integer tensor: an int n is [n, 0]."""
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        return tf.constant([int(seed), 0], tf.int64)
    tensor = tf.convert_to_tensor(seed)
    if not tensor.dtype.is_integer or tensor.shape.rank != 1 or tensor.shape[0] not in (2, None):
        raise ValueError(
            f"seed must be an int or a shape (2,) integer tensor, got {tensor.dtype.name} "
            f"of shape {tensor.shape}"
        )
    return tf.cast(tensor, tf.int64)


def _check_magnitude(op: str, magnitude: Any) -> None:
    """A number in the operation's range (torchvision's own checks); a tensor passes."""
    if tf.is_tensor(magnitude):
        if magnitude.shape.rank != 0 or not (
            magnitude.dtype.is_floating or magnitude.dtype.is_integer
        ):
            raise ValueError(f"magnitude must be a real scalar, got {magnitude!r}")
        return
    if isinstance(magnitude, bool) or not isinstance(magnitude, numbers.Real):
        raise ValueError(f"magnitude must be a real number, got {magnitude!r}")
    value = float(magnitude)
    if not math.isfinite(value):
        raise ValueError(f"magnitude must be finite, got {magnitude!r}")
    if op in ("Brightness", "Color", "Contrast", "Sharpness") and value < -1.0:
        raise ValueError(
            f"magnitude of {op} must be >= -1 (a factor 1 + magnitude >= 0), got {value}"
        )
    if op == "Posterize" and not 0 <= int(value) <= 8:
        raise ValueError(f"magnitude of Posterize must be a bit count in [0, 8], got {value}")
    if op == "Solarize" and value > 1.0:
        raise ValueError(f"magnitude of Solarize must be <= 1 (a threshold of 255), got {value}")


def _fill_values(fill: Any, channels: int) -> tf.Tensor:
    """`fill` as one uint8 per channel: None is 0, a number every channel's, a sequence one per
    channel (or one); numbers in [0, 255], rounded half to even as torchvision rounds them."""
    values = [0.0] if fill is None else fill
    if isinstance(values, numbers.Real) and not isinstance(values, bool):
        values = [values]
    if (
        not isinstance(values, Sequence)
        or isinstance(values, str)
        or len(values) not in (1, channels)
        or not all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) and 0 <= float(v) <= 255
            for v in values
        )
    ):
        raise ValueError(
            f"fill must be None, a number in [0, 255] or {channels} of them (one per channel), "
            f"got {fill!r}"
        )
    row = np.rint(np.broadcast_to(np.asarray(values, np.float64), (channels,)))
    return tf.constant(row.astype(np.uint8))

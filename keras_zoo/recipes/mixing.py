"""Label smoothing, mixup, cutmix and random erasing as TensorFlow ops for a tf.data pipeline.

Everything here runs in graph mode (inside `tf.data.Dataset.map` or a `tf.function`), on whole
batches of channels-last images, with no Python per image; randomness comes from stateless ops
and a seed, so that a run repeats.

- Label smoothing is torch.nn.CrossEntropyLoss(label_smoothing=eps)'s: the true class's target
  is 1 - eps + eps / classes and every other class's eps / classes (`smoothed_targets`);
  `soft_cross_entropy` and the Keras loss `SoftTargetCrossEntropy` compute timm's
  SoftTargetCrossEntropy, sum(-targets * log_softmax(logits)) averaged over the batch, which
  is what a model trained on mixed targets needs; `SmoothedCrossEntropy` takes class indices.
- `Mixup` is timm's Mixup (timm/data/mixup.py): each batch (mode "batch"), pair of images
  ("pair") or image ("elem") is mixed with probability `prob`, cutmix chosen over mixup with
  `switch_prob` when both are on, lambda drawn from Beta(alpha, alpha) of the one chosen; image
  i is mixed with image N - 1 - i (timm mixes x with x.flip(0)); cutmix's box is timm's
  rand_bbox (centre uniform over the image, sides sqrt(1 - lambda) of the image's, clipped to
  it) or rand_bbox_minmax, and lambda is corrected to the area the clipped box leaves; the
  targets are lambda * smoothed(y) + (1 - lambda) * smoothed(y flipped). timm refuses batches
  of odd size; here the middle image mixes with itself, which leaves it and its target as
  they were. `mix_batch` and `cutmix_box` are the deterministic core: a given lambda and box.
- `RandomErasing` is torchvision's RandomErasing (transforms.RandomErasing, the one
  torchvision's classification reference uses, with --random-erase 0.1): per image, with
  probability `probability`, a box of area scale x the image's and aspect ratio (height /
  width) log-uniform in `ratio` (up to ten tries for one that fits, else nothing erased) is set
  to `value` (0 by default; "random" for per-pixel standard normal noise). Like torchvision's,
  it runs on normalised images, before mixing (torchvision erases in the per-image transforms,
  mixes in the collate function). `erase_boxes` is its deterministic core.
- `augment_batches` puts both on a pipeline of (images, labels) batches.

>>> import numpy as np
>>> smoothed_targets([1], classes=4, smoothing=0.1, dtype="float64").numpy().tolist()
[[0.025, 0.925, 0.025, 0.025]]
>>> images = np.arange(2, dtype=np.float32).reshape(2, 1, 1, 1)
>>> mixed, targets = mix_batch(images, [0, 1], 0.75, num_classes=2, label_smoothing=0.0)
>>> mixed.numpy().ravel().tolist(), targets.numpy().tolist()
([0.25, 0.75], [[0.75, 0.25], [0.25, 0.75]])
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any, NamedTuple

import keras
import tensorflow as tf

from keras_zoo import checks

MIX_MODES = ("batch", "pair", "elem")
ERASE_TRIES = 10  # torchvision's RandomErasing.get_params tries ten boxes before giving up

# The ops here have no Python control flow on tensors, so AutoGraph has nothing to convert;
# left to it, converting them (Dataset.map converts what it calls) costs seconds of tracing.
_as_is = tf.autograph.experimental.do_not_convert


def _check_unit(value: Any, arg: str) -> float:
    """A real number in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= float(value) <= 1:
        raise ValueError(f"{arg} must be a number from 0 to 1, got {value!r}")
    return float(value)


def _check_range(value: Any, arg: str, low: float, high: float, *, above: bool) -> tuple:
    """A pair (a, b) of real numbers with low < a <= b <= high (low <= a where not `above`)."""
    try:
        a, b = (float(v) for v in value)
        ok = not any(isinstance(v, bool) for v in value)
    except (TypeError, ValueError):
        ok = False
    if ok:
        ok = (a > low if above else a >= low) and a <= b <= high
    if not ok:
        bound = f"{'>' if above else '>='} {low:g}"
        bound += f" and <= {high:g}" if high < math.inf else ""
        raise ValueError(
            f"{arg} must be a pair (min, max), min <= max, both {bound}; got {value!r}"
        )
    return a, b


def _float64(value: Any) -> Any:
    """`value` as a float64 tensor (a Python float exactly, a tensor cast)."""
    if isinstance(value, (tf.Tensor, tf.Variable)):
        return tf.cast(value, tf.float64)
    return tf.convert_to_tensor(value, tf.float64)


def _one_hot(labels: Any, classes: Any, smoothing: float, dtype: Any) -> Any:
    off = smoothing / classes if isinstance(classes, int) else None
    if off is None:  # classes known only when the graph runs
        depth = tf.cast(classes, tf.float64)
        off_t = tf.cast(smoothing / depth, dtype)
        on_t = tf.cast(1.0 - smoothing + smoothing / depth, dtype)
    else:
        # the values torch computes in float64 and stores in the targets' dtype
        off_t, on_t = tf.constant(off, dtype), tf.constant(1.0 - smoothing + off, dtype)
    labels = tf.reshape(tf.cast(labels, tf.int32), [-1])  # (N,) or Keras's (N, 1)
    return tf.one_hot(labels, classes, on_value=on_t, off_value=off_t, dtype=dtype)


@_as_is
def smoothed_targets(
    labels: Any, classes: int, smoothing: float = 0.0, dtype: Any = "float32"
) -> Any:
    """(N, classes) targets of the class indices `labels` (N,): 1 - smoothing + smoothing /
    classes for the true class, smoothing / classes for the others (torch's label smoothing;
    timm's one_hot of mixup_target). ValueError naming `classes` or `smoothing`."""
    classes = checks.check_positive_int(classes, "classes")
    smoothing = _check_unit(smoothing, "smoothing")
    return _one_hot(labels, classes, smoothing, tf.as_dtype(dtype))


@_as_is
def soft_cross_entropy(targets: Any, logits: Any) -> Any:
    """Per example (N,), the cross-entropy sum(-targets * log_softmax(logits)) of soft
    `targets` (N, classes); timm's SoftTargetCrossEntropy is its mean over the batch."""
    logits = tf.convert_to_tensor(logits)
    targets = tf.cast(targets, logits.dtype)
    return -tf.reduce_sum(targets * tf.nn.log_softmax(logits, axis=-1), axis=-1)


@_as_is
def smoothed_cross_entropy(labels: Any, logits: Any, smoothing: float = 0.0) -> Any:
    """The batch mean of the cross-entropy of class indices `labels` (N,) with label smoothing
    `smoothing`: torch.nn.CrossEntropyLoss(label_smoothing=smoothing)(logits, labels)."""
    smoothing = _check_unit(smoothing, "smoothing")
    logits = tf.convert_to_tensor(logits)
    classes = logits.shape[-1] if logits.shape[-1] is not None else tf.shape(logits)[-1]
    targets = _one_hot(labels, classes, smoothing, logits.dtype)
    return tf.reduce_mean(soft_cross_entropy(targets, logits))


@keras.saving.register_keras_serializable(package="keras_zoo")
class SoftTargetCrossEntropy(keras.losses.Loss):
    """Keras loss of logits against soft targets (N, classes), such as `Mixup` makes: timm's
    SoftTargetCrossEntropy (the batch mean of `soft_cross_entropy`).

    >>> import numpy as np
    >>> loss = SoftTargetCrossEntropy()
    >>> round(float(loss(np.array([[0.5, 0.5]]), np.array([[0.0, 0.0]]))), 4)
    0.6931
    """

    def __init__(self, name: str = "soft_target_cross_entropy", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)

    @_as_is
    def call(self, y_true: Any, y_pred: Any) -> Any:
        return soft_cross_entropy(y_true, y_pred)


@keras.saving.register_keras_serializable(package="keras_zoo")
class SmoothedCrossEntropy(keras.losses.Loss):
    """Keras loss of logits against class indices with label smoothing: torch's
    CrossEntropyLoss(label_smoothing=label_smoothing) (Keras's SparseCategoricalCrossentropy
    has no smoothing). Targets that are class probabilities (N, classes), a mixed batch's, are
    smoothed the same way, (1 - smoothing) * targets + smoothing / classes, which is timm's
    mixup_target of smoothed labels; so the same loss serves mixed training batches and
    validation's class indices."""

    def __init__(
        self, label_smoothing: float = 0.0, name: str = "smoothed_cross_entropy", **kwargs: Any
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.label_smoothing = _check_unit(label_smoothing, "label_smoothing")

    @_as_is
    def call(self, y_true: Any, y_pred: Any) -> Any:
        classes = y_pred.shape[-1] if y_pred.shape[-1] is not None else tf.shape(y_pred)[-1]
        if _probabilities(y_true):
            eps = self.label_smoothing
            targets = tf.cast(y_true, y_pred.dtype) * (1.0 - eps) + eps / tf.cast(
                classes, y_pred.dtype
            )
        else:
            targets = _one_hot(y_true, classes, self.label_smoothing, y_pred.dtype)
        return soft_cross_entropy(targets, y_pred)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


def _probabilities(y_true: Any) -> bool:
    """Whether targets are class probabilities (N, classes) rather than indices (N,) or
    (N, 1), from their static shape."""
    shape = tf.convert_to_tensor(y_true).shape
    return shape.rank == 2 and shape[-1] is not None and shape[-1] > 1


@keras.saving.register_keras_serializable(package="keras_zoo")
class ClassAccuracy(keras.metrics.MeanMetricWrapper):
    """Top-1 accuracy against class indices, or against the most probable class of targets
    that are class probabilities (a mixed batch's)."""

    def __init__(self, name: str = "accuracy", dtype: Any = None) -> None:
        super().__init__(_class_accuracy, name=name, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype}


def _class_accuracy(y_true: Any, y_pred: Any) -> Any:
    predicted = tf.argmax(y_pred, axis=-1, output_type=tf.int32)
    if _probabilities(y_true):
        truth = tf.argmax(y_true, axis=-1, output_type=tf.int32)
    else:
        truth = tf.reshape(tf.cast(y_true, tf.int32), tf.shape(predicted))
    return tf.cast(tf.equal(truth, predicted), "float32")


@_as_is
def box_lam(height: Any, width: Any, box: Any) -> Any:
    """1 - the box's area / the image's (float64): the share of an image that a cutmix box
    (yl, yh, xl, xh; (4,) or (N, 4)) leaves, timm's corrected lambda."""
    box = tf.cast(box, tf.float64)
    area = (box[..., 1] - box[..., 0]) * (box[..., 3] - box[..., 2])
    return 1.0 - area / (tf.cast(height, tf.float64) * tf.cast(width, tf.float64))


@_as_is
def cutmix_box(
    height: Any, width: Any, lam: Any, centre: Any, correct_lam: bool = True
) -> tuple[Any, Any]:
    """timm's rand_bbox for a given centre (cy, cx) and its lambda correction: the box
    (yl, yh, xl, xh) of sides int(height * sqrt(1 - lam)) and int(width * sqrt(1 - lam))
    around the centre, clipped to the image, and lambda, corrected to 1 - the clipped box's
    area / the image's where `correct_lam` (timm's cutmix_bbox_and_lam). `lam` () or (N,),
    `centre` (2,) or (N, 2) int; the box int32 (4,) or (N, 4), lambda float64."""
    lam = _float64(lam)
    centre = tf.cast(centre, tf.int32)
    h, w = tf.cast(height, tf.int32), tf.cast(width, tf.int32)
    ratio = tf.sqrt(1.0 - lam)
    # truncation, as timm's int(), of the float64 product
    cut_h = tf.cast(tf.cast(h, tf.float64) * ratio, tf.int32)
    cut_w = tf.cast(tf.cast(w, tf.float64) * ratio, tf.int32)
    cy, cx = centre[..., 0], centre[..., 1]
    box = tf.stack(
        [
            tf.clip_by_value(cy - cut_h // 2, 0, h),
            tf.clip_by_value(cy + (cut_h + 1) // 2, 0, h),
            tf.clip_by_value(cx - cut_w // 2, 0, w),
            tf.clip_by_value(cx + (cut_w + 1) // 2, 0, w),
        ],
        axis=-1,
    )
    return box, (box_lam(h, w, box) if correct_lam else lam)


def _box_mask(box: Any, height: Any, width: Any) -> Any:
    """(N, H, W) bool: inside the boxes (N, 4) of (top, bottom, left, right), ends excluded."""
    rows = tf.range(height)[None, :]
    cols = tf.range(width)[None, :]
    inside_y = (rows >= box[:, 0:1]) & (rows < box[:, 1:2])
    inside_x = (cols >= box[:, 2:3]) & (cols < box[:, 3:4])
    return inside_y[:, :, None] & inside_x[:, None, :]


def _float_images(images: Any) -> Any:
    """`images` as a tensor, checked to be a float batch (mixing averages pixels)."""
    images = tf.convert_to_tensor(images)
    if not images.dtype.is_floating or images.shape.rank not in (None, 4):
        raise ValueError(
            f"images must be a float batch (N, height, width, channels); got {images.dtype.name} "
            f"of shape {images.shape}"
        )
    return images


def _per_image(value: Any, n: Any) -> Any:
    """`value`, the same for every image, repeated for the n images of a batch."""
    return tf.broadcast_to(value, tf.concat([[n], tf.shape(value)], 0))


@_as_is
def mix_batch(
    images: Any,
    labels: Any,
    lam: Any,
    *,
    num_classes: int,
    label_smoothing: float = 0.1,
    box: Any = None,
    cutmix: Any = None,
) -> tuple[Any, Any]:
    """Images (N, H, W, C) float and class indices (N,) mixed with their flip (image i with
    image N - 1 - i) for a given lambda, () for the batch or (N,) per image: mixup (images
    lam * x + (1 - lam) * x flipped) where `box` is None, else cutmix (the box (yl, yh, xl, xh),
    (4,) or (N, 4), of x flipped pasted into x; `lam` then the corrected one, `cutmix_box`);
    `cutmix` (N,) bool picks per image (timm's "elem" mode), the box applying where it is true.
    An image whose lambda is 1 is left as it is. The targets (N, num_classes) float32 are
    lam * smoothed(y) + (1 - lam) * smoothed(y flipped), as timm's mixup_target."""
    images = _float_images(images)
    num_classes = checks.check_positive_int(num_classes, "num_classes")
    label_smoothing = _check_unit(label_smoothing, "label_smoothing")
    shape = tf.shape(images)
    n = shape[0]
    lam = _float64(lam)
    lam = _per_image(lam, n) if lam.shape.rank == 0 else lam
    flipped = tf.reverse(images, [0])
    # timm multiplies by lam and by (1 - lam) worked out in float64, each cast to the images'
    weight = tf.cast(lam, images.dtype)[:, None, None, None]
    other = tf.cast(1.0 - lam, images.dtype)[:, None, None, None]
    unmixed = tf.equal(lam, 1.0)[:, None, None, None]
    mixed = tf.where(unmixed, images, images * weight + flipped * other)
    if box is not None:
        box = tf.cast(box, tf.int32)
        box = _per_image(box, n) if box.shape.rank == 1 else box
        pasted = tf.where(_box_mask(box, shape[1], shape[2])[..., None], flipped, images)
        if cutmix is None:
            mixed = pasted
        else:
            mixed = tf.where(tf.cast(cutmix, tf.bool)[:, None, None, None], pasted, mixed)
    first = _one_hot(labels, num_classes, label_smoothing, tf.float32)
    targets = (
        first * tf.cast(lam, tf.float32)[:, None]
        + tf.reverse(first, [0]) * tf.cast(1.0 - lam, tf.float32)[:, None]
    )
    return mixed, targets


class MixParams(NamedTuple):
    """What `Mixup` drew for a batch of N images: lam (N,) float64, corrected where cutmix
    applies (1 where nothing is mixed); cutmix (N,) bool; box (N, 4) int32 (yl, yh, xl, xh),
    empty where cutmix does not apply."""

    lam: Any
    cutmix: Any
    box: Any


class Mixup:
    """timm's Mixup (timm.data.Mixup) on channels-last float batches, in graph mode (see the
    module's docstring). Arguments as timm's, checked (ValueError naming the argument):
    mixup_alpha and cutmix_alpha (>= 0; each is on when > 0), cutmix_minmax (None, or the
    (min, max) share of each side of a box drawn as timm's rand_bbox_minmax, which turns cutmix
    on with alpha 1), prob and switch_prob (0 to 1), mode ("batch", "pair", "elem"),
    correct_lam, label_smoothing and num_classes (required: timm's default, 1000, is ImageNet's).

    `mixup(images, labels, seed)` gives (mixed images, targets (N, num_classes)); `seed` is a
    stateless seed (2,) int, so that the same seed mixes the same way. `draw` and `apply` are
    its two halves, `params` the draw's deterministic part.

    >>> import numpy as np
    >>> mixup = Mixup(mixup_alpha=0.2, cutmix_alpha=1.0, num_classes=10)
    >>> images, targets = mixup(np.zeros((4, 32, 32, 3), np.float32), [0, 1, 2, 3], [7, 0])
    >>> targets.shape.as_list()
    [4, 10]
    """

    def __init__(
        self,
        mixup_alpha: float = 1.0,
        cutmix_alpha: float = 0.0,
        cutmix_minmax: Sequence[float] | None = None,
        prob: float = 1.0,
        switch_prob: float = 0.5,
        mode: str = "batch",
        correct_lam: bool = True,
        label_smoothing: float = 0.1,
        *,
        num_classes: int,
    ) -> None:
        for arg, value in (("mixup_alpha", mixup_alpha), ("cutmix_alpha", cutmix_alpha)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
                raise ValueError(f"{arg} must be a number >= 0 (0 turns it off), got {value!r}")
        self.mixup_alpha = float(mixup_alpha)
        self.cutmix_alpha = float(cutmix_alpha)
        self.cutmix_minmax = None
        if cutmix_minmax is not None:
            self.cutmix_minmax = _check_range(cutmix_minmax, "cutmix_minmax", 0, 1, above=True)
            self.cutmix_alpha = 1.0  # as timm: the box sets lambda, alpha only whether to mix
        if not (self.mixup_alpha > 0 or self.cutmix_alpha > 0):
            raise ValueError(
                "mixup_alpha, cutmix_alpha: one of them must be > 0 (or cutmix_minmax given)"
            )
        self.prob = _check_unit(prob, "prob")
        self.switch_prob = _check_unit(switch_prob, "switch_prob")
        self.mode = checks.check_choice(mode, "mode", MIX_MODES)
        self.correct_lam = checks.check_bool(correct_lam, "correct_lam")
        self.label_smoothing = _check_unit(label_smoothing, "label_smoothing")
        self.num_classes = checks.check_positive_int(num_classes, "num_classes")

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{k}={getattr(self, k)!r}"
            for k in ("mixup_alpha", "cutmix_alpha", "cutmix_minmax", "prob", "switch_prob")
            + ("mode", "correct_lam", "label_smoothing", "num_classes")
        )
        return f"Mixup({fields})"

    def slots(self, batch_size: Any) -> Any:
        """How many draws a batch of `batch_size` takes: 1 ("batch"), one per pair ("pair",
        the middle image of an odd batch its own pair) or one per image ("elem")."""
        if self.mode == "batch":
            return tf.constant(1, tf.int32)
        if self.mode == "pair":
            return (tf.cast(batch_size, tf.int32) + 1) // 2
        return tf.cast(batch_size, tf.int32)

    @_as_is
    def params(
        self, lam: Any, cutmix: Any, box: Any, batch_size: Any, height: Any, width: Any
    ) -> MixParams:
        """The `MixParams` of a batch from the draws of its slots (`slots`): `lam` (n,) the
        lambdas drawn (1 where the slot is not mixed), `cutmix` (n,) bool, `box` (n, 4) the
        boxes as drawn (`cutmix_box`'s with correct_lam=False, or cutmix_minmax's). Lambda is
        corrected to the box where cutmix applies (with correct_lam, or cutmix_minmax, as
        timm); slots are spread over the images as timm's modes do (pair i is images i and
        N - 1 - i)."""
        lam = _float64(lam)
        cutmix = tf.cast(cutmix, tf.bool) & tf.not_equal(lam, 1.0)  # timm skips lam == 1
        box = tf.where(cutmix[:, None], tf.cast(box, tf.int32), 0)
        if self.correct_lam or self.cutmix_minmax is not None:
            lam = tf.where(cutmix, box_lam(height, width, box), lam)
        n = tf.cast(batch_size, tf.int32)
        if self.mode == "batch":
            index = tf.zeros([n], tf.int32)
        elif self.mode == "pair":
            index = tf.minimum(tf.range(n), n - 1 - tf.range(n))
        else:
            index = tf.range(n)
        return MixParams(tf.gather(lam, index), tf.gather(cutmix, index), tf.gather(box, index))

    @_as_is
    def draw(self, seed: Any, batch_size: Any, height: Any, width: Any) -> MixParams:
        """The random half: a batch's `MixParams` drawn with the stateless `seed` (2,), each
        slot as timm's: mixed with probability prob, cutmix with switch_prob when both are
        on, lambda from Beta(alpha, alpha) of the one chosen (float32 in the "pair" and "elem"
        modes, as timm's), the box's centre uniform over the image (or, with cutmix_minmax,
        its sides uniform in [int(side * min), int(side * max)) and its corner uniform)."""
        n = self.slots(batch_size)
        seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 8)

        def uniform(i: int) -> Any:
            return tf.random.stateless_uniform([n], seeds[i], dtype=tf.float64)

        def randint(i: int, low: Any, high: Any) -> Any:
            # numpy's randint(low, high); high <= low (a box on a tiny image) gives low
            span = tf.maximum(tf.cast(high - low, tf.float64), 1.0)
            offset = tf.minimum(tf.floor(uniform(i) * span), span - 1.0)
            return tf.cast(low, tf.int32) + tf.cast(offset, tf.int32)

        if self.mixup_alpha > 0 and self.cutmix_alpha > 0:
            cutmix = uniform(0) < self.switch_prob
        else:
            cutmix = tf.fill([n], self.cutmix_alpha > 0)
        # an alpha of 0 is never chosen; 1 keeps the Gamma draws of its slots finite
        alpha = tf.where(
            cutmix,
            tf.constant(self.cutmix_alpha or 1.0, tf.float64),
            tf.constant(self.mixup_alpha or 1.0, tf.float64),
        )
        x = tf.random.stateless_gamma([n], seeds[1], alpha, dtype=tf.float64)
        y = tf.random.stateless_gamma([n], seeds[2], alpha, dtype=tf.float64)
        lam = x / tf.maximum(x + y, 1e-300)  # Beta(alpha, alpha); 0 / 0 made 0
        if self.mode != "batch":
            lam = tf.cast(tf.cast(lam, tf.float32), tf.float64)
        lam = tf.where(uniform(3) < self.prob, lam, 1.0)
        h, w = tf.cast(height, tf.int32), tf.cast(width, tf.int32)
        if self.cutmix_minmax is None:
            centre = tf.stack([randint(4, 0, h), randint(5, 0, w)], -1)
            box, _ = cutmix_box(h, w, lam, centre, correct_lam=False)
        else:
            low, high = self.cutmix_minmax
            hf, wf = tf.cast(h, tf.float64), tf.cast(w, tf.float64)
            cut_h = randint(4, tf.cast(hf * low, tf.int32), tf.cast(hf * high, tf.int32))
            cut_w = randint(5, tf.cast(wf * low, tf.int32), tf.cast(wf * high, tf.int32))
            top, left = randint(6, 0, h - cut_h + 1), randint(7, 0, w - cut_w + 1)
            box = tf.stack([top, top + cut_h, left, left + cut_w], -1)
        return self.params(lam, cutmix, box, batch_size, h, w)

    @_as_is
    def apply(self, images: Any, labels: Any, params: MixParams) -> tuple[Any, Any]:
        """The deterministic half: `mix_batch` of the images and labels with `params`."""
        return mix_batch(
            images,
            labels,
            params.lam,
            num_classes=self.num_classes,
            label_smoothing=self.label_smoothing,
            box=params.box,
            cutmix=params.cutmix,
        )

    @_as_is
    def __call__(self, images: Any, labels: Any, seed: Any) -> tuple[Any, Any]:
        images = _float_images(images)
        shape = tf.shape(images)
        return self.apply(images, labels, self.draw(seed, shape[0], shape[1], shape[2]))


@_as_is
def erase_boxes(images: Any, box: Any, value: Any = 0.0) -> Any:
    """Images (N, H, W, C) with each image's box (N, 4) of (top, left, height, width), as
    torchvision's erase takes it (i, j, h, w), set to `value`: a number, one per channel
    (C,), or an array of the images' shape (noise, of which the box's part is used).
    torchvision.transforms.v2.functional.erase(image, i, j, h, w, v) per image."""
    images = tf.convert_to_tensor(images)
    box = tf.cast(box, tf.int32)
    shape = tf.shape(images)
    top, left = box[:, 0], box[:, 1]
    corners = tf.stack([top, top + box[:, 2], left, left + box[:, 3]], -1)
    value = tf.cast(value, images.dtype)
    return tf.where(
        _box_mask(corners, shape[1], shape[2])[..., None], tf.broadcast_to(value, shape), images
    )


class RandomErasing:
    """torchvision's RandomErasing (transforms.RandomErasing, v2.RandomErasing) per image of a
    batch (N, H, W, C) or on one image (H, W, C), in graph mode: with probability
    `probability` an image gets a box of `scale` (min, max) of its area, aspect ratio
    (height / width) log-uniform in `ratio`, sides round(sqrt(area * ratio)) and
    round(sqrt(area / ratio)); a box that does not fit inside the image is drawn again, ten
    times at most, then the image is left as it is; the box's corner is uniform over the places
    it fits. The box is set to `value`: a number (0, torchvision's default), one per channel,
    or "random" (standard normal noise per pixel). torchvision's defaults; its classification
    reference uses probability 0.1. ValueError naming a bad argument.

    >>> import numpy as np
    >>> erasing = RandomErasing(probability=1.0)
    >>> erased = erasing(np.ones((2, 16, 16, 3), np.float32), [1, 2])
    >>> bool((erased.numpy() == 0).any())
    True
    """

    def __init__(
        self,
        probability: float = 0.5,
        scale: Sequence[float] = (0.02, 0.33),
        ratio: Sequence[float] = (0.3, 3.3),
        value: float | Sequence[float] | str = 0.0,
    ) -> None:
        self.probability = _check_unit(probability, "probability")
        self.scale = _check_range(scale, "scale", 0, 1, above=False)
        self.ratio = _check_range(ratio, "ratio", 0, math.inf, above=True)
        given: Any = value
        self.value: float | tuple[float, ...] | str
        if isinstance(given, str):
            if given != "random":
                raise ValueError(
                    f'value must be a number, one per channel or "random"; got {value!r}'
                )
            self.value = given
        elif isinstance(given, numbers.Real) and not isinstance(given, bool):
            self.value = float(given)
        else:
            try:
                self.value = tuple(float(v) for v in given)
            except (TypeError, ValueError):
                raise ValueError(
                    f'value must be a number, one per channel or "random"; got {value!r}'
                ) from None

    def __repr__(self) -> str:
        return (
            f"RandomErasing(probability={self.probability!r}, scale={self.scale!r}, "
            f"ratio={self.ratio!r}, value={self.value!r})"
        )

    @_as_is
    def draw(self, seed: Any, batch_size: Any, height: Any, width: Any) -> Any:
        """(N, 4) int32 boxes (top, left, height, width) drawn with the stateless `seed` (2,)
        as torchvision's get_params (the class's docstring) draws them; an image left as it
        is has a box of height and width 0."""
        n = tf.cast(batch_size, tf.int32)
        seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 5)
        hf, wf = tf.cast(height, tf.float64), tf.cast(width, tf.float64)

        def uniform(i: int, shape: Any) -> Any:
            return tf.random.stateless_uniform(shape, seeds[i], dtype=tf.float64)

        tries = [n, ERASE_TRIES]
        area = hf * wf * (self.scale[0] + (self.scale[1] - self.scale[0]) * uniform(0, tries))
        log_low, log_high = math.log(self.ratio[0]), math.log(self.ratio[1])
        aspect = tf.exp(log_low + (log_high - log_low) * uniform(1, tries))
        # Python's round (half to even) is tf.round's
        box_h, box_w = tf.round(tf.sqrt(area * aspect)), tf.round(tf.sqrt(area / aspect))
        fits = (box_h < hf) & (box_w < wf)
        first = tf.argmax(tf.cast(fits, tf.int32), axis=1, output_type=tf.int32)
        erased = tf.reduce_any(fits, axis=1) & (uniform(2, [n]) < self.probability)
        box_h = tf.where(erased, tf.gather(box_h, first, batch_dims=1), 0.0)
        box_w = tf.where(erased, tf.gather(box_w, first, batch_dims=1), 0.0)
        # torch.randint(0, side - box + 1); (0, 0) where nothing is erased
        top = tf.minimum(tf.floor(uniform(3, [n]) * (hf - box_h + 1)), hf - box_h)
        left = tf.minimum(tf.floor(uniform(4, [n]) * (wf - box_w + 1)), wf - box_w)
        top, left = tf.where(erased, top, 0.0), tf.where(erased, left, 0.0)
        return tf.cast(tf.stack([top, left, box_h, box_w], -1), tf.int32)

    @_as_is
    def __call__(self, images: Any, seed: Any) -> Any:
        images = tf.convert_to_tensor(images)
        single = images.shape.rank == 3
        batch = images[None] if single else images
        channels = batch.shape[-1]
        if self.value == "random" and not batch.dtype.is_floating:
            raise ValueError(f'images must be float for value="random"; got {batch.dtype.name}')
        if isinstance(self.value, tuple) and len(self.value) not in (1, channels or 1):
            raise ValueError(
                f"value has {len(self.value)} numbers but the images {channels} channels"
            )
        shape = tf.shape(batch)
        seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 2)
        box = self.draw(seeds[0], shape[0], shape[1], shape[2])
        if self.value == "random":
            value = tf.random.stateless_normal(shape, seeds[1], dtype=batch.dtype)
        else:
            value = self.value
        erased = erase_boxes(batch, box, value)
        return erased[0] if single else erased


def augment_batches(
    batches: Any,
    *,
    mixup: Mixup | None = None,
    erasing: RandomErasing | None = None,
    seed: int = 0,
) -> Any:
    """A tf.data pipeline of (images, labels) batches (`keras_zoo.data.make_dataset`'s) with
    random erasing per image, then mixup or cutmix per batch, the labels then targets
    (N, num_classes) for `SoftTargetCrossEntropy`. Each batch draws from its own seed, from
    `seed`, anew each epoch."""
    draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)

    @_as_is
    def augment(batch: Any, draw: Any) -> Any:
        images, labels = batch
        if erasing is not None:
            images = erasing(images, tf.stack([draw, tf.constant(0, tf.int64)]))
        if mixup is not None:
            images, labels = mixup(images, labels, tf.stack([draw, tf.constant(1, tf.int64)]))
        return images, labels

    return tf.data.Dataset.zip(batches, draws).map(augment, num_parallel_calls=tf.data.AUTOTUNE)

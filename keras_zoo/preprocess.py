"""Images in as a weight set was evaluated, and ImageNet class names out.

`preprocessing(name, weights)` is the one image path of the package: `evaluate`, `predict`,
`train` and `keras-zoo analyze-features` prepare images with its layers. It reproduces the
evaluation transforms the published accuracies were measured with (torchvision's
`Weights.transforms()`, timm's `create_transform`): the shorter side resized to
floor(size / crop_pct) with the weight set's interpolation, the centre cropped, then normalised
(tests/test_preprocessing.py compares the numbers with theirs).

>>> import numpy as np
>>> import keras_zoo
>>> pre = keras_zoo.preprocessing("resnet50", "torchvision:IMAGENET1K_V2")
>>> [layer.name for layer in pre.layers], pre.layers[0].size
(['resize', 'normalize'], 232)
>>> tuple(pre(np.zeros((2, 300, 400, 3), "uint8")).shape)
(2, 224, 224, 3)
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any

import keras
import numpy as np

from keras_zoo.layers import Normalize, ResizeAndCrop
from keras_zoo.registry import ModelInfo, model_info, weight_set_of
from keras_zoo.weight_sets import Preprocessing, resize_size

CLASS_INDEX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "imagenet_class_index.json")


def preprocessing_of(info: ModelInfo, weights: str | os.PathLike | None = None) -> Preprocessing:
    """How the weights `weights` names for `info` were evaluated: the weight set's own for
    "imagenet" or a weight set's key, the id's default for None or a weights file. ValueError
    for a key `info` has no weight set of."""
    if weights is None:
        return info.preprocessing
    ws = weight_set_of(info, os.fspath(weights))
    return ws.preprocessing if ws is not None else info.preprocessing


def resize_layer(pre: Preprocessing, image_size: int | None = None) -> ResizeAndCrop:
    """The layer that resizes and centre-crops images as `pre` says: to its input size, or
    image_size x image_size with the same crop_pct."""
    crop = tuple(pre.input_size) if image_size is None else (image_size, image_size)
    return ResizeAndCrop(
        resize_size(crop[0], pre.crop_pct),
        crop=crop,
        interpolation=pre.interpolation,
        name="resize",
    )


def normalize_layer(pre: Preprocessing, name: str = "normalize") -> Normalize:
    """The layer that turns RGB values in [0, 255] into what weights evaluated with `pre` take
    (the second layer of `preprocessing`, and what build(..., include_preprocessing=True) puts
    after the input)."""
    return Normalize(pre.mean, pre.std, pre.channel_order, name=name)


def preprocessing(
    name: str, weights: str | os.PathLike | None = None, *, image_size: int | None = None
) -> keras.Sequential:
    """Keras layers that prepare images for model `name` with the weights `weights`.

    Takes a batch (N, H, W, 3) of RGB images with values in [0, 255] (uint8 or float), all of
    one size, any size; for one image pass `image[None]`. The shorter side is resized to
    floor(input size / crop_pct) keeping the aspect ratio, with the weight set's interpolation
    (antialiased, as PIL resizes 8-bit images), the centre cut out at the input size, and the
    values normalised as the weights expect (`keras_zoo.layers.Normalize`: mean, std, BGR for
    megvii's weights). Two layers, "resize" (`keras_zoo.layers.ResizeAndCrop`) and "normalize";
    each also takes a single (H, W, 3) image, which is how tf.data pipelines use them.

    weights: None (the id's default preprocessing), "imagenet", a weight set's key
    ("torchvision:IMAGENET1K_V2") or a weights file (the id's default). image_size: crop
    image_size x image_size instead of the weight set's input size, resizing with the same
    crop_pct.

    >>> import keras_zoo
    >>> pre = keras_zoo.preprocessing("mobilenet_v1", "imagenet", image_size=160)
    >>> pre.layers[0].get_config()["size"], pre.layers[0].interpolation
    (182, 'bicubic')
    """
    from keras_zoo.checks import check_positive_int

    info = model_info(name)
    pre = preprocessing_of(info, weights)
    if image_size is not None:
        check_positive_int(image_size, "image_size")
    return keras.Sequential(
        [keras.Input((None, None, 3)), resize_layer(pre, image_size), normalize_layer(pre)],
        name=f"{name}_preprocessing",
    )


@functools.cache
def imagenet_classes() -> tuple[tuple[str, str], ...]:
    """The 1000 ImageNet-1k classes by index as (WordNet id, class name): WordNet ids as timm
    lists them, names as torchvision's weights' meta (`_IMAGENET_CATEGORIES`) does."""
    with open(CLASS_INDEX, encoding="utf-8") as f:
        raw = json.load(f)
    return tuple((raw[str(i)][0], raw[str(i)][1]) for i in range(len(raw)))


def decode_predictions(preds: Any, top: int = 5) -> list[list[tuple[str, str, float]]]:
    """Per sample, the `top` ImageNet classes of `preds` (N, 1000) as (WordNet id, class name,
    score), highest score first, as keras.applications' decode_predictions lists them. Scores
    are `preds`' own: probabilities or logits.

    >>> import numpy as np
    >>> preds = np.zeros((1, 1000)); preds[0, [0, 1]] = [0.7, 0.2]
    >>> decode_predictions(preds, top=2)
    [[('n01440764', 'tench', 0.7), ('n01443537', 'goldfish', 0.2)]]
    """
    from keras_zoo.checks import check_positive_int

    top = check_positive_int(top, "top")
    preds = np.asarray(keras.ops.convert_to_numpy(preds))
    classes = imagenet_classes()
    if preds.ndim != 2 or preds.shape[1] != len(classes):
        raise ValueError(
            f"preds must be a batch of ImageNet scores of shape (N, "
            f"{len(classes)}), got shape {preds.shape}"
        )
    order = np.argsort(-preds, axis=1, kind="stable")[:, :top]
    return [[(*classes[i], float(row[i])) for i in best] for row, best in zip(preds, order)]

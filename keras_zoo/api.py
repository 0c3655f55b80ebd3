"""`build`: the one entry point. The family builds the architecture; the weights are resolved
and loaded here, above construction (keras_zoo/pretrained.py)."""

from __future__ import annotations

from typing import Any

import keras

from keras_zoo import checks, pretrained
from keras_zoo.description import DescribedModel, ModelDescription, describe_model, recordable
from keras_zoo.preprocess import imagenet_classes, normalize_layer
from keras_zoo.registry import ModelInfo, model_info

# build_model's keywords that build passes itself, and the input tensor, which no record keeps
_UNRECORDED = ("name", "normalization", "default_input_size", "input_tensor")


def build(name: str | None = None, /, **kwargs: Any) -> DescribedModel:
    """Builds the model `name` as a Functional `keras.Model` that knows what it is
    (`keras_zoo.describe(model)`: id, keywords, weights, preprocessing, class names, task).

    Keywords follow keras.applications: include_top=True, weights=None, input_tensor=None,
    input_shape=None (default: the input size of the weights' preprocessing, else the id's
    `model_info(name).input_size`, (224, 224, 3) for most ids), pooling=None ("avg" or "max"
    without the top),
    classes=1000 (with weights: their classifier's outputs, so that a fine-tuned checkpoint's
    classifier loads), classifier_activation="softmax" (None gives logits), name=None; plus
    features_only=False with out_indices (stage outputs at strides 4, 8, 16, 32),
    include_preprocessing=False (True: the model takes RGB values in [0, 255] and normalises
    them as its weights expect), and the family's own keywords (`model_info(name).keywords`
    lists them all).

    weights may be "imagenet" (the id's default weight set: the first of
    `keras_zoo.list_weights(name)`), a weight set's key ("torchvision:IMAGENET1K_V2",
    "timm:resnet50.a1_in1k"), a PyTorch checkpoint (.pth, .pth.tar, .pt, .bin, .ckpt,
    .safetensors; its key layout, torchvision's, timm's, megvii's or PFLD-pytorch's, is
    detected) or a Keras weights file (.weights.h5, .h5). Without the top or with another
    `classes`, the classifier's weights are left out on purpose (and an optional part's, such
    as PFLD's auxiliary net, when the model is built without it); every other weight must fit.
    A top of 1000 classes loaded from the weights is ImageNet-1k's: the description names its
    classes ("n01440764 tench", WordNet id and name). With 1 or 4 input channels the first
    convolution's pretrained weights are adapted (timm's adapt_input_conv).

    >>> import keras_zoo
    >>> model = keras_zoo.build("resnet18", classes=10, classifier_activation=None)
    >>> model.output.shape
    (None, 10)

    The id comes first, without a keyword: `name=` is the Keras model's own name.
    """
    if name is None:
        given = kwargs.get("name")
        example = given if isinstance(given, str) else "resnet50"
        raise TypeError(
            f"keras_zoo.build takes the model id as its first argument, without a keyword: "
            f"keras_zoo.build({example!r}, ...)"
            + ("; name= is the Keras model's own name" if "name" in kwargs else "")
        )
    info = model_info(name)
    allowed = info.keywords
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise TypeError(
            f"{name} does not take the keyword(s) {', '.join(map(repr, unknown))}; "
            f"it takes: {', '.join(allowed)}"
        )
    kwargs.setdefault("name", name)
    preprocess = checks.check_bool(
        kwargs.pop("include_preprocessing", False), "include_preprocessing"
    )
    weights, kwargs = pretrained.resolve(info, kwargs.pop("weights", None), kwargs)
    # the preprocessing of the weight set being loaded, else the id's
    pre = (weights.preprocessing if weights else None) or info.preprocessing
    if preprocess:
        kwargs["normalization"] = normalize_layer(pre, "preprocessing")
    if kwargs.get("input_shape") is None and kwargs.get("input_tensor") is None:
        kwargs["default_input_size"] = tuple(pre.input_size)
    model = info.builder(**kwargs)
    if weights is not None:
        pretrained.load(model, info, weights, kwargs)
    return describe_model(model, _description(info, model, kwargs, weights, pre, preprocess))


def _description(
    info: ModelInfo,
    model: keras.Model,
    kwargs: dict[str, Any],
    weights: pretrained.Weights | None,
    pre: Any,
    include_preprocessing: bool,
) -> ModelDescription:
    """What `build(info.name, ...)` made: the keywords that rebuild it (those the weights fix
    included, the input shape as built), the weights by key or path, their preprocessing."""
    keywords = {k: v for k, v in kwargs.items() if k not in _UNRECORDED and recordable(v)}
    if kwargs.get("name", info.name) != info.name:
        keywords["name"] = kwargs["name"]
    keywords["input_shape"] = tuple(model.inputs[0].shape[1:])
    if include_preprocessing:
        keywords["include_preprocessing"] = True
    ws = weights.weight_set if weights is not None else None
    # a top of 1000 classes loaded from the weights: ImageNet-1k's, in its order
    imagenet = len(imagenet_classes())
    imagenet_top = (
        weights is not None
        and weights.classes == imagenet
        and kwargs.get("include_top", True)
        and not kwargs.get("features_only", False)
        and kwargs.get("classes", 1000) == imagenet
    )
    return ModelDescription(
        id=info.name,
        family=info.family,
        task=info.task,
        keywords=keywords,
        weights=None if weights is None else ws.key if ws is not None else weights.spec,
        weights_layout=None if weights is None else weights.layout,
        preprocessing=pre,
        # "n01440764 tench": the WordNet id that ImageNet's folders and decode_predictions
        # name a class by, then its name
        class_names=tuple(f"{w} {n}" for w, n in imagenet_classes()) if imagenet_top else None,
    )

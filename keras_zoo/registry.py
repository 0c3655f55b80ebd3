"""The one registry of model ids: `build`, `list_models` and each variant's metadata.

A family module registers every variant it defines with `register_model`; nothing else in the
package keeps a list of ids.

>>> import keras_zoo
>>> keras_zoo.list_models("resnet1*")
['resnet101', 'resnet152', 'resnet18']
>>> keras_zoo.model_info("resnet50").params
25557032
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import functools
import inspect
from typing import Any, Callable

from keras_zoo.builder import SHARED_KEYWORDS

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What is known about one model id, in one place.

    Attributes:
        name: the model id, e.g. "resnet50".
        family: the family module that builds it, e.g. "resnet".
        builder: a callable that takes the public keywords and returns a `keras.Model`.
        params: trainable parameter count at the default settings (equals the reference
            PyTorch model's parameter count).
        gmacs: multiply-accumulates of one 224x224 image, in billions, as published for the
            reference weights (convolutions and dense layers).
        top1: ImageNet-1k top-1 accuracy (%) of the reference weights, or None.
        input_size: (height, width, channels) the reference weights were evaluated at.
        mean, std: per-channel normalisation of inputs scaled to [0, 1], RGB order.
        channel_order: "RGB", or "BGR" for weights trained on BGR images.
        crop_pct: centre-crop fraction used for evaluation (224 of a 256 resize is 0.875).
        interpolation: resize interpolation of the reference evaluation.
        weights_url: where the reference PyTorch weights are published (what
            weights="imagenet" ports), or None.
        weights_for: keywords whose values the published weights fix, with the values they
            were trained at, e.g. {"alpha": (1.0,)}.
        config: the architecture settings the id fixes (not user keywords).
    """

    name: str
    family: str
    builder: Callable[..., Any] = dataclasses.field(repr=False)
    params: int
    gmacs: float
    top1: float | None = None
    input_size: tuple[int, int, int] = (224, 224, 3)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    channel_order: str = "RGB"
    crop_pct: float = 0.875
    interpolation: str = "bilinear"
    weights_url: str | None = None
    weights_for: dict[str, tuple] = dataclasses.field(default_factory=dict)
    config: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)

    @property
    def keywords(self) -> tuple[str, ...]:
        """The keywords `build(self.name, ...)` accepts, sorted: the shared ones of
        `builder.build_model` and the family's own, less the architecture the id fixes."""
        own = [
            p.name for p in inspect.signature(self.builder).parameters.values()
            if p.kind is not p.VAR_KEYWORD and p.name not in self.config
        ]
        return tuple(sorted(set(own) | set(SHARED_KEYWORDS)))


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(
    name: str,
    family: str,
    fn: Callable[..., Any],
    *,
    config: dict[str, Any] | None = None,
    **meta: Any,
) -> ModelInfo:
    """Registers `name`, built by `fn(**config, **user_keywords)`; returns its ModelInfo."""
    if name in _REGISTRY:
        raise ValueError(f"model id {name!r} is registered twice")
    config = dict(config or {})
    info = ModelInfo(
        name=name,
        family=family,
        builder=functools.partial(fn, **config),
        config=config,
        **meta,
    )
    _REGISTRY[name] = info
    return info


def list_models(pattern: str = "*") -> list[str]:
    """Sorted model ids matching an fnmatch `pattern` ("resnet*", "*resnext*", "resnet?8")."""
    if not isinstance(pattern, str):
        raise TypeError(f"pattern must be a string such as 'resnet*', got {pattern!r}")
    return sorted(n for n in _REGISTRY if fnmatch.fnmatchcase(n, pattern))


def _closest(name: str) -> list[str]:
    close = difflib.get_close_matches(name, list(_REGISTRY), n=4, cutoff=0.6)
    related = [n for n in sorted(_REGISTRY) if name and (name in n or n in name)]
    return list(dict.fromkeys(close + related))[:5]


def model_info(name: str) -> ModelInfo:
    """The ModelInfo of a registered id; ValueError naming the closest ids otherwise."""
    if not isinstance(name, str):
        raise TypeError(f"model name must be a string such as 'resnet50', got {name!r}")
    try:
        return _REGISTRY[name]
    except KeyError:
        hint = _closest(name)
        did_you_mean = f" Did you mean {', '.join(map(repr, hint))}?" if hint else ""
        raise ValueError(
            f"unknown model {name!r}.{did_you_mean} "
            f"keras_zoo.list_models() lists all {len(_REGISTRY)} ids."
        ) from None


def build(name: str, /, **kwargs: Any):
    """Builds the model `name` as a Functional `keras.Model`.

    Keywords follow keras.applications: include_top=True, weights=None, input_tensor=None,
    input_shape=None (default (224, 224, 3)), pooling=None ("avg" or "max" without the top),
    classes=1000, classifier_activation="softmax" (None gives logits), name=None; plus
    features_only=False with out_indices (stage outputs at strides 4, 8, 16, 32), and the
    family's own keywords (`model_info(name).keywords` lists them all).

    weights may be "imagenet" (the published PyTorch weights, downloaded and ported once, then
    cached), a PyTorch checkpoint (.pth, .pt, .bin, .ckpt, .safetensors) or a Keras weights file
    (.weights.h5, .h5). Without the top or with another `classes`, the classifier's weights are
    left out on purpose; every other weight must fit.

    >>> import keras_zoo
    >>> model = keras_zoo.build("resnet18", classes=10, classifier_activation=None)
    >>> model.output.shape
    (None, 10)
    """
    info = model_info(name)
    allowed = info.keywords
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise TypeError(
            f"{name} does not take the keyword(s) {', '.join(map(repr, unknown))}; "
            f"it takes: {', '.join(allowed)}"
        )
    kwargs.setdefault("name", name)
    if isinstance(kwargs.get("weights"), str) and kwargs["weights"] == "imagenet":
        from keras_zoo.port.pretrained import pretrained_weights

        defaults = inspect.signature(info.builder).parameters
        for key, allowed in info.weights_for.items():
            value = kwargs.get(key, defaults[key].default)
            if value not in allowed:
                raise ValueError(
                    f"weights='imagenet': {name}'s published weights exist only for "
                    f"{key} in {list(allowed)}; got {key}={value!r}"
                )

        kwargs["weights"] = pretrained_weights(name)
    return info.builder(**kwargs)

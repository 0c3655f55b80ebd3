"""The one registry of model ids: `list_models`, each variant's metadata and weight sets.

A family module registers every variant it defines with `register_model`; nothing else in the
package keeps a list of ids. `keras_zoo.build` (keras_zoo/api.py) builds from it.

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
import os
from collections.abc import Callable
from typing import Any

from keras_zoo.builder import SHARED_KEYWORDS
from keras_zoo.checks import KERAS_WEIGHT_SUFFIXES, TORCH_WEIGHT_SUFFIXES
from keras_zoo.weight_sets import SOURCES, Preprocessing, WeightSet

# Keywords `build` takes above construction: the weights to load and the input normalisation.
LOADING_KEYWORDS = ("weights", "include_preprocessing")


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What is known about one model id, in one place.

    Attributes:
        name: the model id, e.g. "resnet50".
        family: the family module that builds it, e.g. "resnet".
        builder: a callable that takes the architecture keywords and returns a `keras.Model`
            (the architecture only: weights are loaded above it, by `keras_zoo.build`).
        params: trainable parameter count at the default settings (equals the reference
            PyTorch model's parameter count).
        gmacs: multiply-accumulates of one image at `input_size` (224x224 for most ids), in
            billions, as published for the reference weights (convolutions and dense layers).
        classifier: the module paths of the classifier's weighted layers, whose checkpoint
            tensors are left out without the top or with another number of classes.
        weights: the published weight sets (`keras_zoo.weight_sets.WeightSet`); the first is
            the default, what weights="imagenet" loads.
        layout_config: per checkpoint layout, the build keywords its checkpoints need that a
            checkpoint does not carry, e.g. {"timm": {"bn_epsilon": 1e-5}}.
        preprocessing: how inputs are prepared: the default weight set's evaluation, or
            ImageNet's usual one for ids without weights.
        config: the architecture settings the id fixes (not user keywords).
        task: what the model's outputs mean ("classification": one score per class;
            "landmarks": the coordinates of points on a face crop).
        parts: the optional parts of the architecture, by the module path their layers are
            named under, each with the build keywords that add it, e.g. PFLD's
            {"auxiliarynet": {"auxiliary": True}}. A checkpoint's tensors of a part the model
            was built without are left out on purpose (a trained PFLD's auxiliary head-pose
            net, which inference does not run); `port` builds the model with every part the
            checkpoint holds.
        head_keywords: the keywords besides `classes` that size the classifier (PFLD's
            num_landmarks), left out where the same architecture is built with another top
            (a weights file's, whose classifier is then left out of a fine-tuned model).

    input_size, mean, std, channel_order, crop_pct, interpolation and top1 are read from
    `preprocessing` and the default weight set.
    """

    name: str
    family: str
    builder: Callable[..., Any] = dataclasses.field(repr=False)
    params: int
    gmacs: float
    classifier: tuple[str, ...] = ()
    weights: tuple[WeightSet, ...] = dataclasses.field(default=(), repr=False)
    layout_config: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict, repr=False)
    preprocessing: Preprocessing = Preprocessing()
    config: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)
    task: str = "classification"
    parts: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict, repr=False)
    head_keywords: tuple[str, ...] = ()

    @property
    def default_weights(self) -> WeightSet | None:
        """The weight set weights="imagenet" loads (None for ids without weights)."""
        return self.weights[0] if self.weights else None

    @property
    def top1(self) -> float | None:
        """ImageNet-1k top-1 (%) of the default weight set, or None."""
        return self.weights[0].top1 if self.weights else None

    @property
    def weights_url(self) -> str | None:
        """Where the default weight set is published, or None."""
        return self.weights[0].url if self.weights else None

    @property
    def weights_for(self) -> dict[str, tuple]:
        """The keywords the default weight set fixes, each with the value it was trained at."""
        return {k: (v,) for k, v in self.weights[0].config.items()} if self.weights else {}

    @property
    def input_size(self) -> tuple[int, int, int]:
        """(height, width, 3) of `preprocessing`: what `keras_zoo.build(name)` builds at
        without input_shape (or the input size of the weight set it loads)."""
        return (*self.preprocessing.input_size, 3)

    @property
    def mean(self) -> tuple[float, float, float]:
        return self.preprocessing.mean

    @property
    def std(self) -> tuple[float, float, float]:
        return self.preprocessing.std

    @property
    def channel_order(self) -> str:
        return self.preprocessing.channel_order

    @property
    def crop_pct(self) -> float:
        return self.preprocessing.crop_pct

    @property
    def interpolation(self) -> str:
        return self.preprocessing.interpolation

    @property
    def keywords(self) -> tuple[str, ...]:
        """The keywords `build(self.name, ...)` accepts, sorted: the shared ones of
        `builder.build_model`, the family's own (less the architecture the id fixes), and
        weights and include_preprocessing."""
        own = [
            p.name
            for p in inspect.signature(self.builder).parameters.values()
            if p.kind is not p.VAR_KEYWORD and p.name not in self.config
        ]
        return tuple(sorted(set(own) | set(SHARED_KEYWORDS) | set(LOADING_KEYWORDS)))

    def weight_set(self, key: str) -> WeightSet:
        """The weight set whose key ("torchvision:IMAGENET1K_V2") or tag is `key`; ValueError
        listing the available keys otherwise."""
        for ws in self.weights:
            if key in (ws.key, ws.tag):
                return ws
        available = ", ".join(repr(ws.key) for ws in self.weights) or "none"
        raise ValueError(
            f"weights={key!r}: {self.name} has no such weight set; available: "
            f"{available} (or 'imagenet' for the first, or a file path)"
        )


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(
    name: str,
    family: str,
    fn: Callable[..., Any],
    *,
    config: dict[str, Any] | None = None,
    **meta: Any,
) -> ModelInfo:
    """Registers `name`, built by `fn(**config, **user_keywords)`; returns its ModelInfo.

    `meta` are ModelInfo's other fields; `preprocessing` defaults to the first weight set's."""
    if name in _REGISTRY:
        raise ValueError(f"model id {name!r} is registered twice")
    config = dict(config or {})
    weights = tuple(meta.pop("weights", ()))
    if weights and "preprocessing" not in meta:
        meta["preprocessing"] = weights[0].preprocessing
    keys = [ws.key for ws in weights]
    if len(set(keys)) != len(keys):
        raise ValueError(f"model id {name!r}: weight set keys repeat: {keys}")
    info = ModelInfo(
        name=name,
        family=family,
        builder=functools.partial(fn, **config),
        config=config,
        weights=weights,
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


def list_weights(name: str) -> list[WeightSet]:
    """The published weight sets of model `name`, the default (weights="imagenet") first.

    >>> [ws.key for ws in list_weights("resnet50")][:2]
    ['torchvision:IMAGENET1K_V2', 'torchvision:IMAGENET1K_V1']
    """
    return list(model_info(name).weights)


def weight_set_of(info: ModelInfo, weights: str) -> WeightSet | None:
    """The weight set `weights` names for `info` ("imagenet", "source:tag" or a tag alone), None
    when it names a file; ValueError for an unknown key, listing the available ones. Nothing is
    read or fetched.

    >>> weight_set_of(model_info("resnet50"), "imagenet").key
    'torchvision:IMAGENET1K_V2'
    >>> weight_set_of(model_info("resnet50"), "resnet50-0676ba61.pth") is None
    True
    """
    if weights == "imagenet":
        if not info.weights:
            with_weights = [n for n in list_models() if model_info(n).weights]
            raise ValueError(
                f"weights='imagenet': {info.name} has no published weights; ids "
                f"that have: {', '.join(with_weights)}"
            )
        return info.default_weights
    source = weights.partition(":")[0]
    if (source in SOURCES or any(weights == ws.tag for ws in info.weights)) and not os.path.exists(
        weights
    ):
        return info.weight_set(weights)
    suffixes = KERAS_WEIGHT_SUFFIXES + TORCH_WEIGHT_SUFFIXES
    if not weights.endswith(suffixes):
        available = ", ".join(repr(ws.key) for ws in info.weights) or "none"
        raise ValueError(
            f"weights={weights!r}: not a weight set of {info.name} (available: {available}, "
            f"or 'imagenet' for the first) nor a weights file ({', '.join(suffixes)})"
        )
    return None

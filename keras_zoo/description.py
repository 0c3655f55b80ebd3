"""What a built model is: its id, keywords, weights, preprocessing, class names and task.

`keras_zoo.build` returns a `DescribedModel`, a Functional model that carries its
`ModelDescription` through `model.save("m.keras")` and `keras.models.load_model`. Training runs
write the description into run.json beside their weights and exports into their record, so
export, predict, evaluate and analysis read the preprocessing from the model instead of
resolving a weights string again.

>>> import keras_zoo
>>> model = keras_zoo.build("mobilenet_v2", alpha=0.5, input_shape=(64, 64, 3), classes=10)
>>> description = keras_zoo.describe(model)
>>> description.id, description.task, description.keywords["alpha"]
('mobilenet_v2', 'classification', 0.5)
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from typing import Any

import keras

from keras_zoo import compat
from keras_zoo.weight_sets import Preprocessing

# Bounds for descriptions read from files: far above any real model's, so that a hostile
# run.json, export record or .keras config costs bounded memory and time.
MAX_CLASSES = 100_000
MAX_TEXT = 4096
MAX_KEYWORDS = 64


@dataclasses.dataclass(frozen=True)
class ModelDescription:
    """What a model built by `keras_zoo.build` is.

    Attributes:
        id: the model id, e.g. "resnet50".
        family: the family module that builds it, e.g. "resnet".
        task: what the outputs mean, e.g. "classification", "landmarks".
        keywords: the build keywords that rebuild the architecture (`build(id, **keywords)`):
            the family's own (alpha, groups, ...) and the shared ones given (classes,
            input_shape, include_top, ...); never `weights`.
        weights: the weight set's key ("timm:resnet50.a1_in1k") or the weights file loaded,
            None for random initialisation.
        weights_layout: the key layout of the weights loaded: "torchvision", "timm", "megvii",
            "pfld_pytorch" for PyTorch checkpoints, "keras" for Keras weights files, None
            without weights or for a checkpoint in no known layout.
        preprocessing: how the model's inputs are prepared (the weight set's evaluation, else
            the id's).
        class_names: the name of each output class, or None when unknown: a training run's
            class folders, ImageNet-1k's WordNet ids and names ("n01440764 tench") for a top of
            1000 classes loaded from pretrained weights.
    """

    id: str
    family: str
    task: str = "classification"
    keywords: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    weights: str | None = None
    weights_layout: str | None = None
    preprocessing: Preprocessing = Preprocessing()
    class_names: tuple[str, ...] | None = dataclasses.field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict; `ModelDescription.from_dict` reads it back."""
        return {
            "id": self.id,
            "family": self.family,
            "task": self.task,
            "keywords": {k: _plain(v) for k, v in self.keywords.items()},
            "weights": self.weights,
            "weights_layout": self.weights_layout,
            "preprocessing": _plain(dataclasses.asdict(self.preprocessing)),
            "class_names": list(self.class_names) if self.class_names is not None else None,
        }

    @classmethod
    def from_dict(cls, value: Any, source: str = "description") -> ModelDescription:
        """The description `to_dict` wrote; ValueError naming `source` (a file) and the field
        for anything else."""
        if not isinstance(value, Mapping):
            raise ValueError(f"{source}: the model description must be a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"{source}: unknown model description field(s) {unknown}")
        for field in ("id", "family"):
            if field not in value:
                raise ValueError(f"{source}: the model description has no {field!r}")
        keywords = value.get("keywords") or {}
        if not isinstance(keywords, Mapping) or len(keywords) > MAX_KEYWORDS:
            raise ValueError(f"{source}: 'keywords' must be an object of at most {MAX_KEYWORDS}")
        names = value.get("class_names")
        if names is not None:
            if not isinstance(names, list) or len(names) > MAX_CLASSES:
                raise ValueError(
                    f"{source}: 'class_names' must be a list of at most {MAX_CLASSES} names"
                )
            names = tuple(_text(n, source, "class_names") for n in names)
        preprocessing = read_preprocessing(value.get("preprocessing") or {}, source)
        return cls(
            id=_text(value["id"], source, "id"),
            family=_text(value["family"], source, "family"),
            task=_text(value.get("task", "classification"), source, "task"),
            keywords={
                _text(k, source, "keywords"): _literal(v, source, k) for k, v in keywords.items()
            },
            weights=_optional_text(value.get("weights"), source, "weights"),
            weights_layout=_optional_text(value.get("weights_layout"), source, "weights_layout"),
            preprocessing=preprocessing,
            class_names=names,
        )

    def to_json(self) -> str:
        """`to_dict` as JSON text."""
        return json.dumps(self.to_dict())


def read_preprocessing(value: Any, source: str) -> Preprocessing:
    """The `Preprocessing` a record holds as a JSON object of its fields (lists for tuples);
    ValueError naming `source` (a file) and the field for anything else."""
    if not isinstance(value, Mapping) or not set(value) <= {
        f.name for f in dataclasses.fields(Preprocessing)
    }:
        raise ValueError(f"{source}: 'preprocessing' must be an object of Preprocessing fields")
    fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
    for field, length in (("input_size", 2), ("mean", 3), ("std", 3)):
        numbers = fields.get(field, (1,) * length)
        if not (
            isinstance(numbers, tuple)
            and len(numbers) == length
            and all(_finite(n, integer=field == "input_size") for n in numbers)
        ):
            raise ValueError(f"{source}: 'preprocessing': {field} must be {length} numbers")
    try:
        return Preprocessing(**fields)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{source}: 'preprocessing': {err}") from None


def recordable(value: Any) -> bool:
    """Whether a build keyword's value is one a description records: what JSON holds and
    `_literal` reads back (a callable activation is not)."""
    try:
        _literal(_plain(value), "", "")
    except ValueError:
        return False
    return True


def _plain(value: Any) -> Any:
    # tuples become lists, as JSON has them
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _finite(value: Any, integer: bool) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return value > 0 and isinstance(value, int) if integer else math.isfinite(value)


def _text(value: Any, source: str, field: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise ValueError(f"{source}: {field!r} must be text of at most {MAX_TEXT} characters")
    return value


def _optional_text(value: Any, source: str, field: str) -> str | None:
    return None if value is None else _text(value, source, field)


def _literal(value: Any, source: str, field: str, depth: int = 0) -> Any:
    """A keyword's value as JSON gives it: None, bool, a finite number, text, or a short list
    of those (read back as a tuple, as build takes shapes and indices)."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    if isinstance(value, str):
        return _text(value, source, f"keywords.{field}")
    if isinstance(value, list) and depth < 2 and len(value) <= MAX_KEYWORDS:
        return tuple(_literal(v, source, field, depth + 1) for v in value)
    raise ValueError(f"{source}: keyword {field!r} has a value that is not a build keyword's")


@keras.saving.register_keras_serializable(package="keras_zoo")
class DescribedModel(compat.BuildsBeforeFit, keras.Model):
    """A Functional model that carries its `ModelDescription` through `get_config` (and so
    through `model.save` and `keras.models.load_model`). Built by `describe_model`. Its fit
    traces the train step once (`keras_zoo.compat.BuildsBeforeFit`)."""

    description: ModelDescription | None = None

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        if self.description is not None:
            config["keras_zoo"] = self.description.to_dict()
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: Any = None) -> DescribedModel:
        config = dict(config)
        description = config.pop("keras_zoo", None)
        model = super().from_config(config, custom_objects=custom_objects)
        if description is not None:
            model.description = ModelDescription.from_dict(description, "the model's config")
        return model


def describe_model(model: keras.Model, description: ModelDescription) -> DescribedModel:
    """`model`'s graph (the same layers, no copy of the weights) as a `DescribedModel`
    carrying `description`."""
    described = DescribedModel(model.input, model.output, name=model.name)
    described.description = description
    return described


def describe(model: Any) -> ModelDescription:
    """What `model` is: the description `keras_zoo.build` attached (kept through
    `model.save` / `keras.models.load_model`), or an exported model's
    (`keras_zoo.load_exported`). ValueError for a model keras_zoo did not build.

    >>> import keras_zoo
    >>> keras_zoo.describe(keras_zoo.build("resnet18", classes=10)).keywords
    {'classes': 10, 'input_shape': (224, 224, 3)}
    """
    description = getattr(model, "description", None)
    if isinstance(description, ModelDescription):
        return description
    name = getattr(model, "name", type(model).__name__)
    raise ValueError(
        f"model {name!r} carries no keras_zoo description: build it with keras_zoo.build(...) "
        f"(or load a model saved from one)"
    )

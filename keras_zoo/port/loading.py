"""Loading weights files into any built Keras model: PyTorch state_dicts by name, Keras files
whole. The classifier's tensors (named by the caller) are left out on purpose when the model
has no top or another number of classes; everything else must fit exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import keras
import numpy as np

from keras_zoo import compat
from keras_zoo.port.mapping import Plan, plan_state_dict, weighted_layers

_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


class WeightsMismatch(ValueError):
    """A readable weights file whose tensors do not fit the model (shapes or names): the error
    `fit_checkpoint` and `load_keras_file` raise, which `keras_zoo.pretrained` completes with
    the family keyword that explains it, where one does."""


def checkpoint_params(state_dict: Mapping[str, np.ndarray]) -> int:
    """The parameter count of a state_dict (batch-norm running statistics excluded)."""
    return sum(
        int(np.size(v)) for k, v in state_dict.items() if k.rpartition(".")[2] not in _BUFFERS
    )


class Architecture(Protocol):
    """What `identify` needs of a candidate architecture (`keras_zoo.registry.ModelInfo` has
    it): its name, its parameter count at 1000 classes, the module paths of its classifier and
    a builder taking build keywords."""

    @property
    def name(self) -> str: ...

    @property
    def params(self) -> int: ...

    @property
    def classifier(self) -> tuple[str, ...]: ...

    @property
    def builder(self) -> Callable[..., Any]: ...


def identify(
    state_dict: Mapping[str, np.ndarray], candidates: Iterable[Architecture]
) -> str | None:
    """The name of the first of `candidates` whose architecture `state_dict` fits, with the
    state_dict's own number of classes (a fine-tuned checkpoint is told by its backbone), if
    any.

    Candidates whose parameter count, the classifier resized to 1000 classes, is the
    checkpoint's are built with the checkpoint's classes and matched by name and shape.
    """
    n_params = checkpoint_params(state_dict)
    for info in candidates:
        top = f"{info.classifier[-1]}." if info.classifier else None
        rows = state_dict.get(f"{top}weight") if top else None
        classes, at_1000 = 1000, n_params
        if rows is not None and np.ndim(rows) == 2:
            classes = int(rows.shape[0])
            per_class = rows.shape[1] + (f"{top}bias" in state_dict)
            at_1000 += (1000 - classes) * per_class  # as if it had ImageNet's 1000 classes
        if info.params != at_1000:
            continue
        candidate = info.builder(
            name=info.name,
            input_shape=(None, None, 3),
            classes=classes,
            classifier_activation=None,
        )
        if plan_state_dict(candidate, state_dict).fits:
            return info.name
    return None


def fit_checkpoint(
    model: keras.Model,
    state_dict: Mapping[str, np.ndarray],
    *,
    source: str,
    optional_modules: tuple[str, ...] = (),
    identify: Callable[[Mapping[str, np.ndarray]], str | None] | None = None,
) -> Plan:
    """Sets `model` from `state_dict`, or raises ValueError saying what does not fit and, where
    `identify(state_dict)` names the architecture the checkpoint fits, which one
    (`keras_zoo.pretrained.identify` names registered ids). The model is unchanged on
    error."""
    plan = plan_state_dict(model, state_dict, optional_modules=optional_modules)
    if plan.fits:
        for layer, values in plan.assignments:
            layer.set_weights(values)
        return plan
    first = (plan.mismatched or plan.missing or plan.unexpected)[0]
    message = f"{source} does not fit {model.name}: {first}"
    guess = identify(state_dict) if identify is not None else None
    if guess is not None and guess != model.name:
        key = plan.mismatched[0].split(":")[0] if plan.mismatched else None
        shape = f": {key} is {tuple(np.shape(state_dict[key + '.weight']))}" if key else ""
        message += f"\nIt looks like {guess}{shape}."
    raise WeightsMismatch(f"{message}\n{plan.report()}")


def keras_file_classes(path: str, classifier: str) -> int | None:
    """The number of classes of the model whose weights `path` holds (None if headless);
    OSError for a file that is not HDF5 or not laid out as Keras writes weights."""
    try:
        return compat.weights_file_classes(path, classifier)
    except KeyError as err:  # h5py's error for a group or dataset the file lacks
        raise OSError(
            f"not laid out as Keras weights ({err.args[0] if err.args else err})"
        ) from None


def load_keras_file(
    model: keras.Model,
    path: str,
    classifier: tuple[str, ...],
    full_model: Callable[[int], keras.Model],
) -> None:
    """Loads the Keras weights file `path` into `model`. A file of the same architecture with
    another top (or with a top the model lacks) is read into `full_model(classes)` and copied
    by name, the `classifier` layers left out; nothing changes unless everything fits."""
    layers = weighted_layers(model)
    names = {layer.name for layer in layers}
    try:
        classes = keras_file_classes(path, classifier[-1])
    except OSError as err:
        raise ValueError(f"weights={path!r} is not a readable HDF5 weights file: {err}") from None
    has_top = all(c in names for c in classifier)
    same_top = has_top and classes == model.get_layer(classifier[-1]).kernel.shape[-1]
    source = model
    if classes is not None and not same_top:
        source = full_model(classes)  # the file's own architecture, then copied by name
    before = model.get_weights() if source is model else None
    try:
        compat.load_weights_strictly(source, path)
    except ValueError as err:
        if before is not None:
            model.set_weights(before)  # nothing partial
        raise WeightsMismatch(f"weights={path!r} do not fit {model.name}: {err}") from None
    if source is model:
        return
    assignments = []
    for layer in layers:
        theirs = source.get_layer(layer.name).get_weights()
        if [w.shape for w in theirs] == [tuple(w.shape) for w in layer.weights]:
            assignments.append((layer, theirs))
        elif layer.name not in classifier:
            raise WeightsMismatch(f"weights={path!r}: layer {layer.name} does not fit {model.name}")
    for layer, values in assignments:  # only once everything fits
        layer.set_weights(values)

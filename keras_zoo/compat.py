"""Every private Keras API keras_zoo relies on, each behind one function here.

Each function's docstring names what it assumes of Keras beyond its public API, and
tests/test_compat.py checks each assumption against the installed Keras, so that a release that
breaks one fails there, by name, rather than somewhere downstream.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

import h5py
import keras


def keras_version() -> tuple[int, int]:
    """(major, minor) of the installed Keras."""
    major, minor = keras.version().split(".")[:2]
    return int(major), int(minor)


# ---------------------------------------------------------------------------------------------
# the call graph of a Functional model


def graph_nodes(model: Any) -> list | None:
    """The call nodes of a Functional model's graph, or None for any other object.

    Each node has `operation` (the layer called), `input_tensors` and `output_tensors`.
    Assumes: a Functional model keeps them in `_nodes_by_depth`, {depth: [node, ...]}, which
    other models lack. Keras 3 has no public list of a graph's calls (`operations` lists layers,
    and `layer.output` is a layer's first call in any graph).
    """
    by_depth = getattr(model, "_nodes_by_depth", None)
    if not isinstance(model, keras.Model) or by_depth is None:
        return None
    return [node for nodes in by_depth.values() for node in nodes]


# ---------------------------------------------------------------------------------------------
# fit under MultiWorkerMirroredStrategy (keras-team/keras#20585)

# The first Keras release that fits under MultiWorkerMirroredStrategy without the workaround;
# None while none does. tests/test_compat.py says when the installed Keras no longer needs it.
MULTI_WORKER_FIT_FIXED_IN: tuple[int, int] | None = None


def multi_worker_fit_needs_workaround(version: tuple[int, int] | None = None) -> bool:
    """Whether Keras `version` (default the installed one) has keras-team/keras#20585: under
    MultiWorkerMirroredStrategy, fit reduces the first batch across workers to build the model,
    and reduces the step's scalar logs along an axis they do not have."""
    version = version or keras_version()
    return MULTI_WORKER_FIT_FIXED_IN is None or version < MULTI_WORKER_FIT_FIXED_IN


def build_from_batch(model: keras.Model, batch: Any) -> None:
    """Makes fit build `model` from `batch` (a local batch) rather than from a batch of its
    iterator reduced across workers.

    Assumes: fit builds a model under a strategy through `model._maybe_symbolic_build(
    iterator=None, data_batch=None)`, which builds from `data_batch` when given (Keras >= 3.5).
    """
    build = model._maybe_symbolic_build
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: build(data_batch=batch)


# ---------------------------------------------------------------------------------------------
# fit: everything built before the train step is traced


class BuildsBeforeFit:
    """A mixin for keras.Model subclasses (keras_zoo's DescribedModel): fit creates the
    variables of the model, its optimizer, its compiled loss and its metrics from the first
    batch before it traces the train step, as Keras does under a distribution strategy.

    Without a strategy Keras leaves them to the first trace of the train step, and tf.function
    traces a function that creates variables twice: built first, the first epoch of
    mobilenet_v3_small at 32x32 starts in about half the time (`keras-zoo train`: 19.6 s ->
    11.4 s). evaluate and predict, which need no optimizer, are left as Keras runs them.
    Assumes: fit calls `self._maybe_symbolic_build(iterator=...)` before it traces, and
    `self._symbolic_build(iterator=...)` builds all four from the iterator's first batch
    (Keras >= 3.5).
    """

    _fitting = False

    def fit(self, *args: Any, **kwargs: Any) -> Any:
        self._fitting = True
        try:
            return super().fit(*args, **kwargs)  # type: ignore[misc]
        finally:
            self._fitting = False

    def _maybe_symbolic_build(self, iterator: Any = None, data_batch: Any = None) -> None:
        if self._fitting and getattr(self, "_distribute_strategy", None) is None:
            self._symbolic_build(iterator=iterator, data_batch=data_batch)  # type: ignore[attr-defined]
        else:
            super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------
# Keras weights files


def weights_file_classes(path: str, classifier: str) -> int | None:
    """The number of classes of the model whose weights the Keras file `path` holds (None if
    it has no dense layer, or no `classifier` layer in a legacy file); KeyError for a file that
    is not laid out as below.

    Assumes: a Keras 3 .weights.h5 file has a group "layers" with one group per layer, named
    after the layer's type in creation order ("dense", "dense_1", ...), each variable in
    "vars/<index>", a Dense kernel first as (inputs, units); a legacy (Keras 2) .h5 file has
    groups named after the layers (under "model_weights" in a whole-model file) with datasets
    whose names contain "kernel".
    """
    with h5py.File(path, "r") as f:
        if "layers" in f:
            dense = [k for k in f["layers"] if k == "dense" or k.startswith("dense_")]
            if not dense:
                return None
            last = max(dense, key=lambda k: int(k.rpartition("_")[2]) if k != "dense" else 0)
            return int(f["layers"][last]["vars"]["0"].shape[-1])
        group = f["model_weights"] if "model_weights" in f else f
        if classifier not in group:
            return None
        kernels: list = []
        group[classifier].visititems(
            lambda n, obj: kernels.append(obj) if n.endswith("kernel") or "kernel:" in n else None
        )
        return int(kernels[0].shape[-1]) if kernels else None


def weights_file_shapes(path: str) -> list[tuple[int, ...]]:
    """The shapes of the variables the Keras weights file `path` holds, read without their
    values; OSError for a file that is not HDF5.

    Assumes: every dataset of a weights file is one variable (a .weights.h5 file's
    "layers/<layer>/vars/<index>", a legacy .h5 file's one dataset per weight; a legacy
    whole-model file's optimizer weights are datasets as well, and are counted).
    """
    shapes: list[tuple[int, ...]] = []
    with h5py.File(path, "r") as f:
        f.visititems(
            lambda _, obj: (
                shapes.append(tuple(obj.shape)) if isinstance(obj, h5py.Dataset) else None
            )
        )
    return shapes


def load_weights_strictly(model: keras.Model, path: str) -> None:
    """`model.load_weights(path)`, raising where Keras only warns that parts of the file match
    nothing in the model; ValueError with Keras' reason in one line (`load_failure`).

    Assumes: Keras warns with a message containing "Skipping" or "could not be loaded" when
    parts of a weights file match nothing in the model.
    """
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.load_weights(path)
        skipped = [
            str(w.message)
            for w in caught
            if "Skipping" in str(w.message) or "could not be loaded" in str(w.message)
        ]
        if skipped:
            raise ValueError(skipped[0])
    except Exception as err:  # Keras raises several types for a file that does not fit
        raise ValueError(load_failure(err)) from None


def load_failure(err: Exception) -> str:
    """Keras' reason a weights file does not load, in one line: how many layers failed and the
    first one's shapes, without the pages of tensor values Keras' message prints.

    Assumes: Keras' message starts "A total of N objects could not be loaded. Example error
    message for object <Type name=NAME, ...>" and holds "variable.shape=(...), Received:
    value.shape=(...)"; any other message is kept to its first line.
    """
    text = str(err).strip()
    first = text.splitlines()[0] if text else type(err).__name__
    count = re.match(r"A total of (\d+) objects could not be loaded", first)
    layer = re.search(r"Example error message for object <\w+ name=([^,>]+)", first)
    shapes = re.search(r"variable\.shape=(\([^)]*\)), Received: value\.shape=(\([^)]*\))", text)
    if count and layer and shapes:
        return (
            f"{count[1]} layers do not load; the first, {layer[1]}, needs {shapes[1]} where "
            f"the file has {shapes[2]}"
        )
    return re.sub(r"\s*Example error message for object .*$", "", first).rstrip(":")

"""tf.distribute strategies for training: one machine (default or mirrored over its devices)
or several (multi-worker, configured by the TF_CONFIG environment variable).

Keras' fit does not run under MultiWorkerMirroredStrategy as it stands (keras-team/keras#20585,
in every release up to the one tested): it reduces the first batch across workers to build the
model, and reduces the step's scalar logs along an axis they do not have. `prepare_model` works
around both in the Keras versions that `compat.multi_worker_fit_needs_workaround` names, and
synchronises batch-norm statistics across workers so that every worker ends with the same
weights.
"""

from __future__ import annotations

import json
import os
from typing import Any

from keras_zoo import compat

STRATEGIES = ("default", "mirrored", "multi-worker")


def make_strategy(kind: str | None) -> Any:
    """The tf.distribute strategy called `kind` ("default", "mirrored", "multi-worker")."""
    import tensorflow as tf

    from keras_zoo.checks import check_choice

    kind = check_choice(kind or "default", "strategy", STRATEGIES)
    if kind == "mirrored":
        return tf.distribute.MirroredStrategy()
    if kind == "multi-worker":
        if not os.environ.get("TF_CONFIG"):
            raise ValueError(
                "strategy 'multi-worker' needs the TF_CONFIG environment variable "
                '(e.g. {"cluster": {"worker": ["host1:port", "host2:port"]}, '
                '"task": {"type": "worker", "index": 0}})'
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def is_multi_worker(strategy: Any) -> bool:
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def is_chief() -> bool:
    """Whether this process is the chief of a TF_CONFIG cluster (or there is no cluster): the
    one that writes logs."""
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = config.get("task", {})
    kind, index = task.get("type", "worker"), int(task.get("index", 0))
    has_chief = "chief" in config.get("cluster", {})
    return kind == "chief" or (not has_chief and kind == "worker" and index == 0)


def prepare_model(model: Any, strategy: Any, dataset: Any) -> None:
    """Under a multi-worker strategy: the workarounds in the module docstring (`dataset` is
    the training data, whose first batch builds the model)."""
    if not is_multi_worker(strategy):
        return
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized = True
    if compat.multi_worker_fit_needs_workaround():
        work_around_multi_worker_fit(model, dataset)


def work_around_multi_worker_fit(model: Any, dataset: Any) -> None:
    """keras-team/keras#20585: fit builds `model` from the first batch of `dataset` on this
    worker, and the steps return their logs as vectors of one, which reduce along axis 0."""
    import tensorflow as tf

    compat.build_from_batch(model, next(iter(dataset)))
    for name in ("train_step", "test_step"):  # overriding a step is public API
        step = getattr(model, name)

        def step_with_vector_logs(data, _step=step):
            return {k: tf.reshape(v, [1]) for k, v in _step(data).items()}

        setattr(model, name, step_with_vector_logs)

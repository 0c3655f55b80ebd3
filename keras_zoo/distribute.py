"""tf.distribute strategies for training: one machine (default or mirrored over its devices)
or several (multi-worker, configured by the TF_CONFIG environment variable).

Keras 3.15's fit does not run under MultiWorkerMirroredStrategy as it stands
(keras-team/keras#20585): it reduces the first batch across workers to build the model, and
reduces the step's scalar logs along an axis they do not have. `prepare_model` works around
both, and synchronises batch-norm statistics across workers so that every worker ends with the
same weights.
"""

from __future__ import annotations

import json
import os

STRATEGIES = ("default", "mirrored", "multi-worker")


def make_strategy(kind: str | None):
    """The tf.distribute strategy called `kind` ("default", "mirrored", "multi-worker")."""
    import tensorflow as tf

    from keras_zoo.checks import check_choice

    kind = check_choice(kind or "default", "strategy", STRATEGIES)
    if kind == "mirrored":
        return tf.distribute.MirroredStrategy()
    if kind == "multi-worker":
        if not os.environ.get("TF_CONFIG"):
            raise ValueError("strategy 'multi-worker' needs the TF_CONFIG environment variable "
                             '(e.g. {"cluster": {"worker": ["host1:port", "host2:port"]}, '
                             '"task": {"type": "worker", "index": 0}})')
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def is_multi_worker(strategy) -> bool:
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


def prepare_model(model, strategy, dataset) -> None:
    """Under a multi-worker strategy: the workarounds in the module docstring (`dataset` is
    the training data, whose first batch builds the model)."""
    if not is_multi_worker(strategy):
        return
    import keras
    import tensorflow as tf

    first_batch = next(iter(dataset))
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized = True
    build = model._maybe_symbolic_build
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: build(
        data_batch=first_batch)
    for name in ("train_step", "test_step"):
        step = getattr(model, name)

        def step_with_vector_logs(data, _step=step):
            return {k: tf.reshape(v, [1]) for k, v in _step(data).items()}

        setattr(model, name, step_with_vector_logs)

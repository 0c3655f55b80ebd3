"""The private Keras APIs of keras_zoo/compat.py, each assumption checked against the installed
Keras: a failure here names the assumption a Keras release broke."""

import json
import sys
import textwrap

import keras
import numpy as np
import pytest

from keras_zoo import compat
from tests.conftest import run_workers

BROKE = "keras_zoo/compat.py: Keras {} broke the assumption of {}: "


def _functional():
    inputs = keras.Input((4,), name="x")
    hidden = keras.layers.Dense(3, name="hidden")
    outputs = keras.layers.Dense(2, name="out")(hidden(inputs))
    return keras.Model(inputs, outputs), inputs, hidden, outputs


def test_graph_nodes_are_the_calls_of_a_functional_graph():
    model, inputs, hidden, outputs = _functional()
    nodes = compat.graph_nodes(model)
    why = BROKE.format(keras.version(), "graph_nodes")
    assert nodes is not None, why + "a Functional model has no `_nodes_by_depth`"
    by_layer = {node.operation.name: node for node in nodes}
    assert sorted(by_layer) == ["hidden", "out", "x"], why + f"nodes of {sorted(by_layer)}"
    assert by_layer["hidden"].input_tensors == [inputs], why + "a node's input_tensors"
    assert by_layer["out"].output_tensors == [outputs], why + "a node's output_tensors"
    assert by_layer["hidden"].output_tensors[0] is by_layer["out"].input_tensors[0], why
    # other models have no graph of their own
    assert compat.graph_nodes(keras.Sequential([keras.Input((4,)), hidden])) is None, why
    assert compat.graph_nodes(hidden) is None, why


def test_build_from_batch_builds_the_model_from_the_batch_given():
    import tensorflow as tf

    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():  # fit builds symbolically only
        model, *_ = _functional()  # under a strategy
        model.compile("sgd", "mse")
    seen = []
    build = model._maybe_symbolic_build

    def spy(iterator=None, data_batch=None):
        seen.append(data_batch)
        return build(iterator=iterator, data_batch=data_batch)

    model._maybe_symbolic_build = spy
    batch = (np.ones((2, 4), "float32"), np.ones((2, 2), "float32"))
    compat.build_from_batch(model, batch)
    model.fit(*batch, epochs=1, verbose=0)
    assert seen and seen[0] is batch, BROKE.format(keras.version(), "build_from_batch") + (
        "fit no longer builds through _maybe_symbolic_build(iterator=..., data_batch=...)"
    )


class BuildingModel(compat.BuildsBeforeFit, keras.Model):
    pass


@pytest.mark.parametrize("mixin", [False, True])
def test_builds_before_fit_lets_fit_trace_its_step_once(mixin):
    """With the mixin fit finds every variable made and traces its train step once; a plain
    Keras model (the case Keras leaves alone) traces it twice. evaluate builds no optimizer."""
    import tensorflow as tf

    _, inputs, _, outputs = _functional()
    model = (BuildingModel if mixin else keras.Model)(inputs, outputs)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    data = tf.data.Dataset.from_tensor_slices(
        (np.ones((4, 4), "float32"), np.zeros(4, "int64"))
    ).batch(2)
    model.evaluate(data, verbose=0)
    assert not model.optimizer.built
    traces = []
    step = model.train_step
    model.train_step = lambda batch: traces.append(1) or step(batch)
    history = model.fit(data, validation_data=data, epochs=2, verbose=0)
    assert len(history.history["val_loss"]) == 2
    assert len(traces) == (1 if mixin else 2), (
        BROKE.format(keras.version(), "BuildsBeforeFit")
        + f"fit traced its train step {len(traces)} times"
    )


def test_weights_file_classes_reads_the_last_dense_layer(tmp_path):
    model, *_ = _functional()
    path = str(tmp_path / "m.weights.h5")
    model.save_weights(path)
    assert compat.weights_file_classes(path, "out") == 2, (
        BROKE.format(keras.version(), "weights_file_classes") + "the .weights.h5 layout"
    )
    inputs = keras.Input((4,))
    keras.Model(inputs, keras.layers.ReLU()(inputs)).save_weights(path)
    assert compat.weights_file_classes(path, "out") is None


def test_weights_file_shapes_are_the_models_variables(tmp_path):
    inputs = keras.Input((5, 5, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Dropout(0.5, name="drop")(x)  # a seed generator: state, not a weight
    model = keras.Model(inputs, keras.layers.Dense(2, name="out")(x))
    for name in ("m.weights.h5", "m.h5"):  # Keras 3's weights file and legacy H5
        path = str(tmp_path / name)
        model.save_weights(path) if name.endswith(".weights.h5") else model.save(path)
        shapes = sorted(compat.weights_file_shapes(path))
        assert shapes == sorted(tuple(w.shape) for w in model.weights), (
            BROKE.format(keras.version(), "weights_file_shapes")
            + f"{name} holds other datasets than the model's variables: {shapes}"
        )


def test_strict_loading_refuses_a_file_that_does_not_fit_in_one_line(tmp_path):
    model, *_ = _functional()
    path = str(tmp_path / "m.weights.h5")
    model.save_weights(path)
    compat.load_weights_strictly(model, path)  # a file that fits loads
    inputs = keras.Input((4,))
    other = keras.Model(
        inputs, keras.layers.Dense(5, name="out")(keras.layers.Dense(3, name="hidden")(inputs))
    )
    with pytest.raises(ValueError) as caught:
        compat.load_weights_strictly(other, path)
    assert str(caught.value) == (
        "1 layers do not load; the first, out, needs (3, 5) where the file has (3, 2)"
    ), BROKE.format(keras.version(), "load_failure")


def test_the_workaround_gate_covers_the_installed_keras(monkeypatch):
    assert compat.multi_worker_fit_needs_workaround(), (
        f"Keras {keras.version()} is outside the version gate of keras-team/keras#20585 in "
        "keras_zoo/compat.py, but test_keras_20585_is_still_there says it needs the workaround"
    )
    monkeypatch.setattr(compat, "MULTI_WORKER_FIT_FIXED_IN", (3, 16))
    assert compat.multi_worker_fit_needs_workaround((3, 15))
    assert not compat.multi_worker_fit_needs_workaround((3, 16))


_WORKER = textwrap.dedent("""
    import json
    import numpy as np
    import tensorflow as tf
    import keras
    from keras_zoo import compat, distribute

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    data = tf.data.Dataset.from_tensor_slices(
        (np.zeros((8, 4), "float32"), np.zeros(8, "int64"))).batch(4)
    results = {}
    for part in ("build", "logs", "workaround"):
        with strategy.scope():
            inputs = keras.Input((4,))
            model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
            model.compile("sgd", "sparse_categorical_crossentropy")
        if part == "logs":  # the first half worked around: the second shows
            compat.build_from_batch(model, next(iter(data)))
        if part == "workaround":
            distribute.work_around_multi_worker_fit(model, data)
        try:
            model.fit(data, epochs=1, verbose=0)
            results[part] = "ok"
        except Exception as err:
            results[part] = str(err)
    print("RESULTS " + json.dumps(results))
""")

# how each half of keras-team/keras#20585 fails, as the installed Keras words it
_SYMPTOMS = {"build": "PerReplica", "logs": "Invalid reduction dimension 0"}


def test_keras_20585_is_still_there_and_worked_around(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    # a single worker reduces nothing, so it does not show the bug
    _, outputs = run_workers(lambda index: [sys.executable, str(script)], timeout=120)
    lines = [line for line in outputs[0].splitlines() if line.startswith("RESULTS ")]
    assert lines, outputs[0][-3000:]
    results = json.loads(lines[0][len("RESULTS ") :])
    for part, symptom in _SYMPTOMS.items():
        assert results[part] != "ok", (
            f"keras-team/keras#20585 looks fixed in Keras {keras.version()} (fit's {part} runs "
            "without the workaround): narrow the version gate in keras_zoo/compat.py"
        )
        assert symptom in results[part], f"{part} fails otherwise than known: {results[part]}"
    assert results["workaround"] == "ok", results["workaround"]

"""keras_zoo.layers.BatchNormalization: Keras' batch norm with TensorFlow's fused kernel in
inference, which must compute what Keras' own layer computes."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_zoo.layers import BatchNormalization
from tests.conftest import (assert_save_load_round_trip, random_batch_norm_weights,
                            relative_error)


def _pair(rng, shape, **kwargs):
    """(keras_zoo layer, Keras layer) built for `shape` with the same random statistics."""
    ours, theirs = BatchNormalization(**kwargs), keras.layers.BatchNormalization(**kwargs)
    ours.build(shape)
    theirs.build(shape)
    weights = random_batch_norm_weights(theirs, rng, 0.3)
    for layer in (ours, theirs):
        layer.set_weights(weights)
    return ours, theirs


@pytest.mark.parametrize("kwargs", [{}, {"epsilon": 1e-5, "scale": False},
                                    {"center": False, "axis": 3}])
def test_inference_equals_keras_batch_norm(rng, kwargs):
    x = rng.normal(0, 2, (2, 5, 6, 8)).astype("float32")
    ours, theirs = _pair(rng, x.shape, **kwargs)
    assert relative_error(ours(x, training=False), theirs(x, training=False)) < 1e-6


def test_inference_uses_the_fused_kernel_and_training_does_not(rng):
    # The fused op is what TensorFlow merges into the convolution: the point of the layer.
    ours, _ = _pair(rng, (1, 4, 4, 8))

    def op_types(training):
        fn = tf.function(lambda x: ours(x, training=training))
        graph = fn.get_concrete_function(tf.TensorSpec((1, 4, 4, 8))).graph
        return {op.type for op in graph.get_operations()}

    assert "FusedBatchNormV3" in op_types(False)
    assert "FusedBatchNormV3" not in op_types(True)


def test_training_and_frozen_layers_behave_as_keras(rng):
    x = rng.normal(1, 2, (4, 3, 3, 6)).astype("float32")
    ours, theirs = _pair(rng, x.shape, momentum=0.5)
    np.testing.assert_array_equal(ours(x, training=True), theirs(x, training=True))
    np.testing.assert_array_equal(ours.moving_mean.numpy(), theirs.moving_mean.numpy())
    for layer in (ours, theirs):  # a frozen batch norm normalises with its moving statistics
        layer.trainable = False
    assert relative_error(ours(x, training=True), theirs(x, training=True)) < 1e-6
    np.testing.assert_array_equal(ours.moving_mean.numpy(), theirs.moving_mean.numpy())


def test_other_ranks_and_channels_first_fall_back_to_keras(rng):
    for shape, axis in (((3, 7), -1), ((2, 6, 4, 4), 1)):
        x = rng.normal(0, 1, shape).astype("float32")
        ours, theirs = _pair(rng, shape, axis=axis)
        np.testing.assert_array_equal(ours(x, training=False), theirs(x, training=False))


def test_mixed_precision_returns_the_compute_dtype(rng):
    x = rng.normal(0, 1, (2, 4, 4, 8)).astype("float32")
    ours, theirs = _pair(rng, x.shape, dtype="mixed_float16")
    y = ours(x.astype("float16"), training=False)
    assert keras.backend.standardize_dtype(y.dtype) == "float16"
    assert relative_error(y, theirs(x.astype("float16"), training=False)) < 1e-3


def test_saved_models_keep_the_layer(rng, tmp_path):
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, BatchNormalization(name="bn")(keras.layers.Conv2D(4, 3)(inputs)))
    assert_save_load_round_trip(model, rng.normal(0, 1, (2, 8, 8, 3)).astype("float32"),
                                tmp_path)
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert type(loaded.get_layer("bn")) is BatchNormalization


def test_models_use_the_fused_layer_only_after_plain_convolutions():
    import keras_zoo

    def kinds(name, layers):
        model = keras_zoo.build(name, input_shape=(64, 64, 3))
        return [type(model.get_layer(n)) is BatchNormalization for n in layers]

    # stem conv, expansion 1x1: fused; after the depthwise conv: Keras' own
    assert kinds("mobilenet_v2", ["features.0.1", "features.2.conv.0.1",
                                  "features.2.conv.1.1"]) == [True, True, False]
    # after ResNeXt's grouped 3x3 (Keras computes grouped convolutions apart): Keras' own
    assert kinds("resnext50_32x4d", ["bn1", "layer1.0.bn1", "layer1.0.bn2"]) == [True, True, False]


def test_small_epsilons_are_kept_not_raised_to_a_minimum(rng):
    # Dead channels (variance 0) expose any epsilon the fused kernel would substitute.
    x = rng.normal(0, 1e-3, (1, 4, 4, 3)).astype("float32")
    for epsilon in (1e-5, 1e-7):
        ours, theirs = _pair(rng, x.shape, epsilon=epsilon)
        for layer in (ours, theirs):
            layer.moving_variance.assign(np.zeros(3, "float32"))
        fused = tf.function(lambda v: ours(v, training=False))(x)
        assert relative_error(fused, theirs(x, training=False)) < 1e-6
